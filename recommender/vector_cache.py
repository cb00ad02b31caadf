"""Vectors of texts through Redis: each text is embedded once per model, ever (keyed by the
model's tag and the text's content hash), so that a restart, a re-ingest or another process
reuses what was computed."""

from __future__ import annotations

import numpy as np

from .embedder import Embedder
from .paper import content_hash
from .store import PaperStore


class VectorCache:
    def __init__(self, store: PaperStore, embedder: Embedder):
        self.store, self.embedder = store, embedder

    def vectors(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Normalised vectors of `texts`, and how many had to be embedded."""
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32), 0
        tag = self.embedder.tag
        hashes = [content_hash(t) for t in texts]
        cached = self.store.get_vectors(tag, hashes)
        missing = [n for n, vec in enumerate(cached) if vec is None]
        if missing:
            fresh = self.embedder.encode([texts[n] for n in missing])
            self.store.put_vectors(tag, [hashes[n] for n in missing], fresh)
            for n, vec in zip(missing, fresh):
                cached[n] = vec
        return np.stack(cached), len(missing)

    def stored(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """`vectors` for many texts at once, read as one block of bytes when all are stored
        (the cold-start path: 75k papers' vectors)."""
        dim = self.embedder.dim
        raws = self.store.vector_bytes(self.embedder.tag, [content_hash(t) for t in texts])
        if all(raw is not None and len(raw) == 4 * dim for raw in raws):
            return np.frombuffer(b"".join(raws), dtype=np.float32).reshape(-1, dim), 0
        return self.vectors(texts)
