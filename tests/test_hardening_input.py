"""Hardening, bad input: whatever a person types, every adapter gives a short friendly answer,
pings nobody and shows no traceback (issue 9).

The parser is driven by hypothesis; a matrix of nasty inputs goes through the console session,
the real Bolt app (signed HTTP requests, fake Slack) and unmodified discord.py (fake Discord).
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_discord import RunningBot, assert_never_pings
from test_slack import assert_pings_nobody, texts

from bot.commands import MAX_QUERY, MAX_TOPIC, USAGE, Command, parse
from bot.console import ConsoleSession

LONG = "graph " * 1667                       # 10,002 characters
BAD_TEXT = {
    "empty": "",
    "whitespace": " \t \n  ",
    "10k chars": LONG[:10_000],
    "emoji and right-to-left": "🧬🤖 نماذج اللغة الكبيرة עברית \u202eevil\u202c 👍🏽",
    "control chars": "gr\x00aph\x07 neu\x1bral\r\nnet\u200bworks\x7f",
    "slack mrkdwn": "*bold* _it_ ~strike~ `code` ```block``` <https://evil.example|click> &amp;",
    "discord markdown": "**bold** __u__ ||spoiler|| > quote [x](https://evil.example) # Heading",
    "<!channel>": "<!channel> <!here|here> <!everyone>",
    "@everyone": "@everyone look",
    "@here": "@here look",
    "user mention": "<@U123> <@123456789012345678> <@!123456789012345678>",
    "role mention": "<@&123> <@&123456789012345678> <#C999>",
}
PAPER_IDS = {
    "unknown new id": "2999.00001",
    "old style": "hep-th/9901001",
    "versioned": "2401.01234v3",
    "abs url": "https://arxiv.org/abs/2401.01234v3",
    "pdf url": "https://arxiv.org/pdf/2401.01234v3.pdf",
    "html url": "https://arxiv.org/html/2401.01234v3",
    "old style url": "https://arxiv.org/abs/hep-th/9901001",
    "not an id": "definitely-not-a-paper",
}
BAD_TIMES = {
    "hour 25": "25:00 UTC",
    "minute 61": "09:61 Europe/Berlin",
    "am/pm": "9am",
    "unknown zone": "09:00 Mars/Olympus_Mons",
    "path as zone": "09:00 ../../etc/passwd",
    "long zone": "09:00 " + "A" * 1000,
    "no time": "Europe/Berlin",
}
# every command that takes text, with each bad text after it
PREFIXES = ["", "search ", "similar ", "subscribe ", "unsubscribe ", "channel subscribe ", "dm ",
            "channel time ", "forget-me "]
MAX_ANSWER = 4000      # characters: "short" (the help list is the longest answer, ~830)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
FAILED = ("Traceback", "Sorry, something went wrong", 'File "')


def all_inputs() -> list[tuple[str, str]]:
    cases = [(f"{p.strip() or 'bare'}: {name}", p + text)
             for p in PREFIXES for name, text in BAD_TEXT.items()]
    cases += [(f"similar: {name}", f"similar {pid}") for name, pid in PAPER_IDS.items()]
    cases += [(f"{p.strip()}: {name}", p + t) for p in ("dm ", "channel time ")
              for name, t in BAD_TIMES.items()]
    return cases


def assert_friendly(answer: str) -> None:
    assert answer and answer.strip()
    assert len(answer) <= MAX_ANSWER, len(answer)
    for bad in FAILED:
        assert bad not in answer, answer


# -- the parser, by property -------------------------------------------------------------------
KNOWN = set(USAGE) | {"dm off"}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=2000),
    st.builds(lambda head, rest: f"{head} {rest}",
              st.sampled_from(["search", "similar", "subscribe", "unsubscribe", "channel",
                               "channel subscribe", "channel time", "dm", "forget-me", "/papers",
                               "topics", "SEARCH", "Dm"]),
              st.text(max_size=600)),
    st.builds(lambda h, m, z: f"dm {h}:{m} {z}", st.integers(-5, 120), st.integers(-5, 120),
              st.text(max_size=80)),
))
def test_parse_turns_any_text_into_a_known_command(text):
    command = parse(text)
    assert isinstance(command, Command)
    assert command.name in KNOWN
    assert len(command.text) <= max(MAX_QUERY, MAX_TOPIC)
    assert len(command.note) <= 200
    for field in (command.text, command.note, command.tz or ""):
        assert not CONTROL.search(field), repr(field)
        assert not any(unicodedata.category(ch)[0] == "C" for ch in field), repr(field)
    if command.name in ("dm", "channel time"):
        assert command.time is not None and command.tz
    if command.name in ("search", "similar", "subscribe", "unsubscribe"):
        assert command.text and command.text == command.text.strip()


# -- the console ---------------------------------------------------------------------------------
@pytest.mark.parametrize("line", [c[1] for c in all_inputs()], ids=[c[0] for c in all_inputs()])
def test_console_answers_every_bad_input_friendly(rec, demo, line):
    session = ConsoleSession(rec, "mallory")
    answer = session.handle(line)
    assert_friendly(answer)
    # nothing odd was stored: topics are bounded and free of control characters
    for topic in rec.topics(session.who.person):
        assert len(topic) <= MAX_TOPIC and not CONTROL.search(topic)


def test_console_unknown_and_arxiv_ids_name_the_paper(rec, demo):
    session = ConsoleSession(rec, "mallory")
    for text in PAPER_IDS.values():
        answer = session.handle(f"similar {text}")
        assert "I don't know the paper" in answer, answer
    assert "2401.01234" in session.handle("similar https://arxiv.org/pdf/2401.01234v3.pdf")
    assert "hep-th/9901001" in session.handle("similar https://arxiv.org/abs/hep-th/9901001")
    for when in BAD_TIMES.values():
        answer = session.handle(f"dm {when}")
        assert "time like 09:00" in answer or "not an IANA time zone" in answer, answer
        assert len(answer) < 1200


# -- Slack: the real Bolt app ----------------------------------------------------------------------

SLACK_CASES = [c for c in all_inputs() if not c[0].startswith("search")]   # search posts papers


async def test_slack_answers_every_bad_input_friendly_and_pings_nobody(slack_h):
    for i, (name, text) in enumerate(SLACK_CASES):
        await slack_h.command(text, f"bad{i}")
    for i, (name, text) in enumerate(SLACK_CASES):
        message = await slack_h.answer(f"bad{i}")
        assert_pings_nobody(message)
        assert_friendly(message.get("text") or texts(message))
        assert "Traceback" not in str(message), name
    # a search of nasty text posts papers in the channel; those ping nobody either
    for i, key in enumerate(["emoji and right-to-left", "<!channel>", "control chars", "10k chars"]):
        # (with words that match papers: a search that matches nothing answers privately)
        await slack_h.command("search " + BAD_TEXT[key] + " graph neural networks", f"search{i}")
    long_answer = await slack_h.answer("search3")          # too long: a help answer, privately
    assert "too long" in texts(long_answer) and long_answer["response_type"] == "ephemeral"
    for post in await slack_h.posts(3 * 5):
        assert_pings_nobody(post)


# -- Discord: unmodified discord.py ----------------------------------------------------------------
# Discord itself enforces option lengths (Range[str, 1, N]) before an interaction is sent, so
# the texts are cut to what a client can send.
DISCORD_OPTIONS = [("search",), ("similar",), ("subscribe",), ("unsubscribe",)]
OPTION = {"search": "query", "similar": "paper", "subscribe": "topic", "unsubscribe": "topic"}


async def test_discord_answers_every_bad_input_friendly_and_pings_nobody(rec, demo, discord_servers):
    fake = await discord_servers()
    bot = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    exchanges = []
    texts_ = {**BAD_TEXT, **PAPER_IDS}
    texts_.pop("empty")                      # Discord refuses an empty required option itself
    for (sub,) in DISCORD_OPTIONS:
        for name, text in texts_.items():
            if sub == "search" and name not in ("emoji and right-to-left", "whitespace",
                                                "<!channel>", "10k chars"):
                continue                     # each search posts 5 papers: a few suffice
            limit = MAX_QUERY if sub in ("search", "similar") else MAX_TOPIC
            value = text[:limit]
            exchanges.append((f"{sub}: {name}", await fake.interact(
                fake.slash(sub, **{OPTION[sub]: value}))))
    for name, when in BAD_TIMES.items():
        time_, _, zone = when.partition(" ")
        options = {"time": time_[:5], **({"timezone": zone[:64]} if zone else {})}
        exchanges.append((f"dm on: {name}", await fake.interact(fake.slash("dm", "on", **options))))
    for name, exchange in exchanges:
        await fake.wait_for(lambda: exchange.visible, timeout=30)
        assert_friendly(exchange.text)
    await bot.close()
    assert_never_pings(fake)
    assert "Traceback" not in "".join(e.text for _, e in exchanges)
