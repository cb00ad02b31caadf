"""`Recommender`: the one facade that the CLI, the chat adapters and the evaluation call.

Plain Python in and out (Paper, Result, dicts); no chat library, no Redis types leak out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .config import Settings
from .embedder import Embedder
from .index import VectorIndex
from .paper import Paper, content_hash, parse_arxiv_id
from .people import PeopleStore, check_who
from .ranking import Background, Signal, mmr, score_candidates
from .store import PaperStore, connect

log = logging.getLogger(__name__)

MAX_K = 50
BACKGROUND_SAMPLE = 2000   # corpus vectors that stand for "everything else" in the learned model
POOL_PER_PICK = 10         # MMR chooses k picks among the k * POOL_PER_PICK most relevant


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
        self.people = PeopleStore(store.r, store.prefix)
        self.index = VectorIndex(embedder.dim)
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

    def _topic_signals(self, who: str, label: str) -> list[Signal]:
        topics = self.people.topics(who)
        vectors, _ = self._embed_cached(topics)
        return [Signal(vec, f"matches {label} '{_shorten(t)}'", "topic") for t, vec in zip(topics, vectors)]

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
        scored = score_candidates(signals, matrix, self._corpus_background())
        pool = np.argsort(-scored.scores, kind="stable")[: _clamp(k) * POOL_PER_PICK]
        chosen = pool[mmr(matrix[pool], scored.scores[pool], _clamp(k))]
        hits = [(self.index.ids[rows[i]], float(scored.scores[i])) for i in chosen]
        papers = self.store.get_papers([pid for pid, _ in hits])
        return [Result(paper, score, _why(signals, scored.reasons[i]))
                for paper, (_, score), i in zip(papers, hits, chosen) if paper]

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


def _why(signals: list[Signal], reason: int) -> str:
    return signals[reason].label if reason >= 0 else "related to your interests"


def _clamp(k: int) -> int:
    return max(1, min(int(k), MAX_K))
