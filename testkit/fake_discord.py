"""A small fake Discord (REST API and gateway) on 127.0.0.1, for the unmodified discord.py client.

One aiohttp app serves `/api/v10/...` and a gateway websocket at `/gateway`. It answers what
paperbot's bot calls (login, application info, command sync, interaction callbacks, follow-ups,
channel messages, fetching one message, opening a DM channel and posting to it), records every
request, keeps the messages it was asked to create, and lets a
test dispatch gateway events (INTERACTION_CREATE, MESSAGE_REACTION_ADD/REMOVE) and answer chosen
requests with a 429. As Discord does, it refuses an interaction answered later than 3 s, lets the
first follow-up after a defer resolve the "thinking…" message, and keeps that message's visibility. Payload shapes follow Discord's API v10 as read by discord.py 2.7.1 (which
reads some keys directly: `attachment_size_limit` on interactions, `type` on reactions); update
the builders when discord.py is upgraded.

    fake = FakeDiscord()
    await fake.start()            # fake.api_base, fake.gateway_url
    ...
    exchange = await fake.interact(fake.slash("search", query="graph neural networks"))
    await fake.wait_for(lambda: len(exchange.visible) == 6)
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import json
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
MANAGE_CHANNELS = 1 << 4
ANSWER_WITHIN = 3.0   # seconds Discord waits for the first answer to an interaction
# What an ordinary member may do in a channel: view, send, read history, add reactions, use commands.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 6) | (1 << 31)
OPTION_TYPES = {str: 3, int: 4, bool: 5}
BODY = web.RequestKey("body", object)   # each request's parsed JSON body


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly application/json (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    at: float
    status: int = 200


@dataclasses.dataclass
class Exchange:
    """One interaction the test dispatched, and everything the bot answered to it."""

    payload: dict[str, Any]
    callbacks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    messages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    original: dict[str, Any] | None = None
    dispatched_at: float = dataclasses.field(default_factory=time.monotonic)
    deferred_at: float | None = None
    late: bool = False

    @property
    def token(self) -> str:
        return self.payload["token"]

    @property
    def visible(self) -> list[dict[str, Any]]:
        """Messages that were answered (not deleted, not still "thinking")."""
        return [m for m in self.messages if not m.get("deleted") and not m["flags"] & LOADING]

    @property
    def text(self) -> str:
        return "\n".join(m["content"] for m in self.visible if m["content"])


class FakeDiscord:
    def __init__(self, *, guild_id: int = 41771983423143937, channel_id: int = 41771983423143938,
                 app_id: int = 81384788765712384, bot_id: int = 81384788765712385):
        self.guild_id, self.channel_id, self.app_id, self.bot_id = guild_id, channel_id, app_id, bot_id
        self.bot_user = {"id": str(bot_id), "username": "paperbot", "discriminator": "0",
                         "global_name": "paperbot", "avatar": None, "bot": True, "flags": 0}
        self.requests: list[Recorded] = []
        self.identifies: list[dict[str, Any]] = []
        self.sessions = 0     # gateway connections that got READY and GUILD_CREATE
        self.close_codes: list[int | None] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}   # "global" or guild id -> synced
        self.messages: dict[int, dict[str, Any]] = {}
        self.exchanges: dict[str, Exchange] = {}
        self._limits: list[list[Any]] = []
        self._ids = itertools.count(1)
        self._seq = 0
        self._socket: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.valid_token: str | None = None   # when set, any other bot token gets a 401
        self.dm_channels: dict[int, int] = {}   # user id -> their DM channel with the bot
        self.closed_dms: set[int] = set()       # users who accept no DMs (403, code 50007)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/gateway", self._gateway)
        api = "/api/v10"
        app.router.add_get(api + "/users/@me", self._me)
        app.router.add_get(api + "/oauth2/applications/@me", self._application)
        app.router.add_put(api + "/applications/{app}/commands", self._sync_commands)
        app.router.add_put(api + "/applications/{app}/guilds/{guild}/commands", self._sync_commands)
        app.router.add_post(api + "/interactions/{id}/{token}/callback", self._callback)
        app.router.add_post(api + "/webhooks/{app}/{token}", self._followup)
        webhook_message = api + "/webhooks/{app}/{token}/messages/{mid}"
        app.router.add_patch(webhook_message, self._edit_webhook_message)
        app.router.add_delete(webhook_message, self._delete_webhook_message)
        app.router.add_post(api + "/channels/{channel}/messages", self._channel_message)
        app.router.add_get(api + "/channels/{channel}/messages/{mid}", self._get_message)
        app.router.add_post(api + "/users/@me/channels", self._open_dm)
        self._more_routes(app.router, api)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    def _more_routes(self, router: web.UrlDispatcher, api: str) -> None:
        """A subclass's own routes (testkit.fake_discord_posts)."""

    async def close(self) -> None:
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def connected(self) -> bool:
        return self._socket is not None and not self._socket.closed

    # -- test controls --------------------------------------------------------------------
    def rate_limit(self, method: str, path_pattern: str, *, times: int = 1,
                   retry_after: float = 0.5) -> None:
        """Answer the next `times` matching requests with 429 and `retry_after` (and `Via`)."""
        self._limits.append([method, re.compile(path_pattern), times, retry_after])

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
            await asyncio.sleep(0.02)

    def dms_to(self, user_id: int) -> list[dict[str, Any]]:
        """The messages the bot sent into its DM channel with `user_id`, oldest first."""
        dm = self.dm_channels.get(user_id)
        return [m for m in self.messages.values() if dm is not None and m["channel_id"] == str(dm)]

    def requests_to(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self.connected, "no gateway connection to dispatch on"
        self._seq += 1
        await self._socket.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def interact(self, payload: dict[str, Any]) -> Exchange:
        exchange = self.exchanges[payload["token"]] = Exchange(payload)
        await self.dispatch("INTERACTION_CREATE", payload)
        return exchange

    async def react(self, message: dict[str, Any], emoji: str, *, user_id: int = 1001,
                    add: bool = True, guild: bool = True, emoji_id: int | None = None) -> None:
        """A reaction `emoji` (a custom emoji of the server's when `emoji_id` is given)."""
        data: dict[str, Any] = {"user_id": str(user_id), "channel_id": message["channel_id"],
                                "message_id": message["id"],
                                "emoji": {"id": None if emoji_id is None else str(emoji_id), "name": emoji},
                                "burst": False, "type": 0}
        if guild:
            data["guild_id"] = str(self.guild_id)
        if add:
            data.update(burst_colors=[], message_author_id=message["author"]["id"])
            if guild:
                data["member"] = self.member(user_id)
        await self.dispatch("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", data)

    # -- payload builders -----------------------------------------------------------------
    def snowflake(self) -> int:
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    def user(self, user_id: int) -> dict[str, Any]:
        return {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0",
                "global_name": f"User {user_id}", "avatar": None, "public_flags": 0}

    def member(self, user_id: int, permissions: int = MEMBER_PERMISSIONS) -> dict[str, Any]:
        return {"user": self.user(user_id), "roles": [], "nick": None, "avatar": None,
                "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                "flags": 0, "pending": False, "permissions": str(permissions)}

    def interaction(self, kind: int, data: dict[str, Any], *, user_id: int = 1001,
                    permissions: int = MEMBER_PERMISSIONS, guild: bool = True,
                    message: dict[str, Any] | None = None) -> dict[str, Any]:
        iid = self.snowflake()
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(self.app_id), "type": kind, "data": data,
            "token": f"token-{iid}", "version": 1, "locale": "en-US", "entitlements": [],
            "app_permissions": str(MEMBER_PERMISSIONS), "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild:
            payload.update(
                guild_id=str(self.guild_id), guild_locale="en-US", context=0,
                guild={"id": str(self.guild_id), "locale": "en-US", "features": []},
                channel_id=str(self.channel_id), channel=self.channel_payload(),
                member=self.member(user_id, permissions),
                authorizing_integration_owners={"0": str(self.guild_id)})
        else:
            dm_channel = self.guild_id + user_id   # any stable id
            payload.update(
                context=1, user=self.user(user_id), channel_id=str(dm_channel),
                channel={"id": str(dm_channel), "type": 1, "recipients": [self.user(user_id)],
                         "last_message_id": None},
                authorizing_integration_owners={"0": str(self.guild_id)})
        if message is not None:
            payload["message"] = message
        return payload

    def channel_payload(self) -> dict[str, Any]:
        return {"id": str(self.channel_id), "type": 0, "guild_id": str(self.guild_id),
                "name": "reading-group", "position": 0, "permission_overwrites": [], "nsfw": False,
                "parent_id": None, "topic": None, "last_message_id": None, "rate_limit_per_user": 0,
                "flags": 0}

    def slash(self, *path: str, user_id: int = 1001, permissions: int = MEMBER_PERMISSIONS,
              guild: bool = True, focused: str | None = None, **options: Any) -> dict[str, Any]:
        """`/papers <path...> option:value ...` as an application command (or, with `focused`
        naming an option, as an autocomplete request while typing that option)."""
        leaf_options = [{"name": name,
                         "type": OPTION_TYPES[type(value)], "value": value,
                         **({"focused": True} if name == focused else {})}
                        for name, value in options.items()]
        node: dict[str, Any] = {"name": path[-1], "type": 1, "options": leaf_options}
        for group in reversed(path[:-1]):
            node = {"name": group, "type": 2, "options": [node]}
        data: dict[str, Any] = {"id": str(self.app_id + 1), "name": "papers", "type": 1,
                                "options": [node]}
        if guild and str(self.guild_id) in self.commands:
            data["guild_id"] = str(self.guild_id)   # a guild command carries its guild
        return self.interaction(4 if focused else 2, data, user_id=user_id,
                                permissions=permissions, guild=guild)

    def click(self, message: dict[str, Any], custom_id: str, *, user_id: int = 1001,
              guild: bool = True) -> dict[str, Any]:
        """A click on a button of `message` (a message the bot created here)."""
        data = {"custom_id": custom_id, "component_type": 2}
        return self.interaction(3, data, user_id=user_id, guild=guild, message=message)

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [c for row in message.get("components", []) for c in row.get("components", [])]

    # -- REST -----------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler):
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        entry = Recorded(request.method, request.path, dict(request.query), body,
                         dict(request.headers), time.monotonic())
        self.requests.append(entry)
        request[BODY] = body
        for limit in self._limits:
            method, pattern, times, retry_after = limit
            if times > 0 and request.method == method and pattern.search(request.path):
                limit[2] -= 1
                entry.status = 429
                return json_response(
                    {"message": "You are being rate limited.", "retry_after": retry_after,
                     "global": False}, status=429,
                    headers={"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
                             "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset-After": str(retry_after),
                             "X-RateLimit-Bucket": "fake-bucket", "X-RateLimit-Scope": "user"})
        response = await handler(request)
        entry.status = response.status
        return response

    async def _me(self, request: web.Request) -> web.Response:
        if self.valid_token and request.headers.get("Authorization") != f"Bot {self.valid_token}":
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return json_response(self.bot_user)

    async def _application(self, request: web.Request) -> web.Response:
        return json_response({
            "id": str(self.app_id), "name": "paperbot", "icon": None, "description": "",
            "bot_public": True, "bot_require_code_grant": False, "verify_key": "00" * 32,
            "owner": self.user(1), "flags": 0, "team": None, "summary": "",
            "rpc_origins": [], "interactions_endpoint_url": None, "bot": self.bot_user})

    async def _sync_commands(self, request: web.Request) -> web.Response:
        scope = request.match_info.get("guild", "global")
        commands = [{**cmd, "id": str(self.snowflake()), "application_id": str(self.app_id),
                     "version": str(self.snowflake()), "default_member_permissions": None,
                     **({"guild_id": scope} if scope != "global" else {})}
                    for cmd in request[BODY]]
        self.commands[scope] = commands
        return json_response(commands)

    def _new_message(self, body: dict[str, Any], channel_id: str, *, flags: int = 0,
                     token: str | None = None) -> dict[str, Any]:
        message = {
            "id": str(self.snowflake()), "channel_id": channel_id, "type": 0 if token is None else 20,
            "content": body.get("content") or "", "author": self.bot_user,
            "embeds": body.get("embeds") or [], "components": body.get("components") or [],
            "attachments": [], "mentions": [], "mention_roles": [], "mention_everyone": False,
            "pinned": False, "tts": False, "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
            "edited_timestamp": None, "flags": flags | (body.get("flags") or 0),
            "allowed_mentions": body.get("allowed_mentions"),
        }
        if token is not None:
            message.update(webhook_id=str(self.app_id), application_id=str(self.app_id))
        if "guild_id" in (self.exchanges.get(token or "", Exchange({})).payload):
            message["guild_id"] = str(self.guild_id)
        self.messages[int(message["id"])] = message
        return message

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if k not in ("allowed_mentions", "deleted")}

    async def _callback(self, request: web.Request) -> web.Response:
        body = request[BODY]
        exchange = self.exchanges.get(request.match_info["token"])
        if exchange is None:
            return json_response({"message": "Unknown interaction", "code": 10062}, status=404)
        if time.monotonic() - exchange.dispatched_at > ANSWER_WITHIN:
            exchange.late = True    # Discord forgets an interaction not answered in 3 s
            return json_response({"message": "Unknown interaction", "code": 10062}, status=404)
        if exchange.callbacks:
            return json_response({"message": "Interaction has already been acknowledged.",
                                  "code": 40060}, status=400)
        exchange.callbacks.append(body)
        kind, data = body["type"], body.get("data") or {}
        flags = data.get("flags") or 0
        info = {"id": exchange.payload["id"], "type": exchange.payload["type"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & EPHEMERAL)}
        channel_id = exchange.payload["channel_id"]
        if kind in (4, 5):
            if kind == 5:
                exchange.deferred_at = time.monotonic()
            message = self._new_message(data, channel_id, flags=LOADING if kind == 5 else 0,
                                        token=exchange.token)
            exchange.original = message
            exchange.messages.append(message)
            info["response_message_id"] = message["id"]
            return json_response({"interaction": info,
                                  "resource": {"type": kind, "message": self._public(message)}})
        return json_response({"interaction": info})

    async def _followup(self, request: web.Request) -> web.Response:
        exchange = self.exchanges.get(request.match_info["token"])
        if exchange is None or not exchange.callbacks:
            return json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
        body = request[BODY]
        original = exchange.original
        if original is not None and original["flags"] & LOADING:
            # The first follow-up after a defer resolves the "thinking" message; its visibility
            # is the defer's, whatever flags the follow-up asks for (as Discord does).
            keep = original["flags"] & EPHEMERAL
            original.update(content=body.get("content") or "", embeds=body.get("embeds") or [],
                            components=body.get("components") or [],
                            flags=keep | ((body.get("flags") or 0) & ~EPHEMERAL),
                            allowed_mentions=body.get("allowed_mentions"))
            message = original
        else:
            message = self._new_message(body, exchange.payload["channel_id"], token=exchange.token)
            exchange.messages.append(message)
        if request.query.get("wait") not in ("true", "True", "1"):
            return web.Response(status=204)
        return json_response(self._public(message))

    def _webhook_target(self, request: web.Request) -> tuple[Exchange | None, dict | None]:
        exchange = self.exchanges.get(request.match_info["token"])
        if exchange is None:
            return None, None
        mid = request.match_info["mid"]
        if mid == "@original":
            return exchange, exchange.original
        return exchange, self.messages.get(int(mid))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_target(request)
        if message is None:
            return json_response({"message": "Unknown Message", "code": 10008}, status=404)
        body = request[BODY]
        for key in ("content", "embeds", "components", "allowed_mentions"):
            if key in body:
                message[key] = body[key]
        message["flags"] &= ~LOADING
        return json_response(self._public(message))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_target(request)
        if message is None:
            return json_response({"message": "Unknown Message", "code": 10008}, status=404)
        message["deleted"] = True
        return web.Response(status=204)

    async def _channel_message(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        recipient = next((user for user, dm in self.dm_channels.items() if str(dm) == channel), None)
        if recipient in self.closed_dms:   # what Discord answers when a person's DMs are closed
            return json_response({"message": "Cannot send messages to this user", "code": 50007},
                                 status=403)
        message = self._new_message(request[BODY], channel)
        return json_response(self._public(message))

    async def _get_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(int(request.match_info["mid"]))
        if (message is None or message.get("deleted")
                or message["channel_id"] != request.match_info["channel"]):
            return json_response({"message": "Unknown Message", "code": 10008}, status=404)
        return json_response(self._public(message))

    async def _open_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels {recipient_id}: the DM channel with that user (the same one
        every time, as Discord does)."""
        user_id = int(request[BODY]["recipient_id"])
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = self.snowflake()
        return json_response({"id": str(self.dm_channels[user_id]), "type": 1, "flags": 0,
                              "last_message_id": None, "recipients": [self.user(user_id)]})

    # -- gateway --------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_str(json.dumps({"op": 10, "s": None, "t": None,
                                          "d": {"heartbeat_interval": 41250}}))
        async for frame in socket:
            if frame.type != WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if message["op"] == 1:
                await socket.send_str(json.dumps({"op": 11, "s": None, "t": None, "d": None}))
            elif message["op"] == 2:
                self.identifies.append(message["d"])
                await self._ready()
                self.sessions += 1
        self.close_codes.append(socket.close_code)
        return socket

    async def _ready(self) -> None:
        await self.dispatch("READY", {
            "v": 10, "user": self.bot_user, "session_id": "fake-session",
            "resume_gateway_url": self.gateway_url, "guilds": [{"id": str(self.guild_id),
                                                                "unavailable": True}],
            "application": {"id": str(self.app_id), "flags": 0}, "private_channels": [],
            "relationships": [], "user_settings": {}, "shard": [0, 1]})
        everyone = {"id": str(self.guild_id), "name": "@everyone", "position": 0,
                    "permissions": str(MEMBER_PERMISSIONS), "color": 0, "hoist": False, "managed": False,
                    "mentionable": False, "flags": 0}
        await self.dispatch("GUILD_CREATE", {
            "id": str(self.guild_id), "name": "Reading Group", "icon": None, "owner_id": "1",
            "roles": [everyone], "emojis": [], "stickers": [], "features": [],
            "channels": [self.channel_payload()], "threads": [], "members": [
                {**self.member(self.bot_id), "user": self.bot_user}],
            "member_count": 3, "presences": [], "voice_states": [], "large": False,
            "unavailable": False, "mfa_level": 0, "verification_level": 0,
            "explicit_content_filter": 0, "default_message_notifications": 0,
            "afk_channel_id": None, "afk_timeout": 300, "system_channel_id": None,
            "premium_tier": 0, "preferred_locale": "en-US", "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "joined_at": "2024-01-01T00:00:00+00:00",
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": []})
