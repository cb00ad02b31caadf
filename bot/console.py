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

from recommender import Recommender, Result

from .actions import STORE_DOWN, Actions, Reply, Who
from .commands import USAGE, clean_input, parse
from .ingest_loop import IngestLoop
from .render_text import render_reply, render_result, terminal_safe
from .scheduler import Scheduler, system_clock
from .scheduler.delivery import Delivery, Item, Sent
from .scheduler.settings import Clock
from .settings import BotSettings

log = logging.getLogger(__name__)

BANNER = """paperbot console — type `help` for commands, `quit` to leave.
Try: search diffusion models for images · subscribe graph neural networks · digest
Use a listed result by its number: like 2 · dislike 3 · save 1 · clear 2 · similar 2
Daily picks here, on schedule: dm 09:00 Europe/Berlin (yours) · channel time 09:00 UTC (the terminal's)"""

# the console's own wording where the shared usage speaks of chat platforms
_CONSOLE_USAGE = {
    "similar": "similar <paper id, link or result number> — papers like that one",
    "dm": "dm HH:MM <IANA time zone> — your own daily picks, printed here when due",
    "dm weekly": "dm weekly <day> HH:MM <IANA time zone> — instead, the best of your week, "
                 "printed here when due",
    "help": "help — this list · quit — leave",
}
EXPLAIN = {   # a reaction typed without a result number explains itself
    "like": "`like N` marks result N of the last list as liked, e.g. `like 2`.",
    "dislike": "`dislike N` marks result N of the last list as not for you, e.g. `dislike 2`.",
    "save": "`save N` saves result N of the last list (`saved` lists them), e.g. `save 2`.",
    "clear": "`clear N` takes back your reaction to result N of the last list, e.g. `clear 2`.",
}
HELP = "\n".join([
    "Commands:",
    *(f"• {_CONSOLE_USAGE.get(name, usage)}" for name, usage in USAGE.items() if name != "help"),
    "• like N · dislike N · save N · clear N — react to result N of the last list"
    " (clear takes your reaction back)",
    f"• {_CONSOLE_USAGE['help']}",
])
SIMILAR_NEEDS = "`similar` needs a paper id or a result number, e.g. `similar 2`."

_NUMBER = re.compile(r"#?(\d{1,6})", re.ASCII)
_EMOJI = {"👍": "like", "👎": "dislike", "🔖": "save"}
MAX_LINKS = 1000   # links remembered from what was listed, for `similar <link>`


