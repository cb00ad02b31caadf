"""Hardening, who may change a channel on Slack: through the real Bolt app against the fake Slack.

Only the person who set a channel up (the first to set its daily post or a topic: recorded),
and the workspace's admins and owners (Slack `users.info`, asked once a minute at most), may
turn its daily post off or retime it (PAPERBOT_SLACK_CHANNEL_ADMINS: owner+admins by default,
owner, admins or everyone); anyone else, a guest included, gets one line saying so. Every member
may add topics, but one member at most TOPICS_PER_MEMBER (10) of the channel's 50, and only
the one who added a topic (or the owner, or an admin) removes it.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_slack import Harness, slack_env, texts

from bot.scheduler.schedules import ScheduleStore
from bot.slack import SlackBot, SlackConfig
from testkit.fake_slack import TEAM, FakeSlack

LAB = f"slack:{TEAM}:CLAB"
SHARE = 10   # topics one member may add to a channel (bot.channel_roles.TOPICS_PER_MEMBER)


class People:
    """Commands from named Slack users, each answer waited for (tags never repeat)."""

    def __init__(self, slack: Harness):
        self.slack, self.n = slack, 0

    async def say(self, user: str, text: str) -> dict:
        self.n += 1
        tag = f"{user}-{self.n}"
        await self.slack.command(text, tag, user=user, user_name=user.lower())
        return await self.slack.answer(tag)


def schedule(rec):
    return ScheduleStore(rec.store.r, rec.store.prefix).get(LAB)


def is_refusal(message: dict) -> bool:
    """One private line saying who may (the fallback text: the blocks repeat it)."""
    text = message.get("text", "")
    return (message.get("response_type") == "ephemeral" and "\n" not in text.strip()
            and text.startswith("Only ") and "can" in text)


async def test_only_the_owner_and_admins_change_the_daily_post(slack_h, rec, caplog):
    slack, say = slack_h, People(slack_h).say
    slack.fake.admins.add("UADMIN")
    slack.fake.owners.add("UOWNER")
    slack.fake.guests.add("UGUEST")
    set_up = await say("UALICE", "channel time 09:00 Europe/Berlin")     # the first: the owner
    assert "daily picks" in texts(set_up) and set_up["response_type"] == "in_channel"

    caplog.set_level(logging.INFO)
    for user in ("UMALLORY", "UGUEST"):
        for text in ("channel off", "channel time 03:00 UTC"):
            refused = await say(user, text)
            assert is_refusal(refused), texts(refused)
    assert schedule(rec).enabled and f"{schedule(rec).time:%H:%M}" == "09:00"
    assert any("may not change" in r.getMessage() and "UMALLORY" in r.getMessage()
               for r in caplog.records)                               # a line for the operator

    assert "10:00" in texts(await say("UADMIN", "channel time 10:00 UTC"))
    assert f"{schedule(rec).time:%H:%M}" == "10:00"
    assert "off" in texts(await say("UOWNER", "channel off"))
    assert not schedule(rec).enabled
    assert "08:00" in texts(await say("UALICE", "channel time 08:00 UTC"))   # the owner still may
    assert schedule(rec).enabled and f"{schedule(rec).time:%H:%M}" == "08:00"
    # each person's role was asked of Slack once, however many commands they sent
    asked = [c.body.get("user") for c in slack.fake.calls_to("users.info")]
    assert sorted(asked) == sorted(set(asked)) and "UALICE" not in asked


async def test_one_member_cannot_fill_the_channels_topics(slack_h, rec):
    slack, say = slack_h, People(slack_h).say
    slack.fake.admins.add("UADMIN")
    await say("UALICE", "channel subscribe graph neural networks")     # sets the channel up
    added = await asyncio.gather(*(say("UMALLORY", f"channel subscribe spam topic {i}")
                                   for i in range(SHARE + 5)))       # all at once
    kept = [t for t in rec.topics(LAB) if t.startswith("spam")]
    assert len(kept) == SHARE
    refused = [m for m in added if "now follows" not in texts(m)]
    assert len(refused) == 5 and all(m["response_type"] == "ephemeral" for m in refused)
    assert all(f"up to {SHARE}" in m["text"] and "\n" not in m["text"] for m in refused)

    assert "now follows" in texts(await say("UBOB", "channel subscribe speech recognition"))
    no = await say("UMALLORY", "channel unsubscribe graph neural networks")   # not theirs
    assert is_refusal(no) and "graph neural networks" in rec.topics(LAB)
    assert "Unfollowed" in texts(await say("UMALLORY", f"channel unsubscribe {kept[0]}"))
    assert "now follows" in texts(await say("UMALLORY", "channel subscribe spam again"))
    assert "now follows" not in texts(await say("UMALLORY", "channel subscribe spam more"))
    assert "Unfollowed" in texts(await say("UADMIN", f"channel unsubscribe {kept[1]}"))
    assert "Unfollowed" in texts(await say("UALICE", "channel unsubscribe speech recognition"))
    for i in range(SHARE + 2):                                         # the owner: no share
        assert "now follows" in texts(await say("UALICE", f"channel subscribe owner topic {i}"))


@pytest.mark.parametrize("policy, allowed, refused", [
    ("everyone", {"UMALLORY", "UADMIN", "UALICE"}, set()),
    ("admins", {"UADMIN"}, {"UALICE", "UMALLORY"}),
    ("owner", {"UALICE"}, {"UADMIN", "UMALLORY"}),
])
async def test_the_setting_says_who_may_change_it(rec, demo, policy, allowed, refused):
    from bot.channel_roles import ChannelRoles

    ChannelRoles(rec.store.r, rec.store.prefix).claim(LAB, f"slack:{TEAM}:UALICE")
    with FakeSlack() as fake:
        fake.admins.add("UADMIN")
        env = {**slack_env(fake), "PAPERBOT_SLACK_CHANNEL_ADMINS": policy}
        bot = SlackBot(rec, SlackConfig.from_env(env, http=True))
        port = await bot.serve_http("127.0.0.1", 0)
        slack = Harness(bot, fake, f"http://127.0.0.1:{port}/slack/events")
        try:
            say = People(slack).say
            for user in sorted(allowed):
                assert "daily picks:" in texts(await say(user, "channel time 07:00 UTC")), user
            for user in sorted(refused):
                assert is_refusal(await say(user, "channel time 06:00 UTC")), user
        finally:
            await slack.http.aclose()
            await bot.close()


def test_the_setting_is_checked_at_start():
    from bot.channel_roles import ChannelPolicy

    assert ChannelPolicy.from_env({}) == ChannelPolicy(owner=True, admins=True, everyone=False)
    assert ChannelPolicy.from_env({"PAPERBOT_SLACK_CHANNEL_ADMINS": " Admins+OWNER "}) == ChannelPolicy()
    assert ChannelPolicy.from_env({"PAPERBOT_SLACK_CHANNEL_ADMINS": "owner,admins"}) == ChannelPolicy()
    assert ChannelPolicy.from_env({"PAPERBOT_SLACK_CHANNEL_ADMINS": "admins"}).owner is False
    assert ChannelPolicy.from_env({"PAPERBOT_SLACK_CHANNEL_ADMINS": "everyone"}).everyone
    for bad in ("anyone", "owner+everyone", "+"):
        with pytest.raises(ValueError, match="PAPERBOT_SLACK_CHANNEL_ADMINS must be"):
            ChannelPolicy.from_env({"PAPERBOT_SLACK_CHANNEL_ADMINS": bad})
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
           "PAPERBOT_SLACK_CHANNEL_ADMINS": "nobody"}
    with pytest.raises(ValueError, match="PAPERBOT_SLACK_CHANNEL_ADMINS"):
        SlackConfig.from_env(env, http=True)


async def test_without_the_users_read_scope_only_the_owner_may(slack_h, rec, caplog):
    slack, say = slack_h, People(slack_h).say
    slack.fake.admins.add("UADMIN")
    slack.fake.missing_scope.add("users.info")
    await say("UALICE", "channel time 09:00 UTC")
    caplog.set_level(logging.WARNING)
    assert is_refusal(await say("UADMIN", "channel off"))            # can't tell: not an admin
    assert any("users:read" in r.getMessage() for r in caplog.records)
    assert "off" in texts(await say("UALICE", "channel off"))


async def test_forget_me_of_the_owner_leaves_no_trace_in_the_channel(slack_h, rec, redis_client,
                                                                     prefix):
    slack, say = slack_h, People(slack_h).say
    slack.fake.admins.add("UADMIN")
    await say("UALICE", "channel time 09:00 UTC")
    await say("UALICE", "channel subscribe graph neural networks")
    await say("UBOB", "channel subscribe speech recognition")
    assert "forgotten everything" in texts(await say("UALICE", "forget-me confirm"))
    for key in redis_client.scan_iter(match=f"{prefix}*"):
        kind = redis_client.type(key)
        values = (redis_client.hgetall(key) if kind == b"hash" else
                  redis_client.smembers(key) if kind == b"set" else {})
        assert b"UALICE" not in key and not any(b"UALICE" in bytes(v) for v in
                                                (list(values.values()) if isinstance(values, dict)
                                                 else list(values))), key
    assert rec.topics(LAB) == ["graph neural networks", "speech recognition"]   # the channel's
    assert is_refusal(await say("UMALLORY", "channel off"))           # no owner now: admins only
    assert "Unfollowed" in texts(await say("UBOB", "channel unsubscribe speech recognition"))
    assert "off" in texts(await say("UADMIN", "channel off"))
