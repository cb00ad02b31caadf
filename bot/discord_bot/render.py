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


def escape(text: str) -> str:
    """Text from people or paper sources, shown literally: no markdown, no mentions."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def safe_text(text: str) -> str:
    """A reply's text for a message: what it quotes (“a topic”, “a query”, “a title”) is shown
    literally, mentions never render, and it fits in one message."""
    quoted = re.sub(r"“([^”]*)”", lambda m: f"“{discord.utils.escape_markdown(m[1])}”", text)
    return clip(discord.utils.escape_mentions(quoted), MESSAGE_LIMIT)


def paper_embed(result: Result) -> discord.Embed:
    paper = result.paper
    url = paper.url if paper.url.startswith(("https://", "http://")) else None
    embed = discord.Embed(title=clip(escape(paper.title), 256), url=url, colour=COLOUR,
                          description=clip(escape(snippet(paper.abstract)), 4096) or None)
    if paper.authors:
        embed.add_field(name="Authors", value=clip(escape(authors_line(paper.authors)), 1024),
                        inline=False)
    if paper.published:
        embed.add_field(name="Published", value=paper.published.isoformat())
    if paper.categories:
        embed.add_field(name="Categories", value=clip(escape(", ".join(paper.categories[:5])), 1024))
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
