"""Hardening, privacy: no token or signing secret in any log line, and two workspaces never see
each other's topics, feedback, picks or saved papers through the adapters."""

from __future__ import annotations

import asyncio
import logging

from fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack, envelope_kind, slash_command
from hardening_fixtures import discord_servers, slack_h  # noqa: F401 - fixtures
from test_discord import RunningBot, papers_in
from test_slack import Harness, eventually, slack_env, texts

from bot.slack import SlackBot, SlackConfig, run_slack

SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, "fake-bot-token-123", "fake-app-token-456",
           "fake-signing-secret-789")
DISCORD_TOKEN = "fake-token-abc.def"
ONE, TWO = "T0ONE", "T0TWO"


def logged(caplog) -> str:
    """Every log record, formatted and raw (message, args, exception text)."""
    parts = [caplog.text]
    for record in caplog.records:
        parts += [str(record.msg), repr(record.args), record.exc_text or ""]
    return "\n".join(parts)


# -- secrets never logged ---------------------------------------------------------------------------
async def test_slack_http_and_socket_mode_log_no_token_or_secret(rec, demo, caplog):
    caplog.set_level(logging.DEBUG)                       # every logger, slack_sdk's and Bolt's too
    with FakeSlack() as fake:
        bot = SlackBot(rec, SlackConfig.from_env(slack_env(fake), http=True))
        port = await bot.serve_http("127.0.0.1", 0)
        slack = Harness(bot, fake, f"http://127.0.0.1:{port}/slack/events")
        await slack.command("search graph neural networks", "s")
        posted = await slack.posts(5)
        await slack.command("subscribe speech", "sub")
        await slack.answer("sub")
        paper = posted[0]["blocks"][-1]["elements"][0]["value"]
        await slack.click("paper_save", paper, "click")
        await slack.answer("click")
        await slack.react("reaction_added", "+1", slack.posted_ts()[0])
        bad, _ = await slack.send(slash_command("topics", fake.response_url("x")), secret="wrong")
        assert bad.status_code == 401
        await slack.http.aclose()
        await bot.close()

        stop = asyncio.Event()                            # Socket Mode: the app-level token
        task = asyncio.create_task(run_slack(rec, stop, http=False, env=slack_env(fake)))
        await eventually(lambda: fake._sockets or task.done())
        payload = slash_command("topics", fake.response_url("socket"))
        await asyncio.to_thread(fake.send_envelope, envelope_kind(payload), payload)
        await eventually(lambda: fake.responses_to("socket"))
        stop.set()
        await asyncio.wait_for(task, 15)
    text = logged(caplog)
    assert len(caplog.records) > 20                       # the debug logs did run
    for secret in SECRETS:
        assert secret not in text, secret


async def test_discord_logs_no_token(rec, demo, discord_servers, caplog):
    caplog.set_level(logging.DEBUG)
    fake = await discord_servers()
    bot = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    exchange = await fake.interact(fake.slash("search", query="graph neural networks"))
    await fake.wait_for(lambda: len(exchange.visible) >= 6)
    message, paper = papers_in(exchange)[0]
    click = await fake.interact(fake.click(message, f"paperbot:fb:like:{paper}"))
    await fake.wait_for(lambda: click.visible)
    await bot.close()
    text = logged(caplog)
    assert len(caplog.records) > 20
    assert DISCORD_TOKEN not in text and "abc.def" not in text


# -- workspaces never mix ----------------------------------------------------------------------------
async def test_two_slack_workspaces_never_see_each_other(slack_h, rec):
    slack = slack_h
    # the same user id and channel id in two workspaces
    await slack.command("subscribe molecule property prediction", "sub1", team=ONE)
    await slack.command("channel subscribe speech recognition", "ch1", team=ONE)
    await slack.answer("sub1")
    await slack.answer("ch1")
    await slack.command("search graph neural networks", "s1", team=ONE)
    await slack.posts(5)
    people = rec.people
    stamps = await eventually(lambda: people.r.hkeys(people.key(f"slack:{ONE}:CLAB", "posts")))
    ts = stamps[0].decode()
    paper = rec.paper_of_post(f"slack:{ONE}:CLAB", ts)
    await slack.click("paper_save", paper, "save1", team=ONE)
    await slack.answer("save1")
    await slack.react("reaction_added", "+1", ts, team=ONE)
    await eventually(lambda: rec.profile(f"slack:{ONE}:UALICE")["counts"]["like"] == 1)
    await slack.command("digest", "d1", team=ONE)
    assert texts(await slack.answer("d1")).startswith("Your picks")

    # workspace two: nothing of workspace one
    answers = {}
    for i, text in enumerate(("topics", "saved", "profile", "digest")):
        await slack.command(text, f"two{i}", team=TWO)
        answers[text] = texts(await slack.answer(f"two{i}"))
    assert "You follow: none" in answers["topics"] and "This channel follows: none" in answers["topics"]
    assert "haven't saved any papers" in answers["saved"]
    assert "0 👍 · 0 👎 · 0 🔖 · 0 papers shown" in answers["profile"]
    assert "don't follow any topics" in answers["digest"]
    for answer in answers.values():
        assert "molecule property" not in answer and "speech recognition" not in answer
    # a reaction in workspace two on the same channel id and ts is not feedback on one's post
    await slack.react("reaction_added", "-1", ts, team=TWO)
    await asyncio.sleep(1)
    assert rec.profile(f"slack:{TWO}:UALICE")["counts"] == {"like": 0, "dislike": 0, "save": 0}
    assert rec.profile(f"slack:{ONE}:UALICE")["counts"] == {"like": 1, "dislike": 0, "save": 1}
    assert rec.topics(f"slack:{TWO}:UALICE") == [] and rec.topics(f"slack:{TWO}:CLAB") == []


async def test_two_discord_servers_never_see_each_other(rec, demo, discord_servers):
    one = await discord_servers(guild_id=41771983423143937)
    bot = await RunningBot(one, rec, guild_id=one.guild_id).start()
    sub = await one.interact(one.slash("subscribe", topic="molecule property prediction"))
    await one.wait_for(lambda: sub.visible)
    digest = await one.interact(one.slash("digest"))
    await one.wait_for(lambda: len(digest.visible) >= 6)
    message, paper = papers_in(digest)[0]
    save = await one.interact(one.click(message, f"paperbot:fb:save:{paper}"))
    await one.wait_for(lambda: save.visible)
    await bot.close()

    # the same user in another server (same user id, same channel id)
    two = await discord_servers(guild_id=51771983423143937, channel_id=one.channel_id)
    bot = await RunningBot(two, rec, guild_id=two.guild_id).start()
    seen = {}
    for name in ("topics", "saved", "profile", "digest"):
        exchange = await two.interact(two.slash(name))
        await two.wait_for(lambda: exchange.visible)
        seen[name] = exchange.text
    await bot.close()
    assert "You follow: none" in seen["topics"]
    assert "haven't saved any papers" in seen["saved"]
    assert "0 👍 · 0 👎 · 0 🔖 · 0 papers shown" in seen["profile"]
    assert "don't follow any topics" in seen["digest"]
    assert all("molecule property" not in t and rec.get_paper(paper).title not in t
               for t in seen.values())
