"""How paperbot looks on Discord: a paper is an embed with 👍 / 👎 / 🔖 buttons; text is made safe.

The buttons are persistent: their custom id says which paper and which feedback
(`paperbot:fb:like:2503.11685`), so a click is understood by any process, after any restart.
"""

from __future__ import annotations

import re

import discord

from recommender import Result

from ..render_text import authors_line, snippet

COLOUR = discord.Colour(0x4F6BED)
MESSAGE_LIMIT = 2000
FEEDBACK_ID = "paperbot:fb:{kind}:{paper}"
FEEDBACK_TEMPLATE = r"paperbot:fb:(?P<kind>like|dislike|save):(?P<paper>.+)"
CUSTOM_ID_LIMIT = 100
BUTTONS = (  # kind, emoji, label, style
    ("like", "👍", "More like this", discord.ButtonStyle.secondary),
    ("dislike", "👎", "Less like this", discord.ButtonStyle.secondary),
    ("save", "🔖", "Save", discord.ButtonStyle.secondary),
)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Discord markdown, made literal: a backslash before any of these shows the character itself
# (a `>` only quotes at the start of a line; a mention is broken by escape_mentions instead)
_MARKUP = re.compile(r"[\\*_~|`\[\]#]|^[ \t]*>", re.MULTILINE)
# a bare link stays clickable (Discord links it whole, so nothing inside renders as markup);
# none of `*`, `[`, `]`, `|`, `` ` ``, `<`, `>`, `~` can be part of it (Discord's own link
# goes on at least as far, so what follows is escaped or inside the link)
_BARE_URL = re.compile(r"https?://[A-Za-z0-9\-._:/?#@!$&'+,;=%]+")
# a code span as Discord reads one: its inside is shown literally, so it is left as it is
_CODE = re.compile(r"`[^`\n]+`")


def escape(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Text from people or paper sources as Discord shows it literally: every markdown
    character escaped (masked links, bold, italics, strikethrough, headings, spoilers and
    quotes never render) except inside `code spans` (paperbot's own `search <query>` hints),
    which Discord shows literally anyway, and in bare links, which stay clickable; mentions
    never resolve. At most `limit` characters, never cut inside a code span."""
    out, used, pos = [], 0, 0
    for match in _CODE.finditer(text):
        pieces = [(False, text[pos:match.start()]), (True, match[0])]
        pos = match.end()
        for code, piece in pieces:
            shown = piece if code else _escape_plain(piece)
            if used + len(shown) > limit:
                return "".join(out) + _cut(_escape_plain(piece), limit - used)
            out.append(shown)
            used += len(shown)
    rest = _escape_plain(text[pos:])
    if used + len(rest) > limit:
        return "".join(out) + _cut(rest, limit - used)
    return "".join(out) + rest


def _escape_plain(text: str) -> str:
    parts, pos = [], 0
    for url in _BARE_URL.finditer(text):
        parts += [_MARKUP.sub(_escaped, text[pos:url.start()]), url[0]]
        pos = url.end()
    parts.append(_MARKUP.sub(_escaped, text[pos:]))
    return discord.utils.escape_mentions("".join(parts))


def _escaped(match: re.Match[str]) -> str:
    found = match[0]
    return found[:-1] + "\\>" if found.endswith(">") else "\\" + found


def _cut(escaped: str, room: int) -> str:
    """The first `room` characters of escaped text, with "…": a lone backslash at the cut
    would escape the "…" (harmless), so only whole escapes are kept."""
    if room <= 0:
        return ""
    head = escaped[: room - 1]
    if (len(head) - len(head.rstrip("\\"))) % 2:
        head = head[:-1]
    return head + "…"


def safe_text(text: str) -> str:
    """A reply's text for a message: every bit of it that quotes a person or a paper (a topic,
    a query, a title, an error that repeats what was typed) is shown literally, mentions never
    render, and it fits in one message."""
    return escape(text, MESSAGE_LIMIT)


def _linkable(url: str) -> bool:
    """A web address that a markdown link can carry as it is (no spaces, brackets, parentheses)."""
    return url.startswith(("https://", "http://")) and not any(c in url for c in " <>()[]")


def paper_embed(result: Result) -> discord.Embed:
    paper = result.paper
    url = paper.url if paper.url.startswith(("https://", "http://")) else None
    about = snippet(paper.abstract)
    if paper.tldr:   # a model's one-sentence summary first, when one was written
        about = f"**TL;DR:** {escape(paper.tldr, 400)}\n\n{escape(about, 3500)}".strip()
    else:
        about = escape(about, 4096)
    embed = discord.Embed(title=escape(paper.title, 256), url=url, colour=COLOUR,
                          description=about or None)
    if paper.authors:
        embed.add_field(name="Authors", value=escape(authors_line(paper.authors), 1024),
                        inline=False)
    if paper.published:
        embed.add_field(name="Published", value=paper.published.isoformat())
    if paper.categories:
        embed.add_field(name="Categories", value=escape(", ".join(paper.categories[:5]), 1024))
    links = [f"[{label}]({url})" for label, url in paper.links() if _linkable(url)]
    if links:
        embed.add_field(name="Links", value=" · ".join(links))
    if paper.upvotes is not None:
        embed.add_field(name="Upvotes", value=f"▲ {paper.upvotes}")
    embed.set_footer(text=clip(f"Why: {result.why}", 2048))
    return embed


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=FEEDBACK_TEMPLATE):
    """👍 / 👎 / 🔖 under a paper. A click is handled by the client's `feedback_clicked`."""

    def __init__(self, kind: str, paper_id: str):
        emoji, label, style = next((e, lbl, s) for k, e, lbl, s in BUTTONS if k == kind)
        super().__init__(discord.ui.Button(
            style=style, emoji=emoji, label=label,
            custom_id=FEEDBACK_ID.format(kind=kind, paper=paper_id)))
        self.kind = kind
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> FeedbackButton:
        return cls(match["kind"], match["paper"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.feedback_clicked(interaction, self.paper_id, self.kind)


def feedback_view(paper_id: str) -> discord.ui.View | None:
    """The buttons for one paper; None when its id is too long for a custom id."""
    if len(FEEDBACK_ID.format(kind="dislike", paper=paper_id)) > CUSTOM_ID_LIMIT:
        return None
    view = discord.ui.View(timeout=None)
    for kind, *_ in BUTTONS:
        view.add_item(FeedbackButton(kind, paper_id))
    return view
