"""Fixtures shared by the hardening tests (tests/test_hardening_*.py), built on the helpers of
test_slack.py and test_discord.py: import the fixture names into a test module to use them."""

from __future__ import annotations

import pytest
from fake_discord import FakeDiscord
from fake_slack import FakeSlack
from test_discord import discord
from test_slack import Harness, slack_env

from bot.slack import SlackBot, SlackConfig


@pytest.fixture
async def slack_h(rec, demo):
    """The real Bolt app over HTTP on 127.0.0.1 against a fake Slack, on this test's store."""
    with FakeSlack() as server:
        bot = SlackBot(rec, SlackConfig.from_env(slack_env(server), http=True))
        port = await bot.serve_http("127.0.0.1", 0)
        harness = Harness(bot, server, f"http://127.0.0.1:{port}/slack/events")
        yield harness
        await harness.http.aclose()
        await bot.close()


@pytest.fixture
async def discord_servers(monkeypatch):
    """Start fake Discords (`await discord_servers(guild_id=…)`); discord.py is put back after."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    servers: list[FakeDiscord] = []

    async def start(**kw) -> FakeDiscord:
        servers.append(await FakeDiscord(**kw).start())
        return servers[-1]
    yield start
    for server in servers:
        await server.close()
