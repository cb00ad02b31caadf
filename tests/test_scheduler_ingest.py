"""The ingestion loop and the health endpoint of `paperbot serve`, in process: one replica of
several reads the sources, a failing source costs one log line, every replica's index sees the
new papers after a refresh; /health answers 200 or 503 with what is wrong."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
from pathlib import Path

import httpx
import pytest

from bot.health import HealthServer, HealthSettings
from bot.ingest_loop import IngestLoop, IngestSettings, seq_reached_by

FIXTURE = Path(__file__).parent / "fixtures" / "arxiv" / "two_weeks.jsonl.gz"


def listing_file(tmp_path: Path, count: int = 3) -> Path:
    rows = [json.loads(line) for line in gzip.open(FIXTURE, "rt")][:count]
    path = tmp_path / "listing.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


async def test_one_replica_ingests_and_every_index_sees_the_papers(make_recommender, tmp_path, caplog):
    rec_a, rec_b, rec_c = make_recommender(), make_recommender(), make_recommender()
    settings = IngestSettings(sources=(str(listing_file(tmp_path)), str(tmp_path / "gone.jsonl")),
                              every=3600, refresh_every=0.05)
    a, b = IngestLoop(rec_a, settings, "a"), IngestLoop(rec_b, settings, "b")
    with caplog.at_level(logging.WARNING, logger="bot.ingest_loop"):
        ran = await asyncio.gather(a.ingest_if_due(), b.ingest_if_due())
    assert sorted(ran) == [False, True]                       # the lock: one of them
    lines = [r.getMessage() for r in caplog.records if "gone.jsonl" in r.getMessage()]
    assert len(lines) == 1 and "no such file" in lines[0]    # one line, the rest kept
    assert await a.ingest_if_due() is False and await b.ingest_if_due() is False   # not again yet
    status = a.status()["last_ingest"]
    assert status["by"] in ("a", "b") and status["results"][settings.sources[0]]["new"] == 3
    assert "error" in status["results"][settings.sources[1]]
    assert seq_reached_by(rec_a.store.r, rec_a.store.prefix, status["at"] + 1) == 3

    assert len(rec_c) == 0                 # a third replica, running since before the ingest
    stop = asyncio.Event()
    loop = asyncio.create_task(IngestLoop(rec_c, IngestSettings(refresh_every=0.05), "c").run(stop))
    for _ in range(100):
        if len(rec_c) == 3:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, 10)
    assert len(rec_c) == 3 and len(rec_c.search("language models", k=3)) == 3   # no restart


def test_ingest_settings_are_checked_at_start():
    assert IngestSettings.from_env({"PAPERBOT_SOURCES": "arxiv:cs.LG, hf-daily",
                                    "PAPERBOT_INGEST_EVERY": "30m"}) == IngestSettings(
        sources=("arxiv:cs.LG", "hf-daily"), every=1800.0)
    for env, message in [({"PAPERBOT_SOURCES": "arxiv:not a category"}, "PAPERBOT_SOURCES"),
                         ({"PAPERBOT_SOURCES": "rss:whatever"}, "is not a feed address"),
                         ({"PAPERBOT_SOURCES": "gopher:whatever"}, "unknown source"),
                         ({"PAPERBOT_INGEST_EVERY": "10s"}, "at least 1m"),
                         ({"PAPERBOT_INGEST_EVERY": "often"}, "duration")]:
        with pytest.raises(ValueError, match=message):
            IngestSettings.from_env(env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_health_answers_200_or_503_with_the_reason(rec):
    adapters = {"slack": "running"}
    ping = {"fail": False}

    def redis_ping():
        if ping["fail"]:
            raise ConnectionError("down")
        return rec.store.r.ping()

    server = HealthServer(HealthSettings(port=_free_port()), redis_ping, rec.store.count,
                          lambda: dict(adapters), {"ingest": lambda: {"last_ingest": None}})
    port = await server.start()
    url = f"http://127.0.0.1:{port}/health"
    try:
        async with httpx.AsyncClient() as http:
            ok = await http.get(url)
            assert ok.status_code == 200 and ok.json() == {
                "redis": "ok", "adapters": {"slack": "running"}, "papers": 0,
                "ingest": {"last_ingest": None}, "status": "ok"}
            adapters["slack"] = "failed"
            assert (await http.get(url)).status_code == 503
            adapters["slack"] = "running"
            ping["fail"] = True
            down = await http.get(url)
            assert down.status_code == 503 and down.json()["redis"] == "error: ConnectionError"
        taken = HealthServer(HealthSettings(port=port), redis_ping, rec.store.count, dict, {})
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}"):
            await taken.start()
        assert await HealthServer(HealthSettings(port=0), redis_ping, rec.store.count, dict, {}).start() is None
    finally:
        await server.stop()
