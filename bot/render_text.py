"""Plain-text rendering of replies, for the terminal (console adapter and CLI).

What reaches a terminal never carries a control character from a paper or a person: ESC
(ANSI sequences that recolour, clear or retitle the terminal), the other C0 and C1 controls
but newline and tab, DEL, and the bidi embeddings, overrides and isolates that reorder what is
shown (U+202A–U+202E, U+2066–U+2069).
"""

from __future__ import annotations

import re
import textwrap

from recommender import Result

from .actions import Reply

SNIPPET = 220
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every control character (see above) removed: safe to print."""
    return _CONTROL.sub("", text)


def json_safe(text: str) -> str:
    """JSON text with those characters written as `\\u` escapes: the same data, safe to print
    (they can only stand inside JSON strings, where an escape means the same character)."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def authors_line(authors: list[str], limit: int = 3) -> str:
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[:limit]) + f" +{len(authors) - limit}"


def snippet(text: str, limit: int = SNIPPET) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def card_extras(paper) -> str:
    """The card's line of links and popularity: `PDF … · code … · ▲ 12 upvotes` ('' if none)."""
    parts = [f"{label} {url}" for label, url in paper.links()]
    if paper.upvotes is not None:
        parts.append(f"▲ {paper.upvotes} upvotes")
    return " · ".join(parts)


def render_result(n: int, result: Result) -> str:
    paper = result.paper
    meta = " · ".join(x for x in (
        authors_line(paper.authors),
        paper.published.isoformat() if paper.published else "",
        ", ".join(paper.categories[:3]),
    ) if x)
    # the id, so that `similar <id>` can be typed (the link, too, is accepted there)
    where = f"id {paper.id}" + (f" · {paper.url}" if paper.url else "")
    score = f"  ({result.score:.2f})" if result.score else ""   # a followed author's: unranked
    lines = [f"[{n}] {paper.title}{score}", f"    {where}"]
    extra = card_extras(paper)
    if extra:
        lines.append(f"    {extra}")
    if meta:
        lines.append(f"    {meta}")
    if paper.tldr:
        lines += textwrap.wrap(f"TL;DR: {paper.tldr}", width=96, initial_indent="    ",
                               subsequent_indent="    ")
    if paper.abstract:
        lines += textwrap.wrap(snippet(paper.abstract), width=96,
                               initial_indent="    ", subsequent_indent="    ")
    lines.append(f"    why: {result.why}")
    return terminal_safe("\n".join(lines))


def render_reply(reply: Reply) -> str:
    parts = [terminal_safe(reply.text)]
    parts += [render_result(n, r) for n, r in enumerate(reply.results, 1)]
    if reply.file:   # in a terminal, the file's text itself (`saved bibtex`)
        parts.append(terminal_safe(reply.file[1]).rstrip())
    return "\n\n".join(p for p in parts if p)
