"""Who is speaking, as paperbot's scoped keys.

In a server: person `discord:<guild>:<user>`, channel `discord:<guild>:<channel>` (a thread is a
channel of its own). In a DM with the bot there is no server and no shared channel: the person is
`discord:dm:<user>`, and channel settings are refused. One account is thus several people here;
`forget-me` takes every one of them (`everywhere`): its DMs with paperbot (where the daily DM
digest and the reactions on it are recorded) and every server, wherever it is asked.
"""

from __future__ import annotations

import dataclasses

import discord

from ..actions import Who


def who_is(guild_id: int | None, channel_id: int | None, user_id: int) -> Who:
    if guild_id is None:
        return Who(person=f"discord:dm:{user_id}", channel=None)
    return Who(person=f"discord:{guild_id}:{user_id}", channel=f"discord:{guild_id}:{channel_id}")


def who_asked(interaction: discord.Interaction) -> Who:
    return who_is(interaction.guild_id, interaction.channel_id, interaction.user.id)


def posts_key(who: Who) -> str:
    """Where the messages paperbot posts for `who` are remembered (a DM: the person's own key)."""
    return who.channel or who.person


def everywhere(people, who: Who, user_id: int) -> Who:
    """`who` with every other identity of the same Discord account (other servers, DMs) as
    aliases: "forget me" means everything, wherever it is asked. `people`: a PeopleStore."""
    others = people.ids_of_user("discord", str(user_id)) - {who.person}
    return dataclasses.replace(who, aliases=tuple(sorted(set(who.aliases) | others)))
