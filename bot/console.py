"""The console adapter: the same `/papers` commands as Slack and Discord, in a terminal.

It lets anyone try paperbot with no workspace, and gives the core flows a platform-free
end-to-end path. The person is `console:local:<name>`.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from recommender import Recommender, StoreUnavailable

from .actions import Actions, Reply, Who
from .commands import parse
from .render_text import render_reply

log = logging.getLogger(__name__)

BANNER = """paperbot console — type `help` for commands, `quit` to leave.
Try: search diffusion models for images · subscribe graph neural networks · digest
React to a listed result by its number: like 2 · dislike 3 · save 1 · clear 2"""

_REACTION = re.compile(r"(like|dislike|save|clear|👍|👎|🔖)\s+#?(\d+)", re.IGNORECASE)
_EMOJI = {"👍": "like", "👎": "dislike", "🔖": "save"}


class ConsoleSession:
    def __init__(self, recommender: Recommender, user: str = "you"):
        self.actions = Actions(recommender)
        self.who = Who(person=f"console:local:{user}", channel="console:local:terminal")
        self.last: Reply | None = None

    def handle(self, line: str) -> str:
        """Answer one line typed by the person; never raises."""
        try:
            reaction = _REACTION.fullmatch(line.strip())
            if reaction:
                return self._react(_EMOJI.get(reaction[1], reaction[1].lower()), int(reaction[2]))
            reply = self.actions.run(parse(line), self.who)
        except StoreUnavailable:
            log.exception("Redis unavailable while handling a console command")
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
