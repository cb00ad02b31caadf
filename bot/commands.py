"""The one `/papers` command grammar, parsed once for Slack, Discord and the console.

`parse("search graph neural networks")` gives `Command("search", "graph neural networks")`.
Text that is not a command gives `Command("help", note=...)`, so a person always gets an answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_QUERY = 300   # characters of a search query
MAX_TOPIC = 100   # characters of a topic
MAX_ZONE = 64     # characters of an IANA time zone name (the longest is ~32)

USAGE = {
    "search": "search <query> — papers matching a query",
    "similar": "similar <arXiv id or URL> — papers like that one",
    "subscribe": "subscribe <topic> — follow a topic in your picks",
    "unsubscribe": "unsubscribe <topic> — stop following a topic",
    "topics": "topics — the topics you follow",
    "digest": "digest — your picks right now",
    "profile": "profile — what paperbot knows about your interests",
    "saved": "saved — the papers you saved",
    "forget-me": "forget-me — delete everything paperbot keeps about you",
    "channel subscribe": "channel subscribe <topic> — add a topic to this channel's daily picks",
    "channel unsubscribe": "channel unsubscribe <topic> — remove a topic from this channel",
    "channel time": "channel time HH:MM <IANA time zone> — when this channel's picks are posted",
    "channel off": "channel off — stop this channel's daily picks",
    "dm": "dm HH:MM <IANA time zone> — your own picks as a daily direct message",
    "dm off": "dm off — stop your daily direct message",
    "help": "help — this list",
}
HELP = "Commands (type them after /papers):\n" + "\n".join(f"• {u}" for u in USAGE.values())


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    text: str = ""
    time: dt.time | None = None
    tz: str | None = None
    note: str = ""          # why a help answer was given (an unknown or malformed command)


def clean_input(text: str) -> str:
    """Drop control and format characters and collapse whitespace: what a person meant."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text or "")
    return " ".join(text.split())


def _help(note: str) -> Command:
    return Command("help", note=note)


def parse(text: str) -> Command:
    words = clean_input(text)
    words = re.sub(r"^/?papers\b\s*", "", words, flags=re.IGNORECASE)
    head, _, rest = words.partition(" ")
    head = head.lower()
    if head in ("", "help", "?"):
        return Command("help")
    if head == "channel":
        return _parse_channel(rest)
    if head == "dm":
        return Command("dm off") if rest.lower() == "off" else _parse_time(rest, "dm")
    if head == "forget-me":
        return Command("forget-me", "confirm" if rest.lower() in ("confirm", "yes") else "")
    if head in ("topics", "digest", "profile", "saved"):
        return Command(head)
    if head in ("search", "similar", "subscribe", "unsubscribe"):
        return _with_text(head, rest)
    return _help(f"I don't know the command '{head[:40]}'.")


def _with_text(name: str, text: str) -> Command:
    limit = MAX_QUERY if name in ("search", "similar") else MAX_TOPIC
    if not text:
        return _help(f"`{name}` needs something after it: {USAGE[name]}")
    if len(text) > limit:
        return _help(f"That is too long for `{name}` (at most {limit} characters).")
    return Command(name, text)


def _parse_channel(rest: str) -> Command:
    sub, _, arg = rest.partition(" ")
    sub = sub.lower()
    if sub in ("subscribe", "unsubscribe"):
        cmd = _with_text(sub, arg)
        return cmd if cmd.name == "help" else Command(f"channel {sub}", cmd.text)
    if sub == "off":
        return Command("channel off")
    if sub == "time":
        return _parse_time(arg, "channel time")
    return _help(f"`channel` needs one of: subscribe, unsubscribe, time, off. {USAGE['channel time']}")


def _parse_time(arg: str, name: str) -> Command:
    """`HH:MM <zone>` (the zone defaults to UTC) for `channel time` and `dm`."""
    when, _, zone = arg.partition(" ")
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", when)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return _help(f"I need a time like 09:00. {USAGE[name]}")
    zone = zone.strip() or "UTC"
    try:
        if len(zone) > MAX_ZONE:   # no IANA name is this long; the file lookup would fail (OSError)
            raise ValueError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return _help(f"'{zone[:60]}' is not an IANA time zone (e.g. Europe/Berlin, America/New_York).")
    return Command(name, time=dt.time(int(match[1]), int(match[2])), tz=zone)
