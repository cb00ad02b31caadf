"""Replies and papers as Slack Block Kit messages, with every user- and paper-derived text made safe.

Safety rules, in order of preference:
- Text that people wrote or that comes from a paper goes into `plain_text` objects: Slack parses
  nothing there, so `<!channel>`, `<@U123>`, `*bold*` or a backtick show as typed and ping nobody.
- The one place that needs mrkdwn is a paper's linked title: there `&`, `<`, `>` become entities
  (Slack's own escaping rule, which neutralises `<!here>` and `<@U…>`), and `*`, `_`, `~` and
  backticks become look-alike characters so a title can never open or close formatting.
- The `text` fallback of a message (notifications, screen readers) is escaped the same way.
- Messages are never sent with `link_names`.
"""

from __future__ import annotations

import re
from typing import Any

from recommender import Result

from ..actions import Reply
from ..render_text import authors_line, snippet

SECTION_LIMIT = 3000   # characters of a section's text object
CONTEXT_LIMIT = 2000   # characters of a context element
BUTTON_VALUE_LIMIT = 2000
MAX_BLOCKS = 50
ABSTRACT_SNIPPET = 280

FEEDBACK_BUTTONS = (("like", "👍 More like this"), ("dislike", "👎 Less like this"), ("save", "🔖 Save"))
FEEDBACK_ACTION = "paper_{kind}"        # action_id of a feedback button; its value is the paper id
FORGET_ME_CONFIRM = "forget_me_confirm"
FORGET_ME_CANCEL = "forget_me_cancel"

_LOOKALIKE = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})


def escape(text: str) -> str:
    """Slack's control characters as entities: `<!channel>` shows as typed and pings nobody."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_literal(text: str) -> str:
    """Text that shows exactly as written inside mrkdwn: escaped, and unable to format."""
    return escape(text).translate(_LOOKALIKE)


def shorten(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain(text: str, limit: int = SECTION_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": shorten(text, limit) or " ", "emoji": True}


def plain_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": plain(text)}


def text_blocks(text: str) -> list[dict[str, Any]]:
    """Long text as several plain_text sections, split at line ends, within Slack's limits."""
    blocks, chunk = [], ""
    for line in (text or " ").split("\n"):
        if chunk and len(chunk) + 1 + len(line) > SECTION_LIMIT:
            blocks.append(plain_section(chunk))
            chunk = line
        else:
            chunk = f"{chunk}\n{line}" if chunk else line
    blocks.append(plain_section(chunk))
    return blocks[:MAX_BLOCKS]


def _safe_url(url: str) -> str | None:
    url = (url or "").strip()
    if not url.lower().startswith(("https://", "http://")) or any(c.isspace() for c in url):
        return None
    return escape(url).replace("|", "%7C")


def paper_title(result: Result) -> str:
    """The paper's title in bold, linked to the paper when it has a web address (mrkdwn)."""
    title = mrkdwn_literal(shorten(result.paper.title, 400))
    url = _safe_url(result.paper.url)
    return f"*<{url}|{title}>*" if url else f"*{title}*"


def paper_meta(result: Result) -> str:
    paper = result.paper
    return " · ".join(part for part in (
        authors_line(paper.authors),
        paper.published.isoformat() if paper.published else "",
        ", ".join(paper.categories[:4]),
    ) if part)


def paper_extras(result: Result) -> str:
    """PDF and code links and the Hugging Face upvotes, as mrkdwn ('' when there are none)."""
    parts = [f"<{url}|{label}>" for label, url in
             ((label, _safe_url(url)) for label, url in result.paper.links()) if url]
    if result.paper.upvotes is not None:
        parts.append(f"▲ {result.paper.upvotes} upvotes")
    return " · ".join(parts)


def feedback_buttons(paper_id: str) -> dict[str, Any]:
    return {"type": "actions", "elements": [
        {"type": "button", "action_id": FEEDBACK_ACTION.format(kind=kind), "text": plain(label, 75),
         "value": paper_id[:BUTTON_VALUE_LIMIT]}
        for kind, label in FEEDBACK_BUTTONS]}


def paper_blocks(result: Result) -> list[dict[str, Any]]:
    """One paper: linked title, authors · date · categories, abstract snippet, why, buttons."""
    paper = result.paper
    title = {"type": "section", "text": {"type": "mrkdwn", "text": paper_title(result)}}
    blocks: list[dict[str, Any]] = [title]
    meta = paper_meta(result)
    if meta:
        blocks.append({"type": "context", "elements": [plain(meta, CONTEXT_LIMIT)]})
    extras = paper_extras(result)
    if extras:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": extras}]})
    if paper.tldr:   # a model's one-sentence summary, when one was written
        blocks.append(plain_section(f"TL;DR: {shorten(paper.tldr, SECTION_LIMIT - 8)}"))
    if paper.abstract:
        blocks.append(plain_section(snippet(paper.abstract, ABSTRACT_SNIPPET)))
    if result.why:
        blocks.append({"type": "context", "elements": [plain(f"💡 Why: {result.why}", CONTEXT_LIMIT)]})
    blocks.append(feedback_buttons(paper.id))
    return blocks


