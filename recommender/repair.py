"""`paperbot repair --user WHO`: rebuild a person's feedback state, and the channels' mirrors of
it, from their event stream by replaying the one rule `people._apply` (what a lost write, a
partial restore or a hand edit broke).

Exact while the stream holds the person's whole history. Once it was trimmed (more than
`people.EVENTS_MAX` events) or is missing, a well-formed state of a paper with no event left is
kept, since nothing says otherwise; a paper whose older events were trimmed is replayed from its
oldest event kept.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import redis

from .people import (KINDS, RECORD_TRIES, PeopleStore, _apply, _glob_escape, _same_signal,
                     check_who)


@dataclasses.dataclass(frozen=True)
class Repair:
    """What `repair` changed: papers whose state came back, was corrected or went (a state no
    event supports, or unreadable), and channel mirror entries set right."""

    person: str
    events: int
    whole: bool          # the stream holds the person's whole history
    restored: int
    fixed: int
    removed: int
    mirrors: int

    @property
    def changed(self) -> bool:
        return bool(self.restored or self.fixed or self.removed or self.mirrors)

    def describe(self) -> str:
        history = f"{self.events} events" + ("" if self.whole else ", not the whole history")
        if not self.changed:
            return f"{self.person}: nothing to repair (the state agrees with {history})"
        return (f"{self.person}: rebuilt from {history}: {self.restored} restored, {self.fixed} "
                f"fixed, {self.removed} removed, {self.mirrors} channel entries set right")


@dataclasses.dataclass(frozen=True)
class _Plan:
    states: dict[str, dict[str, Any]]      # paper id -> its state as it should be
    rewrite: bool                          # the stored states are not that
    mirrors: dict[str, set[str]]           # paper id -> channels whose mirror of it is wrong
    report: Repair


def repair(people: PeopleStore, person: str) -> Repair:
    """Rebuild `person`'s state from their events, atomically (a reaction recorded meanwhile,
    changing the state or the stream, makes it read everything again); then set the channels'
    mirrors of it right."""
    key, events_key = people.key(person, "feedback"), people.key(person, "events")
    with people.r.pipeline(transaction=True) as pipe:
        for _ in range(RECORD_TRIES):
            try:
                pipe.watch(key, events_key)
                plan = _plan(people, pipe, person, key, events_key)
                if plan.rewrite:
                    pipe.multi()
                    pipe.delete(key)
                    if plan.states:
                        pipe.hset(key, mapping={pid: json.dumps(s) for pid, s in plan.states.items()})
                    pipe.execute()
                break
            except redis.WatchError:
                time.sleep(0.001)
        else:
            raise redis.WatchError(f"{person}'s feedback kept changing; not repaired")
    for paper_id, channels in plan.mirrors.items():   # (in a cluster, in the channels' slots)
        people.sync_mirrors(person, paper_id, channels)
    return plan.report


def replay(rows) -> dict[str, dict[str, Any]]:
    """The state that a stream's events (XRANGE rows) give, paper by paper."""
    states: dict[str, dict[str, Any]] = {}
    for _, fields in rows:
        event = {k.decode(): v.decode() for k, v in fields.items()}
        kind, pid = event.get("kind"), event.get("paper")
        try:
            ts = float(event.get("ts", ""))
        except ValueError:
            continue
        if kind not in KINDS or not pid:
            continue
        channel = event.get("channel") or None
        state = _apply(states.get(pid), kind, channel if _is_who(channel) else None, ts)
        if state is None:
            states.pop(pid, None)
        else:
            states[pid] = state
    return states


def _plan(people: PeopleStore, pipe, person: str, key: str, events_key: str) -> _Plan:
    stored, unreadable = {}, set()
    for pid, raw in pipe.hgetall(key).items():
        state = _parsed(raw)
        if state is None:
            unreadable.add(pid.decode())
        else:
            stored[pid.decode()] = state
    rows = pipe.xrange(events_key)
    rebuilt = replay(rows)
    whole = bool(rows) and int(pipe.xinfo_stream(events_key)["entries-added"]) == len(rows)
    if not whole:   # no event left of these papers: their state is all there is
        seen = {fields[b"paper"].decode() for _, fields in rows if b"paper" in fields}
        rebuilt.update({pid: s for pid, s in stored.items() if pid not in seen})
    for pid, state in rebuilt.items():   # the same signal at (as good as) the same time: keep
        old = stored.get(pid)
        if old is not None and _same_signal(old, state) and abs(old["ts"] - state["ts"]) < 1:
            rebuilt[pid] = old
    # the channels' records of this person's feedback, as they are and as they should be
    channels = {s["channel"] for s in (*stored.values(), *rebuilt.values()) if s.get("channel")}
    channels |= {fields[b"channel"].decode() for _, fields in rows if fields.get(b"channel")}
    mirror_now = {}
    for channel in sorted(c for c in channels if _is_who(c)):
        for field, value in people.r.hscan_iter(people.key(channel, "member_feedback"),
                                                match=_glob_escape(f"{person} ") + "*", count=1000):
            mirror_now[(channel, field.decode())] = value.decode()
    mirror = {(s["channel"], f"{person} {pid}"): json.dumps(s)
              for pid, s in rebuilt.items() if s.get("channel")}
    gone = [where for where in mirror_now if where not in mirror]
    to_set = {where: value for where, value in mirror.items() if mirror_now.get(where) != value}
    report = Repair(person, len(rows), whole,
                    restored=sum(pid not in stored and pid not in unreadable for pid in rebuilt),
                    fixed=sum(pid in rebuilt for pid in unreadable)
                    + sum(pid in rebuilt and rebuilt[pid] is not stored[pid] for pid in stored),
                    removed=sum(pid not in rebuilt for pid in (*stored, *unreadable)),
                    mirrors=len(gone) + len(to_set))
    mirrors: dict[str, set[str]] = {}
    for channel, field in (*gone, *to_set):
        mirrors.setdefault(field.split(" ", 1)[1], set()).add(channel)
    return _Plan(rebuilt, bool(report.restored or report.fixed or report.removed), mirrors, report)


def _parsed(raw: bytes) -> dict[str, Any] | None:
    """A stored feedback state, or None when it is not one `_apply` could have written."""
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(state, dict):
        return None
    ok = (state.get("rating") in ("like", "dislike", None) and isinstance(state.get("saved"), bool)
          and isinstance(state.get("ts"), (int, float)) and not isinstance(state.get("ts"), bool)
          and (state.get("channel") is None or _is_who(state["channel"]))
          and (state["rating"] is not None or state["saved"]))
    return state if ok else None


def _is_who(text: Any) -> bool:
    try:
        check_who(text)
    except ValueError:
        return False
    return True
