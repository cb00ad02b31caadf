"""A fake Slack on 127.0.0.1 for tests: Web API, response_urls and a Socket Mode websocket.

It runs an aiohttp server on its own event loop in a thread, so that the code under test (the real
slack_bolt and slack_sdk, in this process or in a `paperbot serve` subprocess) talks to it over
real HTTP and a real websocket. Every request is recorded; tests wait for the ones they expect.

A test can hold chosen calls on their way in (`hold`): Slack sees them only when released, or
after a delay, as a request from a frozen process, or a slow one, reaches it late.

Also here: builders for Slack's payloads (slash command, block_actions, reaction events) and
request signing exactly as Slack does it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

TEAM = "T0PAPERS"
BOT_USER = "UPAPERBOT"
BOT_TOKEN = "xoxb-fake-bot-token-123"
APP_TOKEN = "xapp-fake-app-token-456"
SIGNING_SECRET = "fake-signing-secret-789"


@dataclasses.dataclass
class Held:
    """Calls held on their way in (`FakeSlack.hold`); threading events, any thread may wait."""

    method: str
    times: int
    seconds: float | None
    arrived: threading.Event = dataclasses.field(default_factory=threading.Event)
    released: threading.Event = dataclasses.field(default_factory=threading.Event)
    answered: threading.Event = dataclasses.field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclasses.dataclass
class Call:
    method: str            # Web API method ("chat.postMessage"), or "response_url"
    body: dict[str, Any]
    headers: dict[str, str]
    status: int
    at: float              # time.monotonic() when it arrived
    path: str = ""


class FakeSlack:
    def __init__(self, team: str = TEAM, bot_user: str = BOT_USER, bot_token: str = BOT_TOKEN,
                 app_token: str = APP_TOKEN):
        self.team, self.bot_user, self.bot_token, self.app_token = team, bot_user, bot_token, app_token
        self.calls: list[Call] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.reactions: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.not_joined: set[str] = set()        # public channels paperbot is not in (yet)
        self.private: set[str] = set()           # private channels paperbot was not invited to
        # users.info: workspace admins, owners (also admins, as on Slack), guests; methods
        # answered `missing_scope` (an app installed without the scope they need)
        self.admins: set[str] = set()
        self.owners: set[str] = set()
        self.guests: set[str] = set()
        self.missing_scope: set[str] = set()
        self._rate_limits: dict[str, list[int]] = {}
        self._holds: list[Held] = []
        self._ts = itertools.count(1)
        self._cond = threading.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/api/{method}", self._api)
            app.router.add_get("/api/{method}", self._api)
            app.router.add_post("/respond/{tag}", self._respond)
            app.router.add_get("/ws", self._websocket)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-slack", daemon=True)
        self._thread.start()
        assert ready.wait(10), "fake Slack did not start"

    def stop(self) -> None:
        if self._loop is not None:
            async def close_sockets() -> None:
                for ws in list(self._sockets):
                    await ws.close()
            asyncio.run_coroutine_threadsafe(close_sockets(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    # -- addresses ------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, tag: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/respond/{tag or uuid.uuid4().hex[:8]}"

    # -- scripting ------------------------------------------------------------------------
    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and Retry-After."""
        self._rate_limits[method] = [times, retry_after]

    def hold(self, method: str, times: int = 1, seconds: float | None = None) -> Held:
        """Hold the next `times` calls of `method` until released (or for `seconds`); only
        then are they recorded and answered."""
        held = Held(method, times, seconds)
        with self._cond:
            self._holds.append(held)
        return held

    def set_reactions(self, channel: str, ts: str, reactions: dict[str, list[str]]) -> None:
        """What reactions.get reports for a message: emoji name -> users."""
        self.reactions[(channel, ts)] = reactions

    # -- what happened --------------------------------------------------------------------
    def calls_to(self, method: str, status: int | None = 200) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method and (status is None or c.status == status)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 20, status: int | None = 200,
                 where=None) -> list[Call]:
        """Block until at least `count` matching calls arrived; returns them."""
        def matching() -> list[Call]:
            return [c for c in self.calls if c.method == method
                    and (status is None or c.status == status) and (where is None or where(c))]
        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                seen = [(c.method, c.status) for c in self.calls]
                raise AssertionError(f"expected {count} {method} call(s) within {timeout}s; saw {seen}")
            return matching()

    def responses_to(self, tag: str) -> list[Call]:
        return [c for c in self.calls_to("response_url") if c.path.endswith("/" + tag)]

    def wait_response(self, tag: str, count: int = 1, timeout: float = 20) -> list[Call]:
        return self.wait_for("response_url", count, timeout, where=lambda c: c.path.endswith("/" + tag))

    def reset(self) -> None:
        with self._cond:
            self.calls.clear()

    # -- Socket Mode ----------------------------------------------------------------------
    def wait_connected(self, timeout: float = 20) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self._sockets, timeout), "no Socket Mode connection"

    def send_envelope(self, kind: str, payload: dict[str, Any],
                      accepts_response_payload: bool = False) -> str:
        """Push an envelope (`slash_commands`, `interactive`, `events_api`) to the connected app."""
        envelope_id = uuid.uuid4().hex
        message = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                   "accepts_response_payload": accepts_response_payload, "retry_attempt": 0,
                   "retry_reason": ""}
        asyncio.run_coroutine_threadsafe(self._sockets[-1].send_str(json.dumps(message)),
                                         self._loop).result(5)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: envelope_id in self.acks, timeout), "envelope not acked"
            return self.acks[envelope_id]

    # -- the server -----------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        if request.method == "GET":
            body = dict(request.query)
        elif request.content_type == "application/json":
            body = json.loads(raw or b"{}")
        else:
            body = dict(parse_qsl(raw.decode()))
            for key in ("blocks", "attachments"):
                if isinstance(body.get(key), str):
                    body[key] = json.loads(body[key])
        body = {**request.query, **body}   # slack_sdk sends some methods' arguments as a query
        with self._cond:
            held = next((h for h in self._holds if h.method == method and h.times > 0), None)
            if held is not None:
                held.times -= 1
        if held is None:
            return self._handle(method, body, request)
        held.arrived.set()
        await asyncio.to_thread(held.released.wait, held.seconds)
        try:
            return self._handle(method, body, request)
        finally:
            held.answered.set()

    def _handle(self, method: str, body: dict[str, Any], request: web.Request) -> web.Response:
        headers = dict(request.headers)
        limited = self._rate_limits.get(method)
        if limited and limited[0] > 0:
            limited[0] -= 1
            self._record(Call(method, body, headers, 429, time.monotonic(), request.path))
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(limited[1])})
        self._record(Call(method, body, headers, 200, time.monotonic(), request.path))
        token = headers.get("Authorization", "").removeprefix("Bearer ") or body.get("token", "")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(self._answer(method, body))

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake Lab", "user": "paperbot",
                    "team_id": self.team, "user_id": self.bot_user, "bot_id": "BPAPERBOT",
                    "is_enterprise_install": False}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/ws"}
        if method == "chat.postMessage":
            channel = body.get("channel", "")
            if channel in self.not_joined or channel in self.private:
                return {"ok": False, "error": "not_in_channel"}
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return {"ok": True, "channel": channel, "ts": ts,
                    "message": {"type": "message", "user": self.bot_user, "bot_id": "BPAPERBOT",
                                "text": body.get("text", ""), "ts": ts, "blocks": body.get("blocks", [])}}
        if method == "conversations.join":
            channel = body.get("channel", "")
            if channel in self.private:
                return {"ok": False, "error": "method_not_supported_for_channel_type"}
            self.not_joined.discard(channel)
            return {"ok": True, "channel": {"id": channel, "is_member": True}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
        if method in self.missing_scope:
            return {"ok": False, "error": "missing_scope", "needed": "users:read"}
        if method == "users.info":
            user = body.get("user", "")
            return {"ok": True, "user": {
                "id": user, "team_id": self.team, "name": user.lower(), "deleted": False,
                "is_admin": user in self.admins or user in self.owners,
                "is_owner": user in self.owners, "is_primary_owner": False,
                "is_restricted": user in self.guests, "is_ultra_restricted": False, "is_bot": False}}
        if method == "reactions.get":
            channel, ts = body.get("channel", ""), body.get("timestamp", "")
            reactions = [{"name": name, "users": users, "count": len(users)}
                         for name, users in self.reactions.get((channel, ts), {}).items() if users]
            return {"ok": True, "type": "message", "channel": channel,
                    "message": {"type": "message", "ts": ts, "reactions": reactions}}
        return {"ok": True}

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(Call("response_url", body, dict(request.headers), 200, time.monotonic(), request.path))
        return web.Response(text="ok")

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "debug_info": {"host": "fake-slack"},
                                      "connection_info": {"app_id": "APAPERBOT"}}))
        with self._cond:
            self._sockets.append(ws)
            self._cond.notify_all()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                if "envelope_id" in data:
                    with self._cond:
                        self.acks[data["envelope_id"]] = data
                        self._cond.notify_all()
        with self._cond:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws


