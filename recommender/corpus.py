"""The in-memory index kept in step with the papers in Redis: a refresh's load, and the check
that Redis did not go backwards under the index.

Redis can lose papers under a running replica: a FLUSHDB, a restore of an older backup, a
failover to a lagging replica, a new empty server. Its ingest sequence then starts again below
the replica's high-water mark, so a refresh that loads "papers newer than the mark" would load
nothing (or, once new papers pass the mark, only some of them) and keep serving papers Redis no
longer has. `check` notices, with three reads cheap enough for every refresh and every /health:

- the paper at the mark still has the mark's sequence (gone: Redis went back past it; another
  sequence: the numbering started again and passed it);
- the paper the index took last is still in Redis (it may be one this replica ingested itself,
  which the mark does not cover yet);
- Redis has at least as many papers as the index (papers are never deleted).

The caller then reloads everything into a fresh index (`Recommender.refresh`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .index import VectorIndex
from .lexical import VERSION as TERMS_VERSION
from .lexical import LexicalIndex, terms_of
from .paper import content_hash, parse_date
from .store import CHUNK, PaperStore, loads
from .vector_cache import VectorCache

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Mark:
    """How far a refresh has read: the ingest sequence reached and the paper that holds it."""

    seq: float = 0.0
    paper: str | None = None


def check(store: PaperStore, mark: Mark, ids: list[str]) -> str | None:
    """Why the index (`ids`, its rows' paper ids) disagrees with Redis; None when it agrees.
    Read-only; raises what redis-py raises when Redis cannot be read."""
    indexed = len(ids)   # read before Redis is asked: whatever the index has was stored before
    last = ids[indexed - 1] if indexed else None
    papers = store.key("papers")
    pipe = store.r.pipeline(transaction=False)
    pipe.zcard(papers)
    pipe.zscore(papers, mark.paper or "")
    pipe.zscore(papers, last or "")
    count, at_mark, at_last = pipe.execute()
    sizes = f"Redis has {count} papers, the index {indexed}: reloading"
    if mark.paper is not None and at_mark != mark.seq:
        return (f"Redis went back: {mark.paper}, number {mark.seq:.0f}, "
                f"{'is gone' if at_mark is None else f'is now number {at_mark:.0f}'}; {sizes}")
    if last is not None and at_last is None:
        return f"Redis lost papers the index has ({last} is gone); {sizes}"
    if count < indexed:
        return f"Redis lost papers; {sizes}"
    return None


def load(store: PaperStore, vectors: VectorCache, index: VectorIndex, lexical: LexicalIndex,
         rows: list[tuple[str, float]], reached: Callable[[Mark], None]) -> int:
    """Load `rows` (paper id, ingest sequence; `PaperStore.paper_ids`) into `index` and
    `lexical`; `reached(mark)` after each chunk. Returns how many papers were loaded.

    This is the cold-start path (75k papers: every paper's JSON and vector), so it reads only
    what the index needs (text for the content hash, date, categories) without building Paper
    objects, parses with orjson when installed, turns each chunk of vectors into one array,
    and fetches the next chunk from Redis while this one is parsed.
    """
    if not rows:
        return 0
    index.reserve(len(index) + len(rows))
    chunks = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
    loaded = 0
    with ThreadPoolExecutor(1, thread_name_prefix="refresh") as pool:
        fetch = lambda chunk: store.raw_papers([pid for pid, _ in chunk])  # noqa: E731
        pending = pool.submit(fetch, chunks[0])
        for n, chunk in enumerate(chunks):
            raws = pending.result()
            if n + 1 < len(chunks):
                pending = pool.submit(fetch, chunks[n + 1])
            ids, texts, dates, categories = [], [], [], []
            for (pid, _), raw in zip(chunk, raws):
                if raw is None:
                    continue
                data = loads(raw)
                ids.append(pid)
                texts.append(f"{data.get('title') or ''}\n{data.get('abstract') or ''}".strip())
                dates.append(parse_date(data.get("published")))
                categories.append(data.get("categories") or ())
            if ids:
                found, embedded = vectors.stored(texts)
                if embedded:
                    log.info("embedded %d stored papers for model %s", embedded, vectors.embedder.tag)
                index.upsert(ids, found, dates, categories)
                index_words(store, index, lexical, ids, texts)
            reached(Mark(chunk[-1][1], chunk[-1][0]))
            loaded += len(ids)
    return loaded


def index_words(store: PaperStore, index: VectorIndex, lexical: LexicalIndex,
                ids: list[str], texts: list[str]) -> None:
    """The papers' words into the lexical index, row for row with the vector index: read
    from Redis, or computed and stored once for a text never seen (as vectors are)."""
    hashes = [content_hash(t) for t in texts]
    terms: list[np.ndarray | None] = store.get_terms(TERMS_VERSION, hashes)
    missing = [n for n, found in enumerate(terms) if found is None]
    if missing:
        fresh = [terms_of(texts[n]) for n in missing]
        store.put_terms(TERMS_VERSION, [hashes[n] for n in missing], fresh)
        for n, found in zip(missing, fresh):
            terms[n] = found
    for pid, found in zip(ids, terms):
        lexical.put(index.row_of(pid), found)
