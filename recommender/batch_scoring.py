"""The ranking of :mod:`ranking` for many people over the same candidates: the daily fan-out.

Same method and result as :func:`ranking.score_candidates` up to float32 rounding (a test
holds it to the per-person function). What makes it fast:

- people arrive as a :class:`SignalTable` (plain arrays, one row per signal), not objects;
- every signal's z-scoring against the background is folded into its row: the mean and standard
  deviation of ``ref @ v`` are ``mean(ref) . v`` and ``sqrt(v' cov(ref) v)``, so a signal costs
  one row of one product with ``[candidates | 1]``;
- a person with one interest needs no exponentials (its soft maximum is its z-score); people
  with more are grouped by their number of interests, so a person's soft maximum is a reshape
  and a sum, and only they pay the product with the background's soft-max sample;
- the exponentials skip the max-shift where they provably stay within float32 range
  (|z| <= (1 + |mu|) / sd, as cosines are within [-1, 1]); a person whose signals could leave
  it is scored by :func:`ranking.score_candidates` itself;
- the learned model's direction is one more row, and dislikes fold their margin and weight into
  theirs, so their penalty is a relu and a sum;
- a topic's word match (``lexical``) is one row per distinct topic, added to its product rows.
Popularity is not supported here (the daily fan-out does not use it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ranking import (DISLIKE_MARGIN, DISLIKE_PENALTY, DISLIKE_WEIGHT, KIND_WEIGHTS, KINDS,
                      LEXICAL_WEIGHT, MIN_POSITIVES_FOR_MODEL, MODEL_WEIGHT, PAPER_KINDS, TEMPERATURE,
                      Background, Signal, _stack, decay, prepare_background, score_candidates)

KIND_CODES = {kind: n for n, kind in enumerate(KINDS)}
DISLIKE = KIND_CODES["dislike"]
_WEIGHT = np.array([KIND_WEIGHTS.get(kind, DISLIKE_WEIGHT) for kind in KINDS])
_PAPER = np.array([kind in PAPER_KINDS for kind in KINDS])
EXP_SAFE = 80.0   # |exponent| bound under which float32 exp neither overflows nor underflows


@dataclass
class SignalTable:
    """Many people's signals as arrays: person p owns rows ``starts[p]:starts[p + 1]``."""

    vectors: np.ndarray   # (rows, d) float32, normalised
    kinds: np.ndarray     # (rows,) KIND_CODES
    ages: np.ndarray      # (rows,) days
    starts: np.ndarray    # (people + 1,)
    lexical_of: np.ndarray | None = None   # (rows,) row of `lexical` for the signal, -1: none
    lexical: np.ndarray | None = None      # (distinct topics, candidates) word match, float32

    @property
    def people(self) -> int:
        return len(self.starts) - 1

    def positive_weights(self) -> np.ndarray:
        """Each row's weight in the ranking (kind and age), 0 for a dislike."""
        return np.where(self.kinds == DISLIKE, 0.0, _WEIGHT[self.kinds] * decay(self.ages))

    def lexical_for(self, p: int, n: int) -> np.ndarray | None:
        """Person p's word matches as score_candidates takes them, (n, their signals)."""
        if self.lexical_of is None:
            return None
        rows = self.lexical_of[self.starts[p]:self.starts[p + 1]]
        out = np.zeros((n, len(rows)), dtype=np.float32)
        out[:, rows >= 0] = self.lexical[rows[rows >= 0]].T
        return out

    @classmethod
    def of(cls, people: list[list[Signal]], d: int,
           lexical: list[np.ndarray | None] | None = None) -> SignalTable:
        """The table of per-person signal lists (what :func:`score_candidates` takes), with
        each person's optional `lexical` (n, their signals) word matches."""
        flat = [s for signals in people for s in signals]
        unknown = sorted({s.kind for s in flat if s.kind not in KIND_CODES})
        if unknown:
            raise ValueError(f"unknown signal kind(s) {unknown}; expected one of {KINDS}")
        rows = [np.asarray(s.vector, dtype=np.float32).reshape(-1) for s in flat]
        if any(row.shape[0] != d for row in rows):
            for signals in people:   # the per-person function names the offending signal
                _stack(signals, list(range(len(signals))), d)
        lexical_of, columns = None, []
        if lexical is not None:
            lexical_of = np.full(len(flat), -1, dtype=np.int64)
            at = 0
            for signals, lex in zip(people, lexical):
                for j, signal in enumerate(signals):
                    if lex is not None and signal.kind == "topic":
                        lexical_of[at + j] = len(columns)
                        columns.append(np.asarray(lex, dtype=np.float32)[:, j])
                at += len(signals)
        return cls(np.asarray(rows, dtype=np.float32).reshape(len(rows), d),
                   np.array([KIND_CODES[s.kind] for s in flat], dtype=np.int8),
                   np.array([s.age_days for s in flat], dtype=np.float64),
                   np.r_[0, np.cumsum([len(signals) for signals in people])].astype(np.int64),
                   lexical_of, np.asarray(columns, dtype=np.float32) if columns else None)

    def signals(self, p: int) -> list[Signal]:
        rows = range(self.starts[p], self.starts[p + 1])
        return [Signal(self.vectors[r], "", KINDS[self.kinds[r]], float(self.ages[r])) for r in rows]