# -- Slack's payloads ---------------------------------------------------------------------
def slash_command(text: str, response_url: str, user: str = "UALICE", channel: str = "CLAB",
                  team: str = TEAM, user_name: str = "alice", channel_name: str = "lab") -> dict[str, str]:
    return {"token": "legacy-verification", "team_id": team, "team_domain": "fakelab",
            "channel_id": channel, "channel_name": channel_name, "user_id": user, "user_name": user_name,
            "command": "/papers", "text": text, "api_app_id": "APAPERBOT",
            "is_enterprise_install": "false", "response_url": response_url,
            "trigger_id": f"{uuid.uuid4().int % 10**10}.{uuid.uuid4().hex[:10]}"}


def block_action(action_id: str, value: str, response_url: str, user: str = "UALICE",
                 channel: str = "CLAB", message_ts: str = "1700000000.000001", team: str = TEAM,
                 ephemeral: bool = False) -> dict[str, Any]:
    return {
        "type": "block_actions", "api_app_id": "APAPERBOT", "token": "legacy-verification",
        "team": {"id": team, "domain": "fakelab"},
        "user": {"id": user, "username": "alice", "name": "alice", "team_id": team},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": ephemeral},
        "channel": {"id": channel, "name": "lab"},
        "trigger_id": f"{uuid.uuid4().int % 10**10}.{uuid.uuid4().hex[:10]}",
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                     "text": {"type": "plain_text", "text": "x"}, "action_ts": f"{time.time():.6f}"}],
    }


