"""The console adapter: the same `/papers` commands as Slack and Discord, in a terminal.

It lets anyone try paperbot with no workspace, and gives the core flows a platform-free
end-to-end path. The person is `console:local:<name>`; the terminal is the channel
`console:local:terminal`. Everything works as on the platforms: commands, reactions on listed
results (`like 2`), and the daily digest (`dm 09:00 Europe/Berlin`, `channel time …`), which the
same scheduler as `paperbot serve` prints here when it is due, while you type.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from recommender import Recommender

from .actions import STORE_DOWN, Actions, Reply, Who
from .commands import parse
from .ingest_loop import IngestLoop, IngestSettings
from .render_text import render_reply, render_result
from .scheduler import Scheduler, SchedulerSettings, system_clock
from .scheduler.delivery import Delivery, Item, Sent
from .scheduler.settings import Clock

log = logging.getLogger(__name__)

BANNER = """paperbot console — type `help` for commands, `quit` to leave.
Try: search diffusion models for images · subscribe graph neural networks · digest
React to a listed result by its number: like 2 · dislike 3 · save 1 · clear 2
Daily picks here, on schedule: dm 09:00 Europe/Berlin (yours) · channel time 09:00 UTC (the terminal's)"""

_REACTION = re.compile(r"(like|dislike|save|clear|👍|👎|🔖)\s+#?(\d+)", re.IGNORECASE)
_EMOJI = {"👍": "like", "👎": "dislike", "🔖": "save"}


class ConsoleSession:
    def __init__(self, recommender: Recommender, user: str = "you", now: Clock = system_clock):
        self.actions = Actions(recommender, now)
        self.who = Who(person=f"console:local:{user}", channel="console:local:terminal")
        self.last: Reply | None = None

    def handle(self, line: str) -> str:
        """Answer one line typed by the person; never raises."""
        try:
            reaction = _REACTION.fullmatch(line.strip())
            if reaction:
                return self._react(_EMOJI.get(reaction[1], reaction[1].lower()), int(reaction[2]))
            reply = self.actions.run(parse(line), self.who)
        except STORE_DOWN as exc:
            log.warning("storage unavailable while handling a console command: %s", exc)
            return "paperbot's storage is temporarily unavailable; please try again in a moment."
        except Exception:
            log.exception("console command failed: %r", line[:200])
            return "Sorry, something went wrong with that command; it has been logged."
        if reply.results:
            self.last = reply
        return render_reply(reply)

    def _react(self, kind: str, number: int) -> str:
        results = self.last.results if self.last else []
        if not 1 <= number <= len(results):
            return f"There is no result {number} to react to; list some papers first."
        return render_reply(self.actions.react(self.who, results[number - 1].paper.id, kind))


class ConsolePoster:
    """The scheduler's poster for the terminal: prints a daily post as it is sent; its papers
    become the list that `like 2` reacts to."""

    def __init__(self, session: ConsoleSession, write: Callable[[str], None]):
        self.session = session
        self.write = write
        self._lists: dict[str, Reply] = {}   # post id → its papers so far

    def handles(self, target: str) -> bool:
        return target in (self.session.who.person, self.session.who.channel)

    async def send(self, delivery: Delivery, item: Item) -> Sent:
        if item.result is None:
            self.write(f"📰 {item.text}")
        else:
            if len(self._lists) > 100:
                self._lists.clear()
            listed = self._lists.setdefault(delivery.post_id, Reply(item.header or "📰 Daily picks:"))
            listed.results.append(item.result)
            self.session.last = listed
            first = item.header + "\n\n" if item.header else ""
            self.write(first + render_result(len(listed.results), item.result))
        return Sent(f"console:{delivery.post_id}:{item.id}", delivery.target)

    async def find_sent(self, delivery: Delivery, item: Item) -> Sent | None:
        return None   # a terminal keeps nothing: what a crashed console printed is gone


class ConsoleScheduler:
    """The scheduler (and the index refresh) on an event loop of their own, in a thread, so
    the terminal can block on input while daily posts arrive."""

    def __init__(self, recommender: Recommender, poster: ConsolePoster,
                 settings: SchedulerSettings | None = None, now: Clock = system_clock,
                 ingest: IngestSettings | None = None):
        # one post at a time (so two never interleave on the screen), and no pacing: a
        # terminal has no rate limit
        settings = dataclasses.replace(settings or SchedulerSettings.from_env(), concurrency=1,
                                       channel_interval=0.0, post_rate=1000.0)
        self.scheduler = Scheduler(recommender, {"console": poster}, settings, now)
        self.ingest = IngestLoop(recommender, ingest or IngestSettings(), self.scheduler.replica)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-scheduler", daemon=True)

    def start(self) -> ConsoleScheduler:
        self._thread.start()
        self._started.wait(10)
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._started.set()
        await asyncio.gather(self.scheduler.run(self._stop), self.ingest.run(self._stop))

    def stop(self, timeout: float = 15) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)


def run_console(recommender: Recommender, user: str, stdin: TextIO = sys.stdin,
                stdout: TextIO = sys.stdout, now: Clock = system_clock,
                settings: SchedulerSettings | None = None,
                ingest: IngestSettings | None = None) -> None:
    """The terminal chat; in the background, the daily posts of this person and the terminal
    channel (and, when `ingest` names sources, their periodic ingestion)."""
    session = ConsoleSession(recommender, user, now)
    interactive = stdin.isatty()
    printing = threading.Lock()

    def write(text: str) -> None:   # from the scheduler's thread, while a prompt may be shown
        with printing:
            print(f"\n{text}", file=stdout, flush=True)
            if interactive:
                print("paperbot> ", end="", file=stdout, flush=True)

    daily = ConsoleScheduler(recommender, ConsolePoster(session, write), settings, now,
                             ingest).start()
    try:
        with printing:
            print(BANNER, file=stdout)
        while True:
            if interactive:
                with printing:
                    print("paperbot> ", end="", file=stdout, flush=True)
            line = stdin.readline()
            if not line or line.strip().lower() in ("quit", "exit", ":q"):
                break
            if line.strip():
                answer = session.handle(line)
                with printing:
                    print(answer, file=stdout, flush=True)
    finally:
        daily.stop()
