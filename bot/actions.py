"""What each command does, once for every platform: a Command in, a plain Reply out.

Adapters translate platform events into `run(command, who)` calls and render the Reply in their
own idiom (Block Kit, embeds, terminal text). Nothing here knows which platform asked.
"""

from __future__ import annotations

import dataclasses
import logging

from recommender import PaperNotFound, Recommender, Result

from .commands import HELP, Command

log = logging.getLogger(__name__)

DEFAULT_K = 5


@dataclasses.dataclass(frozen=True)
class Who:
    """A person (and the channel they spoke in), as scoped keys like `slack:T1:U2`."""

    person: str
    channel: str | None = None


@dataclasses.dataclass
class Reply:
    text: str
    results: list[Result] = dataclasses.field(default_factory=list)
    ephemeral: bool = True   # personal answers are only shown to the person who asked


class Actions:
    def __init__(self, recommender: Recommender):
        self.rec = recommender

    def run(self, command: Command, who: Who) -> Reply:
        handler = getattr(self, "do_" + command.name.replace(" ", "_").replace("-", "_"), None)
        if handler is None:
            return self.do_help(command, who)
        try:
            return handler(command, who)
        except (PaperNotFound, ValueError) as exc:
            return Reply(str(exc))

    def do_help(self, command: Command, who: Who) -> Reply:
        return Reply(f"{command.note}\n\n{HELP}".strip())

    def do_search(self, command: Command, who: Who) -> Reply:
        results = self.rec.search(command.text, k=DEFAULT_K)
        if not results:
            return Reply("No papers yet: ingest some first (see `paperbot ingest --help`).")
        return Reply(f"Papers matching “{command.text}”:", results)

    def do_similar(self, command: Command, who: Who) -> Reply:
        results = self.rec.similar(command.text, k=DEFAULT_K)
        paper = self.rec.get_paper(command.text)
        return Reply(f"Papers similar to “{paper.title}”:", results)
