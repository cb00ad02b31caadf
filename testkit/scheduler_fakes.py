"""Test doubles for the scheduler: a simulated clock, and a fake platform with posters.

`FakePlatform` is what a chat platform remembers: every message it accepted, with the post and
item it belongs to (as Slack's message metadata or a Discord nonce would say). Several
`FakePoster`s (one per simulated replica) talk to one platform. A poster can be slow, refuse
sends, time out after the platform accepted the message, or "die" (hang forever once the
platform accepted a message, as a process SIGKILLed mid-request leaves it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from bot.scheduler.delivery import Delivery, Item, LookupUnavailable, NotDelivered, Sent

UTC = dt.timezone.utc


class SimClock:
    """A clock the test moves: `clock()` reads it."""

    def __init__(self, start: dt.datetime):
        self.at = start

    def __call__(self) -> dt.datetime:
        return self.at

    def set(self, when: dt.datetime) -> None:
        self.at = when


@dataclasses.dataclass
class Message:
    target: str
    post_id: str
    item: str
    header: str | None
    text: str
    at: dt.datetime | None     # the scheduler's clock when it was posted
    id: str = ""


class FakePlatform:
    def __init__(self, clock=None):
        self.messages: list[Message] = []
        self.clock = clock

    def accept(self, delivery: Delivery, item: Item) -> Message:
        message = Message(delivery.target, delivery.post_id, item.id, item.header,
                          item.text or (item.result.paper.title if item.result else ""),
                          self.clock() if self.clock else None, id=f"m{len(self.messages) + 1}")
        self.messages.append(message)
        return message

    def of(self, target: str) -> list[Message]:
        return [m for m in self.messages if m.target == target]

    def posts(self, target: str) -> dict[str, list[str]]:
        """post id → items, in the order they were posted."""
        out: dict[str, list[str]] = {}
        for m in self.of(target):
            out.setdefault(m.post_id, []).append(m.item)
        return out


class FakePoster:
    def __init__(self, platform: FakePlatform, name: str = "slack", delay: float = 0.0):
        self.platform = platform
        self.name = name
        self.delay = delay
        self.sends = 0
        self.lookups = 0
        self.refuse: list[NotDelivered] = []     # raised by the next sends, in order
        self.doubt_after_accept = 0              # next N sends: accepted, then a timeout
        self.die_after: int | None = None        # the Nth send is accepted, then never returns
        self.lookup_unavailable = False

    def handles(self, target: str) -> bool:
        return target.startswith(self.name + ":")

    async def send(self, delivery: Delivery, item: Item) -> Sent:
        self.sends += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse:
            raise self.refuse.pop(0)
        message = self.platform.accept(delivery, item)
        if self.die_after is not None and self.sends >= self.die_after:
            await asyncio.Event().wait()        # the process is gone; nothing comes back
        if self.doubt_after_accept:
            self.doubt_after_accept -= 1
            raise TimeoutError("the answer never came")
        return Sent(message.id, delivery.target)

    async def find_sent(self, delivery: Delivery, item: Item) -> Sent | None:
        self.lookups += 1
        if self.lookup_unavailable:
            raise LookupUnavailable("no history scope")
        for m in self.platform.messages:
            if m.post_id == delivery.post_id and m.item == item.id:
                return Sent(m.id, delivery.target)
        return None


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def fast_settings(**overrides: Any):
    from bot.scheduler import SchedulerSettings

    base = dict(tick=0.05, channel_interval=0.0, post_rate=1000.0, lease_seconds=5.0,
                retry_backoff=0.01, retry_later=60.0, drain_seconds=2.0)
    base.update(overrides)
    return SchedulerSettings(**base)
