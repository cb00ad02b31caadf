"""The Slack adapter's Bolt app, and its two ways in: Socket Mode or HTTP at `/slack/events`.

Everything runs in the one asyncio loop of `paperbot serve`: Bolt's `AsyncApp` acknowledges each
command, click and event on the loop at once, and the Recommender's (synchronous, CPU-bound)
calls run in threads after the ack. Web API calls go to `SLACK_API_URL` when set, and a 429 is
retried after its Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from recommender import Recommender

from ..actions import Actions
from ..feedback import FeedbackPath
from ..limits import RateLimit, RateLimiter
from . import buttons, commands, reactions
from .daily_posts import SlackPoster
from .inflight import InFlight
from .replies import api_error
from .settings import SlackConfig

log = logging.getLogger(__name__)

HTTP_PATH = "/slack/events"
RATE_LIMIT_RETRIES = 3
DRAIN_SECONDS = 10.0   # on stop, how long work already acknowledged may take to finish


def web_client(config: SlackConfig) -> AsyncWebClient:
    """The Web API client: SLACK_API_URL, connection errors retried, 429s retried after Retry-After."""
    return AsyncWebClient(token=config.bot_token, base_url=config.api_url, retry_handlers=[
        AsyncConnectionErrorRetryHandler(),
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
    ])


class _IntendedClientWarning(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN (which it reads from the environment itself) goes unused
    when it is given a client; paperbot gives it a client on purpose (SLACK_API_URL, 429 retries)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_LOGGER = logging.getLogger("slack_bolt.AsyncApp")
if not any(isinstance(f, _IntendedClientWarning) for f in _BOLT_LOGGER.filters):
    _BOLT_LOGGER.addFilter(_IntendedClientWarning())


def build_app(actions: Actions, client: AsyncWebClient, config: SlackConfig,
              inflight: InFlight | None = None) -> AsyncApp:
    inflight = inflight or InFlight()
    app = AsyncApp(name="paperbot", client=client, signing_secret=config.signing_secret,
                   # Socket Mode requests come over the app's own authenticated websocket
                   request_verification_enabled=config.http)
    feedback = FeedbackPath(actions)
    commands.register(app, actions, inflight, config.channels)
    buttons.register(app, actions, feedback, inflight)
    reactions.register(app, feedback, inflight)

    @app.error
    async def on_unexpected_error(error, body):
        log.error("Slack request failed (type %s)", (body or {}).get("type"), exc_info=error)

    return app


class SlackBot:
    """The Bolt app with its Web API client, served one way or the other until `close()`."""

    def __init__(self, rec: Recommender, config: SlackConfig, rate_limit: RateLimit = RateLimit()):
        self.config = config
        self.actions = Actions(rec, limiter=RateLimiter(rec.store.r, rec.store.prefix, rate_limit))
        self.client = web_client(config)
        self.inflight = InFlight()
        self.app = build_app(self.actions, self.client, config, self.inflight)
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None

    async def check_token(self) -> dict:
        """auth.test: fail at start, with a clear line, rather than at the first command."""
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            error = api_error(exc)
            raise ValueError(f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token "
                             "(xoxb-…) from your app's OAuth & Permissions page, and reinstall the app "
                             "if its scopes changed.") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ValueError(f"cannot reach the Slack Web API at {self.config.api_url}: "
                             f"{exc.__class__.__name__} {exc}".strip()) from None
        log.info("Slack: workspace %s (%s), bot user %s", auth.get("team"), auth.get("team_id"),
                 auth.get("user"))
        return auth.data

    async def serve_http(self, host: str = "127.0.0.1", port: int = 3000) -> int:
        """Serve Slack's requests at http://host:port/slack/events; returns the bound port."""
        web_app = web.Application()
        web_app.router.add_post(HTTP_PATH, self._handle_http)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._runner = runner
        bound = runner.addresses[0][1]
        log.info("Slack: HTTP mode, Request URL path %s on %s:%d", HTTP_PATH, host, bound)
        return bound

    async def _handle_http(self, request: web.Request) -> web.Response:
        response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def connect_socket_mode(self) -> None:
        self._socket = AsyncSocketModeHandler(self.app, app_token=self.config.app_token,
                                              web_client=self.client)
        try:
            await self._socket.connect_async()
        except SlackApiError as exc:
            error = api_error(exc)
            raise ValueError(f"Slack refused SLACK_APP_TOKEN ({error}): create an App-Level Token "
                             "with the connections:write scope (Basic Information page) and make "
                             "sure Socket Mode is enabled for the app.") from None
        log.info("Slack: Socket Mode connected")

    async def close(self) -> None:
        """Stop taking requests, let acknowledged work finish (briefly), release connections."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.inflight.drain(DRAIN_SECONDS)


async def run_slack(rec: Recommender, stop: asyncio.Event, config: SlackConfig,
                    host: str = "127.0.0.1", port: int = 3000,
                    posters: dict[str, Any] | None = None,
                    rate_limit: RateLimit = RateLimit()) -> None:
    """The Slack adapter of `paperbot serve`: runs until `stop` is set.

    Socket Mode, or HTTP mode when `config.http`. A refused token raises ValueError. Once
    connected it puts its daily-post poster into `posters["slack"]` (for the scheduler).
    """
    bot = SlackBot(rec, config, rate_limit)
    try:
        auth = await bot.check_token()
        if config.http:
            await bot.serve_http(host, port)
        else:
            await bot.connect_socket_mode()
        if posters is not None:
            posters["slack"] = SlackPoster(bot.client, auth.get("team_id") or "")
        await stop.wait()
    finally:
        if posters is not None:
            posters.pop("slack", None)
        await bot.close()
        log.info("Slack: stopped")
