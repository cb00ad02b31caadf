"""The scheduler's poster for Discord: daily picks into server channels and DMs, one embed with
👍 / 👎 / 🔖 buttons per paper, as search results look.

Every message is sent with a nonce derived from (post, item) and `enforce_nonce` (discord.py
sets it with any nonce): Discord answers a repeated send within a few minutes with the message
it already created instead of a second one. Past that window, a replica taking over a post
whose sender died mid-send looks for the message in the channel's recent history (the bot's
own messages since the post began: the paper's button ids, or the note's text).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

import discord

from ..scheduler.delivery import Delivery, Item, LookupUnavailable, NotDelivered, Sent
from .render import FEEDBACK_ID, feedback_view, paper_embed, safe_text

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
HISTORY_LIMIT = 200
LOOKUP_MARGIN = 120.0


def nonce_for(post_id: str, item_id: str) -> str:
    """At most 25 characters, as Discord requires; the same for every try of one item."""
    return hashlib.sha1(f"{post_id}|{item_id}".encode()).hexdigest()[:25]


class DiscordPoster:
    def __init__(self, client: discord.Client):
        self.client = client

    def handles(self, target: str) -> bool:
        platform, place, who = target.split(":", 2)
        if platform != "discord" or not who.isdigit() or not self.client.is_ready():
            return False
        return place == "dm" or (place.isdigit() and self.client.get_guild(int(place)) is not None)

    async def _messageable(self, delivery: Delivery) -> discord.abc.Messageable:
        target_id = int(delivery.deliver_to)
        if delivery.kind == "channel":
            return self.client.get_channel(target_id) or await self.client.fetch_channel(target_id)
        user = self.client.get_user(target_id) or await self.client.fetch_user(target_id)
        return user.dm_channel or await user.create_dm()

    def _where(self, delivery: Delivery) -> str:
        """Where reactions on the message are recorded (`identity.posts_key`)."""
        return delivery.target if delivery.kind == "channel" else f"discord:dm:{delivery.deliver_to}"

    async def send(self, delivery: Delivery, item: Item) -> Sent:
        options: dict[str, Any] = {"allowed_mentions": NO_PINGS,
                                   "nonce": nonce_for(delivery.post_id, item.id)}
        if item.result is not None:
            options["embed"] = paper_embed(item.result)
            view = feedback_view(item.id)
            if view is not None:
                options["view"] = view
            if item.header:
                options["content"] = safe_text(item.header)
        else:
            options["content"] = safe_text(item.text)
        try:
            channel = await self._messageable(delivery)
            message = await channel.send(**options)
        except (discord.Forbidden, discord.NotFound) as exc:
            raise NotDelivered(f"Discord: {exc.text or exc.status}", permanent=True) from None
        except discord.HTTPException as exc:
            if exc.status >= 500:
                raise   # an outage mid-request: in doubt, looked up before any retry
            raise NotDelivered(f"Discord: {exc.status} {exc.text}", permanent=exc.status != 429) from None
        return Sent(str(message.id), self._where(delivery))

    async def find_sent(self, delivery: Delivery, item: Item) -> Sent | None:
        after = dt.datetime.fromtimestamp(delivery.started_at - LOOKUP_MARGIN, dt.timezone.utc)
        me = self.client.user.id if self.client.user else None
        try:
            channel = await self._messageable(delivery)
            async for message in channel.history(limit=HISTORY_LIMIT, after=after):
                if message.author.id == me and self._shows(message, item):
                    return Sent(str(message.id), self._where(delivery))
        except (discord.Forbidden, discord.NotFound) as exc:
            raise LookupUnavailable(f"Discord history: {exc.status}") from None
        return None

    @staticmethod
    def _shows(message: discord.Message, item: Item) -> bool:
        if item.result is None:
            return message.content == safe_text(item.text)
        wanted = FEEDBACK_ID.format(kind="like", paper=item.id)
        for row in message.components:
            for child in getattr(row, "children", []):
                if getattr(child, "custom_id", None) == wanted:
                    return True
        return any(embed.url and embed.url == item.result.paper.url for embed in message.embeds)
