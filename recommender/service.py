"""`Recommender`: the one facade that the CLI, the chat adapters and the evaluation call.

Plain Python in and out (Paper, Result, dicts); no chat library, no Redis types leak out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gc
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .batch_scoring import KIND_CODES, Candidates, SignalTable, score_block
from .config import Settings
from .embedder import Embedder
from .index import VectorIndex
from .lexical import VERSION as TERMS_VERSION
from .lexical import LexicalIndex, terms_of
from .paper import Paper, content_hash, parse_arxiv_id, parse_date
from .people import PeopleStore, check_who
from .picking import Picker, interest_groups, signal_groups
from .ranking import Background, Signal, expand_topic, score_candidates, topic_match
from .store import CHUNK, PaperStore, connect

log = logging.getLogger(__name__)

MAX_K = 50
SEARCH_POOL = 100          # a search ranks the k + 100 best by embedding and by words together
# A search says it found nothing close when its best have a cosine under CLOSE_MATCH and a word
# match under WORD_MATCH (some of the query's words absent). Calibrated for all-MiniLM-L6-v2 on
# the 200 CiteULike tag topics, every one of which has papers (best cosine: lowest 0.37, 1st
# percentile 0.39, median 0.80), against eight off-topic queries (0.27-0.45 in CiteULike's
# 17,000 papers, where something is always loosely related; word match <= 0.6).
CLOSE_MATCH = 0.35
EXPANSION_POOL = 50        # a topic's expansion looks at the 50 closest and the 50 best by words
EXPANSION_CACHE = 10_000   # expanded topics kept in memory
WORD_MATCH = 0.9
BACKGROUND_SAMPLE = 2000   # corpus vectors that stand for "everything else" in the learned model
POOL_PER_PICK = 10         # MMR chooses k picks among the k * POOL_PER_PICK most relevant
FANOUT_BLOCK = 512         # people per block of picks_for_many, and per read of their state
FANOUT_CELLS = 1 << 24     # signals x candidates scored at once (64 MB of products)
FANOUT_THREADS = max(1, min(8, os.cpu_count() or 1))

try:  # orjson parses paper JSON ~3x faster than json: it matters at start (75k papers)
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency; json gives the same result
    from json import loads as _loads


def _gc_paused(fn):
    """Run `fn` with Python's cyclic garbage collector paused: a batch that makes some 10^5
    short-lived, acyclic objects (10,000 people's signals and picks) spends ~15% of its time in
    collections that find nothing. Reference counting still frees everything at once."""
    @functools.wraps(fn)
    def paused(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return paused


class PaperNotFound(LookupError):
    """An id or URL that names no paper paperbot knows; the message is meant for a person."""


class NoCloseMatch(PaperNotFound):
    """A search that nothing known matches closely; the message is meant for a person."""


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
        self.people = PeopleStore(store.r, store.prefix)
        self.index = VectorIndex(embedder.dim)
        self.lexical = LexicalIndex()   # row for row with `index`
        self._expansions: OrderedDict[str, tuple[int, np.ndarray]] = OrderedDict()
        self._expansions_lock = threading.Lock()
        self._seen_seq = 0.0
        self._background: tuple[int, Background] | None = None
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
        try:
            for item in papers:
                pending.append(item if isinstance(item, Paper) else Paper.from_dict(item))
                if len(pending) >= batch:
                    done, pending = pending, []
                    self._add_batch(done, counts)
                    if progress:
                        progress(len(done))
        except Exception:
            # The papers broke off part-way (a file cut short, a bad row): the ones read before
            # the break are kept, then the error goes on to the caller.
            if pending:
                self._add_batch(pending, counts)
            raise
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

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Normalised vectors of any texts under the current model, through the Redis cache."""
        return self._embed_cached(list(texts))[0]

    def _vectors_for(self, papers: list[Paper], counts: IngestCounts | None = None) -> np.ndarray:
        """Vectors of the papers' texts: from the cache, embedding only what is missing."""
        vectors, embedded = self._embed_cached([p.text for p in papers])
        if counts is not None:
            counts.embedded += embedded
        return vectors

    def _embed_cached(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Vectors of texts, cached in Redis by (model, content hash); also how many were new."""
        if not texts:
            return np.zeros((0, self.index.dim), dtype=np.float32), 0
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

    def _index_papers(self, papers: list[Paper], vectors: np.ndarray) -> None:
        self.index.upsert([p.id for p in papers], vectors,
                          [p.published for p in papers], [p.categories for p in papers])
        self._index_words([p.id for p in papers], [p.text for p in papers])

    def _index_words(self, ids: list[str], texts: list[str]) -> None:
        """The papers' words into the lexical index, row for row with the vector index: read
        from Redis, or computed and stored once for a text never seen (as vectors are)."""
        hashes = [content_hash(t) for t in texts]
        terms = self.store.get_terms(TERMS_VERSION, hashes)
        missing = [n for n, found in enumerate(terms) if found is None]
        if missing:
            fresh = [terms_of(texts[n]) for n in missing]
            self.store.put_terms(TERMS_VERSION, [hashes[n] for n in missing], fresh)
            for n, found in zip(missing, fresh):
                terms[n] = found
        for pid, found in zip(ids, terms):
            self.lexical.put(self.index.row_of(pid), found)

    def refresh(self) -> int:
        """Load papers stored since the last refresh (by any process) into the index.

        At start this loads everything. Vectors come from Redis; only papers that have none
        under the current model (after a model switch) are embedded, once.

        This is the cold-start path (75k papers: every paper's JSON and vector), so it reads
        only what the index needs (text for the content hash, date, categories) without
        building Paper objects, parses with orjson when installed, turns each chunk of vectors
        into one array, and fetches the next chunk from Redis while this one is parsed.
        """
        rows = self.store.paper_ids(self._seen_seq)
        if not rows:
            return 0
        self.index.reserve(len(self.index) + len(rows))
        tag, dim = self.embedder.tag, self.index.dim
        chunks = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
        loaded = 0
        with ThreadPoolExecutor(1, thread_name_prefix="refresh") as pool:
            fetch = lambda chunk: self.store.r.mget(  # noqa: E731
                [self.store.key("paper", pid) for pid, _ in chunk])
            pending = pool.submit(fetch, chunks[0])
            for n, chunk in enumerate(chunks):
                raws = pending.result()
                if n + 1 < len(chunks):
                    pending = pool.submit(fetch, chunks[n + 1])
                ids, texts, dates, categories = [], [], [], []
                for (pid, _), raw in zip(chunk, raws):
                    if raw is None:
                        continue
                    data = _loads(raw)
                    ids.append(pid)
                    texts.append(f"{data.get('title') or ''}\n{data.get('abstract') or ''}".strip())
                    dates.append(parse_date(data.get("published")))
                    categories.append(data.get("categories") or ())
                if ids:
                    vectors, embedded = self._stored_vectors(tag, dim, texts)
                    if embedded:
                        log.info("embedded %d stored papers for model %s", embedded, tag)
                    self.index.upsert(ids, vectors, dates, categories)
                    self._index_words(ids, texts)
                self._seen_seq = chunk[-1][1]
                loaded += len(ids)
        return loaded

    def _stored_vectors(self, tag: str, dim: int, texts: list[str]) -> tuple[np.ndarray, int]:
        """`_embed_cached` for many texts at once, vectors read as one block of bytes."""
        hashes = [content_hash(t) for t in texts]
        raws = self.store.r.mget([self.store.key("vec", tag, h) for h in hashes])
        size = 4 * dim
        if all(raw is not None and len(raw) == size for raw in raws):
            return np.frombuffer(b"".join(raws), dtype=np.float32).reshape(-1, dim), 0
        return self._embed_cached(texts)

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
        k = _clamp(k)
        # ranked as a topic is (moved toward the papers that match it best, then its cosine
        # and word match), over the embedding's and the words' best
        words = self._words(query)
        expanded = self._expand(vector, words)
        rows = self._best_rows(expanded, words, k + SEARCH_POOL, since, categories)
        if len(rows) == 0:
            return []
        matrix = self.index.matrix[rows].astype(np.float32)
        fused = topic_match(expanded, matrix, words[rows], self._corpus_background())
        best = np.argsort(-fused, kind="stable")[:k]
        typed = matrix[best] @ vector      # closeness to what was typed, not to its expansion
        if typed.max() < CLOSE_MATCH and words[rows[best]].max() < WORD_MATCH:
            raise NoCloseMatch(f"Nothing I know is a close match for '{_shorten(query)}': try other words.")
        hits = [(self.index.ids[rows[i]], float(fused[i])) for i in best]
        return self._results(hits, f"matches your search '{_shorten(query)}'")

    def _best_rows(self, vector: np.ndarray, words: np.ndarray, pool: int,
                   since: dt.date | None = None, categories: Iterable[str] | None = None) -> np.ndarray:
        """Rows of the `pool` papers closest to `vector` and the `pool` best by `words` (a
        word match per row), within the filters."""
        rows = self.index.rows_for(pid for pid, _ in self.index.search(vector, pool, since, categories))
        if words.any():
            if since is not None or categories:
                words = np.where(self.index.mask(since, categories), words, 0.0)
            rows = np.union1d(rows, _top_rows(words, pool))
        return rows

    def _words(self, text: str) -> np.ndarray:
        """The word match of `text` to every row of the index."""
        return self.lexical.scores(text, np.arange(len(self.index)))

    def _expand(self, vector: np.ndarray, words: np.ndarray) -> np.ndarray:
        """ranking.expand_topic over the corpus's best by embedding and by words."""
        rows = self._best_rows(vector, words, EXPANSION_POOL)
        return expand_topic(vector, self.index.matrix[rows], words[rows], self._corpus_background())

    def similar(self, paper_id: str, k: int = 5) -> list[Result]:
        paper = self.get_paper(paper_id)
        if paper is None or paper.id not in self.index:
            raise PaperNotFound(f"I don't know the paper '{_shorten(paper_id, 80)}' yet.")
        vector = self.index.vectors_for([paper.id])[0]
        hits = self.index.search(vector, _clamp(k), exclude=[paper.id])
        return self._results(hits, f"similar to '{_shorten(paper.title)}'")


    # -- people and channels -------------------------------------------------------------
    def subscribe(self, who: str, topic: str) -> bool:
        """Follow a topic (a person or a channel); False when it was followed already."""
        return self.people.add_topic(who, topic)

    def unsubscribe(self, who: str, topic: str) -> bool:
        return self.people.remove_topic(who, topic)

    def topics(self, who: str) -> list[str]:
        return self.people.topics(who)

    def record_feedback(self, person: str, paper_id: str, kind: str,
                        channel: str | None = None) -> bool:
        """like / dislike / save a paper, or clear that person's signal on it (a removed
        reaction). The same event twice counts once; returns whether anything changed."""
        paper = self.get_paper(paper_id)
        if paper is None:
            raise PaperNotFound(f"I don't know the paper '{_shorten(paper_id, 80)}'.")
        return self.people.record(check_who(person), paper.id, kind, channel)

    def record_post(self, channel: str, message_id: str, paper_id: str) -> None:
        """A chat message in `channel` shows `paper_id`; reactions on it are feedback on it."""
        self.people.record_post(check_who(channel), message_id, paper_id)

    def paper_of_post(self, channel: str, message_id: str) -> str | None:
        """The paper a message posted by paperbot shows, or None if it is not one of ours."""
        return self.people.paper_of_post(check_who(channel), message_id)

    def mark_shown(self, who: str, paper_ids: Iterable[str]) -> None:
        self.people.mark_shown(who, list(paper_ids))

    def forget(self, person: str) -> int:
        """Delete everything kept about this person; returns how many keys went."""
        return self.people.forget(check_who(person))

    def profile(self, who: str, recent: int = 10) -> dict[str, Any]:
        """What paperbot knows of a person or channel, as plain data."""
        feedback = self.people.feedback(who)
        counts = {"like": 0, "dislike": 0, "save": 0}
        for state in feedback.values():
            if state.get("rating"):
                counts[state["rating"]] += 1
            counts["save"] += bool(state.get("saved"))
        saved_ids = [pid for pid, st in sorted(feedback.items(), key=lambda kv: -kv[1]["ts"])
                     if st.get("saved")]
        events = self.people.events(who, recent) if recent > 0 else []
        titles = dict(zip(
            {e["paper"] for e in events} | set(saved_ids),
            self.store.get_papers(list({e["paper"] for e in events} | set(saved_ids)))))
        return {
            "who": who,
            "topics": self.people.topics(who),
            "counts": counts,
            "shown": len(self.people.shown(who)),
            "recent": [{"paper": e["paper"], "kind": e["kind"], "channel": e["channel"] or None,
                        "title": titles[e["paper"]].title if titles.get(e["paper"]) else None,
                        "at": float(e["ts"])} for e in events],
            "saved": [{"id": pid, "title": titles[pid].title, "url": titles[pid].url}
                      for pid in saved_ids if titles.get(pid)],
        }

    def recommend(self, person: str, k: int = 5, since: dt.date | None = None,
                  candidates: Iterable[str] | None = None) -> list[Result]:
        """A person's picks from their topics and feedback; never a paper they were shown or
        already reacted to. `candidates` restricts the ranking to those paper ids."""
        feedback = self.people.feedback(check_who(person))
        signals = self._topic_signals(person, "your topic") + self._feedback_signals(
            [(pid, st, "you") for pid, st in feedback.items()])
        exclude = self.people.shown(person) | set(feedback)
        return self._picks(signals, k, since, candidates, exclude)

    def picks_for_channel(self, channel: str, k: int = 5, since: dt.date | None = None,
                          candidates: Iterable[str] | None = None) -> list[Result]:
        """A channel's picks: its topics plus what its members said about its posts."""
        members = self.people.member_feedback(check_who(channel))
        signals = self._topic_signals(channel, "this channel's topic") + self._feedback_signals(
            [(pid, st, "people here") for _, pid, st in members])
        exclude = self.people.shown(channel) | {pid for _, pid, _ in members}
        return self._picks(signals, k, since, candidates, exclude)

    def seen_any(self, who: str, paper_ids: Iterable[str], channel: bool = False) -> bool:
        """Whether any of `paper_ids` was shown to `who` or reacted to (by them, or for a
        channel by its members): what `recommend` and `picks_for_channel` exclude. Lets picks
        chosen a while ago be checked before they are posted."""
        ids = list(paper_ids)
        if not ids:
            return False
        who = check_who(who)
        pipe = self.store.r.pipeline(transaction=False)
        pipe.zmscore(self.people.key(who, "shown"), ids)
        if channel:
            pipe.hkeys(self.people.key(who, "member_feedback"))
        else:
            pipe.hmget(self.people.key(who, "feedback"), ids)
        shown, feedback = pipe.execute()
        if any(score is not None for score in shown):
            return True
        if channel:
            reacted = {field.decode().split(" ", 1)[1] for field in feedback}
            return not reacted.isdisjoint(ids)
        return any(state is not None for state in feedback)

    def _topic_signals(self, who: str, label: str) -> list[Signal]:
        topics = self.people.topics(who)
        vectors = self._topic_vectors(set(topics))
        return [Signal(vectors[t], f"matches {label} '{_shorten(t)}'", "topic", words=t)
                for t in topics]

    def _word_match(self, signals: list[Signal], rows: np.ndarray) -> np.ndarray | None:
        """(rows, signals) word match of each topic signal to the papers of `rows` (the
        `lexical` input of score_candidates); None when no signal is a topic."""
        topics = [j for j, s in enumerate(signals) if s.kind == "topic" and s.words]
        if not topics:
            return None
        out = np.zeros((len(rows), len(signals)), dtype=np.float32)
        for j in topics:
            out[:, j] = self.lexical.scores(signals[j].words, rows)
        return out

    def _feedback_signals(self, items: list[tuple[str, dict[str, Any], str]]) -> list[Signal]:
        """Signals from (paper id, feedback state, who gave it) triples, aged by their time."""
        items = [it for it in items if it[0] in self.index]
        vectors = self.index.vectors_for([pid for pid, _, _ in items])
        papers = self.store.get_papers([pid for pid, _, _ in items])
        now = time.time()
        signals = []
        for (pid, state, by), vec, paper in zip(items, vectors, papers):
            age = max(0.0, (now - state.get("ts", now)) / 86400)
            title = _shorten(paper.title if paper else pid)
            if state.get("saved"):
                signals.append(Signal(vec, f"close to '{title}', which {by} saved", "save", age, pid))
            if state.get("rating") == "like":
                signals.append(Signal(vec, f"close to '{title}', which {by} liked", "like", age, pid))
            elif state.get("rating") == "dislike":
                signals.append(Signal(vec, title, "dislike", age, pid))
        return signals

    def _picks(self, signals: list[Signal], k: int, since: dt.date | None,
               candidates: Iterable[str] | None, exclude: set[str]) -> list[Result]:
        if not any(s.kind != "dislike" for s in signals) or len(self.index) == 0:
            return []
        if candidates is None:
            rows = np.flatnonzero(self.index.mask(since=since, exclude=exclude))
        else:
            wanted = [pid for pid in dict.fromkeys(candidates) if pid not in exclude]
            rows = self.index.rows_for(wanted)
            if since is not None:
                rows = rows[self.index.mask(since=since)[rows]]
        if len(rows) == 0:
            return []
        matrix = self.index.matrix[rows]
        scored = score_candidates(signals, matrix, self._corpus_background(),
                                  lexical=self._word_match(signals, rows))
        pool = np.argsort(-scored.scores, kind="stable")[: _clamp(k) * POOL_PER_PICK]
        groups, weights = signal_groups(signals)
        reasons = scored.reasons[pool]
        picks = Picker(matrix[pool], _clamp(k), len(pool)).choose(
            scored.scores[pool][None], lambda top: np.where(reasons >= 0, groups[reasons], -1)[top],
            weights)[0]
        chosen = pool[picks[picks >= 0]]
        hits = [(self.index.ids[rows[i]], float(scored.scores[i])) for i in chosen]
        papers = self.store.get_papers([pid for pid, _ in hits])
        return [Result(paper, score, _why(signals, scored.reasons[i]))
                for paper, (_, score), i in zip(papers, hits, chosen) if paper]

    # -- many at once: the daily fan-out ----------------------------------------------------
    @_gc_paused
    def picks_for_many(self, people: Iterable[str] = (), channels: Iterable[str] = (), k: int = 5,
                       since: dt.date | None = None,
                       candidates: Iterable[str] | None = None) -> dict[str, list[Result]]:
        """`recommend` for each person and `picks_for_channel` for each channel, in one batch.

        The same picks, scores and reasons as the one-at-a-time calls (up to float32 rounding,
        so two candidates whose scores are within ~1e-5 may trade places), at the cost of a few
        matrix products per block of people instead of a Redis round trip and a Python loop
        each, blocks on every core: 10,000 people over 2,000 candidates take about 2 s on two
        cores, 28x less than one at a time (see `paperbot bench`). Nothing is marked shown:
        the caller does that for what it posts."""
        targets = [(check_who(w), False) for w in people] + [(check_who(c), True) for c in channels]
        out: dict[str, list[Result]] = {who: [] for who, _ in targets}
        if not targets or len(self.index) == 0:
            return out
        if candidates is None:
            base = np.flatnonzero(self.index.mask(since=since))
        else:
            base = self.index.rows_for(dict.fromkeys(candidates))
            if since is not None:
                base = base[self.index.mask(since=since)[base]]
        if len(base) == 0:
            return out
        batch = _Batch(self, base, _clamp(k))
        chunks = [targets[i:i + FANOUT_BLOCK] for i in range(0, len(targets), FANOUT_BLOCK)]
        # blocks on every core, each block's products on one: the exponentials, top-k and
        # Python parts of one block run while another block's products do
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(FANOUT_THREADS) as pool:
            for part in pool.map(self._picks_of_block, chunks, itertools.repeat(batch)):
                out.update(part)
        return out

    def _picks_of_block(self, targets: list[tuple[str, bool]], batch: _Batch) -> dict[str, list[Result]]:
        """picks_for_many for one block of targets."""
        table, labels, who, (gone_person, gone_column) = self._signal_table(targets, batch)
        if not who:
            return {}
        groups, weights = interest_groups(table.vectors, table.kinds == KIND_CODES["topic"],
                                          table.positive_weights(), table.starts)
        picks, reasons, values = [], [], []
        # people whose signals fill at most FANOUT_CELLS products at a time: a year of
        # feedback is hundreds of signals per person, and memory stays flat
        rows_at_once = max(1, FANOUT_CELLS // len(batch.position))
        lo = 0
        while lo < table.people:
            hi = max(lo + 1, int(np.searchsorted(table.starts, table.starts[lo] + rows_at_once, "right")) - 1)
            scores, reasons_of = score_block(table, batch.candidates, lo, hi)
            first, last = np.searchsorted(gone_person, [lo, hi])
            scores[gone_person[first:last] - lo, gone_column[first:last]] = -np.inf
            people = np.arange(lo, hi)

            def group_of(pool, people=people, reasons_of=reasons_of):
                out = np.zeros(pool.shape, dtype=np.int64)   # one group: no reasons needed
                several = (weights[people] > 0).sum(axis=1) > 1
                if several.any():
                    rows = reasons_of(people[several], pool[several])
                    out[several] = np.where(rows >= 0, groups[rows], -1)
                return out

            picks.append(batch.picker.choose(scores, group_of, weights[lo:hi]))
            reasons.append(reasons_of(np.arange(lo, hi), picks[-1]))
            values.append(np.take_along_axis(scores, np.maximum(picks[-1], 0), axis=1))
            lo = hi
        picks, reasons, values = (np.concatenate(x).tolist() for x in (picks, reasons, values))
        papers = batch.papers({c for row in picks for c in row if c >= 0})
        titles = self._titles({labels[r][0] for rows in reasons for r in rows
                               if r >= 0 and isinstance(labels[r], tuple)})
        return {name: [Result(papers[c], score, _label(labels, r, titles))
                       for c, r, score in zip(columns, rows, row_values) if c >= 0 and papers[c]]
                for name, columns, rows, row_values in zip(who, picks, reasons, values)}

    def _signal_table(self, targets: list[tuple[str, bool]], batch: _Batch):
        """The signals of every target with at least one positive, as one SignalTable; the
        words of each row's reason (a string, (paper id, "which you liked"), or None); who
        each person of the table is; and what they exclude (shown or reacted to), as
        (person, candidate) arrays. Parsed straight from the Redis replies: this is most of
        the fan-out's Python."""
        position, shown_at = batch.position, batch.shown_at
        replies = self._read_states(targets, batch.ids)
        topic_vectors = self._topic_vectors({t.decode() for topics, _, _ in replies for t in topics})
        topic_at = {t.encode(): n for n, t in enumerate(topic_vectors)}
        topic_words: dict[tuple[str, bytes], str] = {}
        source: list[int] = []   # an index row, or -1 - the topic's position
        kinds: list[int] = []
        ages: list[float] = []
        labels: list = []
        starts, who_of, gone_person, gone_column = [0], [], [], []
        topic, like, save, dislike = (KIND_CODES[x] for x in ("topic", "like", "save", "dislike"))
        now = time.time()
        for (who, is_channel), (topics, feedback, shown) in zip(targets, replies):
            mark, positive = len(source), bool(topics)
            label = "this channel's topic" if is_channel else "your topic"
            by = "people here" if is_channel else "you"
            for t in sorted(topics):
                words = topic_words.get((label, t))
                if words is None:
                    words = topic_words[(label, t)] = f"matches {label} '{_shorten(t.decode())}'"
                source.append(-1 - topic_at[t])
                kinds.append(topic)
                ages.append(0.0)
                labels.append(words)
            gone = {c for c in map(shown_at.get, shown) if c is not None}
            for i in range(0, len(feedback), 2):
                pid = feedback[i].decode()
                if is_channel:   # member_feedback fields are "<person> <paper>"
                    pid = pid.split(" ", 1)[1]
                candidate = position.get(pid)
                if candidate is not None:
                    gone.add(candidate)
                row = self.index.row_of(pid)
                if row is None:
                    continue
                state = _loads(feedback[i + 1])
                age = max(0.0, (now - state.get("ts", now)) / 86400)
                said = [(save, (pid, f"which {by} saved"))] if state.get("saved") else []
                if state.get("rating") == "like":
                    said.append((like, (pid, f"which {by} liked")))
                elif state.get("rating") == "dislike":
                    said.append((dislike, None))
                for kind, words in said:
                    positive = positive or kind != dislike
                    source.append(row)
                    kinds.append(kind)
                    ages.append(age)
                    labels.append(words)
            if positive:
                starts.append(len(source))
                gone_person += [len(who_of)] * len(gone)
                gone_column += gone
                who_of.append(who)
            else:
                for column in (source, kinds, ages, labels):
                    del column[mark:]
        lexical_of = np.where(np.asarray(kinds) == topic, -1 - np.asarray(source, dtype=np.int64), -1)
        lexical = (np.stack([batch.word_match(t) for t in topic_vectors]) if topic_vectors
                   else np.zeros((0, len(batch.ids)), dtype=np.float32))
        src = np.asarray(source, dtype=np.int64)
        vectors = np.empty((len(src), self.index.dim), dtype=np.float32)
        topics = src < 0
        if topics.any():
            vectors[topics] = np.asarray(list(topic_vectors.values()), dtype=np.float32)[-1 - src[topics]]
        vectors[~topics] = self.index.matrix[src[~topics]]
        table = SignalTable(vectors, np.asarray(kinds, dtype=np.int8), np.asarray(ages),
                            np.asarray(starts), lexical_of, lexical)
        return table, labels, who_of, (np.asarray(gone_person, dtype=np.int64),
                                       np.asarray(gone_column, dtype=np.int64))

    def _read_states(self, targets: list[tuple[str, bool]],
                     candidates: list[str]) -> list[list[list[bytes]]]:
        """(topics, feedback as HGETALL gives it, shown) of each target, as Redis sends them,
        read by a script for FANOUT_BLOCK targets at a time (one round trip, one reply).
        Only the shown papers among `candidates` come back: a person shown a few papers a day
        for a year has thousands, and only today's candidates matter."""
        script = self.store.r.register_script(_READ_STATES)
        wanted = candidates if len(candidates) <= SHOWN_FILTER_UP_TO else []
        replies = []
        for start in range(0, len(targets), FANOUT_BLOCK):
            keys = []
            for who, is_channel in targets[start:start + FANOUT_BLOCK]:
                keys += [self.people.key(who, "topics"),
                         self.people.key(who, "member_feedback" if is_channel else "feedback"),
                         self.people.key(who, "shown")]
            flat = script(keys=keys, args=wanted)
            replies += [flat[i:i + 3] for i in range(0, len(flat), 3)]
        return replies

    def _titles(self, ids: set[str]) -> dict[str, str]:
        """Titles of stored papers (the reasons' words), without building Paper objects."""
        ids = list(ids)
        titles = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            for pid, raw in zip(chunk, self.store.r.mget([self.store.key("paper", i) for i in chunk])):
                if raw is not None:
                    titles[pid] = _loads(raw).get("title") or pid
        return titles

    def _topic_vectors(self, topics: set[str]) -> dict[str, np.ndarray]:
        """Each topic's vector, expanded toward the papers that match it best
        (ranking.expand_topic); kept per topic until the corpus grows by a tenth."""
        ordered = sorted(topics)
        vectors, _ = self._embed_cached(ordered)
        n = len(self.index)
        out = {}
        for topic, vector in zip(ordered, vectors):
            with self._expansions_lock:
                hit = self._expansions.get(topic)
                if hit is not None and n > hit[0] * 1.1:   # the corpus outgrew it
                    hit = None
                if hit is not None:
                    self._expansions.move_to_end(topic)
            if hit is None:
                hit = (n, self._expand(vector, self._words(topic)))
                with self._expansions_lock:
                    self._expansions[topic] = hit
                    while len(self._expansions) > EXPANSION_CACHE:
                        self._expansions.popitem(last=False)
            out[topic] = hit[1]
        return out

    def _corpus_background(self) -> Background:
        """A fixed-seed sample of the corpus, rebuilt when the corpus has grown by a tenth."""
        n = len(self.index)
        if self._background is None or n > self._background[0] * 1.1:
            rng = np.random.default_rng(0)
            rows = rng.choice(n, size=min(n, BACKGROUND_SAMPLE), replace=False)
            sample = self.index.matrix[np.sort(rows)]
            if len(sample) < 2:  # a one-paper corpus: any two vectors make a background
                sample = np.vstack([sample, -sample])
            self._background = (n, Background(sample))
        return self._background[1]


# Reads the keys of many people and channels at once (standalone Redis or Valkey: on a Redis
# Cluster they would span slots).
_READ_STATES = """
local out = {}
local wanted = {}
for _, id in ipairs(ARGV) do wanted[id] = true end
for i = 1, #KEYS, 3 do
  out[#out + 1] = redis.call('HVALS', KEYS[i])
  out[#out + 1] = redis.call('HGETALL', KEYS[i + 1])
  local shown = KEYS[i + 2]
  if #ARGV == 0 then
    out[#out + 1] = redis.call('ZRANGE', shown, 0, -1)
  else   -- (ZMSCORE of every candidate measured slower, even with 4x more shown than them)
    local kept = {}
    for _, id in ipairs(redis.call('ZRANGE', shown, 0, -1)) do
      if wanted[id] then kept[#kept + 1] = id end
    end
    out[#out + 1] = kept
  end
end
return out
"""
SHOWN_FILTER_UP_TO = 20_000   # candidates sent to _READ_STATES to filter the shown papers


def _label(labels: list, reason: int, titles: dict[str, str]) -> str:
    """The `why` of a pick of `picks_for_many`, as `_why` words it."""
    if reason < 0:
        return "related to your interests"
    label = labels[reason]
    if isinstance(label, tuple):
        pid, which = label
        return f"close to '{_shorten(titles.get(pid, pid))}', {which}"
    return label


class _Batch:
    """What every block of one picks_for_many shares: the candidates (ids, where each is, as
    text and as the bytes Redis sends, their vectors laid out for scoring) and their papers."""

    def __init__(self, rec: Recommender, base: np.ndarray, k: int):
        self.rec, self.base = rec, base
        self.ids = [rec.index.ids[r] for r in base]
        self.position = {pid: n for n, pid in enumerate(self.ids)}
        self.shown_at = {pid.encode(): n for n, pid in enumerate(self.ids)}
        matrix = np.asarray(rec.index.matrix[base], dtype=np.float32)
        self.candidates = Candidates.of(matrix, rec._corpus_background())
        self.picker = Picker(matrix, k, k * POOL_PER_PICK)
        self._papers: dict[int, Paper | None] = {}
        self._word_match: dict[str, np.ndarray] = {}
        self._words = rec.lexical.scorer(base)

    def word_match(self, topic: str) -> np.ndarray:
        """A topic's word match to every candidate (the blocks share their topics)."""
        found = self._word_match.get(topic)
        if found is None:
            found = self._word_match[topic] = self._words(topic)
        return found

    def papers(self, columns: set[int]) -> dict[int, Paper | None]:
        """The Paper of each candidate column, read once per batch."""
        missing = [c for c in columns if c not in self._papers]
        got = self.rec.store.get_papers([self.rec.index.ids[self.base[c]] for c in missing])
        self._papers.update(zip(missing, got))
        return self._papers


def _why(signals: list[Signal], reason: int) -> str:
    return signals[reason].label if reason >= 0 else "related to your interests"


def _top_rows(values: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k largest positive values."""
    rows = np.flatnonzero(values > 0)
    if len(rows) > k:
        rows = rows[np.argpartition(-values[rows], k - 1)[:k]]
    return rows


def _clamp(k: int) -> int:
    return max(1, min(int(k), MAX_K))
