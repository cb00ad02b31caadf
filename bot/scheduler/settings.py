"""The scheduler's settings, from the environment (every one is in `.env.example`), and its clock.

| variable                    | default | meaning                                                     |
|-----------------------------|---------|-------------------------------------------------------------|
| PAPERBOT_SCHEDULER_TICK     | 30s     | how often due posts are looked for                          |
| PAPERBOT_CATCHUP_HOURS      | 6       | a post missed while every replica was down is still made this long after its time |
| PAPERBOT_EMPTY_DAY          | skip    | a day without new papers: `skip`, or `note` (a one-line message) |
| PAPERBOT_POST_LEASE_SECONDS | 120     | a replica's hold on a post it is sending; a dead replica's post is taken over after it |
| PAPERBOT_CHANNEL_INTERVAL   | 1.1s    | at least this long between two messages in one channel (Slack: ~1/s) |
| PAPERBOT_POST_RATE          | 5       | messages per second across all channels of one replica      |
| PAPERBOT_POST_CONCURRENCY   | 4       | channels posted to at the same time by one replica          |
| PAPERBOT_REDIS_REPLICAS     | 0       | replicas the Redis has: the ledger writes that decide a post wait (WAIT) until this many have them |
| PAPERBOT_NEWS_DAYS          | 30      | a post takes papers published in the last this many days (or undated); 0: any age |
| PAPERBOT_REDIS_WAIT_MS      | 1000    | the longest such a wait lasts; then one log line and the post goes on |
| PAPERBOT_FAKE_NOW           | unset   | TESTS ONLY: the clock reads this ISO instant at PAPERBOT_FAKE_NOW_AT (unix time, default: start) and runs on from there |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping

from recommender.config import parse_duration

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def fake_clock(start: dt.datetime, at: float | None = None) -> Clock:
    """A clock that read `start` at unix time `at` (default: now) and runs at real speed.
    Processes given the same `start` and `at` share one fake timeline."""
    anchor = time.time() if at is None else at
    start = start if start.tzinfo else start.replace(tzinfo=dt.timezone.utc)
    return lambda: start + dt.timedelta(seconds=time.time() - anchor)


def clock_from_env(env: Mapping[str, str]) -> Clock:
    fake = (env.get("PAPERBOT_FAKE_NOW") or "").strip()
    if not fake:
        return system_clock
    try:
        start = dt.datetime.fromisoformat(fake.replace("Z", "+00:00"))
        at = float(env["PAPERBOT_FAKE_NOW_AT"]) if env.get("PAPERBOT_FAKE_NOW_AT") else None
    except ValueError:
        raise ValueError(f"PAPERBOT_FAKE_NOW must be an ISO instant (tests only), not {fake[:40]!r}") from None
    return fake_clock(start, at)


@dataclasses.dataclass(frozen=True)
class SchedulerSettings:
    tick: float = 30.0
    catchup: dt.timedelta = dt.timedelta(hours=6)
    empty_day: str = "skip"
    lease_seconds: float = 120.0
    channel_interval: float = 1.1
    post_rate: float = 5.0
    concurrency: int = 4
    send_attempts: int = 3          # tries of one message before the post is retried later
    retry_backoff: float = 2.0      # seconds before the 2nd try, doubling
    retry_later: float = 300.0      # after the tries ran out: the next attempt, seconds later
    drain_seconds: float = 10.0     # on stop, how long a post under way may take to finish
    redis_replicas: int = 0         # WAIT for this many replicas after a deciding ledger write
    redis_wait_ms: int = 1000       # ... for at most this long
    news_days: int = 30             # a post's papers: published in the last this many days; 0: any

    @property
    def send_timeout(self) -> float:
        """A send taking longer is abandoned (in doubt) well before the lease could expire, so
        no other replica can take over while it might still land."""
        return self.lease_seconds / 3

    @property
    def doubt_settles(self) -> float:
        """An item in doubt is looked up no sooner than this long after its send began: the
        sender's deadline (`send_timeout`), and half again for the platform to finish a request
        that reached it at the deadline and for clocks that differ between machines."""
        return self.send_timeout * 1.5

    @property
    def retry_deadline(self) -> dt.timedelta:
        """A started post is retried this long after its due time, then given up as failed."""
        return max(self.catchup, dt.timedelta(hours=1))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SchedulerSettings:
        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def number(name: str, default: float, low: float = 0) -> float:
            value = get(name)
            if value is None:
                return default
            try:
                parsed = float(value)
            except ValueError:
                raise ValueError(f"{name} must be a number, not {value[:40]!r}") from None
            if parsed < low:
                raise ValueError(f"{name} must be at least {low}, not {value}")
            return parsed

        def whole(name: str, default: int, low: int = 0) -> int:
            parsed = number(name, default, low)
            if parsed != int(parsed):
                raise ValueError(f"{name} must be a whole number, not {get(name)}")
            return int(parsed)

        empty = (get("PAPERBOT_EMPTY_DAY") or cls.empty_day).lower()
        if empty not in ("skip", "note"):
            raise ValueError(f"PAPERBOT_EMPTY_DAY must be skip or note, not {empty[:20]!r}")
        tick = get("PAPERBOT_SCHEDULER_TICK")
        interval = get("PAPERBOT_CHANNEL_INTERVAL")
        return cls(
            tick=max(0.05, parse_duration(tick, "PAPERBOT_SCHEDULER_TICK")) if tick else cls.tick,
            catchup=dt.timedelta(hours=number("PAPERBOT_CATCHUP_HOURS", 6)),
            empty_day=empty,
            lease_seconds=number("PAPERBOT_POST_LEASE_SECONDS", cls.lease_seconds, 1),
            channel_interval=(parse_duration(interval, "PAPERBOT_CHANNEL_INTERVAL") if interval
                              else cls.channel_interval),
            post_rate=number("PAPERBOT_POST_RATE", cls.post_rate, 0.01),
            concurrency=int(number("PAPERBOT_POST_CONCURRENCY", cls.concurrency, 1)),
            redis_replicas=whole("PAPERBOT_REDIS_REPLICAS", cls.redis_replicas),
            # WAIT with a timeout of 0 would block for ever: at least a millisecond
            redis_wait_ms=whole("PAPERBOT_REDIS_WAIT_MS", cls.redis_wait_ms, 1),
            news_days=whole("PAPERBOT_NEWS_DAYS", cls.news_days),
        )
