"""The scheduler's poster for Slack: daily picks into channels and DMs, one message per paper.

Every message carries Slack message metadata, `{event_type: "paperbot_post", event_payload:
{post_id, item}}`, so that a replica taking over a post whose sender died mid-send can find out
with `conversations.history` whether that message exists before sending it (and so never posts
it twice). Reading history needs the `channels:history` / `groups:history` / `im:history`
scopes; without them a message in doubt is not sent again (see the scheduler). Slack has no
idempotency key for `chat.postMessage`, so the look-up waits until the earlier send's deadline
has passed (`Scheduler._settle_doubt`): a message still on its way is found, not posted again.

A DM goes to the person's user id, which Slack delivers in the app's DM with them (the
Messages tab, `chat:write` only); the DM's conversation id in the answer is where reactions on
it come from, and is where its messages are recorded.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..scheduler.delivery import Delivery, Item, LookupUnavailable, NotDelivered, Sent
from .render import escape, paper_message, plain_section
from .replies import api_error
from .identity import channel_key
from .posting import CANNOT_POST_HERE, join

log = logging.getLogger(__name__)

EVENT_TYPE = "paperbot_post"
HISTORY_PAGES = 5          # pages of 200 messages looked through for a message in doubt
LOOKUP_MARGIN = 120.0      # seconds before the post began that a look-up starts from
# Errors of a send that Slack refused for now (a later retry may work); everything else that
# Slack answers with ok:false is permanent for the day.
TRANSIENT = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error",
                       "service_unavailable", "request_timeout", "team_added_to_org"})


class SlackPoster:
    def __init__(self, client: AsyncWebClient, team_id: str):
        self.client = client
        self.team_id = team_id

    def handles(self, target: str) -> bool:
        return target.startswith(f"slack:{self.team_id}:")

    def _message(self, delivery: Delivery, item: Item) -> dict[str, Any]:
        if item.result is not None:
            message = paper_message(item.result, item.header)
        else:
            message = {"text": escape(item.text), "blocks": [plain_section(item.text)]}
        message["metadata"] = {"event_type": EVENT_TYPE,
                               "event_payload": {"post_id": delivery.post_id, "item": item.id}}
        return message

    async def send(self, delivery: Delivery, item: Item) -> Sent:
        message = self._message(delivery, item)
        try:
            response = await self._post(delivery.deliver_to, message)
        except SlackApiError as exc:
            error = api_error(exc)
            if error == "not_in_channel" and delivery.kind == "channel" and await join(
                    self.client, delivery.deliver_to):
                try:
                    response = await self._post(delivery.deliver_to, message)
                except SlackApiError as again:
                    raise _refusal(api_error(again)) from None
            else:
                raise _refusal(error) from None
        return Sent(str(response["ts"]), self._where(delivery, response.get("channel")))

    async def _post(self, channel: str, message: dict[str, Any]):
        return await self.client.chat_postMessage(channel=channel, unfurl_links=False,
                                                  unfurl_media=False, **message)

    def _where(self, delivery: Delivery, conversation: str | None) -> str:
        """The key reactions on the message arrive under: the channel, or the DM conversation."""
        if delivery.kind == "channel":
            return delivery.target
        return channel_key(self.team_id, conversation or delivery.dm_channel or delivery.deliver_to)

    async def find_sent(self, delivery: Delivery, item: Item) -> Sent | None:
        conversation = delivery.deliver_to if delivery.kind == "channel" else delivery.dm_channel
        if not conversation:
            raise LookupUnavailable("the DM's conversation id is not known yet")
        cursor = None
        for _ in range(HISTORY_PAGES):
            try:
                page = await self.client.conversations_history(
                    channel=conversation, oldest=f"{delivery.started_at - LOOKUP_MARGIN:.6f}",
                    include_all_metadata=True, limit=200, cursor=cursor)
            except SlackApiError as exc:
                raise LookupUnavailable(f"conversations.history: {api_error(exc)}") from None
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (metadata.get("event_type") == EVENT_TYPE and payload.get("post_id") == delivery.post_id
                        and payload.get("item") == item.id):
                    return Sent(str(message["ts"]), self._where(delivery, conversation))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        raise LookupUnavailable("too many messages since the post began to look through")


def _refusal(error: str) -> NotDelivered:
    permanent = error not in TRANSIENT and (error in CANNOT_POST_HERE or not error.startswith("HTTP"))
    return NotDelivered(f"Slack: {error}", permanent=permanent)