@dataclass
class Candidates:
    """Candidates and background laid out once, for every block scored against them."""

    vectors: np.ndarray      # (n, d) float32
    augmented: np.ndarray    # [vectors | 1], transposed: BLAS multiplies by a transposed
                             # row-major matrix ~10% faster than by a (d + 1, n) one
    background: Background
    soft_rows: np.ndarray    # [the background's soft-max sample | 1]
    mean: np.ndarray         # the background's mean, float32

    @classmethod
    def of(cls, candidates: np.ndarray, background: np.ndarray | Background) -> Candidates:
        cand = np.ascontiguousarray(candidates, dtype=np.float32)
        if cand.ndim != 2:
            raise ValueError("candidates must be a (n, d) array")
        bg = prepare_background(background)
        if bg.vectors.shape[1] != cand.shape[1]:
            raise ValueError(f"background has dimension {bg.vectors.shape[1]}, candidates have {cand.shape[1]}")
        return cls(cand, _with_ones(cand).T, bg, _with_ones(bg.vectors[::bg.soft_step]),
                   bg.mean.astype(np.float32))


def score_block(table: SignalTable, candidates: Candidates, lo: int = 0, hi: int | None = None,
                *, model_weight: float = MODEL_WEIGHT, min_positives: int = MIN_POSITIVES_FOR_MODEL,
                temperature: float = TEMPERATURE):
    """Scores of the candidates for the table's people lo..hi (all by default): their scores
    (hi - lo, n) float32, and reasons(people, columns), the table row of the interest that
    explains each (person, column) (-1: none), like ``score_candidates(...).reasons``.
    Take a few hundred people at a time: their products then stay in the CPU caches."""
    block = _Block(table, lo, table.people if hi is None else hi, candidates, float(temperature),
                   model_weight, min_positives)
    return block.scores, block.reasons


def score_many(people: list[list[Signal]], candidates: np.ndarray,
               background: np.ndarray | Background, block: int = 512,
               lexical: list[np.ndarray | None] | None = None, **options) -> ManyScored:
    """:func:`score_block` of per-person signal lists (and their optional `lexical`, as
    score_candidates takes it), `block` people at a time, gathered: what a test compares
    with :func:`score_candidates`."""
    cand = Candidates.of(candidates, background)
    table = SignalTable.of(people, cand.vectors.shape[1], lexical)
    n = len(cand.vectors)
    scores = np.zeros((len(people), n), dtype=np.float64)
    reasons = {}
    for lo in range(0, len(people), block):
        hi = min(len(people), lo + block)
        scores[lo:hi], reasons_of = score_block(table, cand, lo, hi, **options)
        everyone = np.arange(lo, hi)
        rows = reasons_of(everyone, np.broadcast_to(np.arange(n), (hi - lo, n)))
        for p, row in zip(everyone, rows):
            reasons[p] = np.where(row >= 0, row - table.starts[p], -1)
    return ManyScored(scores, reasons)


@dataclass
class ManyScored:
    scores: np.ndarray              # (people, n): row p = score_candidates(people[p], ...).scores
    reasons: dict[int, np.ndarray]  # person -> score_candidates(people[p], ...).reasons


def _with_ones(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((len(x), 1), dtype=np.float32)])


