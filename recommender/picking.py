"""Choosing a digest from scored candidates: every interest its share, no near-duplicates,
best first.

One chooser for one person (:meth:`Recommender.recommend`) and for ten thousand at once (the
daily fan-out), so both give the same picks. For each person:

1. the pool: the ``pool`` best candidates by score (ties by position);
2. the shares: each interest group (a topic, with the liked and saved papers closest to it)
   that explains at least one pooled candidate gets seats in proportion to its weight
   (D'Hondt over the ``k`` picks), so that a person following two topics is not given five
   papers of one of them; a person without topics has one group;
3. maximal marginal relevance over the pool, each step among the candidates whose group still
   has a free seat (any candidate once none has): ``(1 - diversity) * relevance - diversity *
   max cosine to what was picked``, relevance the score rescaled to [0, 1];
4. the picks sorted by score, so that the list reads best first.
"""

from __future__ import annotations

import numpy as np

from .ranking import KIND_WEIGHTS, Signal, decay

POOL_PER_PICK = 10         # MMR chooses k picks among the k * POOL_PER_PICK most relevant

DIVERSITY = 0.3


def interest_groups(vectors: np.ndarray, is_topic: np.ndarray, weight: np.ndarray,
                    starts: np.ndarray):
    """Interest groups of many people's signals (person p owns rows starts[p]:starts[p + 1]):
    group g of a person is their g-th topic, and each of their liked or saved papers joins
    the topic closest to it (cosine); a person with no topic has one group. `weight`: each
    signal's weight (0: a dislike, which gets no group). Returns (each row's group (-1:
    none), (people, G) each group's weight)."""
    starts = np.asarray(starts, dtype=np.int64)
    people = len(starts) - 1
    owner = np.repeat(np.arange(people), np.diff(starts))
    topic_rows = np.flatnonzero(is_topic)
    n_topics = np.bincount(owner[topic_rows], minlength=people)
    groups = np.full(len(owner), -1, dtype=np.int64)
    groups[topic_rows] = np.arange(len(topic_rows)) - (np.cumsum(n_topics) - n_topics)[owner[topic_rows]]
    papers = np.flatnonzero(~is_topic & (weight > 0))
    groups[papers] = 0
    several = papers[n_topics[owner[papers]] > 1]   # join the closest of several topics
    if len(several):
        G = int(n_topics.max())
        first = np.cumsum(n_topics) - n_topics       # each person's first topic (of topic_rows)
        best = np.full(len(several), -np.inf)
        for g in range(G):
            has = n_topics[owner[several]] > g
            rows = several[has]
            topic = topic_rows[first[owner[rows]] + g]
            sims = np.einsum("ij,ij->i", vectors[rows], vectors[topic])
            better = sims > best[has]
            groups[rows[better]] = g
            best[np.flatnonzero(has)[better]] = sims[better]
    weights = np.zeros((people, max(1, int(n_topics.max(initial=0)))))
    kept = groups >= 0
    np.add.at(weights, (owner[kept], groups[kept]), np.asarray(weight, dtype=np.float64)[kept])
    return groups, weights


def signal_groups(signals: list[Signal]):
    """:func:`interest_groups` of one person's signals: (groups (signals,), weights (1, G))."""
    if not signals:
        return np.zeros(0, dtype=np.int64), np.zeros((1, 1))
    kinds = [s.kind for s in signals]
    weight = np.array([KIND_WEIGHTS.get(kind, 0.0) for kind in kinds]) * decay(
        [s.age_days for s in signals])
    return interest_groups(np.stack([np.asarray(s.vector, dtype=np.float32) for s in signals]),
                           np.array([kind == "topic" for kind in kinds]), weight,
                           np.array([0, len(signals)]))


