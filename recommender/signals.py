"""What a person or channel follows and said, as the ranking reads it.

The one reading of stored feedback (`people` keeps its format) and the one wording of a pick's
reason, shared by both ranking paths: one at a time (`Recommender.recommend`) and the daily
fan-out (`fanout`), so that a pick reads the same whichever path chose it.
"""

from __future__ import annotations

from typing import Any

from .paper import shorten

PAST = {"like": "liked", "save": "saved"}
# (whose topic, who said it) in a reason: "matches your topic '…'", "…, which people here liked"
VOICE = {False: ("your topic", "you"), True: ("this channel's topic", "people here")}


def feedback_kinds(state: dict[str, Any], now: float) -> tuple[list[str], float]:
    """The signals one stored feedback state gives (save, then like or dislike), and their
    age in days."""
    kinds = ["save"] if state.get("saved") else []
    if state.get("rating") in ("like", "dislike"):
        kinds.append(state["rating"])
    return kinds, max(0.0, (now - state.get("ts", now)) / 86400)


def topic_reason(is_channel: bool, topic: str) -> str:
    return f"matches {VOICE[is_channel][0]} '{shorten(topic)}'"


def feedback_reason(is_channel: bool, kind: str, title: str) -> str:
    """Why a paper close to `title` was picked; a dislike is never a reason (just the title)."""
    if kind not in PAST:
        return shorten(title)
    return f"close to '{shorten(title)}', which {VOICE[is_channel][1]} {PAST[kind]}"


def follow_reason(is_channel: bool, name: str) -> str:
    """A followed author's paper: "by Yann LeCun, whom you follow"."""
    return f"by {shorten(name)}, whom {'this channel follows' if is_channel else 'you follow'}"
