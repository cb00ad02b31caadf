"""Slack ids as paperbot's scoped keys: a person is `slack:<team>:<user>`, a channel
`slack:<team>:<channel>`, so nothing of one workspace is ever visible from another; and
whether a person is one of the workspace's admins."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError

from .replies import api_error

log = logging.getLogger(__name__)


def workspace_id(context: Any) -> str:
    """The workspace a request came from (an Enterprise Grid org-wide install has only the org)."""
    team = context.get("team_id") or context.get("enterprise_id")
    if not team:
        raise ValueError("a Slack request without a workspace id")
    return team


def person_key(team: str, user: str) -> str:
    return f"slack:{team}:{user}"


def channel_key(team: str, channel: str) -> str:
    return f"slack:{team}:{channel}"


def is_direct_message(channel_id: str | None, channel_name: str | None = None) -> bool:
    """A one-to-one DM (with paperbot or with someone else): no channel settings there."""
    return bool(channel_id) and (channel_id.startswith("D") or channel_name == "directmessage")


ROLE_SECONDS = 60.0   # how long a users.info answer (admin or not) is trusted
_ROLE_CACHE_LIMIT = 10_000


class WorkspaceRoles:
    """Whether a Slack user is one of the workspace's admins or owners (`users.info`: is_admin,
    is_owner, is_primary_owner; a guest never is), asked at most once a minute per user. An
    app installed without the users:read scope, or a failed lookup, counts as not an admin:
    the log says why."""

    def __init__(self, seconds: float = ROLE_SECONDS, clock=time.monotonic):
        self.seconds, self.clock = seconds, clock
        self._known: dict[tuple[str, str], tuple[float, bool]] = {}

    async def is_admin(self, client: Any, team: str, user: str) -> bool:
        now = self.clock()
        known = self._known.get((team, user))
        if known and known[0] > now:
            return known[1]
        try:
            answer = await client.users_info(user=user)
        except SlackApiError as exc:
            error = api_error(exc)
            hint = (" (add the users:read scope and reinstall the app)"
                    if error == "missing_scope" else "")
            log.warning("Slack users.info for %s failed: %s%s; treating them as no admin", user,
                        error, hint)
            return False
        info = answer.get("user") or {}
        admin = (bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
                 and not (info.get("is_restricted") or info.get("is_ultra_restricted")))
        if len(self._known) >= _ROLE_CACHE_LIMIT:
            self._known.clear()
        self._known[(team, user)] = (now + self.seconds, admin)
        return admin
