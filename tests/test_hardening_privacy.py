"""Hardening, privacy: no token or signing secret in any log line, two workspaces never see
each other's topics, feedback, picks or saved papers through the adapters, and `forget-me`
through each adapter leaves nothing that mentions the person (while others keep everything)."""

from __future__ import annotations

import pytest

import asyncio
import logging

from test_discord import RunningBot, ask, papers_in
from test_slack import Harness, buttons, eventually, slack_env, texts

from bot.console import ConsoleSession
from bot.slack import SlackBot, SlackConfig, run_slack
from testkit.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    TEAM,
    FakeSlack,
    envelope_kind,
    slash_command,
)

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
        task = asyncio.create_task(run_slack(rec, stop, SlackConfig.from_env(slack_env(fake))))
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


# -- forget-me, through each adapter -----------------------------------------------------------------
def dump(r, key: bytes) -> list[tuple]:
    """Everything a key holds, as comparable tuples."""
    kind = r.type(key).decode()
    if kind == "hash":
        return sorted(r.hgetall(key).items())
    if kind == "set":
        return sorted((m,) for m in r.smembers(key))
    if kind == "zset":
        return [tuple(m) for m in r.zrange(key, 0, -1, withscores=True)]
    if kind == "list":
        return [(e,) for e in r.lrange(key, 0, -1)]
    if kind == "stream":
        return [(entry_id, f, v) for entry_id, fields in r.xrange(key) for f, v in fields.items()]
    if kind == "string":
        return [(r.get(key),)]
    return [(kind,)]


def traces(r, prefix: str, needle: str) -> dict[str, list[tuple]]:
    """Every key under `prefix` (SCAN) that mentions `needle`: a key named after it with all it
    holds; any other key with just the hash fields / values, set and sorted-set members, list
    elements, stream entries or string value that mention it."""
    wanted = needle.encode()
    found = {}
    for key in r.scan_iter(match=f"{prefix}*", count=1000):
        items = dump(r, key)
        if wanted not in key:
            items = [item for item in items
                     if any(isinstance(x, bytes) and wanted in x for x in item)]
        if wanted in key or items:
            found[key.decode()] = items
    return found


def assert_everything_was_there(found: dict[str, list[tuple]], person: str, prefix: str,
                                channel: str) -> None:
    """What the setup gave the person really is in Redis (so that its absence later means
    something): topics, feedback with a save, its history, what was shown, a DM schedule and its
    registry entry, and a channel's record of the person's feedback on its posts."""
    for what in ("topics", "feedback", "events", "shown", "schedule"):
        assert f"{prefix}{{{person}}}:{what}" in found, (what, sorted(found))
    feedback = dict(found[f"{prefix}{{{person}}}:feedback"])
    assert any(b'"saved": true' in v for v in feedback.values()), feedback
    assert any(b'"rating": "like"' in v for v in feedback.values()), feedback
    assert found[f"{prefix}schedules"] == [(person.encode(),)]
    assert found[f"{prefix}{{{channel}}}:member_feedback"], sorted(found)


async def test_forget_me_in_the_console_leaves_no_trace(rec, demo, redis_client, prefix):
    ada, bob = ConsoleSession(rec, "adalovelace7"), ConsoleSession(rec, "bobbytables9")
    for console in (ada, bob):
        assert "now follow" in console.handle("subscribe graph neural networks")
        assert "Your picks:" in console.handle("digest")
        assert "More like this" in console.handle("like 1")       # on the terminal: the channel's too
        assert "Saved" in console.handle("save 2")
        assert "direct message" in console.handle("dm 09:00 Europe/Berlin")
    before = traces(redis_client, prefix, "adalovelace7")
    assert_everything_was_there(before, ada.who.person, prefix, ada.who.channel)
    others = traces(redis_client, prefix, "bobbytables9")

    assert "for good" in ada.handle("forget-me")                   # asking deletes nothing
    assert traces(redis_client, prefix, "adalovelace7") == before
    assert "forgotten everything" in ada.handle("forget-me confirm")
    assert traces(redis_client, prefix, "adalovelace7") == {}
    assert traces(redis_client, prefix, "bobbytables9") == others
    assert rec.profile(bob.who.person)["counts"] == {"like": 1, "dislike": 0, "save": 1}


