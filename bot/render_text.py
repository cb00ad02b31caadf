"""Plain-text rendering of replies, for the terminal (console adapter and CLI)."""

from __future__ import annotations

import textwrap

from recommender import Result

from .actions import Reply

SNIPPET = 220


def authors_line(authors: list[str], limit: int = 3) -> str:
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[:limit]) + f" +{len(authors) - limit}"


def snippet(text: str, limit: int = SNIPPET) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def render_result(n: int, result: Result) -> str:
    paper = result.paper
    meta = " · ".join(x for x in (
        authors_line(paper.authors),
        paper.published.isoformat() if paper.published else "",
        ", ".join(paper.categories[:3]),
    ) if x)
    # the id, so that `similar <id>` can be typed (the link, too, is accepted there)
    where = f"id {paper.id}" + (f" · {paper.url}" if paper.url else "")
    lines = [f"[{n}] {paper.title}  ({result.score:.2f})", f"    {where}"]
    if meta:
        lines.append(f"    {meta}")
    if paper.abstract:
        lines += textwrap.wrap(snippet(paper.abstract), width=96,
                               initial_indent="    ", subsequent_indent="    ")
    lines.append(f"    why: {result.why}")
    return "\n".join(lines)


def render_reply(reply: Reply) -> str:
    parts = [reply.text] + [render_result(n, r) for n, r in enumerate(reply.results, 1)]
    return "\n\n".join(p for p in parts if p)
