"""When a daily post is due: wall-clock times in IANA time zones, days of the week, catch-up.

Pure functions of a schedule and an instant, so that tests run weeks of days in milliseconds.
A post's day is its *local* date in the schedule's time zone; the ledger keys posts by it.

Daylight-saving time: a time that does not exist on a spring-forward day (02:30 in
America/Los_Angeles on 2026-03-08) is read with the offset from before the change, so it falls
an hour later on the clock (03:30); a time that happens twice on a fall-back day (01:30 on
2026-11-01) means its first occurrence. Either way there is exactly one due instant per day.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_FULL = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))
LOOK_BACK_DAYS = 8   # how far back the latest due occurrence is looked for (a week and a day)


def zone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError with a line meant for a person when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name[:60]}' is not an IANA time zone "
                         "(e.g. Europe/Berlin, America/New_York).") from None


def parse_days(text: str) -> frozenset[int]:
    """`mon-fri`, `mon,wed,fri`, `sat-sun`, `daily`/`every day`, `weekdays` → weekday numbers
    (Monday 0). Ranges may wrap (`fri-mon`)."""
    text = (text or "").strip().lower()
    if text in ("daily", "every day", "everyday", "all", "mon-sun"):
        return EVERY_DAY
    if text in ("weekdays", "workdays"):
        return WEEKDAYS
    if text == "weekends":
        return frozenset({5, 6})
    days: set[int] = set()
    for part in filter(None, re.split(r"[\s,]+", text)):
        first, _, last = part.partition("-")
        try:
            start = DAY_NAMES.index(first[:3])
            end = DAY_NAMES.index(last[:3]) if last else start
        except ValueError:
            raise ValueError(f"'{part[:20]}' is not a day or a range of days "
                             "(write e.g. mon-fri, mon,wed,fri or daily).") from None
        n = start
        while True:
            days.add(n)
            if n == end:
                break
            n = (n + 1) % 7
    if not days:
        raise ValueError("No days given (write e.g. mon-fri, mon,wed,fri or daily).")
    return frozenset(days)


def parse_weekday(text: str, example: str = "channel weekly mon 09:00 Europe/Berlin") -> int:
    """One day of the week, `mon` … `sun` or its full name in any case (Monday 0), for a
    weekly post; ValueError with a line meant for a person (and `example`) otherwise."""
    word = (text or "").strip().lower()
    for n, (short, full) in enumerate(zip(DAY_NAMES, DAY_FULL)):
        if word in (short, full.lower()):
            return n
    shown = re.sub(r"[^\w-]", "", word)[:20]   # echoed in chat: no mention, no markup
    raise ValueError(f"'{shown}' is not a day of the week: write mon … sun (or monday …), "
                     f"e.g. `{example}`.")


def format_days(days: Iterable[int]) -> str:
    """The inverse of `parse_days`, as short as it gets: `mon-fri`, `daily`, `mon,wed,fri`."""
    days = sorted(set(days))
    if len(days) == 7:
        return "daily"
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(DAY_NAMES[r[0]] if len(r) == 1 else
                    f"{DAY_NAMES[r[0]]},{DAY_NAMES[r[1]]}" if len(r) == 2 else
                    f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs)


def due_at(day: dt.date, at: dt.time, tz: str) -> dt.datetime:
    """The UTC instant of wall-clock `at` on local `day` in `tz` (see the module's DST note)."""
    local = dt.datetime.combine(day, at, tzinfo=zone(tz))   # fold=0: before-change offset
    return local.astimezone(dt.timezone.utc)


def latest_due(at: dt.time, tz: str, days: Iterable[int], now: dt.datetime,
               since: dt.datetime | None = None) -> tuple[dt.date, dt.datetime] | None:
    """(local day, due instant) of the most recent occurrence at or before `now`, on one of
    `days`, not before `since` (when the schedule was set); None if there is none."""
    days = frozenset(days)
    today = now.astimezone(zone(tz)).date()
    for back in range(LOOK_BACK_DAYS):
        day = today - dt.timedelta(days=back)
        if day.weekday() not in days:
            continue
        due = due_at(day, at, tz)
        if due > now:
            continue
        if since is not None and due < since:
            return None
        return day, due
    return None


def next_due(at: dt.time, tz: str, days: Iterable[int], now: dt.datetime) -> dt.datetime | None:
    """The first occurrence after `now` (for telling people when the next post comes)."""
    days = frozenset(days)
    today = now.astimezone(zone(tz)).date()
    for ahead in range(LOOK_BACK_DAYS):
        day = today + dt.timedelta(days=ahead)
        if day.weekday() in days and (due := due_at(day, at, tz)) > now:
            return due
    return None
