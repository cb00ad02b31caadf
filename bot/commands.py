"""The one `/papers` command grammar, parsed once for Slack, Discord and the console.

`parse("search graph neural networks")` gives `Command("search", "graph neural networks")`.
Text that is not a command gives `Command("help", note=...)`: the note is a one-line answer with
a hint (what went wrong, an example), so a person always gets an answer and never a wall of help.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import unicodedata
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recommender.paper import parse_arxiv_id

from .scheduler.due import DAY_NAMES, parse_weekday

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
    "saved bibtex": "saved bibtex — your saved papers as BibTeX",
    "import": "import <arXiv ids or links, up to 50> — save them all (🔖)",
    "forget-me": "forget-me — delete everything paperbot keeps about you",
    "follow": "follow <author> — their new papers always reach your picks",
    "unfollow": "unfollow <author> — stop following an author",
    "filter": "filter exclude|include|category <words or cs.LG …> · filter clear — "
              "what never (or only) comes in your picks",
    "channel follow": "channel follow <author> — their new papers always reach this channel",
    "channel unfollow": "channel unfollow <author> — stop following an author here",
    "channel filter": "channel filter exclude|include|category <…> · channel filter clear — "
                      "this channel's filters",
    "channel subscribe": "channel subscribe <topic> — add a topic to this channel's daily picks",
    "channel unsubscribe": "channel unsubscribe <topic> — remove a topic from this channel",
    "channel time": "channel time HH:MM <IANA time zone> — when this channel's picks are posted",
    "channel weekly": "channel weekly <day> HH:MM <IANA time zone> — instead, the best of the "
                      "week once a week (day: mon … sun)",
    "channel off": "channel off — stop this channel's daily picks",
    "dm": "dm HH:MM <IANA time zone> — your own picks as a daily direct message",
    "dm weekly": "dm weekly <day> HH:MM <IANA time zone> — instead, the best of your week "
                 "as a weekly direct message",
    "dm off": "dm off — stop your daily direct message",
    "help": "help — this list",
}
HELP = "Commands (type them after /papers):\n" + "\n".join(f"• {u}" for u in USAGE.values())
# what a command needs, with an example: the one-line answer when that part is missing
NEEDS = {
    "search": "`search` needs a query, e.g. `search graph neural networks`.",
    "similar": "`similar` needs a paper id or link, e.g. `similar 2401.01234`.",
    "subscribe": "`subscribe` needs a topic, e.g. `subscribe graph neural networks`.",
    "unsubscribe": "`unsubscribe` needs one of your topics (`topics` lists them).",
    "channel subscribe": "`channel subscribe` needs a topic, e.g. "
                         "`channel subscribe diffusion models`.",
    "channel unsubscribe": "`channel unsubscribe` needs one of this channel's topics "
                           "(`topics` lists them).",
}
NAMES = sorted({name.split()[0] for name in USAGE} | {"recommend"})
REACTIONS = ("like", "dislike", "save", "clear")
_EMOJI = {"like": "👍", "dislike": "👎", "save": "🔖"}
# Slack (`<!channel>`, `<!here>`, `<@U123>`, `<#C123|general>`, `<!subteam^S1>`), Discord
# (`<@123>`, `<@!123>`, `<@&123>` a role, `<#123>`) and typed `@everyone` / `@here` / `@channel`
_MENTION = re.compile(r"<[@#!][^>]*>|(?<![\w@])@(?:everyone|here|channel)\b", re.IGNORECASE)
# a link as chat clients send it: `<https://…>` or `<https://…|label>` (Slack), `<https://…>`
# (Discord)
_WRAPPED_LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|[^>]*)?>")
_HF_PAPER = re.compile(r"huggingface\.co/papers/([^/?#\s]+)", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"(?:doi\.org/)?10\.48550/arxiv\.([^/?#\s]+)", re.IGNORECASE)


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
        if rest.lower().partition(" ")[0] == "weekly":
            return _parse_weekly(rest.partition(" ")[2], "dm weekly")
        return Command("dm off") if rest.lower() == "off" else _parse_time(rest, "dm")
    if head == "forget-me":
        return Command("forget-me", "confirm" if rest.lower() in ("confirm", "yes") else "")
    if head == "import" or (head == "saved" and rest):
        return _parse_library(head, rest)
    if head in ("topics", "digest", "profile", "saved"):
        return Command(head)
    if head == "recommend":
        return Command("digest")
    if head in ("search", "similar", "subscribe", "unsubscribe"):
        return _with_text(head, rest)
    if head in PREFERENCES:
        return _parse_preference(head, rest)
    return _help(unknown_command(head))


def unknown_command(head: str) -> str:
    """One line for a word that is no command: the nearest command name, and `help`."""
    if head in REACTIONS:   # the console's `like 2`, typed on a chat platform
        if head == "clear":
            return "To take back your feedback on a paper, remove your reaction to it."
        emoji = _EMOJI[head]
        return f"To {head} a paper, react to it with {emoji} or use its {emoji} button."
    close = difflib.get_close_matches(head, NAMES, n=1, cutoff=0.6)
    guess = f" Did you mean `{close[0]}`?" if close else ""
    return f"Unknown command `{head[:40].replace('`', '')}`.{guess} Try `help`."


def mentions_in(text: str) -> bool:
    """Whether `text` holds a platform mention (`<!channel>`, `@everyone`, `<@U123>`, …)."""
    return bool(_MENTION.search(text))


def paper_ref(text: str) -> str:
    """What `similar` looks up for a typed reference: a link unwrapped (`<url|label>`), a
    Hugging Face papers link or an arXiv DOI as its arXiv id; anything else as typed (the
    recommender reads ids and arXiv links itself)."""
    text = _WRAPPED_LINK.sub(r"\1", text.strip()).strip()
    for pattern in (_HF_PAPER, _ARXIV_DOI):
        match = pattern.search(text)
        if match and parse_arxiv_id(match[1]):
            return parse_arxiv_id(match[1])
    return text


def _with_text(name: str, text: str, shown: str | None = None) -> Command:
    """`name <text>`, checked; `shown` is how the person typed the command (`channel subscribe`)."""
    shown = shown or name
    limit = MAX_QUERY if name in ("search", "similar") else MAX_TOPIC
    if not text:
        return _help(NEEDS[shown])
    if len(text) > limit:
        return _help(f"That is too long for `{shown}` (at most {limit} characters).")
    if name == "subscribe" and mentions_in(text):
        return _help("That looks like a mention, not a topic: name a subject instead, e.g. "
                     f"`{shown} graph neural networks`.")
    if name == "similar":
        text = paper_ref(text) or text
    return Command(name, text)


def _parse_channel(rest: str) -> Command:
    sub, _, arg = rest.partition(" ")
    sub = sub.lower()
    if sub in ("subscribe", "unsubscribe"):
        cmd = _with_text(sub, arg, f"channel {sub}")
        return cmd if cmd.name == "help" else Command(f"channel {sub}", cmd.text)
    if sub == "off":
        return Command("channel off")
    if sub in PREFERENCES:
        cmd = _parse_preference(sub, arg, "channel ")
        return cmd if cmd.name == "help" else Command(f"channel {sub}", cmd.text)
    if sub == "time":
        return _parse_time(arg, "channel time")
    if sub == "weekly":
        return _parse_weekly(arg, "channel weekly")
    return _help("`channel` needs subscribe, unsubscribe, time, weekly or off, e.g. "
                 "`channel time 09:00 Europe/Berlin`.")


def _parse_time(arg: str, name: str) -> Command:
    """`HH:MM <zone>` (the zone defaults to UTC) for `channel time` and `dm`."""
    when, _, zone = arg.partition(" ")
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", when)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return _help(f"I need a time like 09:00, e.g. `{name} 09:00 Europe/Berlin`.")
    zone = zone.strip() or "UTC"
    try:
        if len(zone) > MAX_ZONE:   # no IANA name is this long; the file lookup would fail (OSError)
            raise ValueError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return _help(f"'{zone[:60]}' is not an IANA time zone (e.g. Europe/Berlin, America/New_York).")
    return Command(name, time=dt.time(int(match[1]), int(match[2])), tz=zone)


def _parse_weekly(arg: str, name: str) -> Command:
    """`<day> HH:MM <zone>` for `channel weekly` and `dm weekly`: the day as its short name."""
    day, _, when = arg.partition(" ")
    if not day:
        return _help(f"`{name}` needs a day and a time, e.g. `{name} mon 09:00 Europe/Berlin`.")
    try:
        day = DAY_NAMES[parse_weekday(day, f"{name} mon 09:00 Europe/Berlin")]
    except ValueError as exc:
        return _help(str(exc))
    timed = _parse_time(when, f"{name} {day}")
    return timed if timed.name == "help" else dataclasses.replace(timed, name=name, text=day)


PREFERENCES = ("follow", "unfollow", "filter")
FILTER_HOW = ("exclude <words> (never these), include <words> (only papers with one of them), "
              "category <cs.LG …> (only these arXiv categories) or clear; separate phrases with "
              "commas")


def _parse_preference(name: str, rest: str, where: str = "") -> Command:
    """`follow <author>`, `unfollow <author>`, `filter [exclude|include|category <…> | clear]`
    (`where` is "channel " for a channel's); the text is the name, or "<kind> <terms>"."""
    shown = f"{where}{name}"
    if name in ("follow", "unfollow"):
        if not rest:
            return _help(f"`{shown}` needs an author's name, e.g. `{shown} Yann LeCun`.")
        if len(rest) > MAX_TOPIC or mentions_in(rest):
            return _help(f"That is not an author's name: try e.g. `{shown} Yann LeCun`.")
        return Command(name, rest)
    kind, _, value = rest.partition(" ")
    kind = {"categories": "category", "only": "include"}.get(kind.lower(), kind.lower())
    if kind in ("", "clear"):
        return Command(name, kind)
    if kind not in ("exclude", "include", "category"):
        return _help(f"`{shown}` takes {FILTER_HOW}, e.g. `{shown} exclude survey`.")
    if not value.strip():
        return _help(f"`{shown} {kind}` needs what to filter on, e.g. "
                     f"`{shown} {kind} {'cs.LG' if kind == 'category' else 'survey'}`.")
    if len(value) > MAX_QUERY or mentions_in(value):
        return _help(f"That is not a filter: try e.g. `{shown} exclude survey`.")
    return Command(name, f"{kind} {value.strip()}")


MAX_IMPORT = 50           # papers one chat `import` takes (a whole library: `paperbot import`)
MAX_IMPORT_TEXT = 10_000  # characters of the ids and links pasted after `import`
IMPORT_EXAMPLE = "e.g. `import 2401.01234 https://arxiv.org/abs/2312.00001`"


def _parse_library(head: str, rest: str) -> Command:
    """`import <ids or links…>` (at most MAX_IMPORT) and `saved bibtex`."""
    if head == "saved":
        if rest.lower() in ("bibtex", "bib"):
            return Command("saved bibtex")
        return _help("`saved` lists your saved papers; `saved bibtex` gives them as BibTeX.")
    if not rest:
        return _help(f"`import` needs arXiv ids or links, {IMPORT_EXAMPLE}.")
    count = len(re.split(r"[\s,]+", rest.strip(" ,")))
    if count > MAX_IMPORT or len(rest) > MAX_IMPORT_TEXT:
        return _help(f"That is {count} papers: chat takes at most {MAX_IMPORT} at a time. For a "
                     "whole library, `paperbot import --user <you> library.bib` takes a file.")
    return Command("import", rest)