class ConsoleSession:
    def __init__(self, recommender: Recommender, user: str = "you", now: Clock = system_clock):
        self.actions = Actions(recommender, now)
        self.who = Who(person=f"console:local:{user}", channel="console:local:terminal")
        self.last: Reply | None = None
        self.links: dict[str, str] = {}   # a link this console printed → its paper's id

    def handle(self, line: str) -> str:
        """Answer one line typed by the person; never raises."""
        try:
            return terminal_safe(self._answer(clean_input(line)))   # no ESC, no bidi override
        except STORE_DOWN as exc:
            log.warning("storage unavailable while handling a console command: %s", exc)
            return "paperbot's storage is temporarily unavailable; please try again in a moment."
        except Exception:
            log.exception("console command failed: %r", line[:200])
            return "Sorry, something went wrong with that command; it has been logged."

    def _answer(self, line: str) -> str:
        head, _, rest = re.sub(r"^/?papers\b\s*", "", line, flags=re.IGNORECASE).partition(" ")
        kind = _EMOJI.get(head, head.lower())
        if kind in EXPLAIN:
            return self._react(kind, rest)
        if kind == "similar":
            ref, refusal = self._paper_ref(rest)
            if refusal:
                return refusal
            line = f"similar {ref}"
        command = parse(line)
        if command.name == "help" and not command.note:
            return HELP
        reply = self.actions.run(command, self.who)
        if reply.results:
            self.remember(reply)
        return render_reply(reply)

    def remember(self, reply: Reply) -> None:
        """`reply` is the list that `like 2` and `similar 2` now mean; its links name papers."""
        self.last = reply
        if len(self.links) > MAX_LINKS:
            self.links.clear()
        self.links.update({r.paper.url: r.paper.id for r in reply.results if r.paper.url})

    def _react(self, kind: str, rest: str) -> str:
        number = _NUMBER.fullmatch(rest.strip())
        if not number:
            return EXPLAIN[kind]
        picked = self._result(int(number[1]))
        if isinstance(picked, str):
            return picked
        return render_reply(self.actions.react(self.who, picked.paper.id, kind))

    def _paper_ref(self, text: str) -> tuple[str, str]:
        """(the paper `similar` means, "") — a result number of the last list, a link listed
        here, or the text as typed — or ("", the one line that says why there is none)."""
        text = text.strip()
        if not text:
            return "", SIMILAR_NEEDS
        number = _NUMBER.fullmatch(text)
        if not number:
            return self.links.get(text, text), ""
        if not (self.last and self.last.results) and self.actions.rec.get_paper(text) is not None:
            return text, ""   # nothing listed, and a paper has this number as its id
        picked = self._result(int(number[1]))
        return ("", picked) if isinstance(picked, str) else (picked.paper.id, "")

    def _result(self, number: int) -> Result | str:
        """Result `number` of the last list, or the one line that says why there is none."""
        results = self.last.results if self.last else []
        count = len(results)
        if not count:
            return (f"There is no result {number} yet: list some papers first, "
                    "e.g. `search diffusion models`.")
        if not 1 <= number <= count:
            return ("There is only 1 result; pick 1." if count == 1
                    else f"There are only {count} results; pick 1–{count}.")
        return results[number - 1]


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
            self.write(terminal_safe(f"📰 {item.text}"))
        else:
            if len(self._lists) > 100:
                self._lists.clear()
            listed = self._lists.setdefault(delivery.post_id, Reply(item.header or "📰 Daily picks:"))
            listed.results.append(item.result)
            self.session.remember(listed)
            first = terminal_safe(item.header) + "\n\n" if item.header else ""
            self.write(first + render_result(len(listed.results), item.result))
        return Sent(f"console:{delivery.post_id}:{item.id}", delivery.target)

    async def find_sent(self, delivery: Delivery, item: Item) -> Sent | None:
        return None   # a terminal keeps nothing: what a crashed console printed is gone


class ConsoleScheduler:
    """The scheduler (and the index refresh) on an event loop of their own, in a thread, so
    the terminal can block on input while daily posts arrive."""

    def __init__(self, recommender: Recommender, poster: ConsolePoster,
                 settings: BotSettings = BotSettings()):
        # one post at a time (so two never interleave on the screen), and no pacing: a
        # terminal has no rate limit
        scheduling = dataclasses.replace(settings.scheduler, concurrency=1, channel_interval=0.0,
                                         post_rate=1000.0)
        self.scheduler = Scheduler(recommender, {"console": poster}, scheduling, settings.clock)
        self.ingest = IngestLoop(recommender, settings.ingest, self.scheduler.replica)
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
                stdout: TextIO = sys.stdout, settings: BotSettings = BotSettings()) -> None:
    """The terminal chat; in the background, the daily posts of this person and the terminal
    channel (and, when the settings name sources, their periodic ingestion)."""
    session = ConsoleSession(recommender, user, settings.clock)
    interactive = stdin.isatty()
    printing = threading.Lock()

    def write(text: str) -> None:   # from the scheduler's thread, while a prompt may be shown
        with printing:
            print(f"\n{text}", file=stdout, flush=True)
            if interactive:
                print("paperbot> ", end="", file=stdout, flush=True)

    daily = ConsoleScheduler(recommender, ConsolePoster(session, write), settings).start()
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
