"""Where a Discord reaction or button click becomes feedback on a paper.

Reactions on paperbot's paper messages, as on Slack: 👍 ❤️ 🔥 ⭐ like, 👎 dislike, 🔖 save (skin tones
and emoji variants count the same); removing one retracts that person's feedback on the paper.
Raw gateway events are used, so reactions on messages from before a restart count too, and the
bot needs no message cache and no privileged intent. The message → paper mapping was stored
when the message was posted (`Recommender.record_post`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

import discord

from ..actions import Reply, Who
from .identity import posts_key, who_asked, who_is
from .replies import STORE_DOWN, answer

if TYPE_CHECKING:
    from .client import PaperbotDiscord

log = logging.getLogger(__name__)

REACTION_KINDS = {"👍": "like", "❤": "like", "🔥": "like", "⭐": "like", "👎": "dislike", "🔖": "save"}
# variation selectors (❤ vs ❤️) and skin tones (👍🏽) do not change the meaning
_EMOJI_MODIFIERS = re.compile("[\ufe0e\ufe0f\U0001F3FB-\U0001F3FF]")
STORE_RETRY_DELAYS = (0.5, 2.0, 5.0)   # a reaction has no one to tell: retry before giving up


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
    who = who_is(event.guild_id, event.channel_id, event.user_id)

    def apply() -> Reply | None:
        paper_id = bot.rec.paper_of_post(posts_key(who), str(event.message_id))
        return None if paper_id is None else bot.actions.react(who, paper_id, kind)

    for delay in (*STORE_RETRY_DELAYS, None):
        try:
            reply = await asyncio.to_thread(apply)
        except STORE_DOWN as exc:
            if delay is None:
                log.error("storage unavailable: lost %s from %s on message %s: %s",
                          kind, who.person, event.message_id, exc)
                return
            await asyncio.sleep(delay)
            continue
        except Exception:
            log.exception("recording reaction %s by %s on message %s failed",
                          event.emoji, who.person, event.message_id)
            return
        if reply is not None:
            log.info("reaction %s by %s on message %s: %s", kind, who.person, event.message_id,
                     reply.text)
        return


async def record_click(bot: PaperbotDiscord, interaction: discord.Interaction, paper_id: str,
                       kind: str) -> None:
    """A 👍 / 👎 / 🔖 button under a paper; the person alone sees the confirmation."""
    who = who_asked(interaction)
    if interaction.message is not None and interaction.message.flags.ephemeral:
        who = Who(who.person, None)   # a personal list (digest), not a post in the channel
    await answer(interaction, lambda: bot.actions.react(who, paper_id, kind),
                 what=f"the {kind} button on {paper_id}")
