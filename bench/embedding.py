"""1. Embedding: ingest throughput against a bare `SentenceTransformer.encode`.

The real path is `Recommender.add_papers` on papers it has never seen (parse, content hash,
Redis cache lookup, embed, store papers and vectors, index). The floor is the same model object
(same precision, batch size, threads, sequence length) encoding the same texts and nothing
else. Batches alternate between the two, so load from other processes hits both alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Row, arxiv_file, delete_prefix, interleaved, log, read_arxiv, scratch_prefix, \
    synthetic_papers


def run(data_dir, quick: bool, client, prefix: str) -> tuple[list[Row], dict[str, Any]]:
    from recommender.embedder import Embedder
    from recommender.service import Recommender
    from recommender.store import PaperStore

    path = arxiv_file(data_dir)
    batch, batches = (32, 2) if quick else (64, 8)
    if path:
        papers = read_arxiv(path, limit=batch * batches, every=97, offset=13)  # spread over the year
        source = f"arXiv abstracts ({path.parent.name})"
    else:
        papers = synthetic_papers(batch * batches, seed=1)
        source = "synthetic abstracts (no --data)"
    embedder = Embedder()
    model = embedder.model
    tokens = model.max_seq_length
    log(f"embedding: {len(papers)} {source}, {embedder.precision}, {tokens} tokens, "
        f"batch {embedder.batch_size}")
    texts = [f"{p['title']}\n{p['abstract']}".strip() for p in papers]
    model.encode(texts[:8], batch_size=embedder.batch_size)   # warm-up: first call allocates
    scratch = scratch_prefix(prefix)
    rec = Recommender(PaperStore(client, scratch), embedder)
    chunks = [slice(i * batch, (i + 1) * batch) for i in range(batches)]

    def floor(i: int) -> None:
        model.encode(texts[chunks[i]], batch_size=embedder.batch_size, normalize_embeddings=True,
                     convert_to_numpy=True)

    def real(i: int) -> None:
        counts = rec.add_papers(papers[chunks[i]], batch=batch)
        assert counts.embedded == len(papers[chunks[i]]), counts

    try:
        floors, reals = interleaved(floor, real, batches)
    finally:
        delete_prefix(client, scratch)
    per_s = len(papers) / sum(reals)
    floor_per_s = len(papers) / sum(floors)
    rows = [Row(f"embed: ingest papers/s ({embedder.precision}, {tokens} tok)", per_s, "/s",
                floor_per_s, "bare encode, same texts",
                note=f"{len(papers)} {source}; ratio = throughput / floor's"),
            ]
    out = {"embed_papers_per_s": round(per_s, 1), "embed_floor_papers_per_s": round(floor_per_s, 1),
           "embed_ratio": round(per_s / floor_per_s, 3), "embed_precision": embedder.precision,
           "embed_tokens": tokens, "embed_batch_ms": {
               "ingest_median": round(float(np.median(reals)) * 1000, 1),
               "floor_median": round(float(np.median(floors)) * 1000, 1)}}
    if not quick:   # what bfloat16 buys: float32 on the same texts, interleaved
        out.update(_float32_reference(texts[: 2 * batch], model, embedder.batch_size,
                                      embedder.precision))
        if "embed_float32_papers_per_s" in out:
            rows.append(Row("embed: bare encode float32 (reference)",
                            out["embed_float32_papers_per_s"], "/s",
                            out["embed_same_texts_papers_per_s"], f"bare encode {embedder.precision}",
                            note="ratio < 1: float32 is slower"))
    return rows, out


def _float32_reference(texts: list[str], model, batch_size: int, precision: str) -> dict[str, Any]:
    import copy

    import torch

    if precision == "float32":
        return {}
    f32 = copy.deepcopy(model).to(torch.float32)
    half = len(texts) // 2
    parts = [texts[:half], texts[half:]]

    def a(i: int) -> None:
        model.encode(parts[i], batch_size=batch_size)

    def b(i: int) -> None:
        f32.encode(parts[i], batch_size=batch_size)

    fast, slow = interleaved(a, b, 2)
    va = model.encode(texts[:32], batch_size=batch_size, normalize_embeddings=True)
    vb = f32.encode(texts[:32], batch_size=batch_size, normalize_embeddings=True)
    va = va / np.linalg.norm(va, axis=1, keepdims=True)
    cos = (np.asarray(va, dtype=np.float32) * vb).sum(axis=1)
    f32 = None
    return {"embed_float32_papers_per_s": round(len(texts) / sum(slow), 1),
            "embed_same_texts_papers_per_s": round(len(texts) / sum(fast), 1),
            "embed_cosine_to_float32_min": round(float(cos.min()), 6)}
