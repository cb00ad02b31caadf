"""Exact cosine search over every paper, in memory.

Vectors are normalised, so cosine is a dot product: one matrix-vector product and a partial
sort answer a query. Rows are filled from Redis at start and appended on ingest. The interface
(`upsert`, `search`, `vectors_for`) is small so that an ANN index can replace this one later.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable

import numpy as np

_NO_DATE = -(10**6)


def _day(date: dt.date | None) -> int:
    return date.toordinal() if date else _NO_DATE


class VectorIndex:
    def __init__(self, dim: int):
        self.dim = dim
        self._vectors = np.zeros((1024, dim), dtype=np.float32)
        self._days = np.zeros(1024, dtype=np.int32)
        self._categories: list[frozenset[str]] = []
        self.ids: list[str] = []
        self._row: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, paper_id: str) -> bool:
        return paper_id in self._row

    @property
    def matrix(self) -> np.ndarray:
        """The live rows (a view: don't write to it)."""
        return self._vectors[: len(self.ids)]

    def upsert(self, ids: list[str], vectors: np.ndarray,
               dates: list[dt.date | None], categories: list[Iterable[str]]) -> None:
        """Add papers, or replace the vector and metadata of ones already present."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            for paper_id, vector, date, cats in zip(ids, vectors, dates, categories):
                row = self._row.get(paper_id)
                if row is None:
                    row = len(self.ids)
                    self._grow(row + 1)
                    self.ids.append(paper_id)
                    self._categories.append(frozenset(cats))
                    self._row[paper_id] = row
                else:
                    self._categories[row] = frozenset(cats)
                self._vectors[row] = vector
                self._days[row] = _day(date)

    def _grow(self, size: int) -> None:
        if size <= len(self._vectors):
            return
        capacity = max(size, 2 * len(self._vectors))
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[: len(self.ids)] = self.matrix
        days = np.zeros(capacity, dtype=np.int32)
        days[: len(self.ids)] = self._days[: len(self.ids)]
        self._vectors, self._days = vectors, days

    def rows_for(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of the given ids that are in the index, in the given order."""
        return np.array([self._row[i] for i in ids if i in self._row], dtype=np.int64)

    def vectors_for(self, ids: Iterable[str]) -> np.ndarray:
        return self.matrix[self.rows_for(ids)]

    def mask(self, since: dt.date | None = None, categories: Iterable[str] | None = None,
             exclude: Iterable[str] = ()) -> np.ndarray:
        """Rows that pass the filters: published on/after `since`, in any of `categories`."""
        n = len(self.ids)
        keep = np.ones(n, dtype=bool)
        if since is not None:
            keep &= self._days[:n] >= since.toordinal()
        if categories:
            wanted = {c.lower() for c in categories}
            keep &= np.fromiter(
                (any(c.lower() in wanted for c in cats) for cats in self._categories),
                dtype=bool, count=n,
            )
        rows = self.rows_for(exclude)
        keep[rows] = False
        return keep

    def search(self, query: np.ndarray, k: int = 5, since: dt.date | None = None,
               categories: Iterable[str] | None = None,
               exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The k ids most similar to `query` among rows that pass the filters, best first."""
        with self._lock:
            n = len(self.ids)
            if n == 0 or k <= 0:
                return []
            scores = self.matrix @ np.asarray(query, dtype=np.float32).reshape(self.dim)
            keep = self.mask(since, categories, exclude)
            scores = np.where(keep, scores, -np.inf)
            k = min(k, int(keep.sum()))
            if k == 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(self.ids[i], float(scores[i])) for i in top]
