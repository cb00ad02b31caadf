"""Ranking core of the recommender: score candidate papers for one person, then diversify.

Pure numpy, no I/O. A person is a list of :class:`Signal` (topics they subscribed to, papers they
liked / saved / disliked); candidates are normalised embeddings (n, d).

Method (:func:`score_candidates`):

1. Interests -- every topic and every liked/saved paper is its own interest vector (a
   nearest-neighbour set, not one average). A candidate's cosine to each interest is turned into a
   z-score against a background sample of the corpus (how unusually close it is to *that*
   interest), and the interests are combined by a weighted soft maximum
   ``T log sum_i w_i exp(z_i / T)``; w_i = kind weight (save 2, like 1, topic 1) x time decay
   (half-life ``HALF_LIFE_DAYS``), then standardised against the same soft maximum over
   ``SOFT_MAX_SAMPLE`` rows of the background (with one interest it is that interest's z-score).
   A person with two distant interests gets papers near either one, and the interest with the
   largest term is the candidate's *reason*.
2. Learned per-person linear model, once there are ``MIN_POSITIVES_FOR_MODEL`` liked/saved papers
   (arxiv-sanity's per-user classifier, in closed form): the regularised LDA direction
   ``w = (S_bg + lambda I)^-1 (mu_pos - mu_bg)`` of the person's (weighted) positives against the
   background. The background mean and inverse covariance are shared by everybody and cached
   (:func:`prepare_background`), so a person costs one d x d mat-vec.
3. Both parts are z-scores against the background, blended ``(1 - MODEL_WEIGHT) * interest +
   MODEL_WEIGHT * model``. Each dislike j subtracts ``DISLIKE_PENALTY * w_j * max(0, z_j -
   DISLIKE_MARGIN)`` (z_j: the candidate's z-scored cosine to it, w_j its time decay), so only
   papers unusually close to something disliked are pushed down, and an area disliked several
   times (three chemistry papers) is pushed down more than the neighbour of a single dislike.
   An optional popularity input (e.g. how many people in the workspace liked the paper) adds
   ``popularity_weight * log1p(count)``.

Constants were tuned on CiteULike-a with seed 1, the reviewer-expertise dev half and the tuning
half of the topic task (``paperbot eval``), and reported on seed 0 and the other topic half.
:mod:`recommender.picking` turns the scores into a digest.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

HALF_LIFE_DAYS = 120.0           # feedback loses half its weight every 120 days
KIND_WEIGHTS = {"topic": 1.0, "like": 1.0, "save": 2.0}   # weights of the positive kinds
DISLIKE_WEIGHT = 1.0
TEMPERATURE = 1.5                # soft-max temperature, in background z-score units
MIN_POSITIVES_FOR_MODEL = 5      # liked/saved papers needed before the learned model is used
MODEL_WEIGHT = 0.3               # blend weight of the learned model (interests get 1 - it)
LEXICAL_WEIGHT = 2.5             # z-units added to a topic's closeness per unit of word match
EXPANSION_PAPERS = 5             # a topic is moved toward those of the 5 papers that match it best
EXPANSION_WORDS = 0.8            # that also have most of its words (not RL for "RL from human
EXPANSION_WEIGHT = 3.0           # feedback"), by their mean vector times this, re-normalised
RIDGE = 1.0                      # lambda = RIDGE * trace(S_bg) / d, added to S_bg
DISLIKE_PENALTY = 1.0            # score units subtracted per z-unit of closeness to a dislike...
DISLIKE_MARGIN = 1.0             # ...beyond this many background standard deviations
POPULARITY_WEIGHT = 0.2          # weight of log1p(popularity) when `popularity` is passed
BACKGROUND_CACHE_SIZE = 4
SOFT_MAX_SAMPLE = 500            # background rows that set the soft maximum's scale (below)

POSITIVE_KINDS = ("topic", "like", "save")
PAPER_KINDS = ("like", "save")
KINDS = POSITIVE_KINDS + ("dislike",)


@dataclass
class Signal:
    """One thing a person told us."""

    vector: np.ndarray          # normalised embedding (float32, d)
    label: str                  # the topic text or the paper title, used in explanations
    kind: str                   # 'topic' | 'like' | 'save' | 'dislike'
    age_days: float = 0.0       # how old the feedback is (topics: 0)
    paper_id: str | None = None
    words: str | None = None    # a topic's own text, matched word for word (lexical)


@dataclass
class Scored:
    scores: np.ndarray          # (n,) relevance of each candidate, higher is better
    reasons: np.ndarray         # (n,) index into `signals` of the top positive (-1: none)


class Background:
    """Statistics of a sample of corpus vectors, shared by every person: compute once, reuse."""

    def __init__(self, vectors: np.ndarray, ridge: float | None = None):
        ridge = RIDGE if ridge is None else ridge
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError("background must be a non-empty (m, d) array of vectors")
        d = x.shape[1]
        self.vectors = np.ascontiguousarray(x, dtype=np.float32)
        self.mean = x.mean(axis=0)
        centred = x - self.mean
        cov = centred.T @ centred / len(x)
        lam = ridge * np.trace(cov) / d
        if lam <= 1e-12:                       # a single vector (or identical ones)
            lam = 1.0 / d
        self.precision = np.linalg.inv(cov + lam * np.eye(d))
        self.cov = cov                         # for batch_scoring: mean/std of ref @ v without ref
        self._cov_root: np.ndarray | None = None
        # The soft maximum is standardised against every `soft_step`-th row only: its mean and
        # spread need no more, and the daily fan-out pays a product per row for each person.
        self.soft_step = -(-len(x) // SOFT_MAX_SAMPLE)

    @property
    def cov_root(self) -> np.ndarray:
        """R with cov = R R' (float32): v' cov v = |v @ R|^2 is a sum of squares, so float32
        computes it to its rounding (no cancellation). Made on first use."""
        if self._cov_root is None:
            values, vectors = np.linalg.eigh(self.cov)
            self._cov_root = (vectors * np.sqrt(np.maximum(values, 0.0))).astype(np.float32)
        return self._cov_root


_BACKGROUND_CACHE: "OrderedDict[tuple, Background]" = OrderedDict()


def prepare_background(vectors: np.ndarray | Background) -> Background:
    """The :class:`Background` of `vectors`, cached by content (pass the result around to skip
    even the hashing)."""
    if isinstance(vectors, Background):
        return vectors
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    key = (arr.shape, RIDGE, hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest())
    hit = _BACKGROUND_CACHE.get(key)
    if hit is None:
        hit = Background(arr)
        _BACKGROUND_CACHE[key] = hit
        while len(_BACKGROUND_CACHE) > BACKGROUND_CACHE_SIZE:
            _BACKGROUND_CACHE.popitem(last=False)
    else:
        _BACKGROUND_CACHE.move_to_end(key)
    return hit


def decay(age_days: float | np.ndarray) -> np.ndarray:
    """Weight multiplier of feedback `age_days` old: 1 now, 1/2 after HALF_LIFE_DAYS."""
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    return np.power(0.5, age / HALF_LIFE_DAYS)


def topic_match(vector: np.ndarray, papers: np.ndarray, word_match: np.ndarray,
                background: np.ndarray | Background) -> np.ndarray:
    """One topic's (or query's) closeness to each of `papers`, as :func:`score_candidates`
    scores a person with that one topic: its cosine z-scored against the background, plus
    ``LEXICAL_WEIGHT`` times `word_match`."""
    ref = prepare_background(background).vectors @ vector
    return _standardise(papers @ vector, ref) + LEXICAL_WEIGHT * np.asarray(word_match)


def expand_topic(vector: np.ndarray, papers: np.ndarray, word_match: np.ndarray,
                 background: np.ndarray | Background) -> np.ndarray:
    """A topic's (or query's) vector moved toward the ``EXPANSION_PAPERS`` of `papers` (vectors,
    e.g. the corpus's best by embedding and by words) that match it best -- z-scored cosine
    plus ``LEXICAL_WEIGHT`` times `word_match` -- and that have most of its words
    (``EXPANSION_WORDS``) -- so that a few typed words ("RLHF") reach
    what those papers are about (DPO, reward models): pseudo-relevance feedback (Rocchio)."""
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    papers = np.asarray(papers, dtype=np.float32)
    if len(papers) == 0:
        return q
    word_match = np.asarray(word_match)
    fused = topic_match(q, papers, word_match, background)
    m = min(EXPANSION_PAPERS, len(papers))
    best = np.argpartition(-fused, m - 1)[:m]
    best = best[word_match[best] >= EXPANSION_WORDS]
    if len(best) == 0:
        return q
    moved = q + EXPANSION_WEIGHT * papers[best].mean(axis=0)
    return (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)


def _soft_max(z: np.ndarray, log_weights: np.ndarray, temperature: float) -> np.ndarray:
    """temperature * log sum_i w_i exp(z_i / temperature) over the last axis, computed stably."""
    a = z / temperature + log_weights
    top = a.max(axis=-1, keepdims=True)
    return temperature * (top[..., 0] + np.log(np.exp(a - top).sum(axis=-1)))


def _standardise(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """z-scores of `values` against the distribution of `reference` (column-wise if 2-d)."""
    mu = reference.mean(axis=0)
    sd = reference.std(axis=0)
    return (values - mu) / np.where(sd > 1e-9, sd, 1.0)


def _stack(signals: list[Signal], idx: list[int], d: int) -> np.ndarray:
    rows = [np.asarray(signals[i].vector, dtype=np.float32).reshape(-1) for i in idx]
    for i, row in zip(idx, rows):
        if row.shape[0] != d:
            raise ValueError(f"signal {i} has dimension {row.shape[0]}, candidates have {d}")
    return np.stack(rows)


def _closeness(cand, ref, vectors, weights, temperature, soft_step, lexical=None):
    """Soft-max over signals of per-signal z-scored cosines (plus LEXICAL_WEIGHT times the
    word match of `lexical`, (n, p), where given), standardised against the background's
    soft-max sample (every `soft_step`-th row) of the cosines alone; also the per-candidate
    argmax signal (row of `vectors`)."""
    logw = np.log(np.maximum(weights, 1e-12))
    z_ref = ref @ vectors.T                       # (m, p)
    z = _standardise(cand @ vectors.T, z_ref)     # (n, p)
    if lexical is not None:
        z = z + LEXICAL_WEIGHT * lexical
    if len(vectors) == 1:   # one interest: its soft maximum is its z-score, on scale already
        agg = z[:, 0]
    else:
        z_soft = _standardise(z_ref[::soft_step], z_ref)
        agg = _standardise(_soft_max(z, logw, temperature), _soft_max(z_soft, logw, temperature))
    top = np.argmax(z / temperature + logw, axis=1)
    return agg, top


def score_candidates(
    signals: list[Signal],
    candidates: np.ndarray,
    background: np.ndarray | Background | None = None,
    popularity: np.ndarray | None = None,
    *,
    lexical: np.ndarray | None = None,
    popularity_weight: float = POPULARITY_WEIGHT,
    model_weight: float = MODEL_WEIGHT,
    min_positives: int = MIN_POSITIVES_FOR_MODEL,
    temperature: float = TEMPERATURE,
) -> Scored:
    """Relevance of each candidate (n, d) for the person described by `signals`.

    `background`: a sample of corpus vectors (or a :class:`Background` from
    :func:`prepare_background`) -- the negatives of the learned model and the reference
    distribution that puts all parts on one scale. Without it the candidates serve as background.
    Pass the same background for everybody: its statistics are computed once and cached.
    `popularity`: optional (n,) count of people (e.g. in the workspace) who liked each candidate;
    it adds ``popularity_weight * log1p(count)``.
    `lexical`: optional (n, len(signals)) word match of each candidate to each topic signal
    (:meth:`recommender.lexical.LexicalIndex.scores`; 0 elsewhere): a topic's closeness is its
    z-scored cosine plus ``LEXICAL_WEIGHT`` times it, so that "RLHF" finds papers that say RLHF.
    A candidate's score depends only on that candidate (not on the other candidates) once the
    background is fixed, so scores are comparable across candidates and across calls.
    """
    cand = np.asarray(candidates, dtype=np.float32)
    if cand.ndim != 2:
        raise ValueError("candidates must be a (n, d) array")
    n, d = cand.shape
    unknown = sorted({s.kind for s in signals if s.kind not in KINDS})
    if unknown:
        raise ValueError(f"unknown signal kind(s) {unknown}; expected one of {KINDS}")
    scores = np.zeros(n, dtype=np.float64)
    reasons = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return Scored(scores, reasons)
    bg = prepare_background(cand if background is None else background)
    if bg.vectors.shape[1] != d:
        raise ValueError(f"background has dimension {bg.vectors.shape[1]}, candidates have {d}")
    ref = bg.vectors

    pos = [i for i, s in enumerate(signals) if s.kind in POSITIVE_KINDS]
    if pos:
        P = _stack(signals, pos, d)
        w = np.array([KIND_WEIGHTS[signals[i].kind] for i in pos]) * decay(
            [signals[i].age_days for i in pos]
        )
        lex = None
        if lexical is not None:
            lex = np.asarray(lexical, dtype=np.float64).reshape(n, len(signals))[:, pos]
        scores, top = _closeness(cand, ref, P, w, temperature, bg.soft_step, lex)
        reasons = np.asarray(pos, dtype=np.int64)[top]

        papers = [j for j, i in enumerate(pos) if signals[i].kind in PAPER_KINDS]
        if len(papers) >= min_positives and model_weight > 0:
            wp = w[papers]
            mu_pos = (wp[:, None] * P[papers]).sum(axis=0) / wp.sum()
            direction = (bg.precision @ (mu_pos - bg.mean)).astype(np.float32)
            model = _standardise(cand @ direction, ref @ direction)
            scores = (1.0 - model_weight) * scores + model_weight * model

    neg = [i for i, s in enumerate(signals) if s.kind == "dislike"]
    if neg and DISLIKE_PENALTY > 0:
        N = _stack(signals, neg, d)
        wn = DISLIKE_WEIGHT * decay([signals[i].age_days for i in neg])
        z_ref = ref @ N.T
        z = _standardise(cand @ N.T, z_ref)          # how unusually close to each dislike
        excess = np.maximum(z - DISLIKE_MARGIN, 0.0) * wn
        scores = scores - DISLIKE_PENALTY * excess.sum(axis=1)

    if popularity is not None and popularity_weight:
        pop = np.asarray(popularity, dtype=np.float64).reshape(-1)
        if pop.shape[0] != n:
            raise ValueError(f"popularity has {pop.shape[0]} entries for {n} candidates")
        scores = scores + popularity_weight * np.log1p(np.maximum(pop, 0.0))
    return Scored(scores=scores, reasons=reasons)
