"""Periodic ingestion inside `paperbot serve`: read the configured sources on a cadence, and
keep every replica's index up to date with what any replica stored.

- Every PAPERBOT_INGEST_EVERY (default 1h) one replica reads PAPERBOT_SOURCES
  (`arxiv:cs.LG,arxiv:cs.CL,hf-daily,biorxiv:neuroscience`) with `read_source` and stores them with
  `Recommender.add_papers` (in a thread: embedding is CPU work). New text is embedded once;
  the vector cache is shared through Redis. A lock in Redis, and the time of the last ingest by
  any replica, keep replicas from all fetching at once. The lock is renewed while the ingest
  runs (a full one can take longer than LOCK_SECONDS); a replica that finds its lock taken by
  another stops its ingest between batches, so two never run at once.
- A stop (SIGTERM) ends an ingest under way at once: the download is cut (`HttpClient`'s stop),
  embedding ends after the batch under way (INGEST_BATCH papers); what was stored is kept.
- A source that fails (`SourceError`: down, rate-limited, malformed) logs one line; the other
  sources, and whatever was stored before the failure, are kept.
- With a model configured (PAPERBOT_LLM_URL, `recommender.tldr`), the round then writes the
  TL;DRs of the papers it added, still holding the lock; posts and chat never wait for them.
- Every PAPERBOT_REFRESH_EVERY (default 60s) every replica calls `Recommender.refresh()`, which
  reads only papers newer than the ones it has: new papers reach all indexes without a restart.
  When Redis went backwards (a FLUSHDB, a restore, a lagging replica promoted) it rebuilds the
  index from Redis instead (`recommender.corpus`); /health says 503 until it has.

Keys (P = the prefix):

| key            | type   | holds                                                              |
|----------------|--------|--------------------------------------------------------------------|
| P ingest:lock  | string | token of the replica reading the sources now (expires; renewed while it reads) |
| P ingest:last  | hash   | at (unix), by (replica), took (s), results (JSON per source: read/new/embedded, or error) |
| P ingest:marks | zset   | ingest sequence reached (member) → unix time: where a new schedule's first post starts |
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from recommender import Recommender
from recommender.config import parse_duration
from recommender.sources import SourceError, Stopped, read_source
from recommender.sources.http import StopFlag
from recommender.tldr import noting_ids, write_tldrs


log = logging.getLogger(__name__)

MARKS_KEPT_DAYS = 30
LOCK_SECONDS = 15 * 60
INGEST_BATCH = 64       # papers per embedding batch: a stop is honoured between batches


class _Stopped(Exception):
    pass


class _EitherStop:
    """Set when the process stops or this ingest lost its lock (`lost`)."""

    def __init__(self, process: threading.Event):
        self.process = process
        self.lost = threading.Event()

    def is_set(self) -> bool:
        return self.process.is_set() or self.lost.is_set()


@dataclasses.dataclass(frozen=True)
class IngestSettings:
    sources: tuple[str, ...] = ()
    every: float = 3600.0
    refresh_every: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        sources = tuple(s.strip() for s in (env.get("PAPERBOT_SOURCES") or "").split(",") if s.strip())
        every = (env.get("PAPERBOT_INGEST_EVERY") or "").strip()
        refresh = (env.get("PAPERBOT_REFRESH_EVERY") or "").strip()
        settings = cls(
            sources=sources,
            every=parse_duration(every, "PAPERBOT_INGEST_EVERY") if every else cls.every,
            refresh_every=(parse_duration(refresh, "PAPERBOT_REFRESH_EVERY") if refresh
                           else cls.refresh_every))
        if settings.every < 60:
            raise ValueError("PAPERBOT_INGEST_EVERY must be at least 1m (the sources are "
                             "public services: be polite)")
        for spec in sources:   # a misspelt source fails at start, not an hour later
            try:
                read_source(spec)  # checks the spec; fetches nothing until iterated
            except SourceError as exc:
                raise ValueError(f"PAPERBOT_SOURCES: {exc}") from None
        return settings


def _key(prefix: str, what: str) -> str:
    return f"{prefix}ingest:{what}"


def seq_reached_by(client: redis.Redis, prefix: str, when: float) -> float:
    """The ingest sequence the corpus had reached at unix time `when` (0 if unknown): papers
    after it were ingested later."""
    rows = client.zrevrangebyscore(_key(prefix, "marks"), when, "-inf", start=0, num=1)
    return float(rows[0]) if rows else 0.0


def unreachable_sources(client: redis.Redis, prefix: str) -> list[str]:
    """The sources that failed in the last ingest round (any replica's): what a "no new
    papers" note must mention, so that an outage is not reported as a quiet day."""
    raw = client.hget(_key(prefix, "last"), "results")
    results = json.loads(raw) if raw else {}
    return [spec for spec, result in results.items()
            if result.get("error") not in (None, "stopped")]


def ingest_sources(rec: Recommender, sources: list[str] | tuple[str, ...], at: float | None = None,
                   stop: StopFlag | None = None, read: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Read and store each source; a failing source logs one line and the rest go on. Records
    the ingest sequence reached at `at` (default now); the ids read go to `read`. Runs in a
    thread; setting `stop` ends it mid-download or after the embedding batch under way."""
    results: dict[str, dict[str, Any]] = {}

    def progress(_: int) -> None:
        if stop is not None and stop.is_set():
            raise _Stopped

    for spec in sources:
        try:
            papers = read_source(spec, endpoints=rec.settings.sources, stop=stop)
            counts = rec.add_papers(papers if read is None else noting_ids(papers, read),
                                    progress=progress, batch=INGEST_BATCH)
        except (_Stopped, Stopped) as exc:
            where = "mid-download" if isinstance(exc, Stopped) else "between batches"
            log.info("ingest %s: stopped %s; what was stored is kept", spec, where)
            results[spec] = {"error": "stopped"}
            break
        except SourceError as exc:
            log.warning("ingest %s: %s", spec, exc)
            results[spec] = {"error": str(exc)}
            continue
        results[spec] = counts.as_dict()
        log.info("ingest %s: read %d, new %d, embedded %d", spec, counts.read, counts.new,
                 counts.embedded)
    at = time.time() if at is None else at
    client, prefix = rec.store.r, rec.store.prefix
    pipe = client.pipeline(transaction=False)
    pipe.zremrangebyscore(_key(prefix, "marks"), "-inf", at - MARKS_KEPT_DAYS * 86400)
    # NX: a mark keeps the time its sequence was first reached. A round that adds nothing (a
    # quiet day, every source down) must not move it later, or the corpus would seem smaller
    # than it was in between.
    pipe.zadd(_key(prefix, "marks"), {repr(rec.store.last_seq()): at}, nx=True)
    pipe.execute()
    return results


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Keep the lock: 1 while ours (taken again if it vanished: a restarted or flushed Redis), 0 once
# another replica holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 1 end
return 0
"""


class IngestLoop:
    def __init__(self, rec: Recommender, settings: IngestSettings, replica: str = "paperbot"):
        self.rec = rec
        self.settings = settings
        self.replica = replica
        self.last_local: dict[str, Any] | None = None
        self.last_refresh: float | None = None
        self._stop_thread = threading.Event()    # the process is stopping: every ingest ends

    @property
    def _r(self) -> redis.Redis:
        return self.rec.store.r

    async def run(self, stop: asyncio.Event) -> None:
        if self.settings.sources:
            log.info("ingesting %s every %.0fs", ", ".join(self.settings.sources), self.settings.every)
        next_ingest = next_refresh = time.monotonic()
        relay = asyncio.create_task(self._relay_stop(stop))
        try:
            while not stop.is_set():
                now = time.monotonic()
                if self.settings.sources and now >= next_ingest:
                    await self._guarded(self.ingest_if_due(), "ingest")
                    next_ingest = time.monotonic() + min(self.settings.every, 300)
                if now >= next_refresh:
                    await self._guarded(self.refresh(), "refresh")
                    next_refresh = time.monotonic() + self.settings.refresh_every
                wait = min(next_refresh, next_ingest if self.settings.sources else next_refresh)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.05, wait - time.monotonic()))
        finally:
            relay.cancel()
            self._stop_thread.set()

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        """The stop reaches the ingest thread now, not when the ingest under way returns."""
        await stop.wait()
        self._stop_thread.set()

    async def _guarded(self, work, what: str) -> None:
        try:
            await work
        except (redis.RedisError, OSError) as exc:
            log.warning("%s skipped: storage unavailable (%s)", what, exc)
        except Exception:
            log.exception("%s failed", what)

    async def refresh(self) -> int:
        loaded = await asyncio.to_thread(self.rec.refresh)
        self.last_refresh = time.time()
        if loaded:
            log.info("refresh: %d papers stored by other processes are now searchable", loaded)
        return loaded

    async def ingest_if_due(self) -> bool:
        """Ingest unless a replica did within the cadence or is doing it now; True if it ran.
        (`every` itself is checked against the shared last time, so replicas take turns.)"""
        if not await asyncio.to_thread(self._due):
            return False
        lock = _key(self.rec.store.prefix, "lock")
        token = f"{self.replica}:{uuid.uuid4().hex[:8]}"
        lock_ms = max(1, int(LOCK_SECONDS * 1000))
        if not await asyncio.to_thread(self._r.set, lock, token, nx=True, px=lock_ms):
            return False
        stop = _EitherStop(self._stop_thread)
        keeper = asyncio.create_task(self._keep_lock(lock, token, lock_ms, stop))
        try:
            if not await asyncio.to_thread(self._due):   # another replica finished meanwhile
                return False
            await self.ingest_now(stop)
        finally:
            keeper.cancel()
            await asyncio.to_thread(self._r.eval, _RELEASE, 1, lock, token)
        return True

    async def _keep_lock(self, lock: str, token: str, lock_ms: int, stop: _EitherStop) -> None:
        """Renew the lock three times per lifetime while the ingest runs; if another replica
        holds it (ours expired: this process was frozen, or Redis lost it), stop this ingest."""
        while True:
            await asyncio.sleep(lock_ms / 3000)
            try:
                held = await asyncio.to_thread(self._r.eval, _RENEW, 1, lock, token, lock_ms)
            except redis.RedisError as exc:
                log.warning("ingest lock not renewed (storage unavailable: %s); retrying", exc)
                continue
            if not held:
                log.warning("ingest lock taken over by another replica; stopping this ingest "
                            "between batches")
                stop.lost.set()
                return

    def _due(self) -> bool:
        last = self._r.hget(_key(self.rec.store.prefix, "last"), "at")
        return last is None or time.time() - float(last) >= self.settings.every * 0.95

    async def ingest_now(self, stop: StopFlag | None = None) -> dict[str, Any]:
        started = time.time()
        results, tldr = await asyncio.to_thread(self._round, stop or self._stop_thread)
        summary = {"at": time.time(), "by": self.replica, "took": round(time.time() - started, 1),
                   "results": results, "tldr": tldr}
        await asyncio.to_thread(self._r.hset, _key(self.rec.store.prefix, "last"), mapping={
            "at": summary["at"], "by": self.replica, "took": summary["took"],
            "results": json.dumps(results)})
        self.last_local = summary
        return summary

    def _round(self, stop: StopFlag) -> tuple[dict[str, dict[str, Any]], dict[str, int] | None]:
        """One round in a thread: the sources, then (with a model configured) the TL;DRs of
        the papers it read that have none yet, still under the ingest lock (no two replicas
        write the same)."""
        read: list[str] = []
        results = ingest_sources(self.rec, self.settings.sources, None, stop, read)
        ids = list(dict.fromkeys(read)) if self.rec.settings.llm.enabled else []
        tldr = write_tldrs(self.rec.store, self.rec.settings.llm, ids, stop=stop)
        if tldr is not None:
            log.info("tldr: %d written, %d failed, %d over the daily budget", tldr.written,
                     tldr.failed, tldr.over_budget)
        return results, tldr.as_dict() if tldr else None

    def status(self) -> dict[str, Any]:
        """The last ingest by any replica (from Redis), and this replica's last refresh."""
        raw = self._r.hgetall(_key(self.rec.store.prefix, "last"))
        data = {k.decode(): v.decode() for k, v in raw.items()}
        last = None
        if data:
            last = {"at": float(data["at"]), "by": data.get("by"), "took": float(data.get("took", 0)),
                    "results": json.loads(data.get("results", "{}")),
                    "age_seconds": round(time.time() - float(data["at"]))}
        return {"sources": list(self.settings.sources), "every_seconds": self.settings.every,
                "last_ingest": last, "last_refresh": self.last_refresh}
