"""Shared pieces of the benchmarks: timing, data (real or synthetic), the bench's own Redis."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ARXIV = Path("arxiv") / "daily-arxiv-ai-enhanced" / "papers.jsonl.gz"
CORPUS_SIZE = 74_728
REPO = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table or the JSON)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- timing ------------------------------------------------------------------------------------
def summary(seconds: list[float]) -> dict[str, float]:
    """Median and p95 (nearest rank) of durations, in milliseconds."""
    if not seconds:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"), "n": 0}
    xs = np.sort(np.asarray(seconds, dtype=np.float64)) * 1000

    def rank(q: float) -> float:
        return float(xs[min(len(xs) - 1, max(0, int(np.ceil(q * len(xs))) - 1))])

    return {"median_ms": round(float(np.median(xs)), 3), "p95_ms": round(rank(0.95), 3),
            "p99_ms": round(rank(0.99), 3), "n": len(xs)}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def interleaved(floor: Callable[[int], Any], real: Callable[[int], Any], reps: int,
                ) -> tuple[list[float], list[float]]:
    """Run floor(i) and real(i) alternately (ABBA order, so neither always goes first) and
    return both lists of durations: noise from other processes hits both alike."""
    floors, reals = [], []
    for i in range(reps):
        order = [(floor, floors), (real, reals)]
        if i % 2:
            order.reverse()
        for fn, out in order:
            out.append(timed(lambda: fn(i))[0])
    return floors, reals


@dataclasses.dataclass
class Row:
    """One line of the table: a figure, its floor, and figure / floor."""

    name: str
    value: float | None
    unit: str
    floor: float | None = None
    floor_name: str = ""
    p95: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.floor:
            return None
        return self.value / self.floor

    def cells(self) -> list[str]:
        def fmt(x: float | None) -> str:
            if x is None:
                return "-"
            return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"

        ratio = self.ratio
        return [self.name, f"{fmt(self.value)} {self.unit}".strip(),
                "-" if self.p95 is None else f"{fmt(self.p95)} {self.unit}",
                "-" if self.floor is None else f"{fmt(self.floor)} {self.unit}",
                "-" if ratio is None else f"{ratio:.2f}", self.floor_name, self.note]


def table(rows: list[Row]) -> str:
    header = ["figure", "median / value", "p95", "floor", "ratio", "floor is", "note"]
    lines = [header] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- data -------------------------------------------------------------------------------------
def arxiv_file(data_dir: str | Path | None) -> Path | None:
    if data_dir is None:
        return None
    path = Path(data_dir) / ARXIV
    return path if path.is_file() else None


def read_arxiv(path: Path, limit: int | None = None, every: int = 1,
               offset: int = 0) -> list[dict[str, Any]]:
    """Rows of the arXiv corpus (dicts as `paperbot ingest` reads them), every `every`-th."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= offset and (n - offset) % every == 0:
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


_WORDS = ("model learning neural network training data task performance method approach results "
          "propose show image language graph representation attention transformer diffusion "
          "benchmark state-of-the-art efficient large dataset evaluation framework generation "
          "reinforcement policy agent reasoning retrieval segmentation detection robust "
          "adversarial optimization gradient loss feature embedding latent spatial temporal "
          "video audio speech text multimodal vision robot control planning inference scalable "
          "sparse quantization memory accuracy baseline experiments demonstrate significantly "
          "improves outperforms existing methods novel we our the of and in to for with on by "
          "a an is are this that which from as these across both while than").split()


