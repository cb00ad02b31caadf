"""Clicks on the 👍 / 👎 / 🔖 buttons under a paper, translated into `bot.feedback` events; the
person alone sees the confirmation (answered within Discord's deadline by `replies.answer`)."""

from __future__ import annotations

import discord

from ..actions import Reply, Who
from ..feedback import FeedbackEvent
from .context import DiscordContext
from .identity import who_asked
from .replies import SORRY, answer


async def record_click(ctx: DiscordContext, interaction: discord.Interaction, paper_id: str,
                       kind: str) -> None:
    who = who_asked(interaction)
    if interaction.message is not None and interaction.message.flags.ephemeral:
        who = Who(who.person, None)   # a personal list (digest), not a post in the channel

    async def confirmation() -> Reply:
        outcome = await ctx.feedback.handle(FeedbackEvent(who, button=kind, paper_id=paper_id))
        return Reply(outcome.text or SORRY)

    await answer(interaction, confirmation(), what=f"the {kind} button on {paper_id}")
