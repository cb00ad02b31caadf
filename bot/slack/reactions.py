"""Slack reactions on paperbot's posts, translated into `bot.feedback` events.

`reaction_added` / `reaction_removed` on a message become a FeedbackEvent (`bot.feedback`
decides what is feedback and records it). On a removal, `reactions.get` tells which kinds the
person still shows on the message (❤️ removed, 👍 still there: still a like). When storage stays
down, the person gets an ephemeral line in the channel.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from ..actions import Who
from ..feedback import FeedbackEvent, FeedbackPath, emoji_kind
from .identity import channel_key, person_key, workspace_id
from .inflight import InFlight
from .render import escape
from .replies import SORRY, api_error

log = logging.getLogger(__name__)


def register(app: AsyncApp, feedback: FeedbackPath, inflight: InFlight) -> None:
    @app.event("reaction_added")
    async def on_reaction_added(event, context, client):
        with inflight.track():
            await record_reaction(feedback, client, context, event, added=True)

    @app.event("reaction_removed")
    async def on_reaction_removed(event, context, client):
        with inflight.track():
            await record_reaction(feedback, client, context, event, added=False)


async def record_reaction(feedback: FeedbackPath, client, context, event: dict[str, Any],
                          added: bool) -> None:
    item = event.get("item") or {}
    if item.get("type") != "message" or not event.get("user") or not item.get("channel"):
        return
    team = workspace_id(context)
    channel = channel_key(team, item["channel"])
    outcome = await feedback.handle(FeedbackEvent(
        Who(person_key(team, event["user"]), channel), added=added, emoji=event.get("reaction"),
        post=(channel, item.get("ts") or ""),
        still_shown=lambda: _kinds_still_shown(client, item, event["user"])))
    if outcome.status == "not_recorded":
        await _tell(client, item["channel"], event["user"],
                    "paperbot's storage is temporarily unavailable, so your "
                    f":{escape(event['reaction'])}: reaction was not recorded. "
                    "Please remove it and react again in a few minutes.")
    elif outcome.status == "failed":
        await _tell(client, item["channel"], event["user"], SORRY)


async def _kinds_still_shown(client, item: dict[str, Any], user: str) -> set[str]:
    """The feedback kinds this person's remaining reactions on the message still express."""
    try:
        response = await client.reactions_get(channel=item["channel"], timestamp=item["ts"], full=True)
    except SlackApiError as exc:
        log.warning("reactions.get failed (%s): retracting the removed reaction's feedback", api_error(exc))
        return set()
    reactions = (response.get("message") or {}).get("reactions") or []
    return {kind for r in reactions if user in (r.get("users") or [])
            for kind in [emoji_kind(r.get("name", ""))] if kind}


async def _tell(client, slack_channel: str, user: str, text: str) -> None:
    try:
        await client.chat_postEphemeral(channel=slack_channel, user=user, text=text)
    except Exception as exc:
        log.warning("could not tell %s about a failed reaction: %s", user, exc)
