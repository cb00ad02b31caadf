"""`/papers …` as native Discord application commands, over the one shared grammar.

Each subcommand has typed options (Discord checks lengths before sending), and then becomes the
same text the console and Slack parse (`search <query>`, `channel time 09:00 Europe/Berlin`, …):
`bot.commands.parse` validates it, so every rule (lengths, times, time zones) is the shared one.
`ctx.actions.Actions` does the work; `replies.answer` sends the result.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Literal

import discord
from discord import app_commands

from ..actions import Reply
from ..commands import MAX_IMPORT_TEXT, MAX_QUERY, MAX_TOPIC, USAGE, parse
from ..scheduler.due import DAY_FULL, DAY_NAMES
from .context import DiscordContext
from .identity import everywhere, posts_key, who_asked
from .replies import answer

log = logging.getLogger(__name__)

SLOW = ("search", "similar", "digest", "import")   # they embed or fetch papers: defer at once
PUBLIC = ("search", "similar", "channel subscribe", "channel unsubscribe", "channel time",
          "channel weekly",
          "channel off", "channel follow", "channel unfollow", "channel filter")
COMMON_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
                "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata",
                "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney")
MAX_CHOICES = 25

Query = app_commands.Range[str, 1, MAX_QUERY]
Topic = app_commands.Range[str, 1, MAX_TOPIC]


DISCORD_WORDING = {   # where the shared texts name a typed command, say it the Discord way
    "`forget-me confirm`": "`/papers forget-me confirm: True`",
    "`dm HH:MM <time zone>`": "`/papers dm on`",
    "`channel time HH:MM <time zone>`": "`/papers channel time`",
    "`dm weekly <day> HH:MM <time zone>`": "`/papers dm weekly`",
    "`channel weekly <day> HH:MM <time zone>`": "`/papers channel weekly`",
}
# the day of a weekly post: a choice, so nothing else can be sent
WEEKDAY_CHOICES = [app_commands.Choice(name=full, value=short)
                   for short, full in zip(DAY_NAMES, DAY_FULL)]


def about(name: str) -> str:
    """A subcommand's description, from the shared usage text ("papers matching a query")."""
    if name == "help":
        return "What paperbot can do: every /papers command"
    text = USAGE[name].split(" — ", 1)[1]
    return (text[0].upper() + text[1:])[:100]


def in_discord_words(reply: Reply) -> Reply:
    for shared, ours in DISCORD_WORDING.items():
        reply.text = reply.text.replace(shared, ours)
    return reply


