"""Hardening, markup: what people and paper sources wrote is shown literally everywhere.

- Discord: a search for ``x” [prize](https://example.invalid) **URGENT** “y`` (and a topic, a
  title, an error that repeats what was typed) is posted through the real discord.py client
  against testkit's fake Discord with no live markdown link, bold, heading or spoiler.
- Terminal: a paper whose title carries ANSI escapes and bidi overrides is printed by
  `paperbot search` (a real process) and by the console without any control character.
- Ids: person ids with Redis glob characters (`console:local:*`) are refused by `check_who`
  with one line, through the Python API, the CLI and the console, before a pattern
  (`forget-me`'s rate-limit sweep) could match other people.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from test_cli import paperbot
from test_discord import RunningBot, ask, papers_in

from bot.console import ConsoleSession, run_console
from bot.limits import RateLimit, RateLimiter
from recommender import Paper

NASTY = "x” [prize](https://example.invalid) **URGENT** “y"
QUERY = f"graph neural networks {NASTY}"     # words that match papers, so that it posts results

# -- what Discord would render ----------------------------------------------------------------
_ESCAPED = re.compile(r"\\[^0-9A-Za-z\s]")           # Discord's escape rule: shown as the character
_CODE = re.compile(r"(`+)([\s\S]*?[^`])\1(?!`)")      # Discord's inline code rule: shown literally
_LIVE = {
    "masked link": re.compile(r"\[[^\]\n]*\]\(\s*<?[a-z]+://"),
    "bold": re.compile(r"\*\*(?=\S)[\s\S]+?\*\*"),
    "underline": re.compile(r"__(?=\S)[\s\S]+?__"),
    "strike": re.compile(r"~~(?=\S)[\s\S]+?~~"),
    "spoiler": re.compile(r"\|\|[\s\S]+?\|\|"),
    "heading": re.compile(r"^\s*#{1,3}\s", re.MULTILINE),
    "mention": re.compile(r"@(everyone|here)\b|<[@#][!&]?\d+>"),
}


def rendered(text: str) -> str:
    """`text` with what Discord shows literally blanked out: escapes and code spans."""
    out, pos = [], 0
    while pos < len(text):
        match = _ESCAPED.match(text, pos) or _CODE.match(text, pos)
        if match:
            out.append("·")
            pos = match.end()
        else:
            out.append(text[pos])
            pos += 1
    return "".join(out)


def live_markup(text: str | None) -> list[str]:
    """The markup Discord would render in `text` (a message's content, an embed's title,
    description or field value): [] when all of it is shown literally."""
    if not text:
        return []
    shown = rendered(text)
    return [f"{name}: {m[0]!r}" for name, rule in _LIVE.items() for m in rule.finditer(shown)]


def shown(text: str) -> str:
    """What a person reads: escapes resolved, the zero-width space that breaks a mention gone."""
    return _ESCAPED.sub(lambda m: m[0][1], text).replace("\u200b", "")


def markup_in(message: dict) -> list[str]:
    """Live markup anywhere Discord renders markdown in a message. (Embed footers are plain
    text on Discord, never markdown, so "Why: matches your search '…'" may quote as typed.)"""
    found = live_markup(message.get("content"))
    for embed in message.get("embeds") or []:
        found += live_markup(embed.get("title")) + live_markup(embed.get("description"))
        for field in embed.get("fields") or []:
            found += live_markup(field.get("value"))
    return found


def test_the_checker_sees_what_discord_renders():
    assert live_markup(NASTY) == ["masked link: '[prize](https://'", "bold: '**URGENT**'"]
    assert live_markup(r"x” \[prize\](https://example.invalid) \*\*URGENT\*\* “y") == []
    assert live_markup("try `**not bold** [a](https://b)` here") == []
    assert sorted(live_markup("# big\n@everyone ||hidden||")) == [
        "heading: '# '", "mention: '@everyone'", "spoiler: '||hidden||'"]


async def test_a_search_with_markdown_is_posted_literally_on_discord(discord_fake, rec, demo):
    fake = discord_fake
    tricky = Paper(id="t:markup-title", title=f"**URGENT** [prize](https://example.invalid) # {NASTY}",
                   abstract="Graph neural networks for molecules. ||spoiler|| __under__ ~~gone~~",
                   authors=["[Ada](https://example.invalid)", "**Bob**"], url="https://example.org/p",
                   categories=["cs.LG"])
    rec.add_papers([tricky])
    rec.record_feedback(f"discord:{fake.guild_id}:1001", tricky.id, "save")
    bot = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    try:
        search = await ask(fake, "search", query=QUERY, messages=6)
        header = search.visible[0]
        assert not header["flags"] & 64                        # posted in the channel
        assert shown(header["content"]) == f"Papers matching “{QUERY}”:"
        assert markup_in(header) == [], header["content"]
        assert len(papers_in(search)) == 5
        for message, _ in papers_in(search):
            assert markup_in(message) == [], message["embeds"]

        similar = await ask(fake, "similar", paper=tricky.id, messages=2)
        assert shown(similar.visible[0]["content"]).startswith(f"Papers similar to “{tricky.title}”")
        topic = await ask(fake, "subscribe", topic=f"gnn {NASTY}")
        saved = await ask(fake, "saved")
        nothing = await ask(fake, "search", query=f"zxqv {NASTY} @everyone")  # repeats it
        for exchange in (similar, topic, saved, nothing):
            for message in exchange.visible:
                assert markup_in(message) == [], message
        assert tricky.title in shown(saved.text)                 # a title, shown as written
        assert "https://example.org/p" in saved.text             # a bare link stays a link
        assert shown(topic.text).startswith(f"You now follow “gnn {NASTY}”")
        hint = await ask(fake, "digest", user_id=1003)           # paperbot's own `hints` stay code
        assert "`subscribe graph neural networks`" in hint.text and markup_in(hint.visible[0]) == []
    finally:
        await bot.close()


# -- the terminal -----------------------------------------------------------------------------
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ANSI_TITLE = ("\x1b[2J\x1b[31mGraph neural networks\x1b[0m for \u202emolecules\u202c "
              "\u2066spoofed\u2069 \x07bell\x9b31m \r overwritten")


def ansi_paper() -> Paper:
    return Paper(id="t:ansi-title", title=ANSI_TITLE, url="https://example.org/ansi",
                 abstract="Message passing graph neural networks for molecules\x1b]0;pwned\x07.",
                 authors=["\u202eEve\u202c", "Mallory\x1b[8m"], categories=["cs.LG"])


def test_paperbot_search_prints_no_control_characters(cli_env, rec, demo):
    rec.add_papers([ansi_paper()])
    printed = paperbot("search", "graph neural networks for molecules", "-k", "10", env=cli_env)
    assert "t:ansi-title" in printed.stdout                   # the paper is listed ...
    assert "Graph neural networks[0m for molecules" in printed.stdout   # ... its words kept
    assert CONTROL.findall(printed.stdout + printed.stderr) == []
    as_json = paperbot("search", "graph neural networks for molecules", "-k", "10", "--json",
                       env=cli_env)
    assert CONTROL.findall(as_json.stdout) == []                # escaped as \u…, data kept
    [hit] = [h for h in json.loads(as_json.stdout) if h["id"] == "t:ansi-title"]
    assert hit["title"] == ANSI_TITLE and hit["authors"] == ansi_paper().authors

    rec.record_feedback("console:local:ada", "t:ansi-title", "like")
    profile = paperbot("profile", "--user", "console:local:ada", env=cli_env)
    assert "t:ansi-title" in profile.stdout and CONTROL.findall(profile.stdout) == []
    as_json = paperbot("profile", "--user", "console:local:ada", "--json", env=cli_env)
    assert CONTROL.findall(as_json.stdout) == []
    assert json.loads(as_json.stdout)["recent"][0]["title"] == ANSI_TITLE


def test_the_console_prints_no_control_characters(rec, demo):
    rec.add_papers([ansi_paper()])
    session = ConsoleSession(rec, "ada")
    answers = [session.handle(line) for line in (
        "search graph neural networks for molecules", "similar t:ansi-title", "save 1",
        "similar t:ansi-title", "saved", "profile", "subscribe \u202egnn\x1b[31m")]
    for answer in answers:
        assert CONTROL.findall(answer) == [], answer
    assert "Graph neural networks[0m for molecules" in answers[1]

    typed = io.StringIO("search graph neural networks for molecules\nsaved\nquit\n")
    out = io.StringIO()
    run_console(rec, "ada", stdin=typed, stdout=out)
    assert "t:ansi-title" in out.getvalue() and CONTROL.findall(out.getvalue()) == []


# -- ids with glob characters ------------------------------------------------------------------
GLOBS = ("console:local:*", "console:local:a?", "console:local:[ab]", "slack:T1:U]",
         "console:local:a\\b", "discord:*:1001", "console:local:\x1b[31m")


def one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text.strip()


@pytest.mark.parametrize("who", GLOBS)
def test_check_who_refuses_glob_characters_through_the_api(rec, demo, redis_client, prefix, who):
    before = set(redis_client.scan_iter(match=f"{prefix}*"))
    for call in (lambda: rec.subscribe(who, "graph neural networks"),
                 lambda: rec.record_feedback(who, "demo-001", "like"),
                 lambda: rec.forget(who), lambda: rec.profile(who)):
        with pytest.raises(ValueError) as refused:
            call()
        assert one_line(str(refused.value)) and "platform:workspace:id" in str(refused.value)
    assert set(redis_client.scan_iter(match=f"{prefix}*")) == before    # nothing written


def test_check_who_refuses_glob_characters_on_the_command_line(cli_env):
    for who in ("console:local:*", "console:local:a?", "console:local:[ab]"):
        for args in (("subscribe", "--user", who, "graph neural networks"),
                     ("profile", "--user", who), ("forget", "--user", who, "--yes")):
            refused = paperbot(*args, env=cli_env, check=False)
            assert refused.returncode == 1, (args, refused.stdout)
            assert one_line(refused.stderr) and refused.stderr.startswith("paperbot: "), refused.stderr
            assert "Traceback" not in refused.stderr


def test_a_glob_name_in_the_console_cannot_forget_other_people(rec, demo, redis_client, prefix):
    limiter = RateLimiter(rec.store.r, rec.store.prefix, RateLimit(20, 60))
    bob = ConsoleSession(rec, "bob")
    bob.actions.limiter = limiter
    assert "Papers matching" in bob.handle("search graph neural networks")
    counters = sorted(redis_client.scan_iter(match=f"{prefix}ratelimit:console:local:bob:*"))
    assert counters

    star = ConsoleSession(rec, "*")
    star.actions.limiter = limiter
    answer = star.handle("forget-me confirm")
    assert "platform:workspace:id" in answer and one_line(answer)
    assert "now follow" not in star.handle("subscribe graph neural networks")
    assert sorted(redis_client.scan_iter(match=f"{prefix}ratelimit:console:local:bob:*")) == counters
