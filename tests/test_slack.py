"""The Slack adapter, for real: the Bolt app in HTTP mode and in Socket Mode against a fake Slack.

Requests are signed as Slack signs them; the app's Web API calls, response_url answers and Socket
Mode acks land on `fake_slack.FakeSlack` on 127.0.0.1. Nothing of paperbot is mocked on the path
under test, except where a test makes the recommender slow or failing on purpose.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from bot.slack import SlackBot, SlackConfig, run_slack
from bot.slack.render import escape, mrkdwn_literal
from bot.feedback import emoji_kind
from recommender import StoreUnavailable
from testkit.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    TEAM,
    FakeSlack,
    block_action,
    envelope_kind,
    http_body,
    reaction_event,
    signed_headers,
    slash_command,
)

ALICE = f"slack:{TEAM}:UALICE"
BOB = f"slack:{TEAM}:UBOB"
LAB = f"slack:{TEAM}:CLAB"
ACK_DEADLINE = 3.0


def slack_env(fake: FakeSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url}


async def eventually(check, timeout: float = 20, interval: float = 0.05):
    """Poll `check()` (without blocking the loop the app runs on) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


class Harness:
    """The real Bolt app served over HTTP on 127.0.0.1, and signed requests to it."""

    def __init__(self, bot: SlackBot, fake: FakeSlack, url: str):
        self.bot, self.fake, self.url = bot, fake, url
        self.http = httpx.AsyncClient(timeout=30)

    async def send(self, payload: dict[str, Any], secret: str = SIGNING_SECRET,
                   timestamp: int | None = None, headers: dict[str, str] | None = None):
        body, content_type = http_body(payload)
        sent = headers if headers is not None else signed_headers(body, secret, timestamp, content_type)
        start = time.monotonic()
        response = await self.http.post(self.url, content=body.encode(), headers=sent)
        return response, time.monotonic() - start

    async def command(self, text: str, tag: str, **kw) -> float:
        """Send `/papers text`; assert it is acknowledged (200, under 3 s); returns the ack time."""
        response, took = await self.send(slash_command(text, self.fake.response_url(tag), **kw))
        assert response.status_code == 200, response.text
        assert took < ACK_DEADLINE
        return took

    async def answer(self, tag: str, count: int = 1) -> dict[str, Any]:
        """The `count`-th message sent to the response_url tagged `tag`."""
        calls = await eventually(lambda: len(self.fake.responses_to(tag)) >= count
                                 and self.fake.responses_to(tag))
        return calls[count - 1].body

    async def click(self, action_id: str, value: str, tag: str, **kw) -> None:
        response, took = await self.send(block_action(action_id, value, self.fake.response_url(tag), **kw))
        assert response.status_code == 200 and took < ACK_DEADLINE

    async def react(self, kind: str, reaction: str, ts: str, channel: str = "CLAB", **kw) -> None:
        response, took = await self.send(reaction_event(kind, reaction, channel, ts, **kw))
        assert response.status_code == 200 and took < ACK_DEADLINE

    async def posts(self, count: int, channel: str = "CLAB") -> list[dict[str, Any]]:
        """(Wait for) the first `count` messages paperbot posted in `channel`, with their ts."""
        def posted():
            calls = [c for c in self.fake.calls_to("chat.postMessage") if c.body.get("channel") == channel]
            return calls if len(calls) >= count else None
        calls = await eventually(posted)
        return [c.body for c in calls]

    def posted_ts(self) -> list[str]:
        """ts of each message paperbot posted, in order (from the fake's answers)."""
        people = self.bot.actions.rec.people
        return [ts.decode() for ts in people.r.hkeys(people.key(LAB, "posts"))]


@pytest.fixture
def fake():
    with FakeSlack() as server:
        yield server


