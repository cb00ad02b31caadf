"""The daily fan-out: everyone's picks in one batch (`Recommender.picks_for_many`).

The same picks, scores and reasons as `recommend` and `picks_for_channel` one at a time (up to
float32 rounding, so two candidates whose scores are within ~1e-5 may trade places), at the
cost of a few matrix products per block of people instead of a Redis round trip and a Python
loop each, blocks on every core: 10,000 people over 2,000 candidates take about 2 s on two
cores, 28x less than one at a time (see `paperbot bench`).
"""

from __future__ import annotations

import functools
import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from .batch_scoring import KIND_CODES, Candidates, SignalTable, score_block
from .index import VectorIndex
from .lexical import LexicalIndex
from .paper import Paper, Result
from .people import PeopleStore
from .picking import POOL_PER_PICK, Picker, interest_groups
from .ranking import Background
from .signals import feedback_kinds, feedback_reason, topic_reason
from .store import PaperStore, loads

FANOUT_BLOCK = 512         # people per block, and per read of their state
FANOUT_CELLS = 1 << 24     # signals x candidates scored at once (64 MB of products)
FANOUT_THREADS = max(1, min(8, os.cpu_count() or 1))

Target = tuple[str, bool]   # (person or channel, is it a channel)


class Corpus(Protocol):
    """What the fan-out reads of the `Recommender`."""

    index: VectorIndex
    lexical: LexicalIndex
    store: PaperStore
    people: PeopleStore

    def topic_vectors(self, topics: set[str]) -> dict[str, np.ndarray]: ...

    def corpus_background(self) -> Background: ...


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


class Fanout:
    """Picks for many people and channels at once, over one set of candidate rows."""

    def __init__(self, rec: Corpus, rows: np.ndarray, k: int):
        self.rec = rec
        self.batch = CandidateBatch(rec, rows, k)
        self.hidden: dict[str, np.ndarray] = {}

    @_gc_paused
    def picks(self, targets: list[Target], hidden: dict[str, np.ndarray] | None = None
              ) -> dict[str, list[Result]]:
        """Each target's picks, never from its `hidden` candidate positions (what its filters
        take out); nothing is marked shown (the caller does that for what it posts)."""
        self.hidden = hidden or {}
        out: dict[str, list[Result]] = {who: [] for who, _ in targets}
        chunks = [targets[i:i + FANOUT_BLOCK] for i in range(0, len(targets), FANOUT_BLOCK)]
        # blocks on every core, each block's products on one: the exponentials, top-k and
        # Python parts of one block run while another block's products do
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(FANOUT_THREADS) as pool:
            for part in pool.map(self._picks_of_block, chunks):
                out.update(part)
        return out

    def _picks_of_block(self, targets: list[Target]) -> dict[str, list[Result]]:
        batch = self.batch
        table, labels, who, (gone_person, gone_column) = self.signal_table(targets)
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
        titles = self.rec.store.titles({labels[r][0] for rows in reasons for r in rows
                                        if r >= 0 and isinstance(labels[r], tuple)})
        return {name: [Result(papers[c], score, _label(labels, r, titles))
                       for c, r, score in zip(columns, rows, row_values) if c >= 0 and papers[c]]
                for name, columns, rows, row_values in zip(who, picks, reasons, values)}

    def signal_table(self, targets: list[Target]):
        """The signals of every target with at least one positive, as one SignalTable; the
        words of each row's reason (a string, or (paper id, is it a channel's, kind)); who
        each person of the table is; and what they exclude (shown or reacted to), as
        (person, candidate) arrays. Parsed straight from the Redis replies: this is most of
        the fan-out's Python."""
        rec, batch = self.rec, self.batch
        position, shown_at = batch.position, batch.shown_at
        replies = rec.people.read_states(targets, batch.ids)
        topic_vectors = rec.topic_vectors({t.decode() for topics, _, _ in replies for t in topics})
        topic_at = {t.encode(): n for n, t in enumerate(topic_vectors)}
        topic_words: dict[tuple[bool, bytes], str] = {}
        source: list[int] = []   # an index row, or -1 - the topic's position
        kinds: list[int] = []
        ages: list[float] = []
        labels: list = []
        starts, who_of, gone_person, gone_column = [0], [], [], []
        topic, dislike = KIND_CODES["topic"], KIND_CODES["dislike"]
        now = time.time()
        for (who, is_channel), (topics, feedback, shown) in zip(targets, replies):
            mark, positive = len(source), bool(topics)
            for t in sorted(topics):
                words = topic_words.get((is_channel, t))
                if words is None:
                    words = topic_words[(is_channel, t)] = topic_reason(is_channel, t.decode())
                source.append(-1 - topic_at[t])
                kinds.append(topic)
                ages.append(0.0)
                labels.append(words)
            gone = {c for c in map(shown_at.get, shown) if c is not None}
            gone.update(self.hidden.get(who, ()))
            for i in range(0, len(feedback), 2):
                pid = feedback[i].decode()
                if is_channel:   # member_feedback fields are "<person> <paper>"
                    pid = pid.split(" ", 1)[1]
                candidate = position.get(pid)
                if candidate is not None:
                    gone.add(candidate)
                row = rec.index.row_of(pid)
                if row is None:
                    continue
                said, age = feedback_kinds(loads(feedback[i + 1]), now)
                for kind in said:
                    code = KIND_CODES[kind]
                    positive = positive or code != dislike
                    source.append(row)
                    kinds.append(code)
                    ages.append(age)
                    labels.append((pid, is_channel, kind))
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
        vectors = np.empty((len(src), rec.index.dim), dtype=np.float32)
        topics = src < 0
        if topics.any():
            vectors[topics] = np.asarray(list(topic_vectors.values()), dtype=np.float32)[-1 - src[topics]]
        vectors[~topics] = rec.index.matrix[src[~topics]]
        table = SignalTable(vectors, np.asarray(kinds, dtype=np.int8), np.asarray(ages),
                            np.asarray(starts), lexical_of, lexical)
        return table, labels, who_of, (np.asarray(gone_person, dtype=np.int64),
                                       np.asarray(gone_column, dtype=np.int64))


