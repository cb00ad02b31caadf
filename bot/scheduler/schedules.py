"""Who gets a daily (or weekly) post, when, and where it is delivered: schedules in Redis.

A target is a channel (`slack:T1:C2`, `discord:<guild>:<channel>`, `console:local:terminal`)
or a person who opted in to a DM digest (`slack:T1:U2`, `console:local:you`). The platform's
own id to deliver to is the last part of the key (the channel id, or the user id for a DM).

Keys (P = the prefix; `{target}` is a Redis Cluster hash tag, as in `recommender.people`):

| key                          | type | holds                                                          | written by |
|------------------------------|------|----------------------------------------------------------------|------------|
| P {target}:schedule          | hash | kind (channel/dm), time HH:MM, tz, k, days (mon-fri), cadence (daily, or weekly: then weekday mon…sun and weekly_k say the day and the papers; days and k are kept for a switch back), enabled 0/1, empty (skip/note, or unset: the setting), since (ISO instant the schedule was set: earlier occurrences never fire), after_seq (ingest sequence of the newest paper already considered for a post), dm_channel (Slack DM conversation id, once known), updated | `channel time`/`channel off`/`dm`, `paperbot schedule`, the scheduler (after_seq, dm_channel) |
| P schedules                  | set  | every target with an enabled schedule                          | same       |
| P {target}:post:<YYYY-MM-DD> | hash | the ledger entry of that local day: see `ledger.py`            | scheduler  |
| P {target}:post:<day>:lease  | string | the token of the replica posting it now (expires)            | scheduler  |
| P ingest:last, ingest:lock, ingest:marks | | see `bot/ingest_loop.py`                             | ingest loop |

A weekly schedule is one post a week, on its weekday, of the best `weekly_k` (10 by default)
papers ingested since its last post: the week's. It shares the ledger with the daily posts
(one entry per target and local day), so exactly-once holds for it unchanged.

`forget-me` deletes a person's `P {person}:*` keys, schedule and ledger included, and their
registry entry (`ScheduleStore.forget`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import redis

from recommender.people import check_who

from .due import DAY_FULL, DAY_NAMES, WEEKDAYS, format_days, parse_days, parse_weekday, zone

DEFAULT_K = 5
WEEKLY_K = 10         # a week's best: more than a day's
MAX_K = 10            # a daily post is a short list; one message per paper
EMPTY_DAY_MODES = ("skip", "note")
KINDS = ("channel", "dm")
CADENCES = ("daily", "weekly")


@dataclasses.dataclass(frozen=True)
class Schedule:
    target: str
    kind: str                       # "channel" or "dm"
    time: dt.time
    tz: str
    k: int = DEFAULT_K
    days: frozenset[int] = WEEKDAYS
    enabled: bool = True
    empty: str | None = None        # skip / note; None: the deployment's setting
    since: dt.datetime | None = None
    after_seq: float = 0.0
    dm_channel: str | None = None
    cadence: str = "daily"          # weekly: `days` is the one weekday, `k` the weekly k
    weekday: int | None = None      # the weekly day (kept after a switch back to daily)

    @property
    def platform(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def workspace(self) -> str:
        return self.target.split(":", 2)[1]

    @property
    def deliver_to(self) -> str:
        """The platform's id: the channel, or the user for a DM."""
        return self.target.split(":", 2)[2]

    def describe(self) -> str:
        """`09:00 Europe/Berlin, mon-fri, 5 papers`; `weekly on Monday 09:00 UTC, 10 papers`."""
        if self.cadence == "weekly":
            return f"weekly on {DAY_FULL[self.weekday]} {self.time:%H:%M} {self.tz}, {self.k} papers"
        return f"{self.time:%H:%M} {self.tz}, {format_days(self.days)}, {self.k} papers"

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind, "cadence": self.cadence,
                "weekday": DAY_NAMES[self.weekday] if self.cadence == "weekly" else None,
                "time": f"{self.time:%H:%M}", "tz": self.tz, "k": self.k,
                "days": format_days(self.days),
                "enabled": self.enabled, "empty": self.empty,
                "since": self.since.isoformat() if self.since else None,
                "after_seq": self.after_seq}


def _from_hash(target: str, raw: dict[bytes, bytes]) -> Schedule | None:
    data = {k.decode(): v.decode() for k, v in raw.items()}
    if "time" not in data or "tz" not in data:
        return None
    hours, minutes = data["time"].split(":")
    weekday = parse_weekday(data["weekday"]) if data.get("weekday") else None
    weekly = data.get("cadence") == "weekly" and weekday is not None
    return Schedule(
        target=target, kind=data.get("kind", "channel"), time=dt.time(int(hours), int(minutes)),
        tz=data["tz"], k=int(data.get("weekly_k", WEEKLY_K) if weekly else data.get("k", DEFAULT_K)),
        days=frozenset({weekday}) if weekly else parse_days(data.get("days", "mon-fri")),
        cadence="weekly" if weekly else "daily", weekday=weekday,
        enabled=data.get("enabled", "1") == "1",
        empty=data.get("empty") or None,
        since=dt.datetime.fromisoformat(data["since"]) if data.get("since") else None,
        after_seq=float(data.get("after_seq", 0) or 0), dm_channel=data.get("dm_channel") or None)


