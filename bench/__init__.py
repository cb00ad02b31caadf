"""`paperbot bench`: how fast paperbot is on this machine, each figure against a floor.

Every benchmark measures paperbot's own path and, in the same run and interleaved with it, a
*floor*: the least work that could give the same answer (a bare `SentenceTransformer.encode`,
a bare numpy product and top-k, …). The ratio of the two is what holds on a noisy, shared
machine, where absolute times move by 3-5x; absolute times are printed too.

Modules: `embedding` (ingest throughput), `cold_start` (process start to first answered search),
`search` (74,728 papers and 1,000,000 synthetic vectors; float16; ANN), `fanout` (daily picks for
10,000 people), `chat_latency` (Slack ack / Discord first response under load), `memory` (peak
RSS of `paperbot serve`), `run` (all of them, the table and the JSON). Shared pieces: `common`.

Data: `--data DIR` (default ../shared/data) for the arXiv corpus; without it every benchmark
runs on synthetic data (and says so). The full corpus is embedded once into the bench's own
Redis (PAPERBOT_BENCH_REDIS, or an embedded Valkey in PAPERBOT_BENCH_DIR) and reused.
"""
