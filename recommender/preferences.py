"""Who a person or channel follows, and which papers they never want: follows and filters.

A followed author's new paper is in the next picks whatever its rank; filters take papers out
of the picks and daily posts (never out of an explicit search). Exclude wins over everything.

| key              | type | holds                                                          |
|------------------|------|----------------------------------------------------------------|
| P {who}:follows  | hash | author key (`y lecun`, `author_key`) -> the name as written      |
| P {who}:filters  | hash | `exclude` / `include` / `category` -> JSON list of terms          |

Both keys carry the person's or channel's hash tag, so `PeopleStore.forget` deletes them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from collections.abc import Iterable

import numpy as np
import redis

from .lexical import LexicalIndex, terms_of
from .paper import Paper
from .people import check_who

MAX_FOLLOWS = 50
MAX_TERMS = 50           # terms per filter kind
MAX_NAME = 100           # characters of an author's name
READ_AT_ONCE = 1000      # people and channels per pipelined read
FILTER_KINDS = ("exclude", "include", "category")
# arXiv's archives; a category is one, or one and a subject class: cs.LG, q-bio.NC, hep-th
ARCHIVES = frozenset("cs math stat physics econ eess q-bio q-fin astro-ph cond-mat gr-qc hep-ex "
                     "hep-lat hep-ph hep-th math-ph nlin nucl-ex nucl-th quant-ph".split())
_CATEGORY = re.compile(r"([a-z-]+)(\.[a-z][a-z-]*)?", re.IGNORECASE)
_PARTICLES = {"van", "von", "der", "de", "den", "da", "di", "del", "la", "le", "du", "dos", "bin"}


def _plain(text: str) -> str:
    """Lower case, without accents or punctuation: `Müller` and `Muller` are one name."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w\s-]|_", " ", text).replace("-", " ").split())


def author_key(name: str) -> str:
    """A name as `<first initial> <surname>`: "Yann LeCun", "Y. LeCun", "LeCun, Yann" and
    "yann lecun" are all `y lecun`; a lone surname is just `lecun`. Surname particles stay
    with the surname ("Laurens van der Maaten" is `l van der maaten`)."""
    if "," in name:   # "Last, First"
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    words = _plain(name).split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    start = len(words) - 1
    while start > 1 and words[start - 1] in _PARTICLES:
        start -= 1
    return f"{words[0][0]} {' '.join(words[start:])}"


def _same_author(followed: str, author: str) -> bool:
    """A followed key matches an author's key; a followed lone surname matches any initial."""
    return followed == author or (" " not in followed and author.split(" ", 1)[-1] == followed)


def filter_terms(kind: str, text: str) -> list[str]:
    """The terms of `filter <kind> <text>`: comma-separated phrases for words, space- or
    comma-separated arXiv categories. A phrase matches a paper that has all its words."""
    if kind == "category":
        return [c for c in re.split(r"[\s,;]+", text) if c]
    return [" ".join(t.split()) for t in text.split(",") if t.strip()]


def check_term(kind: str, term: str) -> str | None:
    """Why `term` cannot be a filter of this kind, or None if it can."""
    if kind == "category":
        match = _CATEGORY.fullmatch(term)
        if not match or match[1].lower() not in ARCHIVES:
            return f"“{term[:40]}” is not an arXiv category (e.g. cs.LG, stat.ML, q-bio.NC)."
        return None
    if len(term) > MAX_NAME:
        return f"A filter phrase is at most {MAX_NAME} characters."
    if len(terms_of(term)) == 0:
        return f"“{term[:40]}” has only very common words, which every paper has: name a subject."
    return None


@dataclasses.dataclass(frozen=True)
class Preferences:
    """What one person or channel follows and filters, as plain data."""

    follows: dict[str, str] = dataclasses.field(default_factory=dict)   # key -> name as written
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def filters(self) -> bool:
        return bool(self.exclude or self.include or self.categories)

    def as_dict(self) -> dict:
        return {"follows": sorted(self.follows.values(), key=str.lower),
                "filters": {"exclude": list(self.exclude), "include": list(self.include),
                            "category": list(self.categories)}}

    def describe_filters(self) -> str:
        parts = [f"{label} {', '.join(f'“{t}”' for t in terms)}" for label, terms in
                 (("exclude", self.exclude), ("only", self.include),
                  ("categories", self.categories)) if terms]
        return "; ".join(parts) if parts else "none"

    def kept(self, index, lexical: LexicalIndex, rows: np.ndarray) -> np.ndarray:
        """Which of `rows` (index rows) pass the filters: in one of the categories, holding
        one of the include phrases, and none of the exclude phrases."""
        keep = np.ones(len(rows), dtype=bool)
        if self.categories:
            keep &= index.mask(categories=self.categories)[rows]
        if self.include:
            keep &= np.logical_or.reduce([lexical.has_all(t, rows) for t in self.include])
        for term in self.exclude:
            keep &= ~lexical.has_all(term, rows)
        return keep

    def followed_author(self, paper: Paper) -> str | None:
        """The paper's first author (as the paper writes the name) whom this one follows."""
        if not self.follows:
            return None
        for name in paper.authors:
            key = author_key(name)
            if key and any(_same_author(f, key) for f in self.follows):
                return name
        return None


