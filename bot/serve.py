"""`paperbot serve`: every configured adapter, the scheduler and the periodic ingestion in one
asyncio process, sharing one Recommender (one model, one index).

- Each adapter is a coroutine `run(rec, stop)` that returns when `stop` is set; a running
  adapter puts its poster (`bot.scheduler.delivery.Poster`) into the shared `posters` dict, so
  the scheduler can post daily picks through it.
- The scheduler (`bot.scheduler`) makes each due daily post exactly once, whatever the number
  of replicas; the ingestion loop (`bot.ingest_loop`) reads PAPERBOT_SOURCES on a cadence and
  refreshes the index with what other replicas stored.
- `GET /health` on 127.0.0.1:8787 (`bot.health`) reports Redis (a write), the index, adapters,
  scheduler and ingest.
- SIGTERM / SIGINT: adapters stop taking requests and finish what they acknowledged; the
  scheduler starts no new post and lets one under way hand back after its current message;
  an ingest under way cuts its download and stops embedding after the batch under way (the
  process exits within 15 s: `asyncio.run` waits for those threads).

CPU work (embedding, ranking) goes to threads with `asyncio.to_thread`, so no acknowledgement
waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from recommender import Recommender

from .health import HealthServer
from .ingest_loop import IngestLoop
from .scheduler import Scheduler
from .scheduler.scheduler import replica_name
from .settings import BotSettings

log = logging.getLogger(__name__)

Adapter = Callable[[Recommender, asyncio.Event], Awaitable[None]]


async def serve(rec: Recommender, adapters: dict[str, Adapter], *,
                posters: dict[str, Any] | None = None,
                settings: BotSettings = BotSettings()) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    replica = replica_name()
    posters = {} if posters is None else posters
    scheduler = Scheduler(rec, posters, settings.scheduler, settings.clock, replica)
    ingest = IngestLoop(rec, settings.ingest, replica)
    tasks: dict[asyncio.Task, str] = {}

    def adapter_states() -> dict[str, str]:
        states = {}
        for task, name in tasks.items():
            if not task.done():
                states[name] = "running"
            else:
                states[name] = "failed" if not task.cancelled() and task.exception() else "stopped"
        return states

    health = HealthServer.for_recommender(rec, settings.health, replica, adapter_states,
                                          {"scheduler": scheduler.status, "ingest": ingest.status})
    await health.start()
    log.info("serving with %s as %s", ", ".join(adapters) or "no chat adapters", replica)
    tasks.update({asyncio.create_task(run(rec, stop), name=name): name
                  for name, run in adapters.items()})
    background = [asyncio.create_task(scheduler.run(stop), name="scheduler"),
                  asyncio.create_task(ingest.run(stop), name="ingest")]
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([*tasks, *background, stopper], return_when=asyncio.FIRST_COMPLETED)
    stop.set()   # one adapter ending (or failing) ends the process: a supervisor restarts it
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for task in background:
        try:
            await task
        except Exception:
            log.exception("%s stopped with an error", task.get_name())
    stopper.cancel()
    await health.stop()
    failures = [o for o in outcomes if isinstance(o, Exception)]
    for task, outcome in zip(tasks, outcomes):
        if isinstance(outcome, Exception) and not isinstance(outcome, ValueError):
            log.error("adapter %s stopped", tasks[task], exc_info=outcome)
    log.info("stopped")
    if failures:
        raise failures[0]
