"""The Discord adapter end to end: the unmodified discord.py client against a fake Discord (REST
and gateway, testkit/fake_discord.py) on 127.0.0.1, a real Redis and the real model.

Nothing of paperbot's is mocked on the path under test: events arrive over the gateway, answers
leave over HTTP, and what the bot stored is read back through the Recommender. Two faults are
injected below the adapter: a model slowed down (to show the defer) and a dead Redis connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
import warnings

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

with warnings.catch_warnings():   # discord.py's voice module imports the deprecated audioop
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

from bot.discord_bot import DiscordSettings, run_discord
from bot.feedback import emoji_kind
from recommender.people import PeopleStore
from testkit.fake_discord import EPHEMERAL, MANAGE_CHANNELS, MEMBER_PERMISSIONS, FakeDiscord

USER = 1001
MODERATOR = 1002


@pytest.fixture
def fake(discord_fake):
    return discord_fake


class RunningBot:
    """run_discord(rec, stop) as `paperbot serve` runs it, against the fake."""

    def __init__(self, fake: FakeDiscord, rec, **settings):
        self.fake, self.rec = fake, rec
        self.settings = DiscordSettings(token="fake-token-abc.def", api_base=fake.api_base,
                                        gateway_url=fake.gateway_url, **settings)
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def start(self) -> RunningBot:
        sessions = self.fake.sessions
        self.task = asyncio.create_task(run_discord(self.rec, self.stop, self.settings,
                                                    guild_ready_timeout=0.05))
        await self.fake.wait_for(lambda: self.fake.sessions > sessions or self.task.done())
        if self.task.done():
            self.task.result()
        return self

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=15)


@pytest.fixture
async def bot(fake, rec, demo):
    running = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    yield running
    if not running.task.done():
        await running.close()


def person(fake: FakeDiscord, user_id: int = USER) -> str:
    return f"discord:{fake.guild_id}:{user_id}"


def channel(fake: FakeDiscord) -> str:
    return f"discord:{fake.guild_id}:{fake.channel_id}"


async def ask(fake: FakeDiscord, *path: str, messages: int = 1, **options):
    """Dispatch `/papers <path> options…` and wait for `messages` answered messages."""
    exchange = await fake.interact(fake.slash(*path, **options))
    await fake.wait_for(lambda: len(exchange.visible) >= messages)
    return exchange


def private(message) -> bool:
    return bool(message["flags"] & EPHEMERAL)


def papers_in(exchange) -> list[tuple[dict, str]]:
    """(message, paper id) for each paper message of an answer, the paper read from its buttons."""
    out = []
    for message in exchange.visible:
        ids = [b["custom_id"] for b in FakeDiscord.buttons(message)]
        if ids:
            assert [i.split(":")[2] for i in ids] == ["like", "dislike", "save"]
            assert len({i.split(":", 3)[3] for i in ids}) == 1
            out.append((message, ids[0].split(":", 3)[3]))
    return out


def assert_never_pings(fake: FakeDiscord) -> None:
    """Every message the bot sent or answered with forbids all mentions."""
    bodies = [r.body.get("data", r.body) if "/callback" in r.path else r.body
              for r in fake.requests
              if r.method in ("POST", "PATCH") and ("/webhooks/" in r.path or "/callback" in r.path
                                                     or "/messages" in r.path)]
    sent = [b for b in bodies if isinstance(b, dict) and ("content" in b or "embeds" in b)]
    assert sent, "no messages were sent"
    for body in sent:
        assert body.get("allowed_mentions") == {"parse": []}, body


# -- login ----------------------------------------------------------------------------------
async def test_login_ready_and_commands_synced_to_the_test_server(fake, bot):
    identify = fake.identifies[0]
    assert identify["token"] == "fake-token-abc.def"
    intents = discord.Intents._from_value(identify["intents"])
    assert intents.guilds and intents.guild_reactions and intents.dm_reactions
    assert not (intents.members or intents.presences or intents.message_content)  # none privileged
    [me] = fake.requests_to("GET", r"/users/@me$")
    assert me.headers["Authorization"] == "Bot fake-token-abc.def"

    await fake.wait_for(lambda: str(fake.guild_id) in fake.commands)
    assert "global" not in fake.commands
    [papers] = fake.commands[str(fake.guild_id)]
    subcommands = {o["name"]: o for o in papers["options"]}
    assert set(subcommands) == {"search", "similar", "subscribe", "unsubscribe", "topics",
                                "digest", "profile", "saved", "forget-me", "channel", "dm", "help",
                                "import", "follow", "unfollow", "filter"}
    assert {o["name"] for o in subcommands["dm"]["options"]} == {"on", "weekly", "off"}
    channel_group = {o["name"]: o for o in subcommands["channel"]["options"]}
    assert subcommands["channel"]["type"] == 2
    assert set(channel_group) == {"subscribe", "unsubscribe", "time", "weekly", "off", "follow",
                                  "unfollow", "filter"}
    [query] = subcommands["search"]["options"]
    assert query["type"] == 3 and query["required"] and query["max_length"] == 300
    assert subcommands["unsubscribe"]["options"][0]["autocomplete"] is True
    assert {o["name"]: o.get("autocomplete", False)
            for o in channel_group["time"]["options"]} == {"time": False, "timezone": True}
    assert subcommands["forget-me"]["options"][0]["type"] == 5

    await bot.close()   # what SIGTERM does in `paperbot serve`
    assert bot.task.result() is None
    await fake.wait_for(lambda: fake.close_codes)
    assert not fake.connected


# -- commands -------------------------------------------------------------------------------
async def test_slow_search_defers_then_follows_up_with_one_message_per_paper(fake, bot, rec,
                                                                               monkeypatch):
    encode = rec.embedder.encode

    def slow_encode(texts):   # a model on a busy machine: slower than Discord's 3 s would allow
        time.sleep(1.5)
        return encode(texts)

    monkeypatch.setattr(rec.embedder, "encode", slow_encode)
    asked = time.monotonic()
    exchange = await ask(fake, "search", query="graph neural networks for molecules", messages=6)

    defer = exchange.callbacks[0]
    assert defer["type"] == 5 and not (defer.get("data") or {}).get("flags", 0) & EPHEMERAL
    assert exchange.deferred_at - asked < 1.5     # acknowledged before the slow work finished
    follow_ups = fake.requests_to("POST", rf"/webhooks/{fake.app_id}/{exchange.token}$")
    assert follow_ups[0].at - asked >= 1.5 and len(follow_ups) == 6

    header, *posts = exchange.visible
    assert header is exchange.original      # the first follow-up resolves "thinking…"
    assert header["content"] == "Papers matching “graph neural networks for molecules”:"
    assert not any(private(m) for m in exchange.visible)   # in the channel: others can react
    papers = papers_in(exchange)
    assert [m["id"] for m, _ in papers] == [m["id"] for m in posts]
    for message, paper_id in papers:
        [embed] = message["embeds"]
        paper = rec.get_paper(paper_id)
        assert embed["title"] == discord.utils.escape_markdown(paper.title)
        assert embed["url"] == paper.url
        assert {f["name"] for f in embed["fields"]} >= {"Authors", "Published", "Categories"}
        assert embed["footer"]["text"].startswith("Why: matches your search")
        assert embed["description"]
        # remembered just after Discord accepted the message (on a thread): wait for it
        await fake.wait_for(lambda: rec.paper_of_post(channel(fake), message["id"]) == paper_id)
    assert_never_pings(fake)


async def test_personal_commands_answer_privately(fake, bot, rec):
    me = person(fake)
    subscribed = await ask(fake, "subscribe", topic="graph neural networks")
    assert subscribed.callbacks[0]["type"] == 4          # quick: answered directly, no defer
    assert private(subscribed.visible[0])
    assert "You now follow “graph neural networks”" in subscribed.text
    await ask(fake, "subscribe", topic="speech recognition")
    assert rec.topics(me) == ["graph neural networks", "speech recognition"]

    suggest = await fake.interact(fake.slash("unsubscribe", topic="spe", focused="topic"))
    await fake.wait_for(lambda: suggest.callbacks)
    assert suggest.callbacks[0]["type"] == 8
    assert suggest.callbacks[0]["data"]["choices"] == [{"name": "speech recognition",
                                                        "value": "speech recognition"}]
    unsubscribed = await ask(fake, "unsubscribe", topic="speech recognition")
    assert "Unfollowed “speech recognition”" in unsubscribed.text
    assert "is not followed" in (await ask(fake, "unsubscribe", topic="knitting")).text
    assert "You follow: “graph neural networks”" in (await ask(fake, "topics")).text

    digest = await ask(fake, "digest", messages=6)
    assert digest.callbacks[0]["type"] == 5 and digest.callbacks[0]["data"]["flags"] & EPHEMERAL
    assert digest.text.startswith("Your picks:") and all(private(m) for m in digest.visible)
    picks = papers_in(digest)
    assert len(picks) == 5
    assert all("your topic" in m["embeds"][0]["footer"]["text"] for m, _ in picks)

    # a button on a private list is feedback from the person, not on a channel post
    message, paper_id = picks[0]
    click = await fake.interact(fake.click(message, f"paperbot:fb:save:{paper_id}"))
    await fake.wait_for(lambda: click.visible)
    assert click.text == "🔖 Saved." and private(click.visible[0])
    profile = rec.profile(me)
    assert profile["counts"]["save"] == 1 and profile["recent"][0]["channel"] is None

    assert "Feedback: 0 👍 · 0 👎 · 1 🔖 · 5 papers shown" in (await ask(fake, "profile")).text
    saved = await ask(fake, "saved")
    assert saved.text.startswith("Your saved papers:") and rec.get_paper(paper_id).title in saved.text
    assert saved.visible[0]["flags"] & 4          # links listed without a wall of previews

    similar = await ask(fake, "similar", paper="demo-001", messages=6)
    assert similar.text.startswith("Papers similar to") and len(papers_in(similar)) == 5
    assert "demo-001" not in {pid for _, pid in papers_in(similar)}
    unknown = await ask(fake, "similar", paper="2999.00001")
    assert "I don't know the paper" in unknown.text

    assert "send `/papers forget-me confirm: True`" in (await ask(fake, "forget-me")).text
    assert rec.topics(me) == ["graph neural networks"]
    assert "forgotten everything" in (await ask(fake, "forget-me", confirm=True)).text
    assert rec.topics(me) == [] and rec.profile(me)["counts"]["save"] == 0

    help_text = (await ask(fake, "help")).text
    assert help_text.startswith("Commands") and "channel subscribe" in help_text
    assert all(private(m) for e in fake.exchanges.values() if e not in (similar, unknown)
               for m in e.visible)
    assert_never_pings(fake)


async def test_channel_settings_need_manage_channels(fake, bot, rec):
    refused = await ask(fake, "channel", "subscribe", topic="diffusion models")
    assert private(refused.visible[0])
    assert "needs the Manage Channels permission" in refused.text
    assert rec.topics(channel(fake)) == []

    moderator = dict(user_id=MODERATOR, permissions=MEMBER_PERMISSIONS | MANAGE_CHANNELS)
    done = await ask(fake, "channel", "subscribe", topic="diffusion models", **moderator)
    assert not private(done.visible[0])                  # the channel sees its new setting
    assert "This channel now follows “diffusion models”" in done.text
    assert rec.topics(channel(fake)) == ["diffusion models"]
    assert "This channel follows: “diffusion models”" in (await ask(fake, "topics")).text

    suggest = await fake.interact(fake.slash("channel", "unsubscribe", topic="", focused="topic",
                                             **moderator))
    await fake.wait_for(lambda: suggest.callbacks)
    assert [c["value"] for c in suggest.callbacks[0]["data"]["choices"]] == ["diffusion models"]
    refused = await ask(fake, "channel", "unsubscribe", topic="diffusion models")
    assert "Manage Channels" in refused.text and rec.topics(channel(fake)) == ["diffusion models"]
    await ask(fake, "channel", "unsubscribe", topic="diffusion models", **moderator)
    assert rec.topics(channel(fake)) == []

    zones = await fake.interact(fake.slash("channel", "time", time="09:00", timezone="berl",
                                           focused="timezone", **moderator))
    await fake.wait_for(lambda: zones.callbacks)
    assert [c["value"] for c in zones.callbacks[0]["data"]["choices"]] == ["Europe/Berlin"]
    assert "Manage Channels" in (await ask(fake, "channel", "time", time="09:00")).text
    later = await ask(fake, "channel", "time", time="09:00", timezone="Europe/Berlin", **moderator)
    assert "This channel's daily picks: 09:00 Europe/Berlin, mon-fri, 5 papers" in later.text
    assert not private(later.visible[0])                  # the channel sees its schedule
    bad_zone = await ask(fake, "channel", "time", time="09:00", timezone="Mars/Olympus", **moderator)
    assert "'Mars/Olympus' is not an IANA time zone" in bad_zone.text   # the shared parser's words
    bad_time = await ask(fake, "channel", "time", time="9h", **moderator)
    assert "I need a time like 09:00" in bad_time.text
    assert "daily picks are off" in (await ask(fake, "channel", "off", **moderator)).text
    dm = await ask(fake, "dm", "on", time="07:30", timezone="Asia/Tokyo")
    assert "Your picks will come as a direct message: 07:30 Asia/Tokyo" in dm.text and private(dm.visible[0])
    assert "`/papers dm on`" in (await ask(fake, "dm", "off")).text
    assert "Manage Channels" in (await ask(fake, "channel", "off")).text


async def test_buttons_work_after_a_restart(fake, bot, rec):
    results = await ask(fake, "search", query="speech recognition", messages=6)
    (first, first_id), (second, second_id) = papers_in(results)[:2]
    liked = await fake.interact(fake.click(first, f"paperbot:fb:like:{first_id}"))
    await fake.wait_for(lambda: liked.visible)
    assert liked.text == "👍 More like this." and private(liked.visible[0])
    again = await fake.interact(fake.click(first, f"paperbot:fb:like:{first_id}"))
    await fake.wait_for(lambda: again.visible)
    assert again.text == "👍 More like this (already noted)."

    await bot.close()
    restarted = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    try:
        disliked = await fake.interact(fake.click(second, f"paperbot:fb:dislike:{second_id}"))
        await fake.wait_for(lambda: disliked.visible)
        assert disliked.text == "👎 Less like this."
    finally:
        await restarted.close()
    profile = rec.profile(person(fake))
    assert profile["counts"] == {"like": 1, "dislike": 1, "save": 0}
    assert {e["channel"] for e in profile["recent"]} == {channel(fake)}


async def test_reactions_are_feedback_and_removing_one_retracts_it(fake, bot, rec):
    results = await ask(fake, "search", query="image generation with diffusion", messages=6)
    posts = papers_in(results)
    me, other = person(fake), person(fake, MODERATOR)

    await fake.react(posts[0][0], "❤️")
    await fake.react(posts[1][0], "🔖")
    await fake.react(posts[2][0], "👍🏽", user_id=MODERATOR)
    await fake.react(posts[3][0], "🎉")                       # not a feedback emoji
    await fake.react(posts[3][0], "fire", emoji_id=123)       # a server's custom emoji: neither
    await fake.react(posts[3][0], "👍", user_id=fake.bot_id)  # the bot's own reaction
    not_ours = {**posts[4][0], "id": str(fake.snowflake()), "author": fake.user(7)}
    await fake.react(not_ours, "👍")
    await fake.wait_for(lambda: rec.profile(me)["counts"] == {"like": 1, "dislike": 0, "save": 1})
    await fake.wait_for(lambda: rec.profile(other)["counts"]["like"] == 1)
    recent = rec.profile(me)["recent"]
    assert {e["paper"] for e in recent} == {posts[0][1], posts[1][1]}
    assert {e["channel"] for e in recent} == {channel(fake)}
    members = rec.people.member_feedback(channel(fake))     # the channel's picks learn too
    assert (me, posts[0][1]) in {(who, paper) for who, paper, _ in members}

    await fake.react(posts[0][0], "❤️", add=False)
    await fake.wait_for(lambda: rec.profile(me)["counts"] == {"like": 0, "dislike": 0, "save": 1})
    await fake.react(posts[1][0], "👎")
    await fake.wait_for(lambda: rec.profile(me)["counts"]["dislike"] == 1)
    await fake.react(posts[1][0], "🔖", add=False)            # the save goes, the 👎 stands
    await fake.wait_for(lambda: rec.profile(me)["counts"]["save"] == 0)
    await fake.react(posts[1][0], "🔖")
    await asyncio.sleep(0.3)   # the ignored reactions had every chance to land
    assert rec.profile(person(fake, fake.bot_id))["counts"] == {"like": 0, "dislike": 0, "save": 0}
    assert rec.profile(me)["counts"] == {"like": 0, "dislike": 1, "save": 1}
    assert posts[3][1] not in {e["paper"] for e in rec.profile(me, recent=50)["recent"]}

    # a quick toggle, all of it sent before any is applied: applied in order, the last one wins
    for add in (True, False, True, False, True):
        await fake.react(posts[4][0], "👍", add=add)

    def toggles() -> list[str]:
        return [e["kind"] for e in rec.profile(me, recent=50)["recent"] if e["paper"] == posts[4][1]]
    await fake.wait_for(lambda: len(toggles()) == 5)
    assert toggles() == ["like", "unlike", "like", "unlike", "like"][::-1]   # newest first
    assert rec.profile(me)["counts"] == {"like": 1, "dislike": 1, "save": 1}


async def test_a_429_is_waited_out_as_retry_after_says(fake, bot):
    fake.rate_limit("POST", rf"/webhooks/{fake.app_id}/", times=1, retry_after=0.6)
    exchange = await ask(fake, "search", query="reinforcement learning for robots", messages=6)
    attempts = fake.requests_to("POST", rf"/webhooks/{fake.app_id}/{exchange.token}$")
    assert [a.status for a in attempts] == [429] + [200] * 6
    assert attempts[1].at - attempts[0].at >= 0.6
    assert exchange.original["content"].startswith("Papers matching")


async def test_replies_never_ping_and_show_user_text_literally(fake, bot, rec):
    topic = "@everyone <@123456789012345678> **bold** claims"
    reply = await ask(fake, "subscribe", topic=topic)
    # a mention is no topic: refused in one line that does not echo it, and nothing stored
    assert reply.text.startswith("That looks like a mention, not a topic") and "@" not in reply.text
    assert rec.topics(person(fake)) == []
    assert reply.callbacks[0]["data"]["allowed_mentions"] == {"parse": []}
    found = await ask(fake, "search", query=f"{topic} graph neural networks", messages=6)
    assert "@\u200beveryone" in found.text and "<@\u200b123456789012345678>" in found.text
    assert r"\*\*bold\*\*" in found.text                # shown as typed, not as markdown
    assert_never_pings(fake)


async def test_failures_are_friendly_private_messages_and_logged(fake, rec, demo, caplog):
    caplog.set_level(logging.DEBUG)
    bot = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    stale = await ask(fake, "frobnicate")       # a subcommand this version doesn't have
    assert stale.text.startswith("Sorry, something went wrong") and private(stale.visible[0])
    assert any("/papers failed" in r.getMessage() and r.exc_info for r in caplog.records)

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                       retry=Retry(NoBackoff(), 0))
    rec.people = PeopleStore(dead, rec.store.prefix)
    reply = await ask(fake, "topics")
    assert reply.text == "paperbot's storage is temporarily unavailable; please try again in a moment."
    assert private(reply.visible[0])
    assert any("storage unavailable while answering /papers topics" in r.getMessage()
               for r in caplog.records)
    assert "Traceback" not in "".join(e.text for e in fake.exchanges.values())
    await bot.close()
    assert "fake-token-abc.def" not in caplog.text     # not even in discord.py's debug log


async def test_global_sync_and_direct_messages(fake, rec, demo):
    running = await RunningBot(fake, rec).start()
    try:
        await fake.wait_for(lambda: "global" in fake.commands)
        assert str(fake.guild_id) not in fake.commands
        dm_person = f"discord:dm:{USER}"
        reply = await ask(fake, "subscribe", topic="protein folding", guild=False)
        assert "You now follow" in reply.text and rec.topics(dm_person) == ["protein folding"]
        refused = await ask(fake, "channel", "subscribe", topic="x", guild=False)
        assert "a DM has none" in refused.text
        results = await ask(fake, "search", query="protein structure", guild=False, messages=6)
        message, paper_id = papers_in(results)[0]
        await fake.react(message, "⭐", guild=False)
        await fake.wait_for(lambda: rec.profile(dm_person)["counts"]["like"] == 1)
    finally:
        await running.close()


async def test_a_rejected_token_or_unreachable_discord_is_one_clear_error(fake, rec):
    fake.valid_token = "the-real-token"
    with pytest.raises(ValueError, match="Discord rejected DISCORD_TOKEN"):
        await RunningBot(fake, rec).start()
    unreachable = RunningBot(fake, rec)
    unreachable.settings = DiscordSettings(token="t", api_base="http://127.0.0.1:1/api/v10")
    with pytest.raises(ValueError, match="cannot reach Discord at http://127.0.0.1:1/api/v10"):
        await unreachable.start()


def test_settings_from_env():
    settings = DiscordSettings.from_env({"DISCORD_TOKEN": " Bot abc.def ", "DISCORD_GUILD_ID": "42",
                                         "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10/",
                                         "DISCORD_SYNC_COMMANDS": "off"})
    assert settings.token == "abc.def" and settings.guild_id == 42 and not settings.sync_commands
    assert settings.api_base == "http://127.0.0.1:9/api/v10"
    assert "abc.def" not in repr(settings)
    for env, message in [({}, "DISCORD_TOKEN is not set"),
                         ({"DISCORD_TOKEN": "t", "DISCORD_GUILD_ID": "abc"}, "DISCORD_GUILD_ID"),
                         ({"DISCORD_TOKEN": "t", "DISCORD_GATEWAY_URL": "http://x"}, r"ws\(s\) URL")]:
        with pytest.raises(ValueError, match=message):
            DiscordSettings.from_env(env)


def test_reaction_emoji_to_feedback():
    assert [emoji_kind(e) for e in ("👍", "👍🏿", "❤️", "❤", "🔥", "⭐", "👎", "🔖")] == \
        ["like"] * 6 + ["dislike", "save"]
    assert emoji_kind("🎉") is None


# -- `paperbot serve --discord` from outside ----------------------------------------------------
async def test_paperbot_serve_discord_answers_search_and_learns_from_a_reaction(
        fake, rec, demo, cli_env, tmp_path):
    env = {**cli_env, "DISCORD_TOKEN": "serve-token-xyz.123", "DISCORD_API_BASE": fake.api_base,
           "DISCORD_GATEWAY_URL": fake.gateway_url, "DISCORD_GUILD_ID": str(fake.guild_id)}
    for name in ("SLACK_APP_TOKEN", "SLACK_BOT_TOKEN"):
        env.pop(name, None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log_file:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "-v", "serve", "--discord", env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file)
    try:
        await fake.wait_for(lambda: fake.sessions or server.returncode is not None, timeout=90)
        assert str(fake.guild_id) in fake.commands
        assert server.returncode is None, log_path.read_text()
        results = await fake.interact(fake.slash("search", query="speech recognition"))
        await fake.wait_for(lambda: len(results.visible) == 6, timeout=120)
        assert results.original["content"].startswith("Papers matching “speech recognition”")
        message, paper_id = papers_in(results)[0]
        assert not private(message)

        await fake.react(message, "👍")
        me = person(fake)
        await fake.wait_for(lambda: rec.profile(me)["counts"]["like"] == 1)

        profile = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "profile", "--user", me, "--json", env=cli_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(profile.communicate(), timeout=120)
        assert profile.returncode == 0, err.decode()
        data = json.loads(out)
        assert data["counts"]["like"] == 1
        assert data["recent"][0] | {"at": 0} == {"paper": paper_id, "kind": "like", "at": 0,
                                                  "channel": channel(fake),
                                                  "title": rec.get_paper(paper_id).title}
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), timeout=60)
    log = log_path.read_text()
    assert code == 0, log
    assert "Discord: logged in" in log and "Traceback" not in log
    assert "serve-token-xyz.123" not in log
    await fake.wait_for(lambda: fake.close_codes)
