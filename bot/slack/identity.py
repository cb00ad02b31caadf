"""Slack ids as paperbot's scoped keys: a person is `slack:<team>:<user>`, a channel
`slack:<team>:<channel>`, so nothing of one workspace is ever visible from another."""

from __future__ import annotations

from typing import Any


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