class Picker:
    """Picks over one set of candidates for many people. The candidates' cosines to each other
    are computed once (one product), so each MMR step is a gather, not a product per person."""

    SIMILARITIES_UP_TO = 4096   # candidates; beyond, each step computes its products

    def __init__(self, matrix: np.ndarray, k: int, pool: int, diversity: float = DIVERSITY):
        self.x = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        self.k, self.pool, self.diversity = k, pool, diversity
        n = len(matrix)
        self.cosines = self.x @ self.x.T if n <= self.SIMILARITIES_UP_TO else None

    def choose(self, scores: np.ndarray, group_of=None, weights: np.ndarray | None = None) -> np.ndarray:
        """(people, k) candidate columns, best score first, -1 past the last. `scores`:
        (people, n), -inf where not a candidate. `group_of(pool)`: the interest group of each
        pooled column (people, pool) -> (people, pool), -1 for none; `weights`: (people, G)
        each group's weight. Without them every candidate is in one group."""
        people, n = scores.shape
        size = min(self.pool, n)
        if size < n:
            top = np.argpartition(-scores, size - 1, axis=1)[:, :size]
        else:
            top = np.broadcast_to(np.arange(n), (people, n)).copy()
        top.sort(axis=1)                                     # ties by position...
        vals = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")     # ...as a stable argsort has them
        top = np.take_along_axis(top, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        valid = np.isfinite(vals)
        lo = np.where(valid, vals, np.inf).min(axis=1, keepdims=True)
        hi = np.where(valid, vals, -np.inf).max(axis=1, keepdims=True)
        span = np.where(hi > lo, hi - lo, 1.0)
        rel = np.where(valid, (vals - lo) / span, -1.0)
        if group_of is None:
            groups = np.zeros(top.shape, dtype=np.int64)
            weights = np.ones((people, 1))
        else:
            groups = np.maximum(np.asarray(group_of(top), dtype=np.int64), 0)
        seats = _seats(groups, valid, np.asarray(weights, dtype=np.float64), min(self.k, size))
        taken = np.zeros_like(seats)
        redundancy = np.full(vals.shape, -np.inf)
        available = valid.copy()
        picks = np.full((people, self.k), -1, dtype=np.int64)
        rows = np.arange(people)
        for step in range(min(self.k, size)):
            red = np.where(np.isfinite(redundancy), redundancy, 0.0)
            value = (1.0 - self.diversity) * rel - self.diversity * red
            free = available & (taken[rows[:, None], groups] < seats[rows[:, None], groups])
            free |= available & ~free.any(axis=1, keepdims=True)   # no free seat: anything
            value[~free] = -np.inf
            best = np.argmax(value, axis=1)
            ok = available[rows, best]
            chosen = top[rows, best]
            picks[ok, step] = chosen[ok]
            available[rows, best] = False
            taken[rows[ok], groups[rows[ok], best[ok]]] += 1
            if self.cosines is not None:
                sims = self.cosines[top, chosen[:, None]]
            else:
                sims = np.einsum("bnd,bd->bn", self.x[top], self.x[chosen])
            redundancy = np.maximum(redundancy, sims)
        # best first: by score, i.e. by place in the score-sorted pool
        order = np.argsort(_rank_in_pool(top, picks), axis=1, kind="stable")
        return np.take_along_axis(picks, order, axis=1)


def _rank_in_pool(top: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Position of each pick in its person's score-sorted pool (picks past the last: last)."""
    match = top[:, None, :] == picks[:, :, None]             # (people, k, pool)
    found = match.any(axis=2)
    return np.where(found & (picks >= 0), match.argmax(axis=2), np.iinfo(np.int64).max)


def _seats(groups: np.ndarray, valid: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """(people, G) seats of each group among k picks: D'Hondt over the groups that explain at
    least one valid pooled candidate, by weight (ties to the lower group)."""
    people, G = weights.shape
    present = np.zeros((people, G), dtype=bool)
    rows = np.repeat(np.arange(people), groups.shape[1])
    present[rows[valid.ravel()], groups.ravel()[valid.ravel()]] = True
    w = np.where(present, np.maximum(weights, 1e-12), 0.0)
    seats = np.zeros((people, G), dtype=np.int64)
    everyone = np.arange(people)
    for _ in range(k):
        quotient = w / (seats + 1)
        best = np.argmax(quotient, axis=1)
        has = quotient[everyone, best] > 0
        seats[everyone[has], best[has]] += 1
    return seats
