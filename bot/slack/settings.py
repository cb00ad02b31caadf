"""Slack settings from the environment, checked once at start with one-line, fixable messages.

| variable             | needed for            | what                                                       |
|----------------------|-----------------------|------------------------------------------------------------|
| SLACK_BOT_TOKEN      | both modes            | Bot User OAuth Token, `xoxb-…` (OAuth & Permissions page)  |
| SLACK_APP_TOKEN      | Socket Mode           | App-Level Token with `connections:write`, `xapp-…`         |
| SLACK_SIGNING_SECRET | HTTP mode             | Signing Secret (Basic Information page)                    |
| SLACK_API_URL        | optional              | Web API base URL (GovSlack, a proxy, tests); default Slack |

The values are secrets: they are never logged and never part of an error message.

PAPERBOT_SLACK_CHANNEL_ADMINS (optional) says who may change a channel's daily post:
owner+admins (the default), owner, admins or everyone (`bot/slack/channel_rights.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..channel_roles import ChannelPolicy

DEFAULT_API_URL = "https://slack.com/api/"


@dataclasses.dataclass(frozen=True)
class SlackConfig:
    bot_token: str
    signing_secret: str = dataclasses.field(default="", repr=False)
    app_token: str = dataclasses.field(default="", repr=False)
    api_url: str = DEFAULT_API_URL
    http: bool = False   # HTTP mode (Events API requests at /slack/events) instead of Socket Mode
    channels: ChannelPolicy = ChannelPolicy()   # who may change a channel's daily post

    def __repr__(self) -> str:  # never show a token, even in a debugger or a log line
        return f"SlackConfig(api_url={self.api_url!r}, http={self.http})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], http: bool = False) -> SlackConfig:
        def get(name: str) -> str:
            return (env.get(name) or "").strip()

        bot_token, app_token = get("SLACK_BOT_TOKEN"), get("SLACK_APP_TOKEN")
        secret = get("SLACK_SIGNING_SECRET")
        if not bot_token:
            raise ValueError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from "
                             "your Slack app's OAuth & Permissions page (see 'Add to Slack' in the README).")
        if not bot_token.startswith("xoxb-"):
            raise ValueError("SLACK_BOT_TOKEN must be the Bot User OAuth Token, which starts with xoxb- "
                             "(OAuth & Permissions page); xapp- tokens go in SLACK_APP_TOKEN.")
        if http and not secret:
            raise ValueError("--slack-http needs SLACK_SIGNING_SECRET: copy the Signing Secret from your "
                             "Slack app's Basic Information page.")
        if not http:
            if not app_token:
                raise ValueError("Socket Mode needs SLACK_APP_TOKEN: create an App-Level Token with the "
                                 "connections:write scope on your Slack app's Basic Information page "
                                 "(or serve over HTTP with --slack-http).")
            if not app_token.startswith("xapp-"):
                raise ValueError("SLACK_APP_TOKEN must be an App-Level Token, which starts with xapp- "
                                 "(Basic Information → App-Level Tokens).")
        return cls(bot_token=bot_token, signing_secret=secret, app_token=app_token,
                   api_url=api_base_url(get("SLACK_API_URL")), http=http,
                   channels=ChannelPolicy.from_env(env))


def api_base_url(url: str) -> str:
    """The Web API base URL with the trailing slash that slack_sdk's urljoin needs."""
    if not url:
        return DEFAULT_API_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"SLACK_API_URL must be an http(s) URL like {DEFAULT_API_URL}")
    return url if url.endswith("/") else url + "/"
