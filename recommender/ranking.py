"""Ranking core of the recommender: score candidate papers for one person, then diversify.

Pure numpy, no I/O. A person is a list of :class:`Signal` (topics they subscribed to, papers they
liked / saved / disliked); candidates are normalised embeddings (n, d).

Method (see :func:`score_candidates`):

1. Interest similarity -- every topic and every liked/saved paper is its own interest vector.
   A candidate's interest score is a soft maximum (temperature ``TEMPERATURE``) of its cosine to
   the interests, each weighted by kind (save > like = topic) and by time decay (half-life
   ``HALF_LIFE_DAYS``). A person with two distant interests gets candidates near either one.
2. Learned per-person linear model, once there are ``MIN_POSITIVES_FOR_MODEL`` liked/saved
   papers: a regularised LDA / whitened-centroid direction ``w = (S_bg + lambda I)^-1 (mu_pos -
   mu_bg)``, the person's (weighted) positives against a background sample of the corpus. The
   background statistics (mean, inverse covariance) are shared by everybody and cached, so a
   person costs two mat-vec products.
3. Both parts are put on the same scale (z-scores against the background sample) and blended;
   dislikes subtract a penalty for candidates close to disliked papers. An optional popularity
   prior (e.g. number of people in the workspace who liked the paper) can be added.

:func:`mmr` re-ranks the scored candidates with maximal marginal relevance.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

HALF_LIFE_DAYS = 120.0          # feedback loses half its weight every 120 days
KIND_WEIGHTS = {"topic": 1.0, "like": 1.0, "save": 2.0}   # positive kinds
DISLIKE_WEIGHT = 1.0
TEMPERATURE = 0.05              # soft-max temperature over interest cosines
MIN_POSITIVES_FOR_MODEL = 5     # liked/saved papers needed before the learned model is used
MODEL_WEIGHT = 0.5              # blend weight of the learned model (interest similarity: 1 - it)
RIDGE = 0.01                    # lambda added to the background covariance (relative to its trace/d)
DISLIKE_PENALTY = 1.0           # z-units subtracted per unit of (z-scored) dislike similarity
POPULARITY_WEIGHT = 0.0         # default weight of the optional popularity prior

POSITIVE_KINDS = ("topic", "like", "save")
PAPER_KINDS = ("like", "save")


@dataclass
class Signal:
    """One thing a person told us."""

    vector: np.ndarray          # normalised embedding (float32, d)
    label: str                  # the topic text or the paper title, used in explanations
    kind: str                   # 'topic' | 'like' | 'save' | 'dislike'
    age_days: float = 0.0       # how old the feedback is (topics: 0)
    paper_id: str | None = None


@dataclass
class Scored:
    scores: np.ndarray          # (n,) relevance of each candidate, higher is better
    reasons: np.ndarray         # (n,) index into `signals` of the top contributing positive (-1: none)


class Background:
    """Statistics of a sample of corpus vectors, shared by every person (compute once, reuse)."""

    def __init__(self, vectors: np.ndarray, ridge: float | None = None):
        ridge = RIDGE if ridge is None else ridge
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError("background must be a (m >= 2, d) array of vectors")
        self.vectors = x.astype(np.float32)
        self.mean = x.mean(axis=0)
        centred = x - self.mean
        cov = centred.T @ centred / len(x)
        d = cov.shape[0]
        lam = ridge * np.trace(cov) / d
        self.precision = np.linalg.inv(cov + lam * np.eye(d))


_BACKGROUND_CACHE: "OrderedDict[tuple, Background]" = OrderedDict()


def prepare_background(vectors: np.ndarray | Background | None) -> Background | None:
    """A (cached) :class:`Background` for `vectors`; pass the result around to skip hashing."""
    if vectors is None or isinstance(vectors, Background):
        return vectors
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    key = (arr.shape, RIDGE, hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest())
    hit = _BACKGROUND_CACHE.get(key)
    if hit is None:
        hit = Background(arr)
        _BACKGROUND_CACHE[key] = hit
        while len(_BACKGROUND_CACHE) > 4:
            _BACKGROUND_CACHE.popitem(last=False)
    else:
        _BACKGROUND_CACHE.move_to_end(key)
    return hit


def decay(age_days: float | np.ndarray) -> np.ndarray:
    """Weight multiplier of feedback that is `age_days` old (1 now, 1/2 after HALF_LIFE_DAYS)."""
    return np.power(0.5, np.maximum(np.asarray(age_days, dtype=np.float64), 0.0) / HALF_LIFE_DAYS)


def _soft_max(sims: np.ndarray, log_weights: np.ndarray, temperature: float) -> np.ndarray:
    """temperature * log sum_i w_i exp(sims_i / temperature), over the last axis (stable)."""
    z = sims / temperature + log_weights
    top = z.max(axis=-1, keepdims=True)
    return temperature * (top[..., 0] + np.log(np.exp(z - top).sum(axis=-1)))


def _zscore(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    mu = reference.mean()
    sd = reference.std()
    return (values - mu) / (sd if sd > 1e-9 else 1.0)


def score_candidates(
    signals: list[Signal],
    candidates: np.ndarray,
    background: np.ndarray | Background | None = None,
    popularity: np.ndarray | None = None,
    *,
    temperature: float = TEMPERATURE,
    model_weight: float = MODEL_WEIGHT,
    min_positives: int = MIN_POSITIVES_FOR_MODEL,
    dislike_penalty: float = DISLIKE_PENALTY,
    popularity_weight: float = POPULARITY_WEIGHT,
    whiten: bool = False,
    exemplar_z: bool = False,
) -> Scored:
    """Relevance of each candidate (n, d) for the person described by `signals`.

    `background` is a sample of corpus vectors (or a prepared :class:`Background`); without it the
    candidates themselves serve as the background. `popularity` (n,) is an optional count of how
    many people (in the workspace) liked each candidate; it is used only if popularity_weight > 0.
    Scores are comparable across candidates (and across calls with the same background).
    """
    cand = np.asarray(candidates, dtype=np.float32)
    if cand.ndim != 2:
        raise ValueError("candidates must be a (n, d) array")
    n = cand.shape[0]
    reasons = np.full(n, -1, dtype=np.int64)
    pos_idx = [i for i, s in enumerate(signals) if s.kind in POSITIVE_KINDS]
    neg_idx = [i for i, s in enumerate(signals) if s.kind == "dislike"]
    unknown = [s.kind for s in signals if s.kind not in POSITIVE_KINDS and s.kind != "dislike"]
    if unknown:
        raise ValueError(f"unknown signal kind(s): {sorted(set(unknown))}")
    if n == 0:
        return Scored(np.zeros(0, dtype=np.float64), reasons)
    if background is None:
        background = cand
    bg = prepare_background(background)
    ref = bg.vectors

    scores = np.zeros(n, dtype=np.float64)
    if pos_idx:
        P = np.stack([np.asarray(signals[i].vector, dtype=np.float32) for i in pos_idx])
        w = np.array(
            [KIND_WEIGHTS[signals[i].kind] * decay(signals[i].age_days) for i in pos_idx]
        )
        logw = np.log(np.maximum(w, 1e-12))
        Q = (P - bg.mean) @ bg.precision if whiten else P
        sims = cand @ Q.T                                   # (n, p)
        sims_ref = ref @ Q.T
        if exemplar_z:
            mu, sd = sims_ref.mean(axis=0), sims_ref.std(axis=0)
            sd = np.where(sd > 1e-9, sd, 1.0)
            sims = (sims - mu) / sd
            sims_ref = (sims_ref - mu) / sd
        interest = _soft_max(sims, logw, temperature)
        interest_ref = _soft_max(sims_ref, logw, temperature)
        scores = _zscore(interest, interest_ref)
        reasons = np.asarray(pos_idx, dtype=np.int64)[np.argmax(sims / temperature + logw, axis=1)]

        paper_rows = [j for j, i in enumerate(pos_idx) if signals[i].kind in PAPER_KINDS]
        if len(paper_rows) >= min_positives and model_weight > 0:
            wp = w[paper_rows]
            mu_pos = (wp[:, None] * P[paper_rows]).sum(axis=0) / wp.sum()
            direction = bg.precision @ (mu_pos - bg.mean)
            model = _zscore(cand @ direction, ref @ direction)
            scores = (1.0 - model_weight) * scores + model_weight * model

    if neg_idx and dislike_penalty > 0:
        N = np.stack([np.asarray(signals[i].vector, dtype=np.float32) for i in neg_idx])
        wn = np.array([DISLIKE_WEIGHT * decay(signals[i].age_days) for i in neg_idx])
        logwn = np.log(np.maximum(wn, 1e-12))
        dis = _soft_max(cand @ N.T, logwn, temperature)
        dis_ref = _soft_max(ref @ N.T, logwn, temperature)
        # Only candidates closer to a dislike than a typical paper is are pushed down.
        scores = scores - dislike_penalty * np.maximum(_zscore(dis, dis_ref), 0.0)

    if popularity is not None and popularity_weight > 0:
        pop = np.log1p(np.maximum(np.asarray(popularity, dtype=np.float64), 0.0))
        scores = scores + popularity_weight * pop
    return Scored(scores=scores, reasons=reasons)


def mmr(candidates: np.ndarray, scores: np.ndarray, k: int, diversity: float = 0.3) -> list[int]:
    """Greedy maximal marginal relevance: indices of k candidates, cosine redundancy.

    Each step picks argmax (1 - diversity) * relevance - diversity * max cosine to those picked,
    with relevance = scores rescaled to [0, 1] so that both terms share a scale.
    """
    x = np.asarray(candidates, dtype=np.float32)
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    k = max(0, min(int(k), n))
    if k == 0:
        return []
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.maximum(norms, 1e-12)
    finite = np.isfinite(s)
    lo, hi = (s[finite].min(), s[finite].max()) if finite.any() else (0.0, 1.0)
    rel = np.where(finite, (s - lo) / (hi - lo if hi > lo else 1.0), -1.0)
    chosen: list[int] = []
    redundancy = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        red = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = (1.0 - diversity) * rel - diversity * red
        value[~available] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, x @ x[best])
    return chosen