def papers_group(ctx: DiscordContext) -> app_commands.Group:
    papers = app_commands.Group(name="papers", description="Research papers: search, follow "
                                "topics, get picks, and teach paperbot with reactions")

    @papers.command(name="search", description=about("search"))
    @app_commands.describe(query="What to look for, e.g. graph neural networks for molecules")
    async def search(interaction: discord.Interaction, query: Query) -> None:
        await run_command(ctx, interaction, f"search {query}")

    @papers.command(name="similar", description=about("similar"))
    @app_commands.describe(paper="An arXiv id or URL, e.g. 2503.11685")
    async def similar(interaction: discord.Interaction, paper: Query) -> None:
        await run_command(ctx, interaction, f"similar {paper}")

    @papers.command(name="subscribe", description=about("subscribe"))
    @app_commands.describe(topic="A topic in a few words, e.g. speech recognition")
    async def subscribe(interaction: discord.Interaction, topic: Topic) -> None:
        await run_command(ctx, interaction, f"subscribe {topic}")

    @papers.command(name="unsubscribe", description=about("unsubscribe"))
    @app_commands.describe(topic="One of the topics you follow")
    async def unsubscribe(interaction: discord.Interaction, topic: Topic) -> None:
        await run_command(ctx, interaction, f"unsubscribe {topic}")

    @unsubscribe.autocomplete("topic")
    async def your_topics(interaction: discord.Interaction, current: str):
        return await topic_choices(ctx, lambda: who_asked(interaction).person, current)

    for name in ("topics", "digest", "profile"):
        papers.add_command(_without_options(ctx, name))
    library_commands(ctx, papers)
    preference_commands(ctx, papers, lambda interaction: who_asked(interaction).person)

    @papers.command(name="forget-me", description=about("forget-me"))
    @app_commands.describe(confirm="True to delete everything now; without it you are asked first")
    async def forget_me(interaction: discord.Interaction, confirm: bool = False) -> None:
        await run_command(ctx, interaction, "forget-me confirm" if confirm else "forget-me")

    channel = app_commands.Group(name="channel", parent=papers,
                                 description="This channel's daily picks (needs Manage Channels)")

    @channel.command(name="subscribe", description=about("channel subscribe"))
    @app_commands.describe(topic="A topic for this channel, e.g. diffusion models")
    async def channel_subscribe(interaction: discord.Interaction, topic: Topic) -> None:
        await run_command(ctx, interaction, f"channel subscribe {topic}", channel_setting=True)

    @channel.command(name="unsubscribe", description=about("channel unsubscribe"))
    @app_commands.describe(topic="One of this channel's topics")
    async def channel_unsubscribe(interaction: discord.Interaction, topic: Topic) -> None:
        await run_command(ctx, interaction, f"channel unsubscribe {topic}", channel_setting=True)

    @channel_unsubscribe.autocomplete("topic")
    async def channel_topics(interaction: discord.Interaction, current: str):
        return await topic_choices(ctx, lambda: who_asked(interaction).channel, current)

    preference_commands(ctx, channel, lambda interaction: who_asked(interaction).channel,
                        "channel ")

    @channel.command(name="time", description=about("channel time"))
    @app_commands.describe(time="HH:MM, e.g. 09:00", timezone="An IANA time zone, e.g. Europe/Berlin")
    async def channel_time(interaction: discord.Interaction, time: app_commands.Range[str, 1, 5],
                           timezone: app_commands.Range[str, 1, 64] = "UTC") -> None:
        await run_command(ctx, interaction, f"channel time {time} {timezone}", channel_setting=True)

    @channel_time.autocomplete("timezone")
    async def zones(interaction: discord.Interaction, current: str):
        return [app_commands.Choice(name=z, value=z) for z in zone_matches(current)]

    weekly_command(ctx, channel, "channel weekly")

    @channel.command(name="off", description=about("channel off"))
    async def channel_off(interaction: discord.Interaction) -> None:
        await run_command(ctx, interaction, "channel off", channel_setting=True)

    dm = app_commands.Group(name="dm", parent=papers,
                            description="Your own picks as a daily direct message")

    @dm.command(name="on", description=about("dm"))
    @app_commands.describe(time="HH:MM, e.g. 09:00", timezone="An IANA time zone, e.g. Europe/Berlin")
    async def dm_on(interaction: discord.Interaction, time: app_commands.Range[str, 1, 5],
                    timezone: app_commands.Range[str, 1, 64] = "UTC") -> None:
        await run_command(ctx, interaction, f"dm {time} {timezone}")

    @dm_on.autocomplete("timezone")
    async def dm_zones(interaction: discord.Interaction, current: str):
        return [app_commands.Choice(name=z, value=z) for z in zone_matches(current)]

    weekly_command(ctx, dm, "dm weekly")

    @dm.command(name="off", description=about("dm off"))
    async def dm_off(interaction: discord.Interaction) -> None:
        await run_command(ctx, interaction, "dm off")

    papers.add_command(_without_options(ctx, "help"))
    return papers


def library_commands(ctx: DiscordContext, papers: app_commands.Group) -> None:
    """`/papers saved [format: bibtex]` and `/papers import ids:<arXiv ids or links>`."""
    @papers.command(name="saved", description=about("saved"))
    @app_commands.describe(format="list (default), or bibtex: the papers as a .bib file")
    async def saved(interaction: discord.Interaction,
                    format: Literal["list", "bibtex"] = "list") -> None:
        await run_command(ctx, interaction, "saved bibtex" if format == "bibtex" else "saved")

    # Discord's longest string option is 6000 characters
    @papers.command(name="import", description=about("import"))
    @app_commands.describe(ids="Up to 50 arXiv ids or links, separated by spaces or commas")
    async def import_(interaction: discord.Interaction,
                      ids: app_commands.Range[str, 1, min(MAX_IMPORT_TEXT, 6000)]) -> None:
        await run_command(ctx, interaction, f"import {ids}")


def weekly_command(ctx: DiscordContext, group: app_commands.Group, name: str) -> None:
    """`/papers channel weekly` (needs Manage Channels) or `/papers dm weekly`: day, time, zone."""
    @group.command(name="weekly", description=about(name))
    @app_commands.describe(day="The day of the week it comes", time="HH:MM, e.g. 09:00",
                           timezone="An IANA time zone, e.g. Europe/Berlin")
    @app_commands.choices(day=WEEKDAY_CHOICES)
    async def weekly(interaction: discord.Interaction, day: str, time: app_commands.Range[str, 1, 5],
                     timezone: app_commands.Range[str, 1, 64] = "UTC") -> None:
        await run_command(ctx, interaction, f"{name} {day} {time} {timezone}",
                          channel_setting=name.startswith("channel"))

    @weekly.autocomplete("timezone")
    async def zones(interaction: discord.Interaction, current: str):
        return [app_commands.Choice(name=z, value=z) for z in zone_matches(current)]


FilterKind = Literal["exclude", "include", "category", "clear", "show"]


