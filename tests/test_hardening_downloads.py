"""Hardening: downloads that never end, downloads too big, a stop mid-ingest, two ingesters.

Through the real `HttpClient` (httpx) against the replay server of `testkit.fake_sources` on
127.0.0.1 (its `drip` replies: a byte now and then, never silent long enough for a read
timeout), the real ingestion loop, `paperbot serve` as a subprocess, a real Redis or Valkey and
the real embedding model:

- a dripping feed ends in one-line `SourceError` at the download's deadline; a body over the
  size cap ends in one as soon as the cap is passed, declared or not;
- SIGTERM ends `paperbot serve` within 15 s while a download drips; a stop mid-embedding ends the
  ingestion after the batch under way, keeping what was stored;
- the ingest lock is renewed while a slow ingest runs, so another replica does not start one;
- two processes storing overlapping papers at once give every paper one number, 1..N, no gaps;
- the lock files pin every dependency with hashes; `make` takes CPU torch from PyTorch's index
  (falling back to the default one); the image's base is pinned by tag and digest.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

import bot.ingest_loop
import recommender.sources
from bot.ingest_loop import IngestLoop, IngestSettings
from recommender.config import Settings
from recommender.paper import Paper
from recommender.sources import HttpClient, SourceError
from recommender.store import PaperStore, redis_client
from test_hardening_sources import ROWS, rss
from testkit.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from testkit.fake_sources import FakeSourceServer, Reply

RSS_PATH = "/rss/cs.LG"


@pytest.fixture
def fake():
    with FakeSourceServer() as server:
        yield server


def quick_client(**kw) -> HttpClient:
    return HttpClient(**{"timeout": 2.0, "connect_timeout": 1.0, "max_attempts": 2,
                         "backoff_base": 0.01, "max_wait": 5, "min_interval": 0, **kw})


# -- deadline and size cap ------------------------------------------------------------------
def test_a_dripping_feed_ends_in_one_source_error_at_its_deadline(fake):
    # a byte every 0.3 s: each read gets one well within the 2 s read timeout, for 10 minutes
    fake.route(RSS_PATH, Reply(body="x" * 2000, drip=0.3))
    started = time.monotonic()
    with quick_client(deadline=2.0) as http, pytest.raises(SourceError) as caught:
        http.get_text(fake.url(RSS_PATH), what="arXiv listing for cs.LG")
    took = time.monotonic() - started
    assert 1.9 < took < 3.5, took
    message = str(caught.value)
    assert message == "arXiv listing for cs.LG unavailable: no complete answer within the 2 s deadline"
    assert len(fake.requests_to(RSS_PATH)) == 1     # the deadline is the whole call's: no retry


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_body_over_the_size_cap_ends_in_one_source_error(fake, declared):
    fake.route(RSS_PATH, Reply(body=b"<rss>" + b"x" * 3_000_000, length=declared))
    fake.route("/small", Reply(body="small enough", content_type="text/plain"))
    with quick_client(max_bytes=1_000_000) as http:
        with pytest.raises(SourceError) as caught:
            http.get_text(fake.url(RSS_PATH), what="arXiv listing for cs.LG")
        assert str(caught.value) == ("arXiv listing for cs.LG unavailable: the answer is larger "
                                     "than the 1.0 MB size cap")
        assert len(fake.requests_to(RSS_PATH)) == 1        # too big is not worth a retry
        assert http.get_text(fake.url("/small")) == "small enough"


def test_a_stop_ends_a_dripping_download_and_a_retry_wait_at_once(fake):
    fake.route(RSS_PATH, Reply(body="x" * 2000, drip=0.3))
    fake.route("/busy", Reply(503, "busy", {"Retry-After": "60"}, content_type="text/plain"))
    stop = threading.Event()
    with quick_client(stop=stop, max_wait=120) as http:
        for path in (RSS_PATH, "/busy"):
            stop.clear()
            threading.Timer(1.0, stop.set).start()
            started = time.monotonic()
            with pytest.raises(recommender.sources.Stopped, match="stopped"):
                http.get_text(fake.url(path))
            assert time.monotonic() - started < 2.5


# -- SIGTERM ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_ends_serve_within_15_s_while_a_download_drips(cli_env, fake, tmp_path):
    # A whole feed, one byte a second: hours of download that no read timeout ever stops.
    fake.route(RSS_PATH, Reply(body=rss(ROWS[:20]), drip=1.0))
    log_path = tmp_path / "serve.log"
    with FakeSlack() as slack, open(log_path, "w") as log_file:
        env = {**cli_env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": slack.api_url, "PAPERBOT_SOURCES": "arxiv:cs.LG",
               "ARXIV_RSS_URL": fake.url("/rss")}
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "-v", "serve", "--slack-http", "--host", "127.0.0.1",
             "--port", str(_free_port())], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            deadline = time.monotonic() + 180
            while not fake.requests_to(RSS_PATH):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "serve never fetched:\n" + log_path.read_text()
                time.sleep(0.1)
            time.sleep(2.0)                                  # mid-drip
            process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pytest.fail("serve still running 15 s after SIGTERM:\n" + log_path.read_text())
            took = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log_path.read_text()
    assert process.returncode == 0, text
    assert "Traceback" not in text
    assert "ingest arxiv:cs.LG: stopped mid-download" in text
    print(f"serve exited {took:.1f} s after SIGTERM")


def many_papers(n: int) -> list[dict]:
    words = ("graph", "neural", "network", "language", "model", "protein", "vision", "robot",
             "sparse", "kernel", "bandit", "causal", "quantum", "diffusion", "audio", "tabular")
    return [{"id": f"2606.{i:05d}", "title": f"On {words[i % 16]} {words[i * 7 % 16]} {i}",
             "abstract": " ".join(words[(i * k) % 16] for k in range(1, 40)) + f" number {i}.",
             "authors": ["A. Author"], "categories": ["cs.LG"], "published": "2026-06-08"}
            for i in range(n)]


async def test_a_stop_mid_embedding_ends_the_ingest_after_the_batch_under_way(
        rec, tmp_path, caplog):
    path = tmp_path / "big.jsonl"
    total = 3000
    path.write_text("".join(json.dumps(row) + "\n" for row in many_papers(total)))
    loop = IngestLoop(rec, IngestSettings(sources=(str(path),)), "replica-a")
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="bot.ingest_loop")
    runner = asyncio.create_task(loop.run(stop))
    deadline = time.monotonic() + 120
    while rec.store.count() == 0:                       # the first batch is stored
        assert time.monotonic() < deadline and not runner.done()
        await asyncio.sleep(0.05)
    stop.set()
    stopped = time.monotonic()
    await asyncio.wait_for(runner, 30)
    took = time.monotonic() - stopped
    kept = rec.store.count()
    assert 0 < kept < total / 2, kept
    assert took < 10, took
    assert f"ingest {path}: stopped between batches" in caplog.text


# -- the ingest lock --------------------------------------------------------------------------
async def test_the_ingest_lock_is_renewed_so_a_slow_ingest_is_never_run_twice(
        make_recommender, fake, monkeypatch):
    a, b = make_recommender(), make_recommender()
    feed = rss(ROWS[:3])
    piece = len(feed) // 30 + 1
    fake.route(RSS_PATH, Reply(body=feed, drip=0.13, piece=piece))     # about 4 s in all
    settings = Settings.from_env({"ARXIV_RSS_URL": fake.url("/rss")})
    for rec in (a, b):
        monkeypatch.setattr(rec, "settings", settings)
    monkeypatch.setattr(recommender.sources, "HttpClient", functools.partial(quick_client))
    monkeypatch.setattr(bot.ingest_loop, "LOCK_SECONDS", 1)        # the ingest outlasts it 4x
    ingest = IngestSettings(sources=("arxiv:cs.LG",), every=60)
    first, second = IngestLoop(a, ingest, "replica-a"), IngestLoop(b, ingest, "replica-b")
    lock_key = f"{a.store.prefix}ingest:lock"

    started = time.monotonic()
    running = asyncio.create_task(first.ingest_if_due())
    others: list[bool] = []
    holders: set[bytes] = set()

    async def other_replica() -> None:
        while not running.done():
            await asyncio.sleep(0.15)
            holders.add(a.store.r.get(lock_key) or b"")
            others.append(await second.ingest_if_due())

    await asyncio.gather(running, other_replica())
    assert running.result() is True
    assert time.monotonic() - started > 3           # the ingest outlasted the lock 3 times
    assert others and not any(others), others       # replica-b never started one
    assert len(fake.requests_to(RSS_PATH)) == 1
    assert all(h.startswith(b"replica-a:") for h in holders if h), holders
    assert first.status()["last_ingest"]["results"] == {
        "arxiv:cs.LG": {"read": 3, "new": 3, "embedded": 3}}
    assert a.store.r.get(lock_key) is None                         # released when done


async def test_an_ingest_whose_lock_another_replica_took_stops(make_recommender, fake,
                                                                monkeypatch, caplog):
    rec = make_recommender()
    fake.route(RSS_PATH, Reply(body=rss(ROWS[:3]), drip=0.05, piece=64))     # seconds
    monkeypatch.setattr(rec, "settings", Settings.from_env({"ARXIV_RSS_URL": fake.url("/rss")}))
    monkeypatch.setattr(recommender.sources, "HttpClient", functools.partial(quick_client))
    monkeypatch.setattr(bot.ingest_loop, "LOCK_SECONDS", 1)
    loop = IngestLoop(rec, IngestSettings(sources=("arxiv:cs.LG",), every=60), "replica-a")
    lock_key = f"{rec.store.prefix}ingest:lock"
    caplog.set_level(logging.INFO, logger="bot.ingest_loop")
    running = asyncio.create_task(loop.ingest_if_due())
    while not fake.requests_to(RSS_PATH):
        await asyncio.sleep(0.02)
    # this replica's lock expired while it was frozen, and replica-b took it
    rec.store.r.set(lock_key, "replica-b:1234", px=60_000)
    started = time.monotonic()
    assert await asyncio.wait_for(running, 5) is True
    assert time.monotonic() - started < 1.5                    # a renewal finds it: a third of 1 s
    assert loop.status()["last_ingest"]["results"] == {"arxiv:cs.LG": {"error": "stopped"}}
    assert rec.store.r.get(lock_key) == b"replica-b:1234"      # replica-b's lock is left alone
    assert rec.store.count() == 0
    assert "ingest lock taken over by another replica" in caplog.text


# -- paper numbering --------------------------------------------------------------------------
def test_two_processes_storing_overlapping_papers_number_each_once_without_gaps(
        redis_url, prefix):
    rounds, size = 150, 12

    def paper(r: int, i: int) -> Paper:
        return Paper(id=f"r{r}-{i}", title=f"Paper {r}.{i}", abstract="An abstract.")

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def process(offset: int) -> None:
        client = redis_client(redis_url)
        store = PaperStore(client, prefix)
        try:
            for r in range(rounds):
                batch = [paper(r, i) for i in range(offset, offset + size)]   # 2/3 shared
                barrier.wait(timeout=30)
                store.save_papers(batch)
        except BaseException as exc:   # noqa: BLE001 - reported by the test below
            errors.append(exc)
            barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=process, args=(offset,)) for offset in (0, size // 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    store = PaperStore(redis_client(redis_url), prefix)
    numbered = store.paper_ids()
    expected = rounds * (size + size // 3)
    assert len(numbered) == expected
    assert sorted(score for _, score in numbered) == list(range(1, expected + 1))
    assert int(store.r.get(store.seq_key)) == expected
    store.close()


# -- dependencies: the lock files, CPU torch, the pinned base image ----------------------------
ROOT = Path(__file__).resolve().parent.parent


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, hashes) of a pip-compile --generate-hashes file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            current = _name(match[1])
            assert current not in entries, f"{path.name}: {current} pinned twice"
            entries[current] = (match[2], [])
        elif match := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line):
            assert current, f"{path.name}: a hash before any requirement"
            entries[current][1].append(match[1])
        elif line.strip() and not line.lstrip().startswith("#") and not line.startswith(" "):
            pytest.fail(f"{path.name}: not a pinned requirement: {line!r}")
    return entries


def test_the_lock_files_pin_every_dependency_with_hashes_and_torch_comes_from_the_cpu_index(
        tmp_path):
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    test_extra = [Requirement(r) for r in project["optional-dependencies"]["test"]]
    lock, test_lock = read_lock(ROOT / "requirements.lock"), read_lock(ROOT / "requirements-test.lock")
    makefile, dockerfile = (ROOT / "Makefile").read_text(), (ROOT / "Dockerfile").read_text()

    torch_pin = re.search(r"^TORCH\s*=\s*torch==(\S+)$", makefile, re.M)[1]
    for entries, wanted in ((lock, runtime), (test_lock, runtime + test_extra)):
        for req in wanted:
            if _name(req.name) == "torch":      # outside the locks: the CPU build, see Makefile
                assert req.specifier.contains(torch_pin)
                assert _name(req.name) not in entries
                continue
            assert _name(req.name) in entries, f"{req.name} is not in the lock"
            version, hashes = entries[_name(req.name)]
            assert req.specifier.contains(version, prereleases=True), (req, version)
        assert all(hashes for _, hashes in entries.values()), "a pin without a hash"
    # one set of versions: the image runs what CI tested
    assert {name: pin for name, (pin, _) in test_lock.items() if name in lock} == {
        name: pin for name, (pin, _) in lock.items()}

    # `make` on a fresh machine: CPU torch from PyTorch's index, else the default index; then
    # the locks, hashes required
    dry = subprocess.run(["make", "-n", "-B", "install-test", f"VENV={tmp_path / 'venv'}"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    bin_ = tmp_path / "venv" / "bin"
    cpu_first = (f"{bin_}/pip install --quiet --no-deps --retries 0 --timeout 15 "
                 f"--index-url https://download.pytorch.org/whl/cpu torch=={torch_pin}")
    fallback = f"|| {bin_}/pip install --quiet torch=={torch_pin}"
    assert re.search(re.escape(cpu_first) + r"\s*\\?\s*" + re.escape(fallback), dry), dry
    order = [dry.index(cpu_first), dry.index("--require-hashes -r requirements.lock"),
             dry.index(f"{bin_}/pip install --quiet --no-deps -e ."),
             dry.index("--require-hashes -r requirements-test.lock")]
    assert order == sorted(order), dry

    # the image: a pinned base (exact patch tag and digest), CPU torch, the lock
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    assert (f"pip install --no-deps torch=={torch_pin} --index-url "
            "https://download.pytorch.org/whl/cpu") in dockerfile
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile
