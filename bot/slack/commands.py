"""`/papers …`: acknowledged at once, parsed by the shared grammar, answered by `Actions`.

Personal answers (help, topics, profile, saved, digest, errors) are ephemeral, through the
command's response_url. `search` and `similar` results are posted in the channel, one message
per paper, so that everyone can react to them; where paperbot may not post (a private channel it
was not invited to, a DM between two people) they come back ephemeral, with a hint. A change
to a channel (`channel time/off/subscribe/unsubscribe`) goes through `channel_rights`: only
those allowed to make it get it made.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from ..actions import Actions, Reply, Who
from ..channel_roles import ChannelPolicy
from ..commands import parse
from .channel_rights import ChannelRights
from .render import forget_me_prompt, reply_message, saved_message
from .replies import answered_errors, api_error
from .identity import channel_key, is_direct_message, person_key, workspace_id
from .inflight import InFlight
from .posting import CANNOT_POST_HERE, post_papers

log = logging.getLogger(__name__)

COMMAND = "/papers"
POSTED_IN_CHANNEL = ("search", "similar")
CANNOT_POST_HINT = ("(Only you can see these: paperbot can't post in this conversation. To share "
                    "results here, invite it with /invite @paperbot.)")


def register(app: AsyncApp, actions: Actions, inflight: InFlight,
             policy: ChannelPolicy = ChannelPolicy()) -> None:
    rights = ChannelRights(actions, policy)   # who may change a channel (and its roles cache)

    @app.command(COMMAND)
    async def on_papers_command(ack, body, context, client, respond):
        await ack()   # within Slack's 3 s, before any work; the answer follows via response_url
        with inflight.track():
            async with answered_errors(respond, "command"):
                await answer_command(actions, client, body, context, respond, rights)


async def answer_command(actions: Actions, client, body: dict[str, Any], context, respond,
                         rights: ChannelRights | None = None) -> None:
    team = workspace_id(context)
    slack_channel = body.get("channel_id") or ""
    channel = channel_key(team, slack_channel) if slack_channel else None
    who = Who(person_key(team, body["user_id"]),
              None if is_direct_message(slack_channel, body.get("channel_name")) else channel)
    command = parse(body.get("text") or "")
    log.info("slack /papers %s from %s", command.name, who.person)

    if command.name == "saved":
        saved = await asyncio.to_thread(lambda: actions.rec.profile(who.person, recent=0)["saved"])
        if saved:
            await _respond(respond, saved_message(saved))
            return
    rights = rights or ChannelRights(actions)
    reply = await rights.run(client, command, who, team, body["user_id"])
    if command.name == "forget-me" and command.text != "confirm":
        await _respond(respond, forget_me_prompt(reply.text))
    elif command.name in POSTED_IN_CHANNEL and reply.results and channel:
        await _post_results(actions, client, respond, channel, slack_channel, reply, body)
    else:
        await _respond(respond, reply_message(reply), ephemeral=reply.ephemeral)


async def _post_results(actions: Actions, client, respond, channel: str, slack_channel: str,
                        reply: Reply, body: dict[str, Any]) -> None:
    asker = body.get("user_name")
    header = f"{reply.text.rstrip(':')} (asked by {asker}):" if asker else reply.text
    try:
        await post_papers(client, actions.rec, channel, slack_channel, reply.results, header)
    except SlackApiError as exc:
        error = api_error(exc)
        if error not in CANNOT_POST_HERE:
            raise
        log.info("cannot post in %s (%s): answering privately", channel, error)
        private = Reply(f"{reply.text}\n{CANNOT_POST_HINT}", reply.results)
        await _respond(respond, reply_message(private))


async def _respond(respond, message: dict[str, Any], ephemeral: bool = True) -> None:
    await respond(**message, response_type="ephemeral" if ephemeral else "in_channel")