def paper_message(result: Result, header: str | None = None) -> dict[str, Any]:
    """One paper as one channel message (so that a reaction on it names one paper)."""
    blocks = ([plain_section(header)] if header else []) + paper_blocks(result)
    fallback = f"{header}\n" if header else ""
    return {"text": escape(shorten(fallback + result.paper.title, SECTION_LIMIT)), "blocks": blocks}


def reply_message(reply: Reply) -> dict[str, Any]:
    """An Actions reply: its text, then its papers (each with feedback buttons)."""
    blocks = text_blocks(reply.text) if reply.text else []
    for result in reply.results:
        candidate = [{"type": "divider"}] + paper_blocks(result)
        if len(blocks) + len(candidate) > MAX_BLOCKS:
            break
        blocks += candidate
    if reply.file:
        blocks += file_blocks(reply.file[1], MAX_BLOCKS - len(blocks))
    return {"text": escape(shorten(reply.text or "paperbot", SECTION_LIMIT)), "blocks": blocks}


SNIPPET_LIMIT = 12_000   # characters of a file shown in one message, as code blocks
MORE_IN_EXPORT = ("… and {n} more entries: `paperbot export --user <you> --format bibtex` "
                  "writes them all to a file.")


def file_blocks(text: str, room: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """A text file (`saved bibtex`) as code blocks, whole entries (split at blank lines) up to
    SNIPPET_LIMIT characters, then a line that says how many are left out and where to get
    them. Slack's escaping applies inside code blocks too; a ``` cannot close one early."""
    entries = [e.strip("\n") for e in re.split(r"\n\s*\n", text) if e.strip()]
    blocks: list[dict[str, Any]] = []
    used = 0
    for n, entry in enumerate(entries):
        pieces = [entry[i:i + SECTION_LIMIT - 8] for i in range(0, len(entry), SECTION_LIMIT - 8)]
        if used + len(entry) > SNIPPET_LIMIT or len(blocks) + len(pieces) + 1 > room:
            blocks.append(plain_section(MORE_IN_EXPORT.format(n=len(entries) - n)))
            break
        used += len(entry)
        for piece in pieces:
            code = escape(piece).replace("```", "ˋˋˋ")
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{code}```"}})
    return blocks


def saved_message(saved: list[dict[str, Any]]) -> dict[str, Any]:
    """A person's saved papers (at least one) as linked titles."""
    lines = []
    for item in saved:
        title = mrkdwn_literal(shorten(item["title"], 300))
        url = _safe_url(item.get("url") or "")
        lines.append(f"• <{url}|{title}>" if url else f"• {title}")
    blocks = [plain_section(f"Your saved papers ({len(saved)}):")]
    chunk = ""
    for line in lines:
        if chunk and len(chunk) + 1 + len(line) > SECTION_LIMIT:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
            chunk = line
        else:
            chunk = f"{chunk}\n{line}" if chunk else line
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return {"text": f"Your saved papers ({len(saved)})", "blocks": blocks[:MAX_BLOCKS]}


def feedback_confirmation(text: str, title: str | None, paper_id: str, undo: bool) -> dict[str, Any]:
    """The answer to a feedback click, only for the person who clicked, with an Undo button."""
    line = f"{text}\n“{shorten(title, 150)}”" if title else text
    blocks: list[dict[str, Any]] = [plain_section(line)]
    if undo:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "action_id": FEEDBACK_ACTION.format(kind="clear"), "text": plain("↩️ Undo", 75),
            "value": paper_id[:BUTTON_VALUE_LIMIT]}]})
    return {"text": escape(line), "blocks": blocks}


def forget_me_prompt(text: str) -> dict[str, Any]:
    """`forget-me` asks first: a red button, with Slack's own confirmation dialog, and a cancel."""
    return {"text": escape(text), "blocks": [
        plain_section(text),
        {"type": "actions", "elements": [
            {"type": "button", "action_id": FORGET_ME_CONFIRM, "style": "danger", "value": "confirm",
             "text": plain("Forget me", 75),
             "confirm": {"title": plain("Forget everything?", 100),
                         "text": plain("Your topics, feedback and history will be deleted for good.", 300),
                         "confirm": plain("Delete", 30), "deny": plain("Keep", 30), "style": "danger"}},
            {"type": "button", "action_id": FORGET_ME_CANCEL, "value": "cancel", "text": plain("Cancel", 75)},
        ]},
    ]}
