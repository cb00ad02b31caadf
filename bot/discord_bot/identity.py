"""Who is speaking, as paperbot's scoped keys.

In a server: person `discord:<guild>:<user>`, channel `discord:<guild>:<channel>` (a thread is a
channel of its own). In a DM with the bot there is no server and no shared channel: the person is
`discord:dm:<user>`, and channel settings are refused. A server member's `Who` names that DM
key as an alias, so that `forget-me` in a server forgets their DMs with paperbot too (where their
daily DM digest is recorded, and their reactions on it).
"""

from __future__ import annotations

import discord

from ..actions import Who


def who_is(guild_id: int | None, channel_id: int | None, user_id: int) -> Who:
    if guild_id is None:
        return Who(person=f"discord:dm:{user_id}", channel=None)
    return Who(person=f"discord:{guild_id}:{user_id}", channel=f"discord:{guild_id}:{channel_id}",
               aliases=(f"discord:dm:{user_id}",))


def who_asked(interaction: discord.Interaction) -> Who:
    return who_is(interaction.guild_id, interaction.channel_id, interaction.user.id)


def posts_key(who: Who) -> str:
    """Where the messages paperbot posts for `who` are remembered (a DM: the person's own key)."""
    return who.channel or who.person
