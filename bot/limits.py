"""Per-person rate limits on the expensive commands (search, similar, digest).

A fixed window in Redis, shared by every replica: `<prefix>ratelimit:<person>:<window>` counts
a person's expensive commands in the current window and expires with it. One person flooding
the bot gets a friendly "slow down" (cheap: one INCR) while everyone else is answered as usual.

`PAPERBOT_RATE_LIMIT`: `20/60` (20 per 60 seconds, the default), `20` (per minute), or `0`
(no limit).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

import redis

EXPENSIVE = frozenset({"search", "similar", "digest", "import"})
DEFAULT = "20/60"


@dataclasses.dataclass(frozen=True)
class RateLimit:
    limit: int = 20          # commands per window; 0: no limit
    window: float = 60.0     # seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RateLimit:
        raw = (env.get("PAPERBOT_RATE_LIMIT") or DEFAULT).strip()
        count, _, seconds = raw.partition("/")
        try:
            limit, window = int(count), float(seconds or 60)
        except ValueError:
            raise ValueError(f"PAPERBOT_RATE_LIMIT must look like 20/60 (commands/seconds), "
                             f"not {raw[:40]!r}") from None
        if limit < 0 or window <= 0:
            raise ValueError(f"PAPERBOT_RATE_LIMIT must look like 20/60, not {raw[:40]!r}")
        return cls(limit, window)


class RateLimiter:
    def __init__(self, r: redis.Redis, prefix: str, limit: RateLimit | None = None,
                 clock: Callable[[], float] = time.time):
        self.r, self.prefix, self.clock = r, prefix, clock
        self.limit = limit or RateLimit()

    def check(self, person: str) -> float:
        """Count one expensive command of `person`; 0 if allowed, else seconds until allowed."""
        if self.limit.limit <= 0:
            return 0.0
        now = self.clock()
        window = int(now // self.limit.window)
        key = f"{self.prefix}ratelimit:{person}:{window}"
        pipe = self.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, int(self.limit.window) + 1, nx=True)
        count = pipe.execute()[0]
        if count <= self.limit.limit:
            return 0.0
        return max(1.0, (window + 1) * self.limit.window - now)

    def forget(self, person: str) -> None:
        """Drop the person's counters (forget-me leaves no key naming them)."""
        keys = list(self.r.scan_iter(match=f"{self.prefix}ratelimit:{person}:*", count=1000))
        if keys:
            self.r.delete(*keys)

    def slow_down(self, wait: float) -> str:
        return (f"Slow down a little: at most {self.limit.limit} searches, `similar` and `digest` "
                f"commands per {self.limit.window:g} seconds. Try again in {wait:.0f} s.")
