"""`Recommender`: the one facade that the CLI, the chat adapters and the evaluation call.

Plain Python in and out (Paper, Result, dicts); no chat library, no Redis types leak out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .config import Settings
from .embedder import Embedder
from .index import VectorIndex
from .paper import Paper, parse_arxiv_id
from .store import PaperStore, connect

log = logging.getLogger(__name__)

MAX_K = 50


class PaperNotFound(LookupError):
    """An id or URL that names no paper paperbot knows; the message is meant for a person."""


@dataclasses.dataclass
class Result:
    paper: Paper
    score: float
    why: str


@dataclasses.dataclass
class IngestCounts:
    read: int = 0
    new: int = 0
    embedded: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class Recommender:
    """Papers, vectors and search over them, kept in Redis and mirrored in memory."""

    def __init__(self, store: PaperStore, embedder: Embedder, embedded_server=None):
        self.store = store
        self.embedder = embedder
        self._embedded_server = embedded_server
        self.index = VectorIndex(embedder.dim)
        self._seen_seq = 0.0
        self.refresh()

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> Recommender:
        settings = settings or Settings.from_env()
        client, embedded = connect(settings)
        embedder = Embedder(settings.model, settings.device, settings.batch_size)
        return cls(PaperStore(client, settings.prefix), embedder, embedded)

    def close(self) -> None:
        self.store.r.close()
        if self._embedded_server is not None:
            self._embedded_server.stop()

    # -- ingest ---------------------------------------------------------------------------
    def add_papers(self, papers: Iterable[Paper | dict[str, Any]],
                   progress: Callable[[int], None] | None = None,
                   batch: int = 256) -> IngestCounts:
        """Store papers and embed whatever text has no vector yet under the current model.

        Papers are handled in batches so that a long ingest shows progress and what was done
        is kept if it is interrupted. `progress(n)` is called after each batch with its size.
        """
        counts = IngestCounts()
        pending: list[Paper] = []
        for item in papers:
            pending.append(item if isinstance(item, Paper) else Paper.from_dict(item))
            if len(pending) >= batch:
                self._add_batch(pending, counts)
                if progress:
                    progress(len(pending))
                pending = []
        if pending:
            self._add_batch(pending, counts)
            if progress:
                progress(len(pending))
        return counts

    def _add_batch(self, papers: list[Paper], counts: IngestCounts) -> None:
        counts.read += len(papers)
        unique = list({p.id: p for p in papers}.values())  # a listing may repeat a paper
        stored = self.store.existing_hashes([p.id for p in unique])
        changed = [p for p in unique if stored[p.id] != p.content_hash]
        counts.new += sum(1 for p in changed if stored[p.id] is None)
        vectors = self._vectors_for(changed, counts)
        self.store.save_papers(changed)
        self._index_papers(changed, vectors)

    def _vectors_for(self, papers: list[Paper], counts: IngestCounts | None = None) -> np.ndarray:
        """Vectors of the papers' texts: from the cache, embedding only what is missing."""
        if not papers:
            return np.zeros((0, self.index.dim), dtype=np.float32)
        tag = self.embedder.tag
        hashes = [p.content_hash for p in papers]
        cached = self.store.get_vectors(tag, hashes)
        missing = [n for n, vec in enumerate(cached) if vec is None]
        if missing:
            fresh = self.embedder.encode([papers[n].text for n in missing])
            self.store.put_vectors(tag, [hashes[n] for n in missing], fresh)
            for n, vec in zip(missing, fresh):
                cached[n] = vec
            if counts is not None:
                counts.embedded += len(missing)
        return np.stack(cached)

    def _index_papers(self, papers: list[Paper], vectors: np.ndarray) -> None:
        self.index.upsert([p.id for p in papers], vectors,
                          [p.published for p in papers], [p.categories for p in papers])

    def refresh(self) -> int:
        """Load papers stored since the last refresh (by any process) into the index.

        At start this loads everything. Vectors come from Redis; only papers that have none
        under the current model (after a model switch) are embedded, once.
        """
        loaded = 0
        for papers, last_seq in self.store.iter_papers(self._seen_seq):
            counts = IngestCounts()
            vectors = self._vectors_for(papers, counts)
            if counts.embedded:
                log.info("embedded %d stored papers for model %s", counts.embedded, self.embedder.tag)
            self._index_papers(papers, vectors)
            self._seen_seq = last_seq
            loaded += len(papers)
        return loaded

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def get_paper(self, paper_id: str) -> Paper | None:
        return self.store.get_papers([self.resolve_id(paper_id)])[0]

    def resolve_id(self, text: str) -> str:
        """A stored paper's id from what a person typed: an id, `arXiv:` id, or URL."""
        text = (text or "").strip()
        if text in self.index:
            return text
        return parse_arxiv_id(text) or text

    def _results(self, hits: list[tuple[str, float]], why: str) -> list[Result]:
        papers = self.store.get_papers([pid for pid, _ in hits])
        return [Result(paper, score, why) for paper, (_, score) in zip(papers, hits) if paper]

    def search(self, query: str, k: int = 5, since: dt.date | None = None,
               categories: Iterable[str] | None = None) -> list[Result]:
        query = " ".join((query or "").split())
        if not query:
            raise ValueError("Tell me what to search for, e.g. `search graph neural networks`.")
        vector = self.embedder.encode([query])[0]
        hits = self.index.search(vector, _clamp(k), since, categories)
        return self._results(hits, f"matches your search '{_shorten(query)}'")

    def similar(self, paper_id: str, k: int = 5) -> list[Result]:
        paper = self.get_paper(paper_id)
        if paper is None or paper.id not in self.index:
            raise PaperNotFound(f"I don't know the paper '{_shorten(paper_id, 80)}' yet.")
        vector = self.index.vectors_for([paper.id])[0]
        hits = self.index.search(vector, _clamp(k), exclude=[paper.id])
        return self._results(hits, f"similar to '{_shorten(paper.title)}'")


def _clamp(k: int) -> int:
    return max(1, min(int(k), MAX_K))