class ScheduleStore:
    def __init__(self, client: redis.Redis, prefix: str = "paperbot:"):
        self.r = client
        self.prefix = prefix

    def key(self, target: str, what: str = "schedule") -> str:
        return f"{self.prefix}{{{check_who(target)}}}:{what}"

    # _REGISTRY: the registry and a schedule sit in different Redis Cluster slots, so no
    # transaction holds both. The registry may name more than is on, never less: `set` adds
    # the target before and after it enables the schedule, `disable` removes it before it
    # disables it, so whichever of two at once writes the schedule last, an enabled schedule
    # is in the registry. `all` skips entries whose schedule is off or gone (a crash, or such
    # a race, leaves one) without removing them, which could race with a `set`.
    @property
    def registry(self) -> str:
        return f"{self.prefix}schedules"

    # -- reading --------------------------------------------------------------------------
    def get(self, target: str) -> Schedule | None:
        return _from_hash(target, self.r.hgetall(self.key(target)))

    def targets(self) -> list[str]:
        return sorted(m.decode() for m in self.r.smembers(self.registry))

    def all(self) -> list[Schedule]:
        """Every enabled schedule (see `_REGISTRY`)."""
        targets = self.targets()
        pipe = self.r.pipeline(transaction=False)
        for target in targets:
            pipe.hgetall(self.key(target))
        schedules = (_from_hash(target, raw) for target, raw in zip(targets, pipe.execute()))
        return [s for s in schedules if s is not None and s.enabled]

    # -- writing --------------------------------------------------------------------------
    def set(self, target: str, kind: str, *, now: dt.datetime, time: dt.time | None = None,
            tz: str | None = None, k: int | None = None, days: str | frozenset[int] | None = None,
            empty: str | None = None, after_seq: float | None = None,
            cadence: str | None = None, weekday: str | int | None = None) -> Schedule:
        """Create or update (and enable) a schedule; what is not given is kept (or defaulted).

        `since` becomes `now`: a time set after today's has passed starts tomorrow.
        `after_seq` is where a new schedule's first post starts looking for papers (also
        taken when the cadence changes: see `weekly.first_post_seq`). A `weekday` makes it
        weekly, `days` daily, `cadence` says so outright; else it stays what it was. `k`
        is the k of the cadence it ends up with.
        """
        if kind not in KINDS:
            raise ValueError(f"a schedule is for a channel or a dm, not {kind!r}")
        old = self.get(target)
        cadence = cadence_for(old, cadence, weekday, days)
        if isinstance(weekday, str):
            weekday = parse_weekday(weekday, "mon")
        if cadence == "weekly" and days is not None:
            raise ValueError("A weekly post comes on one day: give that day (e.g. mon), not days.")
        if cadence == "weekly" and weekday is None and (old is None or old.weekday is None):
            raise ValueError("A weekly post needs a day of the week, e.g. mon.")
        if time is None and old is None:
            raise ValueError("A new schedule needs a time, e.g. 09:00.")
        if tz is not None:
            zone(tz)
        if k is not None and not 1 <= int(k) <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}.")
        if isinstance(days, str):
            days = parse_days(days)
        if empty is not None and empty not in EMPTY_DAY_MODES:
            raise ValueError(f"empty must be one of {', '.join(EMPTY_DAY_MODES)}.")
        fields: dict[str, Any] = {"kind": kind, "enabled": 1, "since": now.isoformat(),
                                  "updated": now.isoformat(), "cadence": cadence}
        if time is not None:
            fields["time"] = f"{time:%H:%M}"
        if tz is not None or old is None:
            fields["tz"] = tz or "UTC"
        weekly = cadence == "weekly"
        if (k is not None and not weekly) or old is None:
            fields["k"] = int(k if k is not None and not weekly else DEFAULT_K)
        if k is not None and weekly:
            fields["weekly_k"] = int(k)
        if days is not None or old is None:
            fields["days"] = format_days(days or WEEKDAYS)
        if weekday is not None:
            fields["weekday"] = DAY_NAMES[weekday]
        if empty is not None:
            fields["empty"] = empty
        if old is not None and old.enabled and old.cadence != cadence and after_seq is not None:
            fields["after_seq"] = after_seq   # a new cadence: its first post takes its own span
        elif old is None or not old.enabled:   # (re)started: the first post takes the last day's papers
            fields["after_seq"] = max(old.after_seq if old else 0.0, after_seq or 0.0)
        self.r.sadd(self.registry, target)   # before and after: see `_REGISTRY`
        self.r.hset(self.key(target), mapping=fields)
        self.r.sadd(self.registry, target)
        return self.get(target)

    def disable(self, target: str, now: dt.datetime) -> bool:
        """Turn a schedule off (its settings are kept for a later `time`); False if it was not on."""
        old = self.get(target)
        self.r.srem(self.registry, target)   # first: see `_REGISTRY`
        if old is not None:
            self.r.hset(self.key(target), mapping={"enabled": 0, "updated": now.isoformat()})
        return bool(old and old.enabled)

    def forget(self, target: str) -> None:
        """Drop the target from the registry (`forget-me`; its own keys go with the person's)."""
        self.r.srem(self.registry, check_who(target))

    def advance(self, target: str, after_seq: float) -> None:
        """The papers up to `after_seq` were considered for a post: the next one starts after."""
        key = self.key(target)
        self.r.eval(_RAISE_TO, 1, key, "after_seq", after_seq)

    def remember_dm_channel(self, target: str, channel_id: str) -> None:
        if self.r.exists(self.key(target)):
            self.r.hset(self.key(target), "dm_channel", channel_id)


def cadence_for(old: Schedule | None, cadence: str | None, weekday: str | int | None,
                days: str | frozenset[int] | None) -> str:
    """The cadence a change leaves: as said, weekly with a weekday, daily with days, else
    the old one (daily for a new schedule)."""
    cadence = cadence or ("weekly" if weekday is not None else "daily" if days is not None
                          else old.cadence if old else "daily")
    if cadence not in CADENCES:
        raise ValueError(f"a schedule is daily or weekly, not {cadence!r}")
    return cadence


# after_seq only ever grows: a replica finishing an old post late can't send the next one back
_RAISE_TO = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""
