"""Daily posts through the real platform clients: the Slack poster (slack_sdk against the fake
Slack: channels, DMs, metadata look-ups, refusals, 429s) and the Discord poster (discord.py
against the fake Discord: embeds with buttons, nonces), driven by the scheduler."""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings

import pytest

from bot.scheduler import Scheduler, ScheduleStore
from bot.scheduler.delivery import Delivery, Item, LookupUnavailable
from bot.slack import SlackConfig, SlackPoster, web_client
from testkit.fake_slack import BOT_TOKEN, SIGNING_SECRET, TEAM
from testkit.fake_slack_history import HistoryFakeSlack
from testkit.scheduler_fakes import SimClock, at, fast_settings

with warnings.catch_warnings():   # discord.py's voice module imports the deprecated audioop
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

LAB = f"slack:{TEAM}:CLAB"
ALICE = f"slack:{TEAM}:UALICE"


@pytest.fixture
def slack_fake():
    with HistoryFakeSlack() as server:
        yield server


def slack_poster(fake) -> SlackPoster:
    config = SlackConfig.from_env({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                                   "SLACK_API_URL": fake.api_url}, http=True)
    return SlackPoster(web_client(config), TEAM)


async def test_slack_daily_posts_to_a_channel_and_a_dm(rec, demo, slack_fake):
    clock = SimClock(at("2026-06-09T08:00Z"))
    store = ScheduleStore(rec.store.r, rec.store.prefix)
    rec.subscribe(LAB, "graph neural networks")
    rec.subscribe(ALICE, "speech recognition")
    store.set(LAB, "channel", now=clock(), time=dt.time(9, 0), tz="UTC", k=3)
    store.set(ALICE, "dm", now=clock(), time=dt.time(9, 0), tz="UTC", k=2)
    store.set("slack:OTHERTEAM:C1", "channel", now=clock(), time=dt.time(9, 0), tz="UTC")
    poster = slack_poster(slack_fake)
    scheduler = Scheduler(rec, {"slack": poster}, fast_settings(), clock, "one")
    clock.set(at("2026-06-09T09:00Z"))
    assert sorted(await scheduler.tick()) == sorted([(LAB, dt.date(2026, 6, 9), "done"),
                                                    (ALICE, dt.date(2026, 6, 9), "done")])
    channel = slack_fake.posted("CLAB")
    assert len(channel) == 3
    assert channel[0]["text"].startswith("📰 Today's picks for this channel, Tue 9 Jun: 3 new papers")
    calls = [c.body for c in slack_fake.calls_to("chat.postMessage") if c.body["channel"] == "CLAB"]
    papers = [c["blocks"][-1]["elements"][0]["value"] for c in calls]
    assert [c["metadata"]["event_payload"] for c in calls] == [
        {"post_id": f"{LAB}/2026-06-09", "item": p} for p in papers]
    assert "Today's picks for this channel" in calls[0]["blocks"][0]["text"]["text"]
    assert all(not c.get("unfurl_links") for c in calls)
    for message, paper in zip(channel, papers):   # reactions on them will be feedback
        assert rec.paper_of_post(LAB, message["ts"]) == paper
    assert rec.people.shown(LAB) == set(papers)

    dm = slack_fake.posted("DALICE")               # sent to UALICE, delivered in their DM
    assert len(dm) == 2
    assert rec.paper_of_post(f"slack:{TEAM}:DALICE", dm[0]["ts"]) is not None
    assert store.get(ALICE).dm_channel == "DALICE"
    assert rec.people.shown(ALICE) and not slack_fake.posted("C1")   # not our workspace

    # a takeover's look-up: the platform says which items of a post exist
    entry = scheduler.ledger.read(LAB, dt.date(2026, 6, 9))
    delivery = Delivery(LAB, "channel", "CLAB", entry.post_id, entry.frozen_at)
    found = await poster.find_sent(delivery, Item(papers[1]))
    assert found.message_id == channel[1]["ts"] and found.where == LAB
    assert await poster.find_sent(delivery, Item("not-posted")) is None
    with pytest.raises(LookupUnavailable):
        await poster.find_sent(Delivery("slack:T:UBOB", "dm", "UBOB", "x", 0.0), Item("p"))