@pytest.fixture
async def slack(rec, demo, fake):
    bot = SlackBot(rec, SlackConfig.from_env(slack_env(fake), http=True))
    port = await bot.serve_http("127.0.0.1", 0)
    harness = Harness(bot, fake, f"http://127.0.0.1:{port}/slack/events")
    yield harness
    await harness.http.aclose()
    await bot.close()


def texts(message: dict[str, Any]) -> str:
    """Every piece of text in a message (fallback, blocks, buttons), joined."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(message)
    return "\n".join(found)


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["action_id"], e.get("value", "")) for b in message.get("blocks", [])
            if b["type"] == "actions" for e in b["elements"]]


def assert_pings_nobody(message: dict[str, Any]) -> None:
    """No Slack mention syntax where Slack parses it: the fallback text and mrkdwn objects."""
    assert not message.get("link_names") and message.get("parse") in (None, "none")
    parsed = [message.get("text", "")]

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                parsed.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(message.get("blocks", []))
    for text in parsed:
        assert not re.search(r"<[!@#]", text), text


# -- configuration ------------------------------------------------------------------------------
def test_config_errors_are_one_friendly_line():
    cases = [
        ({}, True, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": APP_TOKEN}, False, "must be the Bot User OAuth Token"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, True, "--slack-http needs SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, False, "Socket Mode needs SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": BOT_TOKEN}, False, "starts with xapp-"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": "slack.com"},
         False, "SLACK_API_URL must be an http(s) URL"),
    ]
    for env, http, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)) as caught:
            SlackConfig.from_env(env, http=http)
        assert "\n" not in str(caught.value)
        assert BOT_TOKEN not in str(caught.value) and APP_TOKEN not in str(caught.value)
    config = SlackConfig.from_env({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                                   "SLACK_API_URL": "http://127.0.0.1:9/api"}, http=True)
    assert config.api_url == "http://127.0.0.1:9/api/"   # the trailing slash slack_sdk needs
    assert SIGNING_SECRET not in repr(config) and BOT_TOKEN not in repr(config)


def test_manifest_matches_what_the_app_does():
    yaml = pytest.importorskip("yaml")
    from pathlib import Path

    from bot.slack.commands import COMMAND

    manifest = yaml.safe_load((Path(__file__).parent.parent / "slack-manifest.yml").read_text())
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) == {"reaction_added", "reaction_removed"}
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # every Web API method paperbot calls is covered by a scope, and no scope is spare
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",         # /papers
        "chat:write",       # chat.postMessage, chat.postEphemeral
        "channels:join",    # conversations.join
        "reactions:read",   # reaction_added/removed events, reactions.get
        "users:read",       # users.info: is a workspace admin (bot/slack/channel_rights.py)
    }
    assert len(manifest["display_information"]["description"]) <= 140
    assert 174 <= len(manifest["display_information"]["long_description"]) <= 4000


async def test_run_slack_refuses_a_bad_token_at_start(rec, fake):
    env = {**slack_env(fake), "SLACK_BOT_TOKEN": "xoxb-revoked"}
    with pytest.raises(ValueError, match=r"Slack refused SLACK_BOT_TOKEN \(invalid_auth\)"):
        await run_slack(rec, asyncio.Event(), SlackConfig.from_env(env, http=True), port=0)


# -- every subcommand, signed, over HTTP -----------------------------------------------------------
async def test_every_subcommand_answers_over_http(slack, rec):
    s = slack
    for text in ["help", "", "frobnicate the widgets"]:
        await s.command(text, f"help-{text[:4]}")
        answer = await s.answer(f"help-{text[:4]}")
        assert answer["response_type"] == "ephemeral"
        assert ("Commands (type them after /papers)" in texts(answer)) == (text != "frobnicate the widgets")
    assert "Unknown command `frobnicate`. Try `help`." in texts(await s.answer("help-frob"))

    await s.command("subscribe graph neural networks", "sub")
    answer = await s.answer("sub")
    assert answer["response_type"] == "ephemeral"
    assert "You now follow “graph neural networks”" in texts(answer)
    await s.command("channel subscribe speech recognition", "chsub")
    answer = await s.answer("chsub")
    assert answer["response_type"] == "in_channel"   # the channel's settings are the channel's news
    assert "This channel now follows “speech recognition”" in texts(answer)
    await s.command("topics", "topics")
    topics = texts(await s.answer("topics"))
    assert "You follow: “graph neural networks”" in topics
    assert "This channel follows: “speech recognition”" in topics
    await s.command("channel unsubscribe speech recognition", "chunsub")
    assert "Unfollowed “speech recognition”" in texts(await s.answer("chunsub"))
    assert rec.topics(LAB) == [] and rec.topics(ALICE) == ["graph neural networks"]

    await s.command("channel time 09:00 Europe/Berlin", "chtime")
    answer = await s.answer("chtime")   # the channel's schedule is the channel's news
    assert answer["response_type"] == "in_channel"
    assert "This channel's daily picks: 09:00 Europe/Berlin, mon-fri, 5 papers" in texts(answer)
    await s.command("channel off", "choff")
    answer = await s.answer("choff")
    assert answer["response_type"] == "in_channel" and "daily picks are off" in texts(answer)
    await s.command("dm 07:30 Asia/Tokyo", "dm")
    answer = await s.answer("dm")
    assert answer["response_type"] == "ephemeral"
    assert "Your picks will come as a direct message: 07:30 Asia/Tokyo" in texts(answer)
    await s.command("dm off", "dmoff")
    assert "direct message is off" in texts(await s.answer("dmoff"))
    await s.command("channel time 25:00 Mars/Base", "badtime")
    assert "I need a time like 09:00" in texts(await s.answer("badtime"))

    await s.command("digest", "digest")
    digest = await s.answer("digest")
    assert digest["response_type"] == "ephemeral" and "Your picks:" in texts(digest)
    picked = [value for action, value in buttons(digest) if action == "paper_like"]
    assert len(picked) == 5 and all(v.startswith("demo-") for v in picked)

    await s.command("profile", "profile")
    profile = texts(await s.answer("profile"))
    assert "Topics: “graph neural networks”" in profile and "5 papers shown" in profile

    await s.command("saved", "saved0")
    assert "You haven't saved any papers yet" in texts(await s.answer("saved0"))
    rec.record_feedback(ALICE, picked[0], "save")
    await s.command("saved", "saved1")
    saved = await s.answer("saved1")
    title = rec.get_paper(picked[0]).title
    assert f"<https://example.org/paperbot-demo/{picked[0]}|{mrkdwn_literal(title)}>" in texts(saved)

    await s.command("search graph neural networks for molecules", "search")
    posted = await s.posts(5)
    assert "Papers matching “graph neural networks for molecules” (asked by alice):" in texts(posted[0])
    await s.command("similar demo-004", "similar")
    posted = await s.posts(10)
    assert "Papers similar to “Equivariant Message Passing" in texts(posted[5])
    assert "demo-004" not in [v for p in posted[5:] for _, v in buttons(p)]
    await s.command("similar 2999.00001", "unknown")
    assert "I don't know the paper '2999.00001'" in texts(await s.answer("unknown"))
    assert s.fake.responses_to("search") == [] and s.fake.responses_to("similar") == []

    await s.command("unsubscribe graph neural networks", "unsub")
    assert "Unfollowed “graph neural networks”" in texts(await s.answer("unsub"))

    await s.command("forget-me", "forget")
    prompt = await s.answer("forget")
    assert prompt["response_type"] == "ephemeral" and "for good" in texts(prompt)
    assert ("forget_me_confirm", "confirm") in buttons(prompt)
    assert rec.profile(ALICE)["counts"]["save"] == 1   # asking deletes nothing
    await s.command("forget-me confirm", "forgotten")
    assert "forgotten everything about you" in texts(await s.answer("forgotten"))
    assert rec.profile(ALICE)["counts"] == {"like": 0, "dislike": 0, "save": 0}


async def test_search_results_are_block_kit_papers_remembered_for_reactions(slack, rec, demo):
    await slack.command("search streaming speech recognition", "s")
    posted = await slack.posts(5)
    first = posted[0]
    assert first["channel"] == "CLAB" and first["unfurl_links"] is False and not first.get("link_names")
    paper_id = buttons(first)[0][1]
    paper = demo[paper_id]
    kinds = [b["type"] for b in first["blocks"]]
    assert kinds == ["section", "section", "context", "section", "context", "actions"]
    header, title, meta, abstract, why, actions = first["blocks"]
    assert header["text"]["type"] == "plain_text"
    assert title["text"] == {"type": "mrkdwn", "text": f"*<{paper.url}|{mrkdwn_literal(paper.title)}>*"}
    assert meta["elements"][0]["text"].startswith(", ".join(paper.authors[:3]))
    assert paper.published.isoformat() in meta["elements"][0]["text"] and "cs." in meta["elements"][0]["text"]
    assert abstract["text"]["type"] == "plain_text"
    assert paper.abstract.startswith(abstract["text"]["text"][:100])
    assert len(abstract["text"]["text"]) <= 281
    assert why["elements"][0]["text"] == "💡 Why: matches your search 'streaming speech recognition'"
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in actions["elements"]] == [
        ("paper_like", paper_id, "👍 More like this"), ("paper_dislike", paper_id, "👎 Less like this"),
        ("paper_save", paper_id, "🔖 Save")]
    assert "Papers matching" not in texts(posted[1])   # the header is on the first message only

    # every posted message's ts maps to its paper, and the channel was shown them (no repeats)
    await eventually(lambda: rec.profile(LAB)["shown"] == 5)
    stored = {ts: rec.paper_of_post(LAB, ts) for ts in slack.posted_ts()}
    assert sorted(stored.values()) == sorted(buttons(p)[0][1] for p in posted)


# -- clicks --------------------------------------------------------------------------------------
async def test_button_clicks_store_feedback_and_answer_privately(slack, rec):
    await slack.click("paper_like", "demo-005", "like")
    answer = await slack.answer("like")
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "👍 More like this." in texts(answer) and "“Streaming Speech Recognition" in texts(answer)
    assert ("paper_clear", "demo-005") in buttons(answer)    # Undo
    state = rec.people.feedback(ALICE)["demo-005"]
    assert state["rating"] == "like" and state["channel"] == LAB

    await slack.click("paper_like", "demo-005", "again")
    assert "(already noted)" in texts(await slack.answer("again"))
    await slack.click("paper_save", "demo-005", "save")
    assert "🔖 Saved." in texts(await slack.answer("save"))
    await slack.click("paper_dislike", "demo-007", "dislike")
    assert "👎 Less like this." in texts(await slack.answer("dislike"))
    assert rec.profile(ALICE)["counts"] == {"like": 1, "dislike": 1, "save": 1}

    await slack.click("paper_clear", "demo-007", "undo", ephemeral=True)
    undone = await slack.answer("undo")
    assert undone["replace_original"] is True and "Feedback removed." in texts(undone)
    assert "demo-007" not in rec.people.feedback(ALICE)

    await slack.click("paper_like", "demo-009", "personal", ephemeral=True, user="UBOB")
    await slack.answer("personal")
    assert rec.people.feedback(BOB)["demo-009"]["channel"] is None   # a private digest: not the channel's

    await slack.click("paper_like", "no-such-paper", "unknown")
    assert "I don't know the paper 'no-such-paper'" in texts(await slack.answer("unknown"))

    await slack.click("forget_me_cancel", "cancel", "cancel")
    assert "Nothing was deleted." in texts(await slack.answer("cancel"))
    assert rec.profile(ALICE)["counts"]["like"] == 1
    await slack.click("forget_me_confirm", "confirm", "confirm")
    confirmed = await slack.answer("confirm")
    assert confirmed["replace_original"] is True and "forgotten everything" in texts(confirmed)
    assert rec.people.feedback(ALICE) == {} and rec.people.feedback(BOB)   # only the person who asked


# -- reactions -----------------------------------------------------------------------------------
async def test_reactions_on_posted_papers_are_feedback_and_removal_retracts(slack, rec):
    await slack.command("search diffusion models for images", "s")
    posted = await slack.posts(5)
    tss = await eventually(lambda: len(slack.posted_ts()) == 5 and slack.posted_ts())
    by_paper = {rec.paper_of_post(LAB, ts): ts for ts in tss}
    first_paper = buttons(posted[0])[0][1]
    second_paper = buttons(posted[1])[0][1]
    ts1, ts2 = by_paper[first_paper], by_paper[second_paper]

    def feedback(person=ALICE):
        return rec.people.feedback(person)

    # ignored: an emoji that is no feedback, a message that is not paperbot's, the same ts in
    # another channel, a file
    await slack.react("reaction_added", "tada", ts1)
    await slack.react("reaction_added", "+1", "1600000000.000001")
    await slack.react("reaction_added", "+1", ts2, channel="COTHER")
    on_file = reaction_event("reaction_added", "+1", "CLAB", ts2)
    on_file["event"]["item"] = {"type": "file", "file": "F123"}
    assert (await slack.send(on_file))[0].status_code == 200
    await slack.react("reaction_added", "+1", ts1)
    await eventually(lambda: feedback().get(first_paper, {}).get("rating") == "like")
    assert feedback()[first_paper]["channel"] == LAB and set(feedback()) == {first_paper}

    await slack.react("reaction_added", "heart", ts1)           # a second like-emoji: same like
    await slack.react("reaction_added", "bookmark", ts1)
    await eventually(lambda: feedback()[first_paper].get("saved"))
    assert rec.profile(ALICE)["counts"] == {"like": 1, "dislike": 0, "save": 1}

    # 🔖 removed while 👍 and ❤️ stay: the save goes, the like stays
    slack.fake.set_reactions("CLAB", ts1, {"+1": ["UALICE"], "heart": ["UALICE", "UBOB"]})
    await slack.react("reaction_removed", "bookmark", ts1)
    await eventually(lambda: not feedback()[first_paper].get("saved"))
    assert feedback()[first_paper]["rating"] == "like"
    # 👍 removed while ❤️ stays: still a like
    slack.fake.set_reactions("CLAB", ts1, {"heart": ["UALICE", "UBOB"]})
    looked = len(slack.fake.calls_to("reactions.get"))
    await slack.react("reaction_removed", "+1", ts1)
    await eventually(lambda: len(slack.fake.calls_to("reactions.get")) > looked)
    await asyncio.sleep(0.2)
    assert feedback()[first_paper]["rating"] == "like"
    # then ❤️ removed too: nothing left
    slack.fake.set_reactions("CLAB", ts1, {"heart": ["UBOB"]})
    await slack.react("reaction_removed", "heart", ts1)
    await eventually(lambda: first_paper not in feedback())

    await slack.react("reaction_added", "-1::skin-tone-4", ts2, user="UBOB")   # skin tones count
    await eventually(lambda: feedback(BOB).get(second_paper, {}).get("rating") == "dislike")
    assert second_paper not in feedback(ALICE)
    assert rec.profile(ALICE)["recent"][0]["kind"] == "unlike"   # the history keeps the retraction
    assert emoji_kind("fire") == emoji_kind("star") == "like" and emoji_kind("eyes") is None


# -- security ------------------------------------------------------------------------------------
async def test_bad_signature_and_stale_timestamp_are_rejected(slack, rec):
    payload = slash_command("subscribe forged topic", slack.fake.response_url("forged"))
    response, _ = await slack.send(payload, secret="not-the-secret")
    assert response.status_code == 401
    response, _ = await slack.send(payload, timestamp=int(time.time()) - 6 * 60)
    assert response.status_code == 401
    response, _ = await slack.send(payload, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401
    event = reaction_event("reaction_added", "+1", "CLAB", "1.000001")
    response, _ = await slack.send(event, secret="not-the-secret")
    assert response.status_code == 401
    await asyncio.sleep(0.3)
    assert rec.topics(ALICE) == [] and slack.fake.responses_to("forged") == []

    response, _ = await slack.send(payload)   # the same request, signed: accepted
    assert response.status_code == 200
    await slack.answer("forged")
    assert rec.topics(ALICE) == ["forged topic"]

    # Slack's check of the Request URL (HTTP mode setup): answered only when signed
    challenge = {"type": "url_verification", "token": "legacy", "challenge": "c-123"}
    response, _ = await slack.send(challenge, secret="not-the-secret")
    assert response.status_code == 401
    response, _ = await slack.send(challenge)
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}


async def test_user_text_never_pings_or_breaks_formatting(slack, rec):
    evil = "<!channel> <!here> @everyone @channel <@U123> <#C999> *bold* _it_ ~s~ `code` a&b"
    await slack.command(f"subscribe {evil}", "sub")
    await slack.command(f"channel subscribe {evil}", "chsub")
    await slack.command(f"search {evil} graph neural networks", "search")
    await slack.command(f"similar {evil}", "similar")
    await slack.command(f"nonsense {evil}", "help")
    answers = [await slack.answer(tag) for tag in ("sub", "chsub", "similar", "help")]
    posted = await slack.posts(5)
    for message in answers + posted:
        assert_pings_nobody(message)
    for refused in answers[:2]:   # a mention is no topic: refused, privately, without echoing it
        assert refused["response_type"] == "ephemeral" and "looks like a mention" in texts(refused)
    header = posted[0]["blocks"][0]["text"]
    assert header["type"] == "plain_text" and "“<!channel> <!here> @everyone" in header["text"]

    # a paper whose own title and URL try the same
    rec.add_papers([{"id": "evil-1", "title": "<!channel> *Attention* is ~all~ you `need` & more <@U1>",
                     "abstract": "A paper about <!here> graph neural networks and molecules.",
                     "url": "https://example.org/a|b><!channel>", "authors": ["<@U777>"]}])
    await slack.command("search <!here> graph neural networks and molecules", "evil")
    posted = await slack.posts(10)
    evil_post = next(p for p in posted[5:] if buttons(p)[0][1] == "evil-1")
    assert_pings_nobody(evil_post)
    title = next(b for b in evil_post["blocks"] if b["type"] == "section" and b["text"]["type"] == "mrkdwn")
    assert title["text"]["text"] == ("*<https://example.org/a%7Cb&gt;&lt;!channel&gt;|&lt;!channel&gt; "
                                     "∗Attention∗ is ∼all∼ you ˋneedˋ &amp; more &lt;@U1&gt;>*")
    assert escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"


# -- failures ------------------------------------------------------------------------------------
async def test_failures_answer_friendly_and_log_the_traceback(slack, rec, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail xyz")

    monkeypatch.setattr(rec, "search", broken)
    with caplog.at_level(logging.ERROR):
        await slack.command("search anything", "boom")
        answer = await slack.answer("boom")
    assert answer["response_type"] == "ephemeral" and "Sorry, something went wrong" in texts(answer)
    assert "xyz" not in json.dumps(answer) and "Traceback" not in json.dumps(answer)
    assert any(r.exc_info and "internal detail xyz" in str(r.exc_info[1]) for r in caplog.records)

    def down(*args, **kwargs):
        raise StoreUnavailable("cannot reach Redis at redis://127.0.0.1:1")

    monkeypatch.setattr(rec, "topics", down)
    await slack.command("topics", "down")
    assert "temporarily unavailable" in texts(await slack.answer("down"))

    rec.record_post(LAB, "1700000000.000009", "demo-001")
    monkeypatch.setattr(rec, "record_feedback", down)
    await slack.react("reaction_added", "+1", "1700000000.000009")
    told = await eventually(lambda: slack.fake.calls_to("chat.postEphemeral"))
    assert told[0].body["user"] == "UALICE" and "was not recorded" in told[0].body["text"]


async def test_paperbot_joins_public_channels_and_answers_privately_where_it_cannot(slack):
    # a public channel paperbot is not in: it joins (so reactions there reach it), then posts
    slack.fake.not_joined.add("CPUBLIC")
    await slack.command("search speech recognition", "public", channel="CPUBLIC")
    await slack.posts(5, channel="CPUBLIC")
    assert [c.body["channel"] for c in slack.fake.calls_to("conversations.join")] == ["CPUBLIC"]
    assert slack.fake.responses_to("public") == []
    # a private channel it was not invited to: the results come back to the asker only
    slack.fake.private.add("CPRIVATE")
    await slack.command("search speech recognition", "private", channel="CPRIVATE")
    answer = await slack.answer("private")
    assert answer["response_type"] == "ephemeral"
    assert "/invite @paperbot" in texts(answer) and len(buttons(answer)) == 15


async def test_workspaces_never_mix(slack, rec):
    await slack.command("subscribe robotics", "t1", team="T0ONE")
    await slack.command("subscribe compilers", "t2", team="T0TWO")
    await slack.answer("t1")
    await slack.answer("t2")
    assert rec.topics("slack:T0ONE:UALICE") == ["robotics"]
    assert rec.topics("slack:T0TWO:UALICE") == ["compilers"]


# -- Slack's limits ------------------------------------------------------------------------------
async def test_rate_limited_post_is_retried_after_retry_after(slack):
    slack.fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    await slack.command("search reinforcement learning", "s")
    await slack.posts(5)
    calls = slack.fake.calls_to("chat.postMessage", status=None)
    assert [c.status for c in calls] == [429, 200, 200, 200, 200, 200]
    assert calls[1].at - calls[0].at >= 1.0               # waited for Retry-After
    assert calls[1].body["blocks"] == calls[0].body["blocks"]   # the same message, retried


async def test_acks_stay_under_3s_while_searches_are_slow(slack, rec, monkeypatch):
    search = rec.search

    def slow_search(*args, **kwargs):
        time.sleep(4)   # slower than Slack's deadline on its own
        return search(*args, **kwargs)

    monkeypatch.setattr(rec, "search", slow_search)
    rec.record_post(LAB, "1700000000.000042", "demo-042")
    jobs = [slack.send(slash_command(f"search graph neural networks {n}", slack.fake.response_url(f"s{n}")))
            for n in range(5)]
    jobs += [slack.send(slash_command("help", slack.fake.response_url("help"))),
             slack.send(block_action("paper_save", "demo-010", slack.fake.response_url("click"))),
             slack.send(reaction_event("reaction_added", "fire", "CLAB", "1700000000.000042"))]
    start = time.monotonic()
    results = await asyncio.gather(*jobs)
    acks = [took for _, took in results]
    assert all(r.status_code == 200 for r, _ in results)
    assert max(acks) < ACK_DEADLINE, acks
    await slack.answer("help")
    await slack.answer("click")
    await slack.posts(25)
    assert time.monotonic() - start >= 4   # the searches really were slow
    assert rec.people.feedback(ALICE)["demo-042"]["rating"] == "like"
    print(f"ack latencies with 5 slow searches running: {', '.join(f'{a * 1000:.0f} ms' for a in acks)}")


# -- Socket Mode ---------------------------------------------------------------------------------
async def test_socket_mode_commands_clicks_and_reactions(rec, demo, fake):
    stop = asyncio.Event()
    task = asyncio.create_task(run_slack(rec, stop, SlackConfig.from_env(slack_env(fake))))
    await eventually(lambda: fake._sockets or task.done())
    assert not task.done(), task.exception()
    opened = fake.calls_to("apps.connections.open")
    assert opened and opened[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"

    async def envelope(payload):
        start = time.monotonic()
        envelope_id = await asyncio.to_thread(fake.send_envelope, envelope_kind(payload), payload)
        ack = await eventually(lambda: fake.acks.get(envelope_id))
        assert time.monotonic() - start < ACK_DEADLINE
        return ack

    ack = await envelope(slash_command("search graph neural networks", fake.response_url("s")))
    assert set(ack) == {"envelope_id"}   # acknowledged with no visible text
    await eventually(lambda: len(fake.calls_to("chat.postMessage")) >= 5)
    assert fake.calls_to("chat.postMessage")[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"

    await envelope(slash_command("subscribe speech", fake.response_url("sub")))
    await eventually(lambda: fake.responses_to("sub"))
    assert rec.topics(ALICE) == ["speech"]

    ts = await eventually(lambda: rec.people.r.hkeys(rec.people.key(LAB, "posts")))
    paper = rec.paper_of_post(LAB, ts[0].decode())
    await envelope(block_action("paper_save", paper, fake.response_url("click")))
    await eventually(lambda: fake.responses_to("click"))
    await envelope(reaction_event("reaction_added", "+1", "CLAB", ts[0].decode()))
    await eventually(lambda: rec.people.feedback(ALICE).get(paper, {}).get("rating") == "like")
    assert rec.people.feedback(ALICE)[paper]["saved"]

    stop.set()
    await asyncio.wait_for(task, 15)


# -- `paperbot serve --slack-http`, from outside --------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ts_of(rec, paper_id: str) -> str | None:
    for ts in rec.people.r.hkeys(rec.people.key(LAB, "posts")):
        if rec.paper_of_post(LAB, ts.decode()) == paper_id:
            return ts.decode()
    return None


def test_paperbot_serve_slack_http_end_to_end(cli_env, rec, demo, fake):
    port = _free_port()
    env = {**cli_env, **slack_env(fake)}
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "-v", "serve", "--slack-http",
                               "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        deadline = time.monotonic() + 120
        while True:   # up once an unsigned request is refused
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.post(url, content=b"{}", timeout=2).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "paperbot serve did not come up"
            time.sleep(0.3)

        def send(payload):
            body, content_type = http_body(payload)
            response = httpx.post(url, content=body.encode(), timeout=10,
                                  headers=signed_headers(body, SIGNING_SECRET, None, content_type))
            assert response.status_code == 200, response.text

        send(slash_command("search graph neural networks for molecules", fake.response_url("s")))
        posts = fake.wait_for("chat.postMessage", 5, timeout=30)
        paper = posts[0].body["blocks"][-1]["elements"][0]["value"]
        # the ts the fake gave that message, as the server recorded it
        deadline = time.monotonic() + 10
        while not (first_ts := _ts_of(rec, paper)):
            assert time.monotonic() < deadline, "the post was not recorded"
            time.sleep(0.1)
        send(reaction_event("reaction_added", "+1", "CLAB", first_ts))
        deadline = time.monotonic() + 20
        while rec.profile(ALICE)["counts"]["like"] == 0:
            assert time.monotonic() < deadline, "the reaction was not stored"
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr
    for secret in (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN):
        assert secret not in stderr

    profile = subprocess.run([sys.executable, "-m", "bot.cli", "profile", "--user", ALICE, "--json"],
                             env=cli_env, capture_output=True, text=True, timeout=240)
    assert profile.returncode == 0, profile.stderr
    data = json.loads(profile.stdout)
    assert data["counts"]["like"] == 1
    assert data["recent"][0] == {**data["recent"][0], "paper": paper, "kind": "like", "channel": LAB}
