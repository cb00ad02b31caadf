"""Weekly digests: where a schedule's first post starts, and how a weekly post speaks.

A weekly schedule is a schedule (`schedules.py`) with one weekday and a larger k; the scheduler
posts it like a daily one, from the papers ingested since its last post. Its first post must
cover the week before it, not the day before it was set up: `first_post_seq` starts it there.
"""

from __future__ import annotations

import datetime as dt
import time

import redis

from .. import ingest_loop
from .due import next_due, parse_weekday
from .schedules import Schedule, cadence_for

DAY = 86400.0
WEEK = 7 * DAY


def first_post_seq(client: redis.Redis, prefix: str, now: dt.datetime, old: Schedule | None = None,
                   *, cadence: str | None = None, weekday: str | int | None = None,
                   days: str | None = None, at: dt.time | None = None,
                   tz: str | None = None) -> float:
    """The ingest sequence a new (or newly daily / weekly) schedule's first post starts after:
    a daily one takes the last day's papers; a weekly one the 7 days before its first post
    (set on Thursday for Monday: from last Monday). `now` is the schedule's clock; the
    ingest marks are wall-clock, so only the distance to the first post is taken from it."""
    try:
        weekly = cadence_for(old, cadence, weekday, days) == "weekly"
        day = parse_weekday(weekday) if isinstance(weekday, str) else weekday
    except ValueError:
        return 0.0   # `ScheduleStore.set` refuses the change with its own words
    back = DAY
    if weekly:
        day = day if day is not None else old.weekday if old else None
        at = at or (old.time if old else None)
        first = next_due(at, tz or (old.tz if old else "UTC"), {day}, now) if (
            day is not None and at is not None) else None
        back = WEEK - max(0.0, (first - now).total_seconds()) if first else WEEK
    return ingest_loop.seq_reached_by(client, prefix, time.time() - back)


def header(whose: str, day: dt.date, count: int) -> str:
    papers = "paper" if count == 1 else "papers"
    return f"📰 This week's picks for {whose}, week to {day:%a} {day.day} {day:%b}: {count} {papers}"


def in_week_words(schedule: Schedule, note: str) -> str:
    """A daily post's one-line note (`scheduler.note_for`) as a weekly post says it."""
    if schedule.cadence != "weekly":
        return note
    note = note.replace(" (arXiv announces none on weekends and holidays)", "")
    return note.replace("No new papers today", "No new papers this week").replace(
        "No picks today", "No picks this week")
