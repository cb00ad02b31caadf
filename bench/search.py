"""3. Search: end-to-end latency against query encoding + a bare numpy product and top-k.

At the corpus size (74,728 papers in Redis): `Recommender.search` (encode the query on one
thread, score every paper, top-k, read the 5 papers from Redis). At 1,000,000 synthetic vectors
(shaped on the corpus's own vectors, see `common.synthetic_vectors`): the index alone (there
are no papers behind them), exact in float32 and float16, and the ANN index, with its recall@10
against exact search and its build time. Floor and real alternate query by query.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recommender.service import NoCloseMatch

from .common import QUERIES, Row, interleaved, log, summary, synthetic_vectors


def _floor(embedder, matrix: np.ndarray, k: int = 5):
    def run(text: str) -> np.ndarray:
        q = embedder.encode_query(text)
        scores = matrix @ q
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top])]
    return run


def _answer(rec, text: str):
    """`rec.search`, where "nothing is close" (synthetic vectors match no query) is an answer."""
    try:
        return rec.search(text)
    except NoCloseMatch:
        return []


def at_corpus(rec, quick: bool, what: str) -> tuple[list[Row], dict[str, Any]]:
    from recommender.index import VectorIndex

    embedder = rec.embedder
    matrix = np.ascontiguousarray(rec.index.matrix, dtype=np.float32)
    n = len(matrix)
    queries = QUERIES * (1 if quick else 3)
    floor = _floor(embedder, matrix)
    for text in QUERIES[:3]:     # warm-up: first calls allocate
        floor(text)
        _answer(rec, text)
    log(f"search: {len(queries)} queries at {n:,} papers ({what})")
    floors, reals = interleaved(lambda i: floor(queries[i]), lambda i: _answer(rec, queries[i]),
                                len(queries))
    f, r = summary(floors), summary(reals)
    rows = [Row(f"search e2e at {n:,} papers", r["median_ms"], "ms", f["median_ms"],
                "encode + numpy product + top-k", p95=r["p95_ms"],
                note=f"{what}; p95 ratio {r['p95_ms'] / f['p95_ms']:.2f}; Recommender.search")]
    out = {"search_papers": n, "search_median_ms": r["median_ms"], "search_p95_ms": r["p95_ms"],
           "search_floor_median_ms": f["median_ms"], "search_floor_p95_ms": f["p95_ms"],
           "search_ratio": round(r["median_ms"] / f["median_ms"], 3),
           "search_p95_ratio": round(r["p95_ms"] / f["p95_ms"], 3)}

    half = VectorIndex(rec.index.dim, dtype="float16", ann="off")
    half.upsert(list(rec.index.ids), matrix, [None] * n, [()] * n)
    f16 = lambda i: half.search(embedder.encode_query(queries[i]), 5)  # noqa: E731
    floors, reals = interleaved(lambda i: floor(queries[i]), f16, len(queries))
    f, r = summary(floors), summary(reals)
    agree = np.mean([[x for x, _ in half.search(embedder.encode_query(q), 10)]
                     == [x for x, _ in rec.index.search(embedder.encode_query(q), 10)]
                     for q in QUERIES])
    rows.append(Row(f"search index float16 at {n:,}", r["median_ms"], "ms", f["median_ms"],
                    "encode + numpy product + top-k", p95=r["p95_ms"],
                    note=f"{matrix.nbytes / 2**20:.0f} MB -> {half.matrix.nbytes / 2**20:.0f} MB; "
                         f"same top-10 as float32 for {agree:.0%} of queries"))
    out.update(search_f16_median_ms=r["median_ms"], search_f16_p95_ms=r["p95_ms"],
               search_f16_ratio=round(r["median_ms"] / f["median_ms"], 3),
               search_f16_same_top10=round(float(agree), 3))
    return rows, out


def at_scale(embedder, anchors: np.ndarray | None, n: int, quick: bool) -> tuple[list[Row], dict[str, Any]]:
    from recommender.index import VectorIndex, faiss_available

    dim = embedder.dim
    log(f"search: generating {n:,} synthetic vectors")
    vectors = synthetic_vectors(n, dim, seed=7, anchors=anchors)
    ids = [f"s{i}" for i in range(n)]
    exact = VectorIndex(dim, dtype="float32", ann="off")
    exact.upsert(ids, vectors, [None] * n, [()] * n)
    matrix = exact.matrix
    queries = QUERIES * (1 if quick else 2)
    floor = _floor(embedder, matrix)
    rows: list[Row] = []
    out: dict[str, Any] = {"scale_vectors": n}
    label = f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n:,}"

    def measure(name: str, fn, note: str, key: str) -> None:
        floors, reals = interleaved(lambda i: floor(queries[i]), fn, len(queries))
        f, r = summary(floors), summary(reals)
        rows.append(Row(f"search {name} at {label}", r["median_ms"], "ms", f["median_ms"],
                        "encode + numpy product + top-k", p95=r["p95_ms"], note=note))
        out.update({f"{key}_median_ms": r["median_ms"], f"{key}_p95_ms": r["p95_ms"],
                    f"{key}_ratio": round(r["median_ms"] / f["median_ms"], 3),
                    "scale_floor_median_ms": f["median_ms"]})

    floor(queries[0])
    log(f"search: exact float32 at {label}")
    measure("exact float32", lambda i: exact.search(embedder.encode_query(queries[i]), 5, exact=True),
            f"{matrix.nbytes / 2**20:,.0f} MB", "scale_exact")
    half = VectorIndex(dim, dtype="float16", ann="on" if faiss_available() else "off",
                       ann_min_rows=n + 1)
    half.upsert(ids, vectors, [None] * n, [()] * n)
    del vectors
    log(f"search: exact float16 at {label}")
    measure("exact float16", lambda i: half.search(embedder.encode_query(queries[i]), 5, exact=True),
            f"{half.matrix.nbytes / 2**20:,.0f} MB", "scale_f16")
    if not faiss_available():
        rows.append(Row(f"search ANN at {label}", None, "ms",
                        note="faiss not installed: pip install 'paperbot[ann]'"))
        return rows, out
    log(f"search: building the ANN index over {label} vectors")
    started = time.perf_counter()
    half.build_ann()
    build = time.perf_counter() - started
    # recall@10 against exact search: the text queries and 200 papers' own vectors ("similar")
    rng = np.random.default_rng(3)
    probes = [embedder.encode_query(q) for q in QUERIES] + list(
        exact.matrix[rng.choice(n, 30 if quick else 200, replace=False)].astype(np.float32))
    recalls = []
    for q in probes:
        truth = {x for x, _ in exact.search(q, 10, exact=True)}
        recalls.append(len(truth & {x for x, _ in half.search(q, 10)}) / 10)
    recall = float(np.mean(recalls))
    measure("ANN (faiss IVF, fp16)", lambda i: half.search(embedder.encode_query(queries[i]), 5),
            f"recall@10 {recall:.3f} vs exact ({len(probes)} queries); build {build:.0f} s; "
            f"{half._ann.nlist} lists, {half._ann.index.nprobe} probed", "scale_ann")
    out.update(scale_ann_recall_at_10=round(recall, 4), scale_ann_build_s=round(build, 1),
               scale_ann_lists=half._ann.nlist, scale_ann_probes=int(half._ann.index.nprobe))
    return rows, out
