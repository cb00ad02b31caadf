"""The health endpoint of `paperbot serve`: `GET /health` on PAPERBOT_HEALTH_HOST (127.0.0.1)
and PAPERBOT_HEALTH_PORT (default 8787; 0 turns it off).

It answers JSON, 200 when Redis takes a write, the index agrees with Redis and every adapter
runs, 503 otherwise:

    {"status": "ok", "redis": "ok", "index": "ok", "papers": 1234,
     "adapters": {"slack": "running"}, "scheduler": {...}, "ingest": {"last_ingest": {...}}}

- "redis": a write, not a PING: a Redis that answers but refuses writes (READONLY after a
  failover, OOM, MISCONF, NOREPLICAS: `recommender.redis_errors`) is as down as a stopped one.
  The probe is a SET of `P health:<replica>` (expires after a minute).
- "index": `Recommender.corpus_problem()`: why the in-memory index disagrees with Redis (a
  FLUSHDB, a restore of an older copy) until the refresh has reloaded it, else "ok".
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from recommender import Recommender
from recommender.redis_errors import describe

log = logging.getLogger(__name__)

DEFAULT_PORT = 8787
CHECK_TIMEOUT = 2.0
PROBE_TTL_MS = 60_000


@dataclasses.dataclass(frozen=True)
class HealthSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HealthSettings:
        port = (env.get("PAPERBOT_HEALTH_PORT") or "").strip()
        if port and (not port.isdigit() or int(port) > 65535):
            raise ValueError(f"PAPERBOT_HEALTH_PORT must be a port number (0: off), not {port[:20]!r}")
        return cls(host=(env.get("PAPERBOT_HEALTH_HOST") or "").strip() or cls.host,
                   port=int(port) if port else cls.port)


class HealthServer:
    """`report()` gathers the parts; each part is a function that may block (run in a thread)."""

    def __init__(self, settings: HealthSettings, redis_ping: Callable[[], Any],
                 paper_count: Callable[[], int], adapters: Callable[[], dict[str, str]],
                 parts: Mapping[str, Callable[[], dict[str, Any]]],
                 index_check: Callable[[], str | None] | None = None):
        self.settings = settings
        self._ping, self._count, self._adapters, self._parts = redis_ping, paper_count, adapters, parts
        self._index_check = index_check
        self._runner: web.AppRunner | None = None
        self._was_healthy = True
        self.port: int | None = None

    @classmethod
    def for_recommender(cls, rec: Recommender, settings: HealthSettings, replica: str,
                        adapters: Callable[[], dict[str, str]],
                        parts: Mapping[str, Callable[[], dict[str, Any]]]) -> HealthServer:
        """The endpoint of `paperbot serve`: a write probe, the index check, the paper count."""
        probe = rec.store.key("health", replica)
        return cls(settings, lambda: rec.store.r.set(probe, f"{time.time():.0f}", px=PROBE_TTL_MS),
                   rec.store.count, adapters, parts, rec.corpus_problem)

    async def report(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {}
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping), CHECK_TIMEOUT)
            body["redis"] = "ok"
        except Exception as exc:   # noqa: BLE001 - any failure is "Redis is not answering"
            body["redis"] = f"error: {describe(exc)}"
        body["adapters"] = self._adapters()
        if body["redis"] == "ok":
            try:
                if self._index_check is not None:
                    problem = await asyncio.wait_for(asyncio.to_thread(self._index_check), CHECK_TIMEOUT)
                    body["index"] = problem or "ok"
                body["papers"] = await asyncio.wait_for(asyncio.to_thread(self._count), CHECK_TIMEOUT)
                for name, part in self._parts.items():
                    body[name] = await asyncio.wait_for(asyncio.to_thread(part), CHECK_TIMEOUT)
            except Exception as exc:   # noqa: BLE001
                body["redis"] = f"error: {describe(exc)}"
        healthy = (body["redis"] == "ok" and body.get("index", "ok") == "ok"
                   and all(v == "running" for v in body["adapters"].values()))
        body["status"] = "ok" if healthy else "unhealthy"
        if healthy != self._was_healthy:   # one line when it changes, not one per probe
            self._was_healthy = healthy
            if healthy:
                log.info("health: ok again")
            else:
                log.warning("health: unhealthy: redis %s, index %s, adapters %s", body["redis"],
                            body.get("index", "-"), body["adapters"])
        return (200 if healthy else 503), body

    async def _handle(self, request: web.Request) -> web.Response:
        status, body = await self.report()
        return web.json_response(body, status=status)

    async def start(self) -> int | None:
        """Listen (unless the port is 0); returns the bound port. ValueError if it can't."""
        if self.settings.port == 0:
            return None
        app = web.Application()
        app.router.add_get("/health", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.settings.host, self.settings.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ValueError(f"health endpoint: cannot listen on {self.settings.host}:"
                             f"{self.settings.port} ({exc.strerror or exc}); set "
                             "PAPERBOT_HEALTH_PORT (0 turns it off)") from None
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("health: http://%s:%d/health", self.settings.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
