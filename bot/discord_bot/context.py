"""What the Discord client's parts share, so that they need not import the client (or each other)."""

from __future__ import annotations

import dataclasses

import discord

from recommender import Recommender

from ..actions import Actions
from ..feedback import FeedbackPath


@dataclasses.dataclass(frozen=True)
class DiscordContext:
    client: discord.Client    # the connection: users, channels, DMs, the bot's own id
    rec: Recommender
    actions: Actions
    feedback: FeedbackPath    # where reactions and clicks become feedback (`bot.feedback`)
