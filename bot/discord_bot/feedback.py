"""Where a Discord reaction or button click becomes feedback on a paper.

Reactions on paperbot's paper messages, as on Slack: 👍 ❤️ 🔥 ⭐ like, 👎 dislike, 🔖 save (skin tones
and emoji variants count the same); removing one retracts that person's feedback on the paper.
Raw gateway events are used, so reactions on messages from before a restart count too, and the
bot needs no message cache and no privileged intent. The message → paper mapping was stored
when the message was posted (`Recommender.record_post`).

A reaction given while Redis is down is retried (as on Slack); if it still cannot be stored, the
person gets a direct message saying so, naming the paper (read from the message itself, since
the store is what is down), and asking them to react again. Closed DMs: one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING

import discord

from ..actions import Reply, Who, retry_while_store_down
from .identity import posts_key, who_asked, who_is
from .render import FEEDBACK_TEMPLATE, clip
from .replies import NO_PINGS, STORE_DOWN, answer

if TYPE_CHECKING:
    from .client import PaperbotDiscord

log = logging.getLogger(__name__)

REACTION_KINDS = {"👍": "like", "❤": "like", "🔥": "like", "⭐": "like", "👎": "dislike", "🔖": "save"}
# variation selectors (❤ vs ❤️) and skin tones (👍🏽) do not change the meaning
_EMOJI_MODIFIERS = re.compile("[\ufe0e\ufe0f\U0001F3FB-\U0001F3FF]")
TITLE_LIMIT = 200
_FEEDBACK_ID = re.compile(FEEDBACK_TEMPLATE)


def reaction_kind(emoji: discord.PartialEmoji) -> str | None:
    """like / dislike / save for a feedback emoji; None for any other (or a custom) emoji."""
    if emoji.id is not None or not emoji.name:
        return None
    return REACTION_KINDS.get(_EMOJI_MODIFIERS.sub("", emoji.name))


async def record_reaction(bot: PaperbotDiscord, event: discord.RawReactionActionEvent) -> None:
    me = bot.user
    if me is None or event.user_id == me.id or (event.member is not None and event.member.bot):
        return
    if event.message_author_id is not None and event.message_author_id != me.id:
        return   # not one of paperbot's messages (only known for added reactions)
    kind = reaction_kind(event.emoji)
    if kind is None:
        return
    if event.event_type == "REACTION_REMOVE":
        kind = "clear"
    # one person's reactions on one message are applied in the order Discord sent them (a 👍
    # and its removal a moment later must not land the other way round); others' go on at once
    async with bot.reactions_in_order(event.user_id, event.message_id):
        await _record(bot, event, kind)


async def _record(bot: PaperbotDiscord, event: discord.RawReactionActionEvent, kind: str) -> None:
    who = who_is(event.guild_id, event.channel_id, event.user_id)

    def apply() -> Reply | None:
        paper_id = bot.rec.paper_of_post(posts_key(who), str(event.message_id))
        return None if paper_id is None else bot.actions.react(who, paper_id, kind)

    try:
        reply = await retry_while_store_down(lambda: asyncio.to_thread(apply))
    except STORE_DOWN as exc:
        log.warning("reaction %s by %s on message %s not stored, storage unavailable: %s",
                    kind, who.person, event.message_id, exc)
        await tell_not_recorded(bot, event)
        return
    except Exception:
        log.exception("recording reaction %s by %s on message %s failed",
                      event.emoji, who.person, event.message_id)
        return
    if reply is not None:
        log.info("reaction %s by %s on message %s: %s", kind, who.person, event.message_id,
                 reply.text)


class InOrder:
    """An asyncio lock per key, kept only while someone holds or awaits it. Locks are fair, and
    an event's task takes its lock before its first await, so events run in arrival order."""

    def __init__(self) -> None:
        self._locks: dict[tuple, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, *key):
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


async def tell_not_recorded(bot: PaperbotDiscord, event: discord.RawReactionActionEvent) -> None:
    """DM the person that their reaction was lost to a storage outage; never raises, never pings."""
    try:
        is_paper, shown = await _paper_shown(bot, event)
        if not is_paper:
            return   # not a paper of paperbot's: the reaction was no feedback anyway
        dm = await bot.create_dm(discord.Object(id=event.user_id))
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


async def _paper_shown(bot: PaperbotDiscord,
                       event: discord.RawReactionActionEvent) -> tuple[bool, str | None]:
    """(is it one of paperbot's papers, its title or else its id), asked of Discord since the
    store is what is down. When Discord can't say: (True, None), better told once too often."""
    try:
        message = await bot.get_partial_messageable(event.channel_id).fetch_message(event.message_id)
    except discord.HTTPException as exc:
        log.warning("could not read message %s to name its paper: %s", event.message_id, _short(exc))
        return True, None
    if bot.user is None or message.author.id != bot.user.id:
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


async def record_click(bot: PaperbotDiscord, interaction: discord.Interaction, paper_id: str,
                       kind: str) -> None:
    """A 👍 / 👎 / 🔖 button under a paper; the person alone sees the confirmation."""
    who = who_asked(interaction)
    if interaction.message is not None and interaction.message.flags.ephemeral:
        who = Who(who.person, None)   # a personal list (digest), not a post in the channel
    await answer(interaction, lambda: bot.actions.react(who, paper_id, kind),
                 what=f"the {kind} button on {paper_id}")
