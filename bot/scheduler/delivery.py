"""What the scheduler asks of a platform: post one item of a daily post, or find one it posted.

Each adapter (Slack, Discord, console) gives the scheduler a poster with this shape; the
scheduler never imports a chat library. A daily post is sent item by item (one message per
paper, so that a reaction names one paper), each item exactly once (see `ledger.py`).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from recommender import Result


@dataclasses.dataclass(frozen=True)
class Delivery:
    """Where a post goes: the target's key, the platform's id, and what names the post."""

    target: str            # scoped key of the channel or person
    kind: str              # "channel" or "dm"
    deliver_to: str        # the platform's channel id, or user id for a DM
    post_id: str           # `<target>/<local day>`: Slack metadata, Discord nonce
    started_at: float      # wall-clock time the post's picks were frozen: look-ups start there
    dm_channel: str | None = None   # a Slack DM's conversation id, once known


@dataclasses.dataclass(frozen=True)
class Item:
    """One message of a post: a paper (with the post's header on the first), or a note."""

    id: str                           # the paper id, or "note"
    result: Result | None = None
    text: str = ""                    # the note's text
    header: str | None = None


@dataclasses.dataclass(frozen=True)
class Sent:
    """A message on the platform: its id, and the key that reactions on it are recorded under."""

    message_id: str
    where: str


class NotDelivered(Exception):
    """The platform answered and did not post the message. `permanent`: it never will (no such
    channel, not a member, archived); otherwise a later retry may work (rate limit, outage)."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class LookupUnavailable(Exception):
    """The platform cannot say whether a message exists (no permission to read history)."""


class Poster(Protocol):
    def handles(self, target: str) -> bool:
        """Whether this poster can deliver to `target` (its platform, its workspace)."""

    async def send(self, delivery: Delivery, item: Item) -> Sent:
        """Post one item; NotDelivered when the platform refused it. Any other exception
        (a timeout, a dropped connection) leaves it in doubt: it may or may not be posted."""

    async def find_sent(self, delivery: Delivery, item: Item) -> Sent | None:
        """The message of this item of this post if the platform has it; None if it has not;
        LookupUnavailable if the platform can't tell."""