def _label(labels: list, reason: int, titles: dict[str, str]) -> str:
    """The `why` of a pick, worded as the one-at-a-time picks word it."""
    if reason < 0:
        return "related to your interests"
    label = labels[reason]
    if isinstance(label, tuple):
        pid, is_channel, kind = label
        return feedback_reason(is_channel, kind, titles.get(pid, pid))
    return label


class CandidateBatch:
    """What every block of one fan-out shares: the candidates (ids, where each is, as text and
    as the bytes Redis sends, their vectors laid out for scoring) and their papers."""

    def __init__(self, rec: Corpus, rows: np.ndarray, k: int):
        self.rec, self.rows = rec, rows
        self.ids = [rec.index.ids[r] for r in rows]
        self.position = {pid: n for n, pid in enumerate(self.ids)}
        self.shown_at = {pid.encode(): n for n, pid in enumerate(self.ids)}
        matrix = np.asarray(rec.index.matrix[rows], dtype=np.float32)
        self.candidates = Candidates.of(matrix, rec.corpus_background())
        self.picker = Picker(matrix, k, k * POOL_PER_PICK)
        self._papers: dict[int, Paper | None] = {}
        self._word_match: dict[str, np.ndarray] = {}
        self._words = rec.lexical.scorer(rows)

    def word_match(self, topic: str) -> np.ndarray:
        """A topic's word match to every candidate (the blocks share their topics)."""
        found = self._word_match.get(topic)
        if found is None:
            found = self._word_match[topic] = self._words(topic)
        return found

    def papers(self, columns: set[int]) -> dict[int, Paper | None]:
        """The Paper of each candidate column, read once per batch."""
        missing = [c for c in columns if c not in self._papers]
        got = self.rec.store.get_papers([self.rec.index.ids[self.rows[c]] for c in missing])
        self._papers.update(zip(missing, got))
        return self._papers
