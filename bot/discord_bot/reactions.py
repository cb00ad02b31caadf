"""Discord reactions on paperbot's paper messages, translated into `bot.feedback` events.

Raw gateway events are used, so reactions on messages from before a restart count too, and the
bot needs no message cache and no privileged intent. `bot.feedback` decides what is feedback
(custom emoji never are) and records or retracts it; the message → paper mapping was stored
when the message was posted (`Recommender.record_post`). Discord cannot cheaply tell which of
the person's reactions remain on a message, so removing ❤️ retracts the like even if a 👍 stays.

When the store stays down, the person gets a direct message saying so, naming the paper (read
from the message itself, since the store is what is down), and asking them to react again.
Closed DMs: one log line.
"""

from __future__ import annotations

import logging
import re

import discord

from ..feedback import FeedbackEvent
from .context import DiscordContext
from .identity import posts_key, who_is
from .render import FEEDBACK_TEMPLATE, clip
from .replies import NO_PINGS

log = logging.getLogger(__name__)

TITLE_LIMIT = 200
_FEEDBACK_ID = re.compile(FEEDBACK_TEMPLATE)


async def record_reaction(ctx: DiscordContext, event: discord.RawReactionActionEvent) -> None:
    me = ctx.client.user
    if me is None or event.user_id == me.id or (event.member is not None and event.member.bot):
        return
    if event.message_author_id is not None and event.message_author_id != me.id:
        return   # not one of paperbot's messages (only known for added reactions)
    who = who_is(event.guild_id, event.channel_id, event.user_id)
    outcome = await ctx.feedback.handle(FeedbackEvent(
        who, added=event.event_type == "REACTION_ADD",
        emoji=event.emoji.name if event.emoji.id is None else None,   # custom emoji: no feedback
        post=(posts_key(who), str(event.message_id))))
    if outcome.status == "not_recorded":
        await tell_not_recorded(ctx, event)


async def tell_not_recorded(ctx: DiscordContext, event: discord.RawReactionActionEvent) -> None:
    """DM the person that their reaction was lost to a storage outage; never raises, never pings."""
    try:
        is_paper, shown = await _paper_shown(ctx, event)
        if not is_paper:
            return   # not a paper of paperbot's: the reaction was no feedback anyway
        dm = await ctx.client.create_dm(discord.Object(id=event.user_id))
        await dm.send(not_recorded_text(event, shown), allowed_mentions=NO_PINGS,
                      suppress_embeds=True)
    except Exception as exc:  # noqa: BLE001 - DMs closed (403), Discord unreachable: one line
        log.warning("could not tell user %s that their reaction on message %s was not recorded: %s",
                    event.user_id, event.message_id, _short(exc))


def not_recorded_text(event: discord.RawReactionActionEvent, shown: str | None) -> str:
    """What the person is told; `shown` names the paper (None: Discord could not say)."""
    place = event.guild_id if event.guild_id is not None else "@me"
    link = f"https://discord.com/channels/{place}/{event.channel_id}/{event.message_id}"
    emoji = event.emoji.name
    on = f"“{shown}”" if shown else "this paper"
    if event.event_type == "REACTION_REMOVE":
        return (f"I couldn't record that you removed your {emoji} on {on} — paperbot's "
                f"storage is temporarily unavailable. Please add it and remove it again in a few "
                f"minutes: {link}")
    return (f"I couldn't record your {emoji} on {on} — paperbot's storage is temporarily "
            f"unavailable. Please remove it and react again in a few minutes: {link}")


async def _paper_shown(ctx: DiscordContext,
                       event: discord.RawReactionActionEvent) -> tuple[bool, str | None]:
    """(is it one of paperbot's papers, its title or else its id), asked of Discord since the
    store is what is down. When Discord can't say: (True, None), better told once too often."""
    try:
        message = await ctx.client.get_partial_messageable(event.channel_id).fetch_message(event.message_id)
    except discord.HTTPException as exc:
        log.warning("could not read message %s to name its paper: %s", event.message_id, _short(exc))
        return True, None
    if ctx.client.user is None or message.author.id != ctx.client.user.id:
        return False, None
    custom_ids = [getattr(child, "custom_id", None) or ""
                  for row in message.components for child in getattr(row, "children", [])]
    paper_id = next((m["paper"] for m in map(_FEEDBACK_ID.fullmatch, custom_ids) if m), None)
    title = next((embed.title for embed in message.embeds if embed.title), None)
    if title is None and paper_id is None:
        return False, None   # a header or a note, no paper
    # the embed's title is escaped already (render.paper_embed): shown literally, no pings
    return True, clip(title or discord.utils.escape_mentions(discord.utils.escape_markdown(paper_id)),
                      TITLE_LIMIT)


def _short(exc: BaseException) -> str:
    if isinstance(exc, discord.HTTPException):
        return f"{exc.status} {exc.text or type(exc).__name__}"[:200]
    return f"{type(exc).__name__}: {exc}"[:200]
