"""The fake Slack (`testkit.fake_slack.FakeSlack`) plus what the daily posts need of it:

- `post_delay`: chat.postMessage keeps the message first and answers that much later, as a slow
  Slack would (a sender killed while it waits has posted, but never learns the ts);
- `conversations.history`: the messages posted in a conversation, newest first, with their
  message metadata when `include_all_metadata` is set (as Slack answers it);
- a message sent to a user id (a DM) lands in that user's DM conversation `D<user>`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from testkit.fake_slack import FakeSlack


class HistoryFakeSlack(FakeSlack):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.post_delay = 0.0
        self.history: dict[str, list[dict[str, Any]]] = {}

    def posted(self, conversation: str) -> list[dict[str, Any]]:
        """Messages in a conversation, oldest first."""
        with self._cond:
            return list(self.history.get(conversation, []))

    async def _api(self, request: web.Request) -> web.Response:
        response = await super()._api(request)
        if request.match_info["method"] == "chat.postMessage" and self.post_delay:
            await asyncio.sleep(self.post_delay)
        return response

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage" and str(body.get("channel", "")).startswith("U"):
            body = {**body, "channel": "D" + body["channel"][1:]}     # the app's DM with them
        answer = super()._answer(method, body)
        if method == "chat.postMessage" and answer.get("ok"):
            metadata = body.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            with self._cond:
                self.history.setdefault(answer["channel"], []).append(
                    {"type": "message", "ts": answer["ts"], "text": body.get("text", ""),
                     "bot_id": "BPAPERBOT", "metadata": metadata or None})
        if method == "conversations.history":
            oldest = float(body.get("oldest") or 0)
            with self._cond:
                found = [dict(m) for m in reversed(self.history.get(body.get("channel", ""), []))
                         if float(m["ts"]) >= oldest]
            if str(body.get("include_all_metadata")).lower() not in ("true", "1"):
                for message in found:
                    message.pop("metadata", None)
            return {"ok": True, "messages": found, "has_more": False,
                    "response_metadata": {"next_cursor": ""}}
        return answer