NO_PREFERENCES = Preferences()


class PreferenceStore:
    def __init__(self, client: redis.Redis, prefix: str = "paperbot:"):
        self.r = client
        self.prefix = prefix

    def key(self, who: str, name: str) -> str:
        return f"{self.prefix}{{{who}}}:{name}"

    def follow(self, who: str, name: str) -> bool:
        """Follow an author; False if followed already. Raises ValueError for no name or too many."""
        key = author_key(name)
        if not key or len(name) > MAX_NAME:
            raise ValueError(f"I need an author's name of at most {MAX_NAME} characters, "
                             "e.g. `follow Yann LeCun`.")
        follows = self.key(check_who(who), "follows")
        if self.r.hexists(follows, key):
            return False
        if self.r.hlen(follows) >= MAX_FOLLOWS:
            raise ValueError(f"That is {MAX_FOLLOWS} authors followed already: unfollow one first.")
        return bool(self.r.hsetnx(follows, key, " ".join(name.split())))

    def unfollow(self, who: str, name: str) -> str | None:
        """Stop following an author (any spelling of the name); the name as it was written, or
        None if not followed."""
        follows = self.key(check_who(who), "follows")
        key = author_key(name)
        written = self.r.hget(follows, key) if key else None
        if written is None:
            return None
        self.r.hdel(follows, key)
        return written.decode()

    def add_filter(self, who: str, kind: str, terms: Iterable[str]) -> list[str]:
        """Add terms to one filter; returns those that were new. Raises ValueError with the
        reason a term cannot be one."""
        terms = list(dict.fromkeys(terms))
        for term in terms:
            problem = check_term(kind, term)
            if problem:
                raise ValueError(problem)
        key = self.key(check_who(who), "filters")
        old = self._terms(self.r.hget(key, kind))
        new = [t for t in terms if t.lower() not in {o.lower() for o in old}]
        if len(old) + len(new) > MAX_TERMS:
            raise ValueError(f"A filter holds at most {MAX_TERMS} terms: `filter clear` starts over.")
        if new:
            self.r.hset(key, kind, json.dumps(old + new))
        return new

    def clear_filters(self, who: str) -> bool:
        return bool(self.r.delete(self.key(check_who(who), "filters")))

    def get(self, who: str) -> Preferences:
        return self.get_many([who])[0]

    def get_many(self, whos: list[str]) -> list[Preferences]:
        """Each one's preferences. The daily fan-out reads everyone's and most have none: one
        EXISTS each (a round trip per READ_AT_ONCE), then the hashes of those that have some."""
        having = []
        for start in range(0, len(whos), READ_AT_ONCE):
            pipe = self.r.pipeline(transaction=False)
            for who in whos[start:start + READ_AT_ONCE]:
                pipe.exists(self.key(who, "follows"), self.key(who, "filters"))
            having += [who for who, n in zip(whos[start:start + READ_AT_ONCE], pipe.execute()) if n]
        pipe = self.r.pipeline(transaction=False)
        for who in having:
            pipe.hgetall(self.key(who, "follows"))
            pipe.hgetall(self.key(who, "filters"))
        replies = pipe.execute() if having else []
        found = {}
        for who, follows, filters in zip(having, replies[::2], replies[1::2]):
            terms = {k.decode(): tuple(self._terms(v)) for k, v in filters.items()}
            found[who] = Preferences({k.decode(): v.decode() for k, v in follows.items()},
                                     terms.get("exclude", ()), terms.get("include", ()),
                                     terms.get("category", ()))
        return [found.get(who, NO_PREFERENCES) for who in whos]

    @staticmethod
    def _terms(raw: bytes | None) -> list[str]:
        return json.loads(raw) if raw else []
