"""Okapi BM25 over the papers' titles and abstracts: the lexical half of paperbot's matching.

Why: a short topic or query written as an acronym or a rare term ("RLHF", "DPO", "ViT") is
often not close to the papers that use it in the embedding space, while an exact word match
finds them at once. The ranking fuses this with the embedding (:mod:`recommender.ranking`).

Words are lower-cased, split on anything that is not a letter or digit, English stop words
dropped, stemmed (Snowball; each distinct word once per process) and hashed to one of
``BUCKETS`` term ids, so that a paper's terms are a small array that needs no shared
vocabulary: it is computed once at ingest and kept in Redis beside the paper's vector, and a
cold start only reads it back. Scores are classic BM25 (k1 1.2, b 0.75,
``idf = log(1 + (N - df + 0.5) / (df + 0.5))``) over every paper added.
"""

from __future__ import annotations

import re
import threading
import zlib

import numpy as np
import snowballstemmer
from scipy import sparse

VERSION = "v1"          # of the terms below: part of their cache key, so a change re-computes
K1 = 1.2
B = 0.75
BUCKETS = 1 << 22       # hashed term ids: ~150,000 distinct stems collide ~3% of the time
_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
let me more most my myself no nor not of off on once only or other our ours ourselves out over
own same she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours yourself yourselves via using use used based new
towards toward study paper approach method methods propose proposed show results
""".split())

_stemmer = snowballstemmer.stemmer("english")
_word_ids: dict[str, int] = {}    # word -> term id (-1: a stop word), for every word seen
_word_lock = threading.Lock()


def terms_of(text: str) -> np.ndarray:
    """The term ids of a text, in order (a word used twice is there twice), int32."""
    words = _WORD.findall((text or "").lower())
    known = _word_ids
    missing = [w for w in set(words) if w not in known]
    if missing:
        with _word_lock:
            for word, stem in zip(missing, _stemmer.stemWords(missing)):
                known[word] = -1 if word in STOP_WORDS else zlib.crc32(stem.encode()) % BUCKETS
    ids = np.fromiter(map(known.__getitem__, words), dtype=np.int32, count=len(words))
    return ids[ids >= 0]


class LexicalIndex:
    """BM25 scores of a query for every row (paper) added so far; row n is row n of the
    vector index."""

    def __init__(self):
        self._rows: list[np.ndarray] = []      # per row: its term ids (terms_of)
        self._matrix: sparse.csc_matrix | None = None   # rows x terms BM25 weights, lazily
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def put(self, row: int, terms: np.ndarray) -> None:
        """Set the terms of `row`: the next row (a new paper) or an existing one (a paper whose
        text changed)."""
        with self._lock:
            while len(self._rows) <= row:   # rows an interrupted refresh skipped: no words yet
                self._rows.append(np.zeros(0, dtype=np.int32))
            self._rows[row] = terms
            self._matrix = None

    def _weights(self) -> sparse.csc_matrix:
        """The (rows, terms) matrix of each term's BM25 weight in each row, built on first use
        after rows were added (an ingest adds a day's papers at a time)."""
        with self._lock:
            if self._matrix is not None:
                return self._matrix
            n = len(self._rows)
            lengths = np.array([len(r) for r in self._rows], dtype=np.float32)
            ids = np.concatenate(self._rows) if n else np.zeros(0, dtype=np.int32)
            owner = np.repeat(np.arange(n, dtype=np.int32), lengths.astype(np.int64))
            tf = sparse.csr_matrix((np.ones(len(ids), dtype=np.float32), (owner, ids)),
                                   shape=(n, BUCKETS))   # duplicates summed: term counts
            tf.sum_duplicates()
            average = float(lengths.mean()) if n and lengths.mean() > 0 else 1.0
            norm = np.repeat(K1 * (1 - B + B * lengths / average), np.diff(tf.indptr))
            df = np.bincount(tf.indices, minlength=BUCKETS).astype(np.float32)
            idf = np.log1p((n - df + 0.5) / (df + 0.5))
            tf.data = idf[tf.indices] * tf.data * (K1 + 1) / (tf.data + norm)
            self._matrix = tf.tocsc()
            return self._matrix

    def scorer(self, rows: np.ndarray):
        """`scores(query, rows)` for many queries over the same rows (the daily fan-out's
        candidates): their words are laid out once, so each query costs only its postings."""
        weights = self._weights()
        rows = np.asarray(rows, dtype=np.int64)
        known = rows < weights.shape[0]
        part = weights.tocsr()[rows[known]].tocsc()

        def scores(query: str) -> np.ndarray:
            out = np.zeros(len(rows), dtype=np.float32)
            terms = np.unique(terms_of(query))
            if len(terms) and part.shape[0]:
                sums = np.asarray(part[:, terms].sum(axis=1), dtype=np.float32).ravel()
                out[known] = sums / _ideal(weights, terms)
            return out
        return scores

    def scores(self, query: str, rows: np.ndarray | None = None) -> np.ndarray:
        """How well each of `rows` (every row by default) matches the words of `query`: its
        BM25 over the query's BM25 in a paper of average length that has each of its words
        once (so about 1 when every word is there, 0 when none is), float32. A query is a
        set of words: a repeated word counts once."""
        weights = self._weights()
        size = weights.shape[0] if rows is None else len(rows)
        terms = np.unique(terms_of(query))
        if len(terms) == 0 or weights.shape[0] == 0:
            return np.zeros(size, dtype=np.float32)
        n = weights.shape[0]
        total = np.asarray(weights[:, terms].sum(axis=1), dtype=np.float32).ravel() / _ideal(weights, terms)
        if rows is None:
            return total
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(size, dtype=np.float32)
        known = rows < n             # a row the vector index has and this one not yet: no words
        out[known] = total[rows[known]]
        return out


    def has_all(self, phrase: str, rows: np.ndarray) -> np.ndarray:
        """Which of `rows` hold every word of `phrase` (stemmed, as `scores` reads it): the
        personal filters' test. A phrase of stop words only is in no row."""
        weights = self._weights()
        rows = np.asarray(rows, dtype=np.int64)
        terms = np.unique(terms_of(phrase))
        out = np.zeros(len(rows), dtype=bool)
        if len(terms) == 0 or weights.shape[0] == 0:
            return out
        present = np.asarray((weights[:, terms] > 0).sum(axis=1)).ravel() == len(terms)
        known = rows < weights.shape[0]
        out[known] = present[rows[known]]
        return out

def _ideal(weights: sparse.csc_matrix, terms: np.ndarray) -> float:
    """A query's BM25 in a paper of average length with each of its words once: the sum of
    their idf (> 0)."""
    n, df = weights.shape[0], np.diff(weights.indptr)[terms]
    return float(np.log1p((n - df + 0.5) / (df + 0.5)).sum())
