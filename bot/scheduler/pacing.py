"""Pacing of scheduled messages: one channel at most one message per interval (Slack allows about
one a second per channel), and all channels together at most a few per second, so a morning with
many channels stays inside the platforms' rate limits instead of leaning on 429 retries."""

from __future__ import annotations

from aiolimiter import AsyncLimiter


class Pacer:
    def __init__(self, channel_interval: float, rate: float):
        self.channel_interval = channel_interval
        self._everywhere = AsyncLimiter(max(1.0, rate), max(1.0, rate) / rate) if rate > 0 else None
        self._channels: dict[str, AsyncLimiter] = {}

    async def wait(self, channel: str) -> None:
        """Return when one more message may go to `channel` (a platform-scoped id)."""
        if self.channel_interval > 0:
            limiter = self._channels.get(channel)
            if limiter is None:
                if len(self._channels) > 10_000:   # channels long done posting
                    self._channels.clear()
                limiter = self._channels[channel] = AsyncLimiter(1, self.channel_interval)
            await limiter.acquire()
        if self._everywhere is not None:
            await self._everywhere.acquire()
