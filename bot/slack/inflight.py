"""The listener work that runs after its ack, so that a stop can let it finish first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


class InFlight:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for work under way (a search, a post) to finish."""
        pending = {t for t in self._tasks if not t.done() and t is not asyncio.current_task()}
        if pending:
            log.info("waiting for %d Slack requests under way", len(pending))
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                task.cancel()
