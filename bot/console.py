"""The console adapter: the same `/papers` commands as Slack and Discord, in a terminal.

It lets anyone try paperbot with no workspace, and gives the core flows a platform-free
end-to-end path. The person is `console:local:<name>`.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from recommender import Recommender, StoreUnavailable

from .actions import Actions, Reply, Who
from .commands import parse
from .render_text import render_reply

log = logging.getLogger(__name__)

BANNER = """paperbot console — type `help` for commands, `quit` to leave.
Try: search diffusion models for images · similar <id> (ids are shown under each result)"""


class ConsoleSession:
    def __init__(self, recommender: Recommender, user: str = "you"):
        self.actions = Actions(recommender)
        self.who = Who(person=f"console:local:{user}", channel="console:local:terminal")
        self.last: Reply | None = None

    def handle(self, line: str) -> str:
        """Answer one line typed by the person; never raises."""
        try:
            reply = self.actions.run(parse(line), self.who)
        except StoreUnavailable:
            log.exception("Redis unavailable while handling a console command")
            return "paperbot's storage is temporarily unavailable; please try again in a moment."
        except Exception:
            log.exception("console command failed: %r", line[:200])
            return "Sorry, something went wrong with that command; it has been logged."
        self.last = reply
        return render_reply(reply)


def run_console(recommender: Recommender, user: str, stdin: TextIO = sys.stdin,
                stdout: TextIO = sys.stdout) -> None:
    session = ConsoleSession(recommender, user)
    interactive = stdin.isatty()
    print(BANNER, file=stdout)
    while True:
        if interactive:
            print("paperbot> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip().lower() in ("quit", "exit", ":q"):
            break
        if line.strip():
            print(session.handle(line), file=stdout, flush=True)