def synthetic_papers(n: int, seed: int = 0, words: int = 190) -> list[dict[str, Any]]:
    """Papers with arXiv-like abstracts (~1,300 characters, as the real corpus's mean) made of
    common words: what the embedding path costs does not depend on what the words mean."""
    import datetime as dt

    rng = random.Random(seed)
    first = dt.date(2025, 1, 1)
    out = []
    for i in range(n):
        title = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))).capitalize()
        abstract = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(words // 2, words * 3 // 2)))
        out.append({"id": f"syn-{seed}-{i:07d}", "title": title, "abstract": abstract.capitalize() + ".",
                    "categories": [rng.choice(["cs.LG", "cs.CV", "cs.CL", "cs.AI", "cs.RO"])],
                    "authors": ["A. Author"], "date": (first + dt.timedelta(days=i * 365 // max(n, 1))).isoformat()})
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def synthetic_vectors(n: int, dim: int = 384, seed: int = 0, anchors: np.ndarray | None = None,
                      block: int = 100_000) -> np.ndarray:
    """n unit vectors shaped like sentence embeddings of a corpus: each is a real paper's vector
    (`anchors`; without them, points of a 48-dimensional clustered subspace) plus a third of a
    second one and noise (cosine ~0.85 to its first anchor). Uniform random vectors would be
    far easier for exact search to rank and far harder for ANN than any real corpus."""
    rng = np.random.default_rng(seed)
    if anchors is None:
        centres = rng.standard_normal((256, 48)).astype(np.float32)
        points = centres[rng.integers(0, 256, 20_000)] + 0.6 * rng.standard_normal((20_000, 48)).astype(np.float32)
        anchors = unit_rows(points @ rng.standard_normal((48, dim)).astype(np.float32))
    anchors = np.asarray(anchors, dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        m = stop - start
        x = (anchors[rng.integers(0, len(anchors), m)]
             + 0.33 * anchors[rng.integers(0, len(anchors), m)]
             + 0.025 * rng.standard_normal((m, dim)).astype(np.float32))
        out[start:stop] = unit_rows(x)
    return out


QUERIES = [
    "graph neural networks for molecules", "diffusion models for image editing",
    "speech recognition with transformers", "reinforcement learning from human feedback",
    "retrieval augmented generation", "vision language models hallucination",
    "medical image segmentation", "large language model reasoning benchmarks",
    "efficient attention for long context", "robot manipulation policy learning",
    "3d gaussian splatting", "federated learning privacy", "text to video generation",
    "quantization of large language models", "multimodal chain of thought",
    "autonomous driving perception", "code generation with language models",
    "contrastive self-supervised learning", "mixture of experts routing",
    "time series forecasting", "knowledge distillation", "point cloud registration",
    "machine translation low resource languages", "adversarial robustness certification",
    "neural radiance fields", "protein structure prediction", "sparse autoencoders interpretability",
    "speculative decoding", "object detection in aerial images", "visual question answering",
]


# -- the bench's own Redis ----------------------------------------------------------------
@contextlib.contextmanager
def bench_redis(persistent: bool) -> Iterator[tuple[Any, str, str]]:
    """(client, url, prefix) of the Redis the benchmarks use, never the bot's own data.

    PAPERBOT_BENCH_REDIS (a URL) and PAPERBOT_BENCH_PREFIX (default `bench:`) choose one;
    otherwise an embedded Valkey in PAPERBOT_BENCH_DIR (default ~/.cache/paperbot/bench) when
    `persistent` (the full run keeps the embedded corpus there for the next run), or in a
    temporary folder that is deleted afterwards (`--quick`)."""
    import redis

    from recommender.embedded_redis import EmbeddedRedis

    prefix = os.environ.get("PAPERBOT_BENCH_PREFIX") or "bench:"
    url = os.environ.get("PAPERBOT_BENCH_REDIS")
    embedded, tmp = None, None
    if not url:
        if persistent:
            folder = Path(os.environ.get("PAPERBOT_BENCH_DIR")
                          or Path.home() / ".cache" / "paperbot" / "bench")
        else:
            tmp = tempfile.TemporaryDirectory(prefix="paperbot-bench-")
            folder = Path(tmp.name)
        embedded = EmbeddedRedis(folder)
        url = embedded.start()
    client = redis.Redis.from_url(url, socket_timeout=120)
    try:
        client.ping()
        yield client, url, prefix
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()
        if tmp is not None:
            tmp.cleanup()


def scratch_prefix(prefix: str) -> str:
    """A prefix of its own under `prefix`, for data one benchmark writes and deletes."""
    return f"{prefix}tmp-{uuid.uuid4().hex[:8]}:"


def delete_prefix(client, prefix: str) -> None:
    batch = []
    for key in client.scan_iter(match=prefix.replace("[", "\\[") + "*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def store_synthetic_corpus(rec, papers: list[dict[str, Any]], vectors: np.ndarray) -> None:
    """Papers and their vectors straight into a Recommender's store and index (no model):
    the vectors are cached under the model's tag first, so `add_papers` embeds nothing."""
    from recommender.paper import Paper

    objs = [Paper.from_dict(p) for p in papers]
    rec.store.put_vectors(rec.embedder.tag, [p.content_hash for p in objs], vectors)
    rec.add_papers(objs, batch=2000)


def env_for(url: str, prefix: str, **extra: str) -> dict[str, str]:
    """Environment of a `paperbot` subprocess on the bench's Redis and prefix."""
    env = dict(os.environ)
    env.update(REDIS_URL=url, PAPERBOT_PREFIX=prefix, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.setdefault("PYTHONPATH", str(REPO))
    env.update(extra)
    return env
