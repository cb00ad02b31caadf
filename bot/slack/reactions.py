"""Where a Slack reaction becomes stored feedback.

A reaction on one of paperbot's posted papers is feedback from the person who reacted, on that
message's paper, in that channel: 👍 ❤️ 🔥 ⭐ like, 👎 dislike, 🔖 save. Removing the reaction
retracts it; what the person still shows on the message (say 🔖 after removing 👍) stays.
Reactions on other messages and other emoji are ignored.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from ..actions import STORE_DOWN, Actions, Who, retry_while_store_down
from .blocks import escape
from .errors import SORRY, api_error
from .identity import channel_key, person_key, workspace_id
from .inflight import InFlight

log = logging.getLogger(__name__)

REACTION_KINDS = {
    "+1": "like", "thumbsup": "like", "heart": "like", "fire": "like", "star": "like",
    "-1": "dislike", "thumbsdown": "dislike",
    "bookmark": "save",
}
KIND_ORDER = ("dislike", "like", "save")   # re-applied in this order after a retraction


def reaction_kind(name: str) -> str | None:
    """`+1::skin-tone-3` → like; None for an emoji that is not feedback."""
    return REACTION_KINDS.get((name or "").split("::", 1)[0])


def register(app: AsyncApp, actions: Actions, inflight: InFlight) -> None:
    @app.event("reaction_added")
    async def on_reaction_added(event, context, client):
        with inflight.track():
            await record_reaction(actions, client, context, event, added=True)

    @app.event("reaction_removed")
    async def on_reaction_removed(event, context, client):
        with inflight.track():
            await record_reaction(actions, client, context, event, added=False)


async def record_reaction(actions: Actions, client, context, event: dict[str, Any], added: bool) -> None:
    item = event.get("item") or {}
    kind = reaction_kind(event.get("reaction", ""))
    if item.get("type") != "message" or kind is None or not event.get("user"):
        return
    team = workspace_id(context)
    who = Who(person_key(team, event["user"]), channel_key(team, item["channel"]))
    try:
        await retry_while_store_down(
            lambda: _store_reaction(actions, client, item, event, who, kind, added))
    except STORE_DOWN as exc:
        log.warning("reaction not stored, storage unavailable: %s", exc)
        await _tell(client, item["channel"], event["user"],
                    "paperbot's storage is temporarily unavailable, so your "
                    f":{escape(event['reaction'])}: reaction was not recorded. "
                    "Please remove it and react again in a few minutes.")
    except Exception:
        log.exception("Slack reaction failed")
        await _tell(client, item["channel"], event["user"], SORRY)


async def _store_reaction(actions: Actions, client, item: dict[str, Any], event: dict[str, Any],
                          who: Who, kind: str, added: bool) -> None:
    paper_id = await asyncio.to_thread(actions.rec.paper_of_post, who.channel, item["ts"])
    if paper_id is None:
        return   # not one of paperbot's papers
    log.info("slack reaction %s %s on %s from %s", "added" if added else "removed", kind,
             paper_id, who.person)
    if added:
        reply = await asyncio.to_thread(actions.react, who, paper_id, kind)
    else:
        still = await _kinds_still_shown(client, item, event["user"])
        if kind in still:   # ❤️ removed but 👍 still there: still a like
            return
        reply = await asyncio.to_thread(_retract, actions, who, paper_id, still)
    log.debug("reaction stored: %s", reply.text)


def _retract(actions: Actions, who: Who, paper_id: str, still: set[str]):
    """Clear the person's feedback on the paper, then re-apply what their reactions still say."""
    reply = actions.react(who, paper_id, "clear")
    for kind in KIND_ORDER:
        if kind in still:
            reply = actions.react(who, paper_id, kind)
    return reply


async def _kinds_still_shown(client, item: dict[str, Any], user: str) -> set[str]:
    """The feedback kinds this person's remaining reactions on the message still express."""
    try:
        response = await client.reactions_get(channel=item["channel"], timestamp=item["ts"], full=True)
    except SlackApiError as exc:
        log.warning("reactions.get failed (%s): retracting all feedback on the message", api_error(exc))
        return set()
    reactions = (response.get("message") or {}).get("reactions") or []
    return {kind for r in reactions if user in (r.get("users") or [])
            for kind in [reaction_kind(r.get("name", ""))] if kind}


async def _tell(client, slack_channel: str, user: str, text: str) -> None:
    try:
        await client.chat_postEphemeral(channel=slack_channel, user=user, text=text)
    except Exception as exc:
        log.warning("could not tell %s about a failed reaction: %s", user, exc)
