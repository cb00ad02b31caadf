"""Button clicks: 👍 / 👎 / 🔖 on a paper (and Undo), and the forget-me confirmation.

A click is acknowledged at once; the feedback then goes the one way every reaction and click
goes (`bot.feedback`) and is confirmed to the person who clicked with an ephemeral message (the posted paper is shared, so its buttons keep no state).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from ..actions import Actions, Who
from ..commands import Command
from ..feedback import FeedbackEvent, FeedbackPath
from .render import FORGET_ME_CANCEL, FORGET_ME_CONFIRM, feedback_confirmation, plain_section
from .replies import answered_errors, say_privately
from .identity import channel_key, is_direct_message, person_key, workspace_id
from .inflight import InFlight

log = logging.getLogger(__name__)

FEEDBACK_ACTIONS = re.compile(r"^paper_(like|dislike|save|clear)$")


def register(app: AsyncApp, actions: Actions, feedback: FeedbackPath, inflight: InFlight) -> None:
    @app.action(FEEDBACK_ACTIONS)
    async def on_feedback_click(ack, body, action, context, respond):
        await ack()
        with inflight.track():
            async with answered_errors(respond, "feedback click"):
                await answer_feedback_click(feedback, body, action, context, respond)

    @app.action(FORGET_ME_CONFIRM)
    async def on_forget_me_confirmed(ack, body, context, respond):
        await ack()
        with inflight.track():
            async with answered_errors(respond, "forget-me"):
                who = Who(person_key(workspace_id(context), body["user"]["id"]))
                reply = await asyncio.to_thread(actions.run, Command("forget-me", "confirm"), who)
                await respond(text=reply.text, blocks=[plain_section(reply.text)], replace_original=True)

    @app.action(FORGET_ME_CANCEL)
    async def on_forget_me_cancelled(ack, respond):
        await ack()
        async with answered_errors(respond, "forget-me cancel"):
            text = "Nothing was deleted."
            await respond(text=text, blocks=[plain_section(text)], replace_original=True)


def clicked_in(body: dict[str, Any], team: str) -> str | None:
    """The channel a click counts for: none for an ephemeral (personal) message or a DM."""
    container = body.get("container") or {}
    slack_channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    if not slack_channel or container.get("is_ephemeral") or is_direct_message(slack_channel):
        return None
    return channel_key(team, slack_channel)


async def answer_feedback_click(feedback: FeedbackPath, body: dict[str, Any], action: dict[str, Any],
                                context, respond) -> None:
    team = workspace_id(context)
    kind = FEEDBACK_ACTIONS.match(action["action_id"])[1]
    paper_id = action.get("value") or ""
    who = Who(person_key(team, body["user"]["id"]), clicked_in(body, team))
    outcome = await feedback.handle(FeedbackEvent(who, button=kind, paper_id=paper_id))
    if outcome.status != "done":
        await say_privately(respond, outcome.text)
        return
    paper = await asyncio.to_thread(feedback.actions.rec.get_paper, paper_id)
    title = paper.title if paper else None
    if kind == "clear":  # Undo, clicked on the confirmation itself: replace it
        message = feedback_confirmation(outcome.text, title, paper_id, undo=False)
        await respond(**message, replace_original=True)
    else:
        message = feedback_confirmation(outcome.text, title, paper_id, undo=title is not None)
        await respond(**message, response_type="ephemeral", replace_original=False)
