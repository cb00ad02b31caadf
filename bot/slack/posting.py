"""Papers posted in a channel, one message per paper, so that a reaction on a message is
feedback on exactly one paper. Used for `search`/`similar` answers and by the daily picks.

paperbot posts only where it is a member, because Slack sends reaction events only from
conversations the app is in: in a public channel it has not joined yet, it joins first
(`channels:join`); a private channel needs an /invite.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from recommender import Recommender, Result

from .render import paper_message
from .replies import api_error

log = logging.getLogger(__name__)

# chat.postMessage errors that mean "paperbot may not post here", not "something broke".
CANNOT_POST_HERE = frozenset({
    "not_in_channel", "channel_not_found", "method_not_supported_for_channel_type", "is_archived",
    "restricted_action", "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
    "restricted_action_non_threadable_channel", "team_access_not_granted", "ekm_access_denied",
})


async def post_papers(client: AsyncWebClient, rec: Recommender, channel: str, slack_channel: str,
                      results: list[Result], header: str | None = None,
                      mark_shown: bool = True) -> list[str]:
    """Post each result as its own message in `slack_channel` (the header on the first one).

    `channel` is the scoped key (`slack:T…:C…`). Each message's ts is recorded as showing its
    paper, so reactions on it become feedback; the papers are marked shown to the channel so its
    picks never repeat them. A 429 is retried by the client after Retry-After. Returns the ts list.
    """
    posted = []
    for n, result in enumerate(results):
        message = paper_message(result, header if n == 0 else None)
        try:
            response = await _post(client, slack_channel, message)
        except SlackApiError as exc:
            if n > 0 or api_error(exc) != "not_in_channel" or not await join(client, slack_channel):
                raise
            response = await _post(client, slack_channel, message)
        await asyncio.to_thread(rec.record_post, channel, response["ts"], result.paper.id)
        posted.append(response["ts"])
    if mark_shown and results:
        await asyncio.to_thread(rec.mark_shown, channel, [r.paper.id for r in results])
    log.info("posted %d papers in %s", len(posted), channel)
    return posted


async def _post(client: AsyncWebClient, slack_channel: str, message: dict):
    return await client.chat_postMessage(channel=slack_channel, unfurl_links=False,
                                         unfurl_media=False, **message)


async def join(client: AsyncWebClient, slack_channel: str) -> bool:
    """Join a public channel (so that its reactions reach paperbot); False where it can't."""
    try:
        await client.conversations_join(channel=slack_channel)
    except SlackApiError as exc:
        log.info("cannot join %s: %s", slack_channel, api_error(exc))
        return False
    log.info("joined channel %s to post there", slack_channel)
    return True
