"""The Discord client: a gateway connection with no privileged intents, the /papers commands,
persistent feedback buttons and raw reaction events; `run_discord` runs it inside `paperbot serve`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands

from recommender import Recommender

from ..actions import Actions
from ..feedback import FeedbackPath
from ..limits import RateLimit, RateLimiter
from .buttons import record_click
from .commands import papers_group
from .context import DiscordContext
from .daily_posts import DiscordPoster
from .reactions import record_reaction
from .render import FeedbackButton
from .replies import apologise
from .settings import DiscordSettings

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0


class PaperbotDiscord(discord.Client):
    def __init__(self, rec: Recommender, settings: DiscordSettings,
                 rate_limit: RateLimit = RateLimit(), **options: Any):
        intents = discord.Intents.none()
        intents.guilds = True       # channels and permissions of the servers the bot is in
        intents.reactions = True    # reactions in servers and DMs: feedback
        # no voice here: no "PyNaCl / davey is not installed, voice will NOT be supported"
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none(),
                         max_messages=None, **options)
        self.rec = rec
        self.actions = Actions(rec, limiter=RateLimiter(rec.store.r, rec.store.prefix, rate_limit))
        self.settings = settings
        self.ctx = DiscordContext(self, rec, self.actions, FeedbackPath(self.actions))
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(papers_group(self.ctx))
        self.tree.error(self.on_command_failed)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FeedbackButton)   # clicks on buttons posted before this start
        if self.settings.sync_commands:
            await self.sync_commands()

    async def sync_commands(self) -> None:
        """Register /papers with Discord: in one server (instant) or globally (up to an hour)."""
        guild = discord.Object(self.settings.guild_id) if self.settings.guild_id else None
        where = f"server {guild.id}" if guild else "all servers"
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            log.error("could not register /papers in %s (the commands registered before stay): %s",
                      where, exc)
        else:
            log.info("registered %s in %s", ", ".join(f"/{c.name}" for c in synced), where)

    async def on_ready(self) -> None:
        log.info("Discord: logged in as %s (id %s), in %d servers", self.user,
                 self.user.id if self.user else "?", len(self.guilds))

    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        await record_reaction(self.ctx, event)

    async def on_raw_reaction_remove(self, event: discord.RawReactionActionEvent) -> None:
        await record_reaction(self.ctx, event)

    async def feedback_clicked(self, interaction: discord.Interaction, paper_id: str,
                               kind: str) -> None:
        await record_click(self.ctx, interaction, paper_id, kind)

    async def on_command_failed(self, interaction: discord.Interaction,
                                error: app_commands.AppCommandError) -> None:
        """What escaped a command (bad option data, a bug): logged, and a friendly word."""
        log.error("/papers failed for interaction %s", interaction.id, exc_info=error)
        await apologise(interaction)


def point_discord_at(settings: DiscordSettings) -> None:
    """Send discord.py's REST calls and gateway connection to the configured endpoints."""
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base
    if settings.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


async def run_discord(rec: Recommender, stop: asyncio.Event, settings: DiscordSettings,
                      posters: dict[str, Any] | None = None, rate_limit: RateLimit = RateLimit(),
                      **client_options: Any) -> None:
    """Log in, serve until `stop` is set, then close the connection and return.

    A rejected token or an unreachable API at login is a ValueError with one clear line;
    after login, discord.py reconnects by itself. The daily-post poster goes into
    `posters["discord"]` (for the scheduler; it posts once the client is ready).
    """
    point_discord_at(settings)
    client = PaperbotDiscord(rec, settings, rate_limit, **client_options)
    if posters is not None:
        posters["discord"] = DiscordPoster(client)
    runner = asyncio.create_task(client.start(settings.token), name="discord-client")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if posters is not None:
            posters.pop("discord", None)
        await client.close()
    try:
        await asyncio.wait_for(runner, timeout=CLOSE_TIMEOUT)
    except discord.LoginFailure:
        raise ValueError("Discord rejected DISCORD_TOKEN: copy the bot token again from the "
                         "Developer Portal (Bot → Reset Token).") from None
    except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
        if stop.is_set():
            log.debug("Discord client ended while stopping: %r", exc)
        else:
            raise ValueError(f"cannot reach Discord at {discord.http.Route.BASE}: "
                             f"{exc or type(exc).__name__}") from None
    except Exception:
        if not stop.is_set():
            raise
        log.debug("Discord client ended while stopping", exc_info=True)
    log.info("Discord: disconnected")