def preference_commands(ctx: DiscordContext, group: app_commands.Group,
                        whose: Callable[[discord.Interaction], str | None], where: str = "") -> None:
    """`follow`, `unfollow` and `filter` in `group`: a person's (`/papers follow`) or, with
    `where` "channel ", a channel's (`/papers channel follow`, which needs Manage Channels)."""
    setting = {"channel_setting": bool(where)}

    @group.command(name="follow", description=about(f"{where}follow"))
    @app_commands.describe(author="An author's name, e.g. Yann LeCun (Y. LeCun is the same)")
    async def follow(interaction: discord.Interaction, author: Topic) -> None:
        await run_command(ctx, interaction, f"{where}follow {author}", **setting)

    @group.command(name="unfollow", description=about(f"{where}unfollow"))
    @app_commands.describe(author="One of the authors followed")
    async def unfollow(interaction: discord.Interaction, author: Topic) -> None:
        await run_command(ctx, interaction, f"{where}unfollow {author}", **setting)

    @unfollow.autocomplete("author")
    async def followed(interaction: discord.Interaction, current: str):
        def names() -> list[str]:
            target = whose(interaction)
            return list(ctx.rec.preferences.get(target).follows.values()) if target else []
        try:
            found = await asyncio.to_thread(names)
        except Exception:  # noqa: BLE001 - a failed suggestion list must not break typing
            log.warning("author suggestions failed", exc_info=True)
            return []
        return [app_commands.Choice(name=n[:100], value=n[:100]) for n in best_matches(found, current)]

    @group.command(name="filter", description=about(f"{where}filter"))
    @app_commands.describe(kind="exclude: never these words · include: only papers with them · "
                                "category: only these arXiv categories",
                           value="Words (comma-separated phrases) or categories, e.g. cs.LG cs.CL")
    async def filter_(interaction: discord.Interaction, kind: FilterKind,
                      value: Query | None = None) -> None:
        text = "" if kind == "show" else f"{kind} {value or ''}"
        await run_command(ctx, interaction, f"{where}filter {text}".strip(), **setting)


def _without_options(ctx: DiscordContext, name: str) -> app_commands.Command:
    async def callback(interaction: discord.Interaction) -> None:
        await run_command(ctx, interaction, name)
    return app_commands.Command(name=name, description=about(name), callback=callback)


async def run_command(ctx: DiscordContext, interaction: discord.Interaction, text: str, *,
                      channel_setting: bool = False) -> None:
    if channel_setting:
        refusal = channel_refusal(interaction)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True,
                                                    allowed_mentions=discord.AllowedMentions.none())
            return
    command = parse(text)
    who = who_asked(interaction)

    def work() -> Reply:
        asker = everywhere(ctx.rec.people, who, interaction.user.id) if (
            command.name == "forget-me" and command.text == "confirm") else who
        return in_discord_words(ctx.actions.run(command, asker))

    def remember(message_id: str, paper_id: str) -> None:
        ctx.rec.record_post(posts_key(who), message_id, paper_id)

    await answer(interaction, work, what=f"/papers {command.name}", slow=command.name in SLOW,
                 public=command.name in PUBLIC, remember=remember)


def channel_refusal(interaction: discord.Interaction) -> str | None:
    """Why this person may not change this channel's settings, or None if they may."""
    if interaction.guild_id is None:
        return ("Channel settings belong to a server channel, and a DM has none. Run this in "
                "the channel you want to set up.")
    if not interaction.permissions.manage_channels:
        return ("Changing this channel's settings needs the Manage Channels permission. Ask "
                "someone who has it, or use `/papers subscribe` for your own picks.")
    return None


async def topic_choices(ctx: DiscordContext, whose: Callable[[], str | None], current: str):
    """Autocomplete: the topics a person or channel follows that match what is typed so far."""
    try:
        who = whose()
        topics = await asyncio.to_thread(ctx.rec.topics, who) if who else []
    except Exception:  # noqa: BLE001 - a failed suggestion list must not break typing
        log.warning("topic suggestions failed", exc_info=True)
        return []
    return [app_commands.Choice(name=t[:100], value=t[:100]) for t in best_matches(topics, current)]


def best_matches(options: Iterable[str], typed: str) -> list[str]:
    """Options containing what was typed (case- and space/underscore-insensitively), those
    starting with it first; at most the 25 Discord shows."""
    def norm(text: str) -> str:
        return text.lower().replace("_", " ")

    typed = norm(typed.strip())
    hits = [o for o in options if typed in norm(o)]
    hits.sort(key=lambda o: (not norm(o).startswith(typed) and not
                             norm(o).split("/")[-1].startswith(typed)))
    return hits[:MAX_CHOICES]


@functools.cache
def _all_zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def zone_matches(typed: str) -> list[str]:
    if not typed.strip():
        return list(COMMON_ZONES)
    return best_matches(_all_zones(), typed)
