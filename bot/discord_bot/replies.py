"""How an answer reaches Discord within its deadlines, and never as a ping or a traceback.

Discord drops an interaction not acknowledged within 3 seconds. The work (a Recommender call,
sync and CPU-bound) runs on a thread; a quick answer is sent directly, a slow one (search,
similar, digest, or anything not done within QUICK_SECONDS) is deferred first — "paperbot is
thinking…" — and then followed up. A reply with papers becomes one message per paper (an embed
with feedback buttons), so that a reaction on a message is feedback on exactly one paper.
"""

from __future__ import annotations

import asyncio
import io
import logging
import inspect
from collections.abc import Awaitable, Callable

import discord

from ..actions import STORE_DOWN, Reply
from .render import feedback_view, paper_embed, safe_text

log = logging.getLogger(__name__)

QUICK_SECONDS = 1.5
NO_PINGS = discord.AllowedMentions.none()
UNAVAILABLE = "paperbot's storage is temporarily unavailable; please try again in a moment."
SORRY = "Sorry, something went wrong with that; it has been logged for the operator."

RememberPost = Callable[[str, str], None]   # (message id, paper id), called on a thread


async def answer(interaction: discord.Interaction, work: Callable[[], Reply] | Awaitable[Reply], *, what: str,
                 slow: bool = False, public: bool = False,
                 remember: RememberPost | None = None) -> None:
    """Run `work` off the event loop (or await it, if it is awaitable) and answer the
    interaction with its Reply.

    public: the answer is meant for the channel (papers others can react to, a channel's new
    settings); a Reply without papers that Actions marks ephemeral (an error) stays private.
    remember(message id, paper id) is called for each paper posted publicly.
    """
    job = asyncio.ensure_future(work if inspect.isawaitable(work) else asyncio.to_thread(work))
    try:
        if not slow:
            await asyncio.wait({job}, timeout=QUICK_SECONDS)
        deferred = not job.done()
        if deferred:
            await interaction.response.defer(ephemeral=not public, thinking=True)
        try:
            reply = await job
        except Exception as exc:  # noqa: BLE001 - every failure becomes a friendly answer
            reply = failure_reply(exc, what)
        if not deferred:   # after a defer, Discord keeps the visibility the defer chose
            public = public and bool(reply.results or not reply.ephemeral)
        await send_reply(interaction, reply, public=public, remember=remember)
    except Exception:
        log.exception("answering %s failed", what)
        job.add_done_callback(lambda done: done.cancelled() or done.exception())  # no one waits now
        await apologise(interaction)


def failure_reply(exc: BaseException, what: str) -> Reply:
    """The answer to a person when their command failed; the operator gets the details."""
    if isinstance(exc, STORE_DOWN):
        log.error("storage unavailable while answering %s: %s", what, exc)
        return Reply(UNAVAILABLE)
    log.error("answering %s failed", what, exc_info=exc)
    return Reply(SORRY)


async def send_reply(interaction: discord.Interaction, reply: Reply, *, public: bool,
                     remember: RememberPost | None = None) -> None:
    """Send a Reply: its text, then each paper as its own message with feedback buttons."""
    text = safe_text(reply.text) or "…"
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=not public, suppress_embeds=True,
                                        allowed_mentions=NO_PINGS, wait=True)
    else:
        await interaction.response.send_message(text, ephemeral=not public, suppress_embeds=True,
                                                allowed_mentions=NO_PINGS)
    for result in reply.results:
        view = feedback_view(result.paper.id)
        message = await interaction.followup.send(
            embed=paper_embed(result), ephemeral=not public, allowed_mentions=NO_PINGS, wait=True,
            **({"view": view} if view is not None else {}))
        if public and remember is not None:
            await asyncio.to_thread(remember, str(message.id), result.paper.id)
    if reply.file:   # `saved bibtex`: the file as an attachment of its own message
        name, content = reply.file
        await interaction.followup.send(file=discord.File(io.BytesIO(content.encode()), filename=name),
                                        ephemeral=not public, allowed_mentions=NO_PINGS, wait=True)


async def apologise(interaction: discord.Interaction) -> None:
    """Tell the person something went wrong, if Discord still lets us; never raises."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(SORRY, ephemeral=True, allowed_mentions=NO_PINGS)
        else:
            await interaction.response.send_message(SORRY, ephemeral=True, allowed_mentions=NO_PINGS)
    except Exception:  # noqa: BLE001 - the interaction may have expired; the log has the cause
        log.warning("could not tell the person about the failure in interaction %s", interaction.id)
