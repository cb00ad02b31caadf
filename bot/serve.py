"""`paperbot serve`: every configured adapter in one asyncio process, sharing one Recommender.

Each adapter is a coroutine `run(rec, stop)` that returns when `stop` is set (SIGTERM/SIGINT).
CPU work (embedding, ranking) goes to threads with `asyncio.to_thread`, so no acknowledgement
waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from recommender import Recommender

log = logging.getLogger(__name__)

Adapter = Callable[[Recommender, asyncio.Event], Awaitable[None]]


async def serve(rec: Recommender, adapters: dict[str, Adapter]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving with %s", ", ".join(adapters))
    tasks = {asyncio.create_task(run(rec, stop), name=name): name for name, run in adapters.items()}
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    stop.set()   # one adapter ending (or failing) ends the process: a supervisor restarts it
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    failures = [o for o in outcomes if isinstance(o, Exception)]
    for task, outcome in zip(tasks, outcomes):
        if isinstance(outcome, Exception) and not isinstance(outcome, ValueError):
            log.error("adapter %s stopped", tasks[task], exc_info=outcome)
    log.info("stopped")
    if failures:
        raise failures[0]