def reaction_event(kind: str, reaction: str, channel: str, ts: str, user: str = "UALICE",
                   team: str = TEAM, item_user: str = BOT_USER) -> dict[str, Any]:
    """An Events API callback for `reaction_added` or `reaction_removed`."""
    return {
        "token": "legacy-verification", "team_id": team, "api_app_id": "APAPERBOT",
        "event": {"type": kind, "user": user, "reaction": reaction, "item_user": item_user,
                  "item": {"type": "message", "channel": channel, "ts": ts},
                  "event_ts": f"{time.time():.6f}"},
        "type": "event_callback", "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": BOT_USER,
                            "is_bot": True, "is_enterprise_install": False}],
    }


def http_body(payload: dict[str, Any]) -> tuple[str, str]:
    """(body, content type) as Slack sends each kind over HTTP."""
    if payload.get("command"):
        return urlencode(payload), "application/x-www-form-urlencoded"
    if payload.get("type") in ("block_actions", "view_submission", "shortcut"):
        return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    return json.dumps(payload), "application/json"


def signed_headers(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None,
                   content_type: str = "application/json") -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": content_type}


def envelope_kind(payload: dict[str, Any]) -> str:
    if payload.get("command"):
        return "slash_commands"
    if payload.get("type") == "event_callback":
        return "events_api"
    return "interactive"
