"""Cosine search over every paper, in memory: exact, and approximate (ANN) at large sizes.

Vectors are normalised, so cosine is a dot product: one matrix-vector product and a partial
sort answer a query. Rows are filled from Redis at start and appended on ingest. The interface
(`upsert`, `search`, `vectors_for`, `rows_for`, `mask`, `matrix`) is small, and the ANN index
lives behind it: callers never know which one answered.

Settings (`Settings.index_dtype`, `ann`, `ann_min_rows`, from these variables):

- `PAPERBOT_INDEX_DTYPE` = float32 (default) | float16: how vectors are kept. float16 halves the
  memory (75k papers: 57 MB instead of 115 MB; 1M: 0.77 GB instead of 1.5 GB). Its search takes
  a float16 product (torch: numpy has no fast float16 kernels) and then re-scores the best rows
  in float32, so the order of results is the float32 one of the stored (rounded) vectors.
- `PAPERBOT_ANN` = auto (default) | off | on, `PAPERBOT_ANN_MIN_ROWS` (default 300,000): from that
  many rows an inverted-file index (faiss `IndexIVFScalarQuantizer`, fp16 codes, inner product)
  answers searches when faiss is installed (`pip install 'paperbot[ann]'`); exact search stays
  the fallback (faiss missing, the index still building, or filters that leave too few rows).
  Results are re-scored exactly, so only recall can differ from exact search (recall@10 is
  reported by `paperbot bench`). The index is built in a background thread the first time a
  search finds enough rows (about half a minute per million vectors on two cores) and rebuilt
  when the corpus has doubled since; rows added meanwhile are added to it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Iterable

import numpy as np

from .config import ANN_MIN_ROWS, ANN_MODES, INDEX_DTYPES

log = logging.getLogger(__name__)

_NO_DATE = -(10**6)
ANN_PROBE_FRACTION = 1 / 32     # lists scanned per query: nprobe = nlist / 32, at least 16
RESCORE_EXTRA = 64              # float16 / ANN: rows re-scored beyond k


def _day(date: dt.date | None) -> int:
    return date.toordinal() if date else _NO_DATE


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401  (only whether it imports)
    except ImportError:
        return False
    return True


class VectorIndex:
    def __init__(self, dim: int, dtype: str = "float32", ann: str = "auto",
                 ann_min_rows: int = ANN_MIN_ROWS):
        self.dim = dim
        self.dtype = np.dtype(dtype)
        if self.dtype.name not in INDEX_DTYPES:
            raise ValueError(f"index dtype must be one of {', '.join(INDEX_DTYPES)}, not {self.dtype}")
        if ann not in ANN_MODES:
            raise ValueError(f"ann must be one of {', '.join(ANN_MODES)}, not {ann!r}")
        self.ann_mode = ann
        self.ann_min_rows = ann_min_rows
        self._vectors = np.zeros((1024, dim), dtype=self.dtype)
        self._days = np.zeros(1024, dtype=np.int32)
        self._categories: list[frozenset[str]] = []
        self.ids: list[str] = []
        self._row: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ann: _IVF | None = None
        self._ann_building = False
        self._ann_changed: set[int] = set()   # rows replaced while the ANN index was building

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, paper_id: str) -> bool:
        return paper_id in self._row

    @property
    def matrix(self) -> np.ndarray:
        """The live rows, in the storage dtype (a view: don't write to it)."""
        return self._vectors[: len(self.ids)]

    @property
    def ann_ready(self) -> bool:
        return self._ann is not None

    def upsert(self, ids: list[str], vectors: np.ndarray,
               dates: list[dt.date | None], categories: list[Iterable[str]]) -> None:
        """Add papers, or replace the vector and metadata of ones already present."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            rows = np.empty(len(ids), dtype=np.int64)
            replaced = []
            self._grow(len(self.ids) + len(ids))
            for n, (paper_id, cats) in enumerate(zip(ids, categories)):
                row = self._row.get(paper_id)
                if row is None:
                    row = len(self.ids)
                    self.ids.append(paper_id)
                    self._categories.append(frozenset(cats))
                    self._row[paper_id] = row
                else:
                    self._categories[row] = frozenset(cats)
                    replaced.append(row)
                rows[n] = row
            self._vectors[rows] = vectors   # a repeated id: the last one wins, as one by one
            self._days[rows] = np.fromiter((_day(d) for d in dates), dtype=np.int32,
                                           count=len(rows))
            if self._ann is not None:
                self._ann.update(self._vectors, rows)
            if self._ann_building:   # the index being built has a snapshot: replay these
                self._ann_changed.update(replaced)

    def reserve(self, size: int) -> None:
        """Make room for `size` rows at once (a bulk load then copies nothing)."""
        with self._lock:
            if size > len(self._vectors):
                self._resize(size)

    def _grow(self, size: int) -> None:
        if size > len(self._vectors):
            self._resize(max(size, 2 * len(self._vectors)))

    def _resize(self, capacity: int) -> None:
        vectors = np.zeros((capacity, self.dim), dtype=self.dtype)
        vectors[: len(self.ids)] = self.matrix
        days = np.zeros(capacity, dtype=np.int32)
        days[: len(self.ids)] = self._days[: len(self.ids)]
        self._vectors, self._days = vectors, days

    def row_of(self, paper_id: str) -> int | None:
        return self._row.get(paper_id)

    def rows_for(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of the given ids that are in the index, in the given order."""
        return np.array([self._row[i] for i in ids if i in self._row], dtype=np.int64)

    def vectors_for(self, ids: Iterable[str]) -> np.ndarray:
        return self.matrix[self.rows_for(ids)].astype(np.float32, copy=False)

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

    def published_before(self, date: dt.date) -> np.ndarray:
        """Rows with a publication date before `date` (an undated row is not)."""
        days = self._days[: len(self.ids)]
        return (days != _NO_DATE) & (days < date.toordinal())

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of `query` to every row, float32 (float16 storage: to about 1e-3)."""
        query = np.asarray(query, dtype=np.float32).reshape(self.dim)
        if self.dtype == np.float32:
            return self.matrix @ query
        import torch

        product = torch.from_numpy(self.matrix) @ torch.from_numpy(query.astype(np.float16))
        return product.numpy().astype(np.float32)

    def search(self, query: np.ndarray, k: int = 5, since: dt.date | None = None,
               categories: Iterable[str] | None = None,
               exclude: Iterable[str] = (), exact: bool = False) -> list[tuple[str, float]]:
        """The k ids most similar to `query` among rows that pass the filters, best first.

        `exact=True` never uses the ANN index (the benchmark's reference)."""
        query = np.asarray(query, dtype=np.float32).reshape(self.dim)
        with self._lock:
            n = len(self.ids)
            if n == 0 or k <= 0:
                return []
            if not exact and self._wants_ann(n):
                hits = self._search_ann(query, k, since, categories, exclude)
                if hits is not None:
                    return hits
            scores = self.scores(query)
            keep = self.mask(since, categories, exclude)
            scores = np.where(keep, scores, -np.inf)
            k = min(k, int(keep.sum()))
            if k == 0:
                return []
            if self.dtype != np.float32:   # rounded scores: re-score the best rows exactly
                pool = min(n, k + RESCORE_EXTRA)
                top = np.argpartition(-scores, pool - 1)[:pool]
                top = top[np.isfinite(scores[top])]
                return self._rescored(query, top, k)
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(self.ids[i], float(scores[i])) for i in top]

    def _rescored(self, query: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[str, float]]:
        exact = self._vectors[rows].astype(np.float32) @ query
        order = np.lexsort((rows, -exact))[:k]   # best first; ties by row, as exact search
        return [(self.ids[rows[i]], float(exact[i])) for i in order]

    # -- ANN ------------------------------------------------------------------------------
    def _wants_ann(self, n: int) -> bool:
        """Whether this search may use the ANN index; starts building one when it is due."""
        if self.ann_mode == "off":
            return False
        if self._ann is not None:   # built (by size, or by build_ann): use it
            if n >= 2 * self._ann.trained_rows and not self._ann_building:
                self._start_ann_build()    # the corpus doubled: new lists fit it better
            return True
        if n < self.ann_min_rows or self._ann_building:
            return False
        if not faiss_available():
            if self.ann_mode == "on":
                log.warning("PAPERBOT_ANN=on but faiss is not installed: exact search")
            self.ann_mode = "off"
            return False
        self._start_ann_build()
        return False

    def _start_ann_build(self) -> None:
        self._ann_building = True
        self._ann_changed = set()
        threading.Thread(target=self.build_ann, name="ann-build", daemon=True).start()

    def build_ann(self) -> None:
        """Build (or rebuild) the ANN index from the rows there are now; searches stay exact
        (or use the previous ANN index) until it is ready. Blocks: call it in a thread."""
        with self._lock:
            self._ann_building = True
            n = len(self.ids)
            snapshot = self.matrix   # rows < n are only replaced in place: tracked below
        try:
            ann = _IVF.build(snapshot[:n], self.dim)
        except Exception:
            log.exception("building the ANN index failed: exact search")
            with self._lock:
                self._ann_building = False
                self.ann_mode = "off"
            return
        with self._lock:
            changed = sorted(r for r in self._ann_changed if r < n) + list(range(n, len(self.ids)))
            if changed:
                ann.update(self._vectors, np.asarray(changed, dtype=np.int64))
            self._ann, self._ann_building, self._ann_changed = ann, False, set()
        log.info("ANN index ready over %d rows (%d lists)", n, ann.nlist)

    def _search_ann(self, query, k, since, categories, exclude) -> list[tuple[str, float]] | None:
        excluded = self.rows_for(exclude)
        keep = None
        if since is not None or categories:   # filters inside the scan (a bitmap of rows)
            keep = self.mask(since, categories, exclude)
        rows = self._ann.search(query, k + len(excluded) + RESCORE_EXTRA, keep)
        if keep is None and len(excluded):
            rows = rows[~np.isin(rows, excluded)]
        if len(rows) < k:
            return None   # the probed lists hold too few rows that pass: exact search
        return self._rescored(query, rows, k)


class _IVF:
    """faiss inverted lists with fp16 codes; ids are our row numbers."""

    def __init__(self, index, trained_rows: int, nlist: int):
        self.index, self.trained_rows, self.nlist = index, trained_rows, nlist

    @classmethod
    def build(cls, vectors: np.ndarray, dim: int) -> _IVF:
        import faiss

        n = len(vectors)
        nlist = int(2 ** round(math.log2(max(64.0, math.sqrt(n)))))   # 1M rows: 1024 lists
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
        index.nprobe = max(16, int(nlist * ANN_PROBE_FRACTION))
        ivf = cls(index, n, nlist)
        step = 65536
        for start in range(0, n, step):
            stop = min(n, start + step)
            ivf._add(vectors[start:stop], np.arange(start, stop, dtype=np.int64))
        return ivf

    def _add(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), rows)

    def update(self, matrix: np.ndarray, rows: np.ndarray) -> None:
        """(Re)place `rows` of `matrix` in the index (new rows are simply added)."""
        import faiss

        rows = np.unique(rows)
        if len(rows) == 0:
            return
        self.index.remove_ids(faiss.IDSelectorBatch(rows))
        self._add(matrix[rows], rows)

    def search(self, query: np.ndarray, want: int, keep: np.ndarray | None) -> np.ndarray:
        """Rows of (about) the `want` best, only rows where the boolean `keep` is set."""
        import faiss

        params = None
        if keep is not None:
            bits = np.packbits(keep, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe)
        _, found = self.index.search(query.reshape(1, -1).astype(np.float32), want, params=params)
        found = found[0]
        return found[found >= 0]
