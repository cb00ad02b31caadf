"""`Recommender`: the one facade that the CLI, the chat adapters and the evaluation call.

Plain Python in and out (Paper, Result, dicts); no chat library, no Redis types leak out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import corpus, dedupe
from .config import Settings
from .embedder import Embedder
from .index import VectorIndex
from .lexical import LexicalIndex
from .fanout import Fanout
from .follows import followed, hidden_columns, with_follows, with_follows_all
from .paper import Paper, Result, shorten
from .people import PeopleStore, check_who
from .preferences import NO_PREFERENCES, Preferences, PreferenceStore
from .picking import POOL_PER_PICK, Picker, signal_groups
from .ranking import Background, Signal, expand_topic, score_candidates, topic_match
from .signals import feedback_kinds, feedback_reason, topic_reason
from .vector_cache import VectorCache
from .store import PaperStore, connect

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



class PaperNotFound(LookupError):
    """An id or URL that names no paper paperbot knows; the message is meant for a person."""


class NoCloseMatch(PaperNotFound):
    """A search that nothing known matches closely; the message is meant for a person."""


@dataclasses.dataclass
class IngestCounts:
    read: int = 0
    new: int = 0
    embedded: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Recommender:
    """Papers, vectors and search over them, kept in Redis and mirrored in memory."""

    def __init__(self, store: PaperStore, embedder: Embedder, embedded_server=None,
                 settings: Settings = Settings()):
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._embedded_server = embedded_server
        self.people = PeopleStore(store.r, store.prefix)
        self.preferences = PreferenceStore(store.r, store.prefix)
        self.vector_cache = VectorCache(store, embedder)
        self.index = VectorIndex(embedder.dim, settings.index_dtype, settings.ann, settings.ann_min_rows)
        self.lexical = LexicalIndex()   # row for row with `index`
        self._expansions: OrderedDict[str, tuple[int, np.ndarray]] = OrderedDict()
        self._expansions_lock = threading.Lock()
        self._mark = corpus.Mark()              # how far refresh has read Redis's papers
        self._refresh_lock = threading.Lock()   # refresh runs from the ingest loop and the scheduler
        self._reloading: str | None = None      # why the index is being rebuilt, while it is
        self._background: tuple[int, Background] | None = None
        self.refresh()

    @classmethod
    def open(cls, settings: Settings) -> Recommender:
        """Connect to the store of `settings` (starting an embedded one if it names none),
        with the model it names, and load every stored paper."""
        client, embedded = connect(settings)
        embedder = Embedder(settings.model, settings.device, settings.batch_size,
                            settings.precision, settings.threads)
        return cls(PaperStore(client, settings.prefix), embedder, embedded, settings)

    def close(self) -> None:
        self.store.close()
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
        unique = dedupe.unique(self.store, papers)  # a listing may repeat a paper; sources overlap
        stored = self.store.existing_hashes([p.id for p in unique])
        changed = [p for p in unique if stored[p.id] != p.content_hash]
        counts.new += sum(1 for p in changed if stored[p.id] is None)
        vectors, embedded = self.vector_cache.vectors([p.text for p in changed])
        counts.embedded += embedded
        self.store.save_papers(changed)
        self._index_papers(changed, vectors)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Normalised vectors of any texts under the current model, through the Redis cache."""
        return self.vector_cache.vectors(list(texts))[0]

    def _index_papers(self, papers: list[Paper], vectors: np.ndarray) -> None:
        self.index.upsert([p.id for p in papers], vectors,
                          [p.published for p in papers], [p.categories for p in papers])
        self._index_words([p.id for p in papers], [p.text for p in papers])

    def _index_words(self, ids: list[str], texts: list[str]) -> None:
        corpus.index_words(self.store, self.index, self.lexical, ids, texts)

    def refresh(self) -> int:
        """Load papers stored since the last refresh (by any process) into the index; returns
        how many were loaded. At start this loads everything. Vectors come from Redis; only
        papers that have none under the current model (after a model switch) are embedded, once.

        When Redis went backwards under the index (a FLUSHDB, an older backup restored, a
        lagging replica promoted: `corpus.check`), the index is rebuilt from what Redis has
        instead, into a fresh index that replaces the old one when it is complete.
        """
        with self._refresh_lock:
            problem = corpus.check(self.store, self._mark, self.index.ids)
            if problem is None:
                return corpus.load(self.store, self.vector_cache, self.index, self.lexical,
                                   self.store.paper_ids(self._mark.seq), self._reached)
            log.warning("corpus: %s", problem)
            self._reloading = problem
            try:
                return self._reload()
            finally:
                self._reloading = None

    def _reached(self, mark: corpus.Mark) -> None:
        self._mark = mark

    def _reload(self) -> int:
        index = VectorIndex(self.embedder.dim, self.settings.index_dtype, self.settings.ann,
                            self.settings.ann_min_rows)
        lexical = LexicalIndex()
        marks = [corpus.Mark()]
        loaded = corpus.load(self.store, self.vector_cache, index, lexical,
                             self.store.paper_ids(0), marks.append)
        # lexical first: a search in between sees fewer word rows, which count as no words
        self.lexical, self.index, self._mark = lexical, index, marks[-1]
        with self._expansions_lock:
            self._expansions.clear()
        self._background = None
        log.warning("corpus: index reloaded from Redis: %d papers", loaded)
        return loaded

    def corpus_problem(self) -> str | None:
        """Why the index disagrees with Redis now, None when it agrees (/health's "index")."""
        return self._reloading or corpus.check(self.store, self._mark, self.index.ids)

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def get_paper(self, paper_id: str) -> Paper | None:
        return self.store.get_papers([self.resolve_id(paper_id)])[0]

    def resolve_id(self, text: str) -> str:
        """A stored paper's id from what a person typed: an id, `arXiv:` id, DOI or link."""
        return dedupe.resolve(self.store, text, self.index)

    def _results(self, hits: list[tuple[str, float]], why: str) -> list[Result]:
        papers = self.store.get_papers([pid for pid, _ in hits])
        return [Result(paper, score, why) for paper, (_, score) in zip(papers, hits) if paper]

    def search(self, query: str, k: int = 5, since: dt.date | None = None,
               categories: Iterable[str] | None = None) -> list[Result]:
        query = " ".join((query or "").split())
        if not query:
            raise ValueError("Tell me what to search for, e.g. `search graph neural networks`.")
        if len(self.index) == 0:   # nothing ingested yet: nothing to rank against
            return []
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
        fused = topic_match(expanded, matrix, words[rows], self.corpus_background())
        best = np.argsort(-fused, kind="stable")[:k]
        typed = matrix[best] @ vector      # closeness to what was typed, not to its expansion
        if typed.max() < CLOSE_MATCH and words[rows[best]].max() < WORD_MATCH:
            raise NoCloseMatch(f"Nothing I know is a close match for '{shorten(query)}': try other words.")
        hits = [(self.index.ids[rows[i]], float(fused[i])) for i in best]
        return self._results(hits, f"matches your search '{shorten(query)}'")

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
        return expand_topic(vector, self.index.matrix[rows], words[rows], self.corpus_background())

    def similar(self, paper_id: str, k: int = 5) -> list[Result]:
        paper = self.get_paper(paper_id)
        if paper is None or paper.id not in self.index:
            raise PaperNotFound(f"I don't know the paper '{shorten(paper_id, 80)}' yet.")
        vector = self.index.vectors_for([paper.id])[0]
        hits = self.index.search(vector, _clamp(k), exclude=[paper.id])
        return self._results(hits, f"similar to '{shorten(paper.title)}'")

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
            raise PaperNotFound(f"I don't know the paper '{shorten(paper_id, 80)}'.")
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
            **self.preferences.get(who).as_dict(),
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
        already reacted to. `candidates` restricts the ranking to those paper ids. Filters
        and followed authors apply (`follows`)."""
        feedback = self.people.feedback(check_who(person))
        signals = self._topic_signals(person, False) + self._feedback_signals(
            [(pid, st) for pid, st in feedback.items()], False)
        exclude = self.people.shown(person) | set(feedback)
        return self._picks(signals, k, since, candidates, exclude, self.preferences.get(person))

    def picks_for_channel(self, channel: str, k: int = 5, since: dt.date | None = None,
                          candidates: Iterable[str] | None = None) -> list[Result]:
        """A channel's picks: its topics plus what its members said about its posts."""
        members = self.people.member_feedback(check_who(channel))
        signals = self._topic_signals(channel, True) + self._feedback_signals(
            [(pid, st) for _, pid, st in members], True)
        exclude = self.people.shown(channel) | {pid for _, pid, _ in members}
        return self._picks(signals, k, since, candidates, exclude, self.preferences.get(channel),
                           True)

    def seen_any(self, who: str, paper_ids: Iterable[str], channel: bool = False) -> bool:
        """Whether any of `paper_ids` was shown to `who` or reacted to (by them, or for a
        channel by its members): what `recommend` and `picks_for_channel` exclude. Lets picks
        chosen a while ago be checked before they are posted."""
        ids = list(paper_ids)
        if not ids:
            return False
        return self.people.seen_any(check_who(who), ids, channel)

    def _topic_signals(self, who: str, is_channel: bool) -> list[Signal]:
        topics = self.people.topics(who)
        vectors = self.topic_vectors(set(topics))
        return [Signal(vectors[t], topic_reason(is_channel, t), "topic", words=t) for t in topics]

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

    def _feedback_signals(self, items: list[tuple[str, dict[str, Any]]], is_channel: bool) -> list[Signal]:
        """Signals from (paper id, feedback state) pairs, aged by their time."""
        items = [it for it in items if it[0] in self.index]
        vectors = self.index.vectors_for([pid for pid, _ in items])
        papers = self.store.get_papers([pid for pid, _ in items])
        now = time.time()
        signals = []
        for (pid, state), vec, paper in zip(items, vectors, papers):
            kinds, age = feedback_kinds(state, now)
            for kind in kinds:
                why = feedback_reason(is_channel, kind, paper.title if paper else pid)
                signals.append(Signal(vec, why, kind, age, pid))
        return signals

    def _picks(self, signals: list[Signal], k: int, since: dt.date | None,
               candidates: Iterable[str] | None, exclude: set[str],
               prefs: Preferences = NO_PREFERENCES, is_channel: bool = False) -> list[Result]:
        if len(self.index) == 0 or not (prefs.follows or any(s.kind != "dislike" for s in signals)):
            return []
        if candidates is None:
            rows = np.flatnonzero(self.index.mask(since=since, exclude=exclude))
        else:
            wanted = [pid for pid in dict.fromkeys(candidates) if pid not in exclude]
            rows = self.index.rows_for(wanted)
            if since is not None:
                rows = rows[self.index.mask(since=since)[rows]]
        if prefs.filters:
            rows = rows[prefs.kept(self.index, self.lexical, rows)]
        follows = followed(self, prefs, rows, is_channel, _clamp(k), candidates is None)
        if len(rows) == 0 or not any(s.kind != "dislike" for s in signals):
            return follows
        matrix = self.index.matrix[rows]
        scored = score_candidates(signals, matrix, self.corpus_background(),
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
        return with_follows(follows, [Result(paper, score, _why(signals, scored.reasons[i]))
                                      for paper, (_, score), i in zip(papers, hits, chosen) if paper],
                            _clamp(k))

    # -- many at once: the daily fan-out ----------------------------------------------------
    def picks_for_many(self, people: Iterable[str] = (), channels: Iterable[str] = (), k: int = 5,
                       since: dt.date | None = None,
                       candidates: Iterable[str] | None = None) -> dict[str, list[Result]]:
        """`recommend` for each person and `picks_for_channel` for each channel, in one batch
        (`fanout`: the same picks, many times faster). Nothing is marked shown: the caller
        does that for what it posts."""
        targets = [(check_who(w), False) for w in people] + [(check_who(c), True) for c in channels]
        if not targets or len(self.index) == 0:
            return {who: [] for who, _ in targets}
        if candidates is None:
            rows = np.flatnonzero(self.index.mask(since=since))
        else:
            rows = self.index.rows_for(dict.fromkeys(candidates))
            if since is not None:
                rows = rows[self.index.mask(since=since)[rows]]
        if len(rows) == 0:
            return {who: [] for who, _ in targets}
        prefs = dict(zip(targets, self.preferences.get_many([who for who, _ in targets])))
        hidden = {who: hidden_columns(self, p, rows) for (who, _), p in prefs.items() if p.filters}
        out = Fanout(self, rows, _clamp(k)).picks(targets, hidden)
        return with_follows_all(self, prefs, hidden, rows, out, _clamp(k), candidates is None)

    def topic_vectors(self, topics: set[str]) -> dict[str, np.ndarray]:
        """Each topic's vector, expanded toward the papers that match it best
        (ranking.expand_topic); kept per topic until the corpus grows by a tenth."""
        ordered = sorted(topics)
        vectors, _ = self.vector_cache.vectors(ordered)
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

    def corpus_background(self) -> Background:
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
