"""Who asked, and the plain answer every adapter renders: what flows between `actions` and
the platforms (and `preference_actions`)."""

from __future__ import annotations

import dataclasses

from recommender import Result


@dataclasses.dataclass(frozen=True)
class Who:
    """A person (and the channel they spoke in), as scoped keys like `slack:T1:U2`."""

    person: str
    channel: str | None = None
    # other ids of this same person, deleted with it by forget-me: on Discord, one account is
    # `discord:<guild>:<user>` in each server and `discord:dm:<user>` in DMs with paperbot
    aliases: tuple[str, ...] = ()


@dataclasses.dataclass
class Reply:
    text: str
    results: list[Result] = dataclasses.field(default_factory=list)
    ephemeral: bool = True   # personal answers are only shown to the person who asked
    # a text file that goes with the answer, (file name, contents): `saved bibtex`'s BibTeX
    file: tuple[str, str] | None = None