def _norms(x: np.ndarray) -> np.ndarray:
    """Row norms (float64), 1 where a row is ~0 (a z-score's spread: no spread, no scaling)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    return np.where(norms > 1e-9, norms, 1.0)


def _grouped(rows: np.ndarray, owner: np.ndarray, size: int):
    """`rows` ordered by their owner's number of them (stable: each owner's rows stay
    together, in order), that count per owner, and the (count, owners) runs in that order."""
    counts = np.bincount(owner[rows], minlength=size)
    rows = rows[np.argsort(counts[owner[rows]], kind="stable")]
    people = np.argsort(counts, kind="stable")
    people = people[counts[people] > 0]
    values, first = np.unique(counts[people], return_index=True)
    bounds = list(first) + [len(people)]
    return rows, counts, [(int(c), people[bounds[i]:bounds[i + 1]]) for i, c in enumerate(values)]


class _Block:
    """The scores of the table's people lo..hi (:func:`score_block`)."""

    def __init__(self, table, lo, hi, cand: Candidates, T, model_weight, min_positives):
        bg = cand.background
        self.lo, self.s0 = lo, int(table.starts[lo])
        size, s1 = hi - lo, int(table.starts[hi])
        owner = np.repeat(np.arange(size), np.diff(table.starts[lo:hi + 1]))
        kinds, vec = table.kinds[self.s0:s1], table.vectors[self.s0:s1]
        weight = _WEIGHT[kinds] * decay(table.ages[self.s0:s1])
        logw = np.log(np.maximum(weight, 1e-12))
        # mean and sd of each signal's cosines to the background, from its mean and covariance
        mu = vec @ cand.mean
        sd = _norms(vec @ bg.cov_root)
        pos = kinds != DISLIKE
        self.scores = np.zeros((size, len(cand.vectors)), dtype=np.float32)

        # people whose exponents could leave float32 range: the per-person function
        unsafe = np.unique(owner[pos & ((1.0 + np.abs(mu)) / (T * sd) + np.abs(logw) > EXP_SAFE)])
        self.fallback = {}
        for p in unsafe.tolist():
            one = score_candidates(table.signals(lo + p), cand.vectors, bg, model_weight=model_weight,
                                   min_positives=min_positives, temperature=T,
                                   lexical=table.lexical_for(lo + p, len(cand.vectors)))
            self.scores[p] = one.scores
            self.fallback[p] = np.where(one.reasons >= 0, one.reasons + table.starts[lo + p] - self.s0, -1)
        here = ~np.isin(owner, unsafe)

        # interests: rows (v / (T sd), log w - mu / (T sd)) . [c; 1] = z / T + log w
        self.pos_idx, self.n_pos, pos_groups = _grouped(np.flatnonzero(pos & here), owner, size)
        scale = 1.0 / (T * sd[self.pos_idx])
        pos_rows = _rows(vec[self.pos_idx], scale, logw[self.pos_idx] - mu[self.pos_idx] * scale)
        # the learned model of people with enough liked/saved papers: its z-score, one row each
        paper = _PAPER[kinds] & here
        n_paper = np.bincount(owner[paper], minlength=size)
        has_model = (n_paper >= min_positives) & (model_weight > 0)
        model_who = np.flatnonzero(has_model)
        model_rows = _model_rows(vec, weight, np.flatnonzero(paper & has_model[owner]),
                                 n_paper[model_who], bg)
        # dislikes: w * max(z - margin, 0) = max(row . [c; 1], 0), margin and weight inside
        neg = ~pos & here if DISLIKE_PENALTY > 0 else np.zeros_like(pos)
        neg_idx, _, neg_groups = _grouped(np.flatnonzero(neg), owner, size)
        neg_rows = _rows(vec[neg_idx], weight[neg_idx] / sd[neg_idx],
                         -weight[neg_idx] * (mu[neg_idx] / sd[neg_idx] + DISLIKE_MARGIN))

        self.product = np.vstack([pos_rows, model_rows, neg_rows]) @ cand.augmented   # one GEMM
        if table.lexical_of is not None:   # topics: + LEXICAL_WEIGHT * word match, over T
            which = table.lexical_of[self.s0 + self.pos_idx]
            matched = np.r_[table.lexical.any(axis=1), False]     # [-1]: no topic
            rows = np.flatnonzero(matched[which])
            if len(rows):
                self.product[rows] += (LEXICAL_WEIGHT / T) * table.lexical[which[rows]]
        self.pos_at = np.zeros(size, dtype=np.int64)   # each person's first interest row
        at = 0
        for count, who in pos_groups:
            self.pos_at[who] = at + count * np.arange(len(who))
            rows = slice(at, at + count * len(who))
            if count == 1:   # one interest: the soft maximum is its z-score, T (a - log w)
                self.scores[who] = T * (self.product[rows] - logw[self.pos_idx[rows], None])
            else:
                self.scores[who] = _standardised_soft_max(
                    self.product[rows], pos_rows[rows] @ cand.soft_rows.T, count, T)
            at += count * len(who)
        if len(model_who):
            model = self.product[at:at + len(model_who)]
            self.scores[model_who] = (1.0 - model_weight) * self.scores[model_who] + model_weight * model
            at += len(model_who)
        excess = np.maximum(self.product[at:], 0.0, out=self.product[at:])
        at = 0
        for count, who in neg_groups:
            self.scores[who] -= DISLIKE_PENALTY * excess[at:at + count * len(who)].reshape(
                len(who), count, -1).sum(axis=1)
            at += count * len(who)

    def reasons(self, people: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """For each of `people` (table people of this block) and each of their `columns`
        (candidate columns, -1: none), the table row of the interest with the largest term
        there (-1: none)."""
        people = np.asarray(people, dtype=np.int64) - self.lo
        columns = np.asarray(columns, dtype=np.int64).reshape(len(people), -1)
        valid = columns >= 0
        cols = np.where(valid, columns, 0)
        out = np.full(columns.shape, -1, dtype=np.int64)
        counts = self.n_pos[people]
        for count in np.unique(counts[counts > 0]):
            sel = np.flatnonzero(counts == count)
            rows = self.pos_at[people[sel]][:, None] + np.arange(count)          # (g, count)
            # exp is monotone, so the largest exponential is the largest term
            best = self.product[rows[:, :, None], cols[sel][:, None, :]].argmax(axis=1)
            out[sel] = self.s0 + self.pos_idx[np.take_along_axis(rows, best, axis=1)]
        for j in np.flatnonzero(np.isin(people, list(self.fallback))):
            rows = self.fallback[int(people[j])][cols[j]]
            out[j] = np.where(rows >= 0, rows + self.s0, -1)
        out[~valid] = -1
        return out


def _model_rows(vec, weight, rows, counts, bg: Background) -> np.ndarray:
    """Rows whose product with [c; 1] is the learned model's z-score (ranking's step 2) for
    people whose liked/saved papers are `rows` (consecutive per person, `counts` each)."""
    if not len(counts):
        return np.zeros((0, vec.shape[1] + 1), dtype=np.float32)
    at = np.r_[0, np.cumsum(counts)[:-1]]
    wp = weight[rows].astype(np.float32)
    mu_pos = np.add.reduceat(wp[:, None] * vec[rows], at) / np.add.reduceat(wp, at)[:, None]
    dirs = (mu_pos - bg.mean) @ bg.precision
    sd = _norms(dirs.astype(np.float32) @ bg.cov_root)
    return _rows(dirs, 1.0 / sd, -(dirs @ bg.mean) / sd)


def _rows(vectors: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Rows [vectors * scale | bias] (float32) of one product with [candidates | 1]."""
    rows = np.empty((len(vectors), vectors.shape[1] + 1), dtype=np.float32)
    np.multiply(vectors, scale[:, None], out=rows[:, :-1], casting="unsafe")
    rows[:, -1] = bias
    return rows


def _standardised_soft_max(a: np.ndarray, ref: np.ndarray, count: int, T: float) -> np.ndarray:
    """The soft maximum T log sum exp of each person's `count` consecutive rows of exponents
    `a` (candidates), standardised against the same of `ref` (the background's soft-max
    sample). Works in place on `a` and `ref`."""
    out = []
    for x in (a, ref):
        np.exp(x, out=x)
        total = x.reshape(len(x) // count, count, -1).sum(axis=1)
        np.log(total, out=total)
        total *= T
        out.append(total)
    soft, soft_ref = out
    mean = soft_ref.mean(axis=1, dtype=np.float64, keepdims=True)
    spread = soft_ref.std(axis=1, dtype=np.float64, keepdims=True)
    soft -= mean.astype(np.float32)
    soft /= np.where(spread > 1e-9, spread, 1.0).astype(np.float32)
    return soft
