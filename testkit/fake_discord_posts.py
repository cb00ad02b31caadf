"""The fake Discord (`testkit.fake_discord.FakeDiscord`) plus what the daily posts need of it:

- nonces as Discord treats them with `enforce_nonce` (discord.py sets it with every nonce): a
  channel message whose nonce the bot used in the last few minutes (`nonce_window`) is answered
  with the message already created, and none is made; `nonce_replays` lists those answers;
- a channel's history, GET /channels/{id}/messages: up to `limit` (at most 100) messages,
  newest first; with `after`, the oldest ones after that id (as Discord pages forwards);
- held requests (`hold`): recorded on arrival, processed only once released, as a request of a
  frozen process (or stuck on the way) reaches Discord late.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from typing import Any

from aiohttp import web
from testkit.fake_discord import BODY, FakeDiscord, json_response


@dataclasses.dataclass
class Hold:
    """Requests held on their way in: processed once `release()`d."""

    method: str
    pattern: re.Pattern
    times: int
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    answered: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    answers: list[Any] = dataclasses.field(default_factory=list)   # what the held ones got

    def release(self) -> None:
        self.released.set()


class PostsFakeDiscord(FakeDiscord):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.nonce_window = 300.0                          # Discord: "the past few minutes"
        self.nonce_replays: list[str] = []
        self._nonces: dict[str, tuple[int, float]] = {}    # nonce -> (message id, when)
        self._holds: list[Hold] = []

    def hold(self, method: str, path_pattern: str, *, times: int = 1) -> Hold:
        """Hold the next `times` matching requests until the returned Hold is released."""
        held = Hold(method, re.compile(path_pattern), times)
        self._holds.append(held)
        return held

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The messages in a channel, oldest first."""
        return sorted((m for m in self.messages.values()
                       if m["channel_id"] == str(channel_id) and not m.get("deleted")),
                      key=lambda m: int(m["id"]))

    def _more_routes(self, router: web.UrlDispatcher, api: str) -> None:
        router.add_get(api + "/channels/{channel}/messages", self._history)

    @web.middleware
    async def _record(self, request: web.Request, handler):
        async def held_back(request: web.Request) -> web.StreamResponse:
            held = next((h for h in self._holds if h.times > 0 and request.method == h.method
                         and h.pattern.search(request.path)), None)
            if held is None:
                return await handler(request)
            held.times -= 1
            held.arrived.set()
            await held.released.wait()
            response = await handler(request)
            held.answers.append(json.loads(response.body) if response.body else None)
            held.answered.set()
            return response
        return await FakeDiscord._record(self, request, held_back)

    async def _channel_message(self, request: web.Request) -> web.Response:
        body = request[BODY] or {}
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            made = self._nonces.get(str(nonce))
            if made and time.monotonic() - made[1] < self.nonce_window and made[0] in self.messages:
                self.nonce_replays.append(str(nonce))
                return json_response({**self._public(self.messages[made[0]]), "nonce": nonce})
        response = await super()._channel_message(request)
        if nonce is not None and response.status == 200:
            message = json.loads(response.body)
            self._nonces[str(nonce)] = (int(message["id"]), time.monotonic())
            return json_response({**message, "nonce": nonce})
        return response

    async def _history(self, request: web.Request) -> web.Response:
        found = self.channel_messages(int(request.match_info["channel"]))
        limit = min(100, int(request.query.get("limit", 50)))
        if "after" in request.query:
            found = [m for m in found if int(m["id"]) > int(request.query["after"])][:limit]
        else:
            if "before" in request.query:
                found = [m for m in found if int(m["id"]) < int(request.query["before"])]
            found = found[-limit:]
        return json_response([self._public(m) for m in reversed(found)])