async def test_slack_refusals_and_rate_limits(rec, demo, slack_fake):
    clock = SimClock(at("2026-06-09T09:00Z"))
    store = ScheduleStore(rec.store.r, rec.store.prefix)
    for target in (LAB, f"slack:{TEAM}:CSECRET"):
        rec.subscribe(target, "graph neural networks")
        store.set(target, "channel", now=at("2026-06-09T08:00Z"), time=dt.time(9, 0), tz="UTC", k=2)
    slack_fake.private.add("CSECRET")               # not invited: Slack refuses, for good
    slack_fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    # a 429 waits out its Retry-After inside the send: the send timeout (lease / 3) is longer
    scheduler = Scheduler(rec, {"slack": slack_poster(slack_fake)}, fast_settings(lease_seconds=30),
                          clock, "one")
    outcomes = {t: o for t, _, o in await scheduler.tick()}
    assert outcomes == {LAB: "done", f"slack:{TEAM}:CSECRET": "failed"}
    assert len(slack_fake.posted("CLAB")) == 2                       # the 429 was retried
    assert len(slack_fake.calls_to("chat.postMessage", status=429)) == 1
    failed = scheduler.ledger.read(f"slack:{TEAM}:CSECRET", dt.date(2026, 6, 9))
    assert failed.error == "Slack: not_in_channel"


# -- Discord ------------------------------------------------------------------------------------


async def test_discord_daily_posts_are_embeds_with_buttons_and_nonces(rec, demo, discord_fake):
    from bot.discord_bot import DiscordSettings, run_discord

    fake = discord_fake
    target = f"discord:{fake.guild_id}:{fake.channel_id}"
    clock = SimClock(at("2026-06-09T09:00Z"))
    rec.subscribe(target, "speech recognition")
    ScheduleStore(rec.store.r, rec.store.prefix).set(
        target, "channel", now=at("2026-06-09T08:00Z"), time=dt.time(9, 0), tz="UTC", k=3)
    posters: dict = {}
    stop = asyncio.Event()
    settings = DiscordSettings(token="fake-token-abc.def", api_base=fake.api_base,
                               gateway_url=fake.gateway_url, guild_id=fake.guild_id)
    bot = asyncio.create_task(run_discord(rec, stop, settings, posters=posters,
                                          guild_ready_timeout=0.05))
    try:
        await fake.wait_for(lambda: "discord" in posters and posters["discord"].handles(target))
        scheduler = Scheduler(rec, posters, fast_settings(), clock, "one")
        assert await scheduler.tick() == [(target, dt.date(2026, 6, 9), "done")]
        sent = fake.requests_to("POST", rf"/channels/{fake.channel_id}/messages$")
        assert len(sent) == 3
        nonces = [r.body["nonce"] for r in sent]
        assert len(set(nonces)) == 3 and all(len(n) <= 25 for n in nonces)
        assert all(r.body["enforce_nonce"] is True for r in sent)
        assert all(r.body["allowed_mentions"] == {"parse": []} for r in sent)
        assert "Today's picks for this channel" in sent[0].body["content"]
        buttons = [r.body["components"][0]["components"][0]["custom_id"] for r in sent]
        papers = [b.split(":", 3)[3] for b in buttons]
        assert rec.people.shown(target) == set(papers)
        for message_id, paper in zip(sorted(fake.messages), papers):   # reactions → feedback
            assert rec.paper_of_post(target, str(message_id)) == paper
    finally:
        stop.set()
        await asyncio.wait_for(bot, 15)
    assert "discord" not in posters