async def test_forget_me_on_slack_leaves_no_trace(slack_h, rec, redis_client, prefix):
    slack, lab = slack_h, f"slack:{TEAM}:CLAB"
    for n, user in enumerate(("UALICE", "UBOB")):
        await slack.command("subscribe graph neural networks", f"sub{user}", user=user)
        assert "now follow" in texts(await slack.answer(f"sub{user}"))
        await slack.command("search graph neural networks", f"search{user}", user=user)
        await slack.posts(5 * (n + 1))
        tss = await eventually(lambda: len(slack.posted_ts()) >= 5 * (n + 1) and slack.posted_ts())
        ts = tss[-1]
        await slack.react("reaction_added", "+1", ts, user=user)           # in the channel
        await eventually(lambda: rec.profile(f"slack:{TEAM}:{user}")["counts"]["like"] == 1)
        await slack.click("paper_save", rec.paper_of_post(lab, tss[0]), f"save{user}", user=user)
        assert "Saved" in texts(await slack.answer(f"save{user}"))
        await slack.command("dm 09:00 Europe/Berlin", f"dm{user}", user=user)
        assert "direct message" in texts(await slack.answer(f"dm{user}"))
        await slack.command("digest", f"digest{user}", user=user)
        assert texts(await slack.answer(f"digest{user}")).startswith("Your picks")
    before = traces(redis_client, prefix, "UALICE")
    assert_everything_was_there(before, f"slack:{TEAM}:UALICE", prefix, lab)
    others = traces(redis_client, prefix, "UBOB")

    await slack.command("forget-me", "ask")                    # the adapter asks first ...
    prompt = await slack.answer("ask")
    assert ("forget_me_confirm", "confirm") in buttons(prompt)
    assert traces(redis_client, prefix, "UALICE") == before
    await slack.click("forget_me_confirm", "confirm", "confirmed")   # ... the person confirms
    assert "forgotten everything" in texts(await slack.answer("confirmed"))
    assert traces(redis_client, prefix, "UALICE") == {}
    assert traces(redis_client, prefix, "UBOB") == others


@pytest.mark.parametrize("asked_in", ["server", "dm"])
async def test_forget_me_on_discord_leaves_no_trace(rec, demo, discord_servers, redis_client, prefix,
                                                    asked_in):
    """One Discord account is a person per server and one in DMs: forget-me, asked in a server
    or in a DM, forgets all of them (another server's data is written through the facade: the
    fake speaks for one server)."""
    fake = await discord_servers()
    ada, bob = 770000000000000001, 770000000000000002      # ids found nowhere else
    lab = f"discord:{fake.guild_id}:{fake.channel_id}"
    bot = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    try:
        for n, user in enumerate((ada, bob)):
            me = f"discord:{fake.guild_id}:{user}"
            assert "now follow" in (await ask(fake, "subscribe", topic="graph neural networks",
                                              user_id=user)).text
            found = papers_in(await ask(fake, "search", query="graph neural networks",
                                        user_id=user, messages=6))
            await fake.wait_for(lambda: all(rec.paper_of_post(lab, m["id"]) for m, _ in found))
            await fake.react(found[n][0], "👍", user_id=user)                  # in the channel
            await fake.wait_for(lambda: rec.profile(me)["counts"]["like"] == 1)
            message, paper = found[2 + n]
            click = await fake.interact(fake.click(message, f"paperbot:fb:save:{paper}",
                                                   user_id=user))
            await fake.wait_for(lambda: click.visible)
            assert "Saved" in click.text
            assert "direct message" in (await ask(fake, "dm", "on", time="09:00",
                                                  timezone="Europe/Berlin", user_id=user)).text
            assert (await ask(fake, "digest", user_id=user, messages=6)).text.startswith("Your picks")
            # and in their DM with the bot: a search there, and a reaction on one of its papers
            in_dm = papers_in(await ask(fake, "search", query="speech recognition", user_id=user,
                                        guild=False, messages=6))
            dm_person = f"discord:dm:{user}"
            await fake.wait_for(lambda: rec.paper_of_post(dm_person, in_dm[0][0]["id"]))
            await fake.react(in_dm[0][0], "⭐", user_id=user, guild=False)
            await fake.wait_for(lambda: rec.profile(dm_person)["counts"]["like"] == 1)
            elsewhere = f"discord:555000000000000555:{user}"          # another server
            rec.subscribe(elsewhere, "speech recognition")
            rec.record_feedback(elsewhere, next(iter(demo)), "like",
                                channel="discord:555000000000000555:556000000000000556")
        before = traces(redis_client, prefix, str(ada))
        assert_everything_was_there(before, f"discord:{fake.guild_id}:{ada}", prefix, lab)
        assert f"{prefix}{{discord:dm:{ada}}}:feedback" in before
        assert f"{prefix}{{discord:555000000000000555:{ada}}}:feedback" in before
        others = traces(redis_client, prefix, str(bob))

        in_guild = asked_in == "server"
        asked = await ask(fake, "forget-me", user_id=ada, guild=in_guild)
        assert "/papers forget-me confirm: True" in asked.text
        assert traces(redis_client, prefix, str(ada)) == before
        assert "forgotten everything" in (await ask(fake, "forget-me", confirm=True,
                                                    user_id=ada, guild=in_guild)).text
        assert traces(redis_client, prefix, str(ada)) == {}
        assert traces(redis_client, prefix, str(bob)) == others
    finally:
        await bot.close()
