"""Putting follows and filters into picks: the one place both ranking paths (one at a time,
and the daily fan-out) apply a person's or channel's `Preferences`.

Filters narrow the candidates before anything is ranked. A followed author's paper among what
is left (and not yet shown or reacted to) takes a seat ahead of the ranked picks, whatever its
rank, newest first. Picks asked for at any time (`recommend`, no candidates given) consider a
followed author's papers of the last FOLLOW_DAYS; a daily post, the papers new since the last.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from .paper import Result
from .people import PeopleStore
from .preferences import Preferences
from .signals import follow_reason

FOLLOW_DAYS = 7


def seen(people: PeopleStore, who: str, is_channel: bool) -> set[str]:
    """What picks never repeat: the papers shown to `who`, and those reacted to (by them, or
    for a channel by its members)."""
    if is_channel:
        return people.shown(who) | {pid for _, pid, _ in people.member_feedback(who)}
    return people.shown(who) | set(people.feedback(who))


def followed(rec, prefs: Preferences, rows: np.ndarray, is_channel: bool, k: int,
             recent_only: bool) -> list[Result]:
    """The papers among index `rows` (already filtered, unseen) by an author `prefs` follows,
    newest first, at most k, each marked "by X, whom you follow"."""
    if not prefs.follows or len(rows) == 0:
        return []
    if recent_only:
        since = dt.date.today() - dt.timedelta(days=FOLLOW_DAYS)
        rows = rows[rec.index.mask(since=since)[rows]]
    ids = [rec.index.ids[r] for r in rows]
    found = []
    for paper in rec.store.get_papers(ids):
        name = paper and prefs.followed_author(paper)
        if name:
            found.append(Result(paper, 0.0, follow_reason(is_channel, name)))
    found.sort(key=lambda r: r.paper.published or dt.date.min, reverse=True)
    return found[:k]


def with_follows(follows: list[Result], picks: list[Result], k: int) -> list[Result]:
    """The followed papers first (with their ranked score when they were picked too), then the
    ranked picks, k in all."""
    score = {r.paper.id: r.score for r in picks}
    first = [Result(r.paper, score.get(r.paper.id, r.score), r.why) for r in follows]
    taken = {r.paper.id for r in first}
    return (first + [r for r in picks if r.paper.id not in taken])[:k]


def with_follows_all(rec, prefs: dict[tuple[str, bool], Preferences],
                     hidden: dict[str, np.ndarray], rows: np.ndarray,
                     picks: dict[str, list[Result]], k: int, recent_only: bool) -> dict[str, list[Result]]:
    """The fan-out's picks (`picks`, over candidate `rows`) with each target's followed
    authors' papers put first, among the candidates its filters keep and it has not seen."""
    for (who, is_channel), p in prefs.items():
        if p.follows:
            keep = np.ones(len(rows), dtype=bool)
            keep[hidden.get(who, [])] = False
            gone = seen(rec.people, who, is_channel)
            keep &= np.fromiter((rec.index.ids[r] not in gone for r in rows), dtype=bool, count=len(rows))
            picks[who] = with_follows(followed(rec, p, rows[keep], is_channel, k, recent_only),
                                      picks[who], k)
    return picks


def hidden_columns(rec, prefs: Preferences, rows: np.ndarray) -> np.ndarray:
    """The positions among `rows` that `prefs`' filters take out (the fan-out's columns)."""
    if not prefs.filters:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(~prefs.kept(rec.index, rec.lexical, rows))
