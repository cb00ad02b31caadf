"""4. Daily fan-out: picks for 10,000 people over 2,000 new papers.

Each person follows 1-3 topics, liked 0-6 and saved 0-1 older papers, disliked 0-2, and was
already shown 20 of the day's candidates (excluded). The real path is
`Recommender.picks_for_many` end to end: every person's state read from Redis, topic vectors
from the embedding cache, scoring, maximal-marginal-relevance picks, reasons and papers.

Floors, computed in the same process and alternated with it:
- `fanout_ratio`: the bare matrix product of every person's signal vectors (topics, liked,
  saved, disliked) with the candidates, then per person the best signal and a top-k that skips
  the excluded papers: a nearest-interest recommender with nothing else.
- `fanout_ratio_with_background`: the same plus the product the ranking is defined on, the
  interests against the background's soft-max sample (500 papers) that sets the soft
  maximum's scale.
The one-person-at-a-time path (`recommend` per person, what the scheduler did before) is timed
on a sample and scaled up, for comparison.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from recommender.batch_scoring import KIND_CODES
from recommender.fanout import Fanout

from .common import QUERIES, Row, log, timed

WORKSPACE = "slack:TBENCHFANOUT"


def populate(rec, people: int, candidates: list[str], seed: int = 0) -> list[str]:
    """Write `people` people's topics, feedback and shown papers (people.py's key schema)."""
    from recommender.people import normalise_topic

    rng = np.random.default_rng(seed)
    cand = set(candidates)
    older = [pid for pid in rec.index.ids if pid not in cand]
    now = time.time()
    who = [f"{WORKSPACE}:U{n:06d}" for n in range(people)]
    pipe = rec.store.r.pipeline(transaction=False)
    for n, person in enumerate(who):
        ps = rec.people
        topics = rng.choice(QUERIES, size=rng.integers(1, 4), replace=False)
        pipe.hset(ps.key(person, "topics"), mapping={normalise_topic(str(t)): str(t) for t in topics})
        liked = rng.integers(0, 7)
        saved = rng.integers(0, 2)
        disliked = rng.integers(0, 3)
        picks = rng.choice(len(older), size=liked + saved + disliked, replace=False)
        feedback = {}
        for j, idx in enumerate(picks):
            state = {"rating": None, "saved": False, "channel": None,
                     "ts": now - float(rng.uniform(0, 200)) * 86400}
            if j < liked:
                state["rating"] = "like"
            elif j < liked + saved:
                state["saved"] = True
            else:
                state["rating"] = "dislike"
            feedback[older[idx]] = json.dumps(state)
        if feedback:
            pipe.hset(ps.key(person, "feedback"), mapping=feedback)
        shown = rng.choice(candidates, size=20, replace=False)
        pipe.zadd(ps.key(person, "shown"), {str(pid): now for pid in shown})
        if n % 500 == 499:
            pipe.execute()
    pipe.execute()
    return who


def cleanup(rec) -> None:
    from .common import delete_prefix

    delete_prefix(rec.store.r, f"{rec.store.prefix}{{{WORKSPACE}")


def _signals_for_floor(rec, people: list[str], candidates: list[str]):
    """Every person's signal vectors (rows), owners, whether each is positive, and the
    excluded (person, candidate) pairs: read outside the timing."""
    fanout = Fanout(rec, rec.index.rows_for(candidates), k=5)
    table, _, _, gone = fanout.signal_table([(p, False) for p in people])
    owner = np.repeat(np.arange(table.people), np.diff(table.starts))
    return table.vectors, owner, table.kinds != KIND_CODES["dislike"], gone


def run(rec, people_n: int, quick: bool, what: str) -> tuple[list[Row], dict[str, Any]]:
    k = 5
    candidates = list(rec.index.ids[-2000:])
    log(f"fan-out: writing {people_n:,} people ({what})")
    people = populate(rec, people_n, candidates)
    try:
        return _measure(rec, people, candidates, k, quick, what)
    finally:
        cleanup(rec)


def _measure(rec, people, candidates, k, quick, what):
    vectors, owner, positive, (gone_person, gone_column) = _signals_for_floor(rec, people, candidates)
    cand_rows = rec.index.rows_for(candidates)
    cmat = np.ascontiguousarray(rec.index.matrix[cand_rows], dtype=np.float32)
    bg = rec.corpus_background()
    background = np.ascontiguousarray(bg.vectors[::bg.soft_step])
    # The floor's data laid out for its speed, outside the timing: people grouped by their
    # number of signals (a person's best signal is then a reshape and a max), in blocks.
    counts = np.bincount(owner, minlength=len(people))
    order = np.argsort(counts, kind="stable")
    starts = np.r_[0, np.cumsum(counts)]
    excluded = np.split(gone_column, np.searchsorted(gone_person, np.arange(1, len(people))))
    plan = []
    block = 512
    for b0 in range(0, len(order), block):
        members = order[b0:b0 + block]
        members = members[counts[members] > 0]
        rows = np.concatenate([np.arange(starts[p], starts[p + 1]) for p in members])
        groups, at = [], 0
        for c in np.unique(counts[members]):
            g = int((counts[members] == c).sum())
            groups.append((at, g, int(c)))
            at += g * int(c)
        excl = [excluded[p] for p in members]
        plan.append((np.ascontiguousarray(vectors[rows]), groups, excl,
                     np.ascontiguousarray(vectors[rows][positive[rows]])))

    def floor(with_background: bool = False) -> None:
        """Bare: signals x candidates, best signal per person, skip excluded, top-k."""
        for block_vectors, groups, excl, pos_vectors in plan:
            scores = block_vectors @ cmat.T
            if with_background:
                _ = pos_vectors @ background.T
            best = np.concatenate([scores[at:at + g * c].reshape(g, c, -1).max(axis=1)
                                   for at, g, c in groups])
            for j, rows in enumerate(excl):
                best[j, rows] = -np.inf
            np.argpartition(-best, k - 1, axis=1)[:, :k]

    def real() -> dict:
        return rec.picks_for_many(people, k=k, candidates=candidates)

    floor()
    reps = 1 if quick else 3
    log(f"fan-out: {len(people):,} people x {len(candidates):,} candidates, {reps} run(s) each")
    floors, floors_bg, reals = [], [], []
    result = None
    for i in range(reps):
        steps = [("f", floor), ("b", lambda: floor(True)), ("r", real)]
        if i % 2:
            steps.reverse()
        for name, fn in steps:
            seconds, value = timed(fn)
            {"f": floors, "b": floors_bg, "r": reals}[name].append(seconds)
            if name == "r":
                result = value
    real_s, floor_s, floor_bg_s = (float(np.median(x)) for x in (reals, floors, floors_bg))
    # the one-at-a-time path on a sample, and whether it picks the same papers
    sample = people[:: max(1, len(people) // (10 if quick else 100))]
    started = time.perf_counter()
    same = 0
    for person in sample:
        one = rec.recommend(person, k=k, candidates=candidates)
        same += [r.paper.id for r in one] == [r.paper.id for r in result[person]]
    loop_s = (time.perf_counter() - started) / len(sample) * len(people)
    signals = len(vectors)
    rows = [
        Row(f"fan-out {len(people):,} people x {len(candidates):,}", real_s, "s", floor_s,
            "signals x candidates GEMM + top-k", p95=max(reals),
            note=f"{what}; {signals:,} signals ({signals / len(people):.1f}/person); picks_for_many"),
        Row("fan-out, floor incl. background", real_s, "s", floor_bg_s,
            f"same + interests x {len(background)} background"),
        Row("fan-out one person at a time (before)", loop_s, "s", floor_s,
            "signals x candidates GEMM + top-k",
            note=f"recommend() x {len(sample)} scaled to {len(people):,}; "
                 f"same picks for {same}/{len(sample)}"),
    ]
    return rows, {"fanout_people": len(people), "fanout_candidates": len(candidates),
                  "fanout_signals": signals, "fanout_s": round(real_s, 3),
                  "fanout_floor_s": round(floor_s, 3), "fanout_ratio": round(real_s / floor_s, 3),
                  "fanout_floor_with_background_s": round(floor_bg_s, 3),
                  "fanout_ratio_with_background": round(real_s / floor_bg_s, 3),
                  "fanout_one_at_a_time_s": round(loop_s, 1),
                  "fanout_same_picks": f"{same}/{len(sample)}", "fanout_runs_s": [round(x, 3) for x in reals]}
