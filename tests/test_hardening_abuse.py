"""Hardening, abuse: per-person rate limits on expensive commands, caps on topics and on `k`.

A flood of 200 commands from one person through the real Bolt app is throttled with a friendly
"slow down", while another person in the same workspace is still answered promptly.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from test_slack import texts

from bot.console import ConsoleSession
from bot.limits import RateLimit, RateLimiter
from recommender.people import MAX_TOPICS
from recommender.service import MAX_K
from testkit.fake_slack import TEAM, slash_command

FLOOD = 200
MALLORY = f"slack:{TEAM}:UMALLORY"


def test_rate_limit_setting():
    assert RateLimit.from_env({}) == RateLimit(20, 60.0)
    assert RateLimit.from_env({"PAPERBOT_RATE_LIMIT": "5/10"}) == RateLimit(5, 10.0)
    assert RateLimit.from_env({"PAPERBOT_RATE_LIMIT": "30"}) == RateLimit(30, 60.0)
    assert RateLimit.from_env({"PAPERBOT_RATE_LIMIT": "0"}).limit == 0
    for bad in ("lots", "5/0", "-1/60", "5/x"):
        with pytest.raises(ValueError, match="PAPERBOT_RATE_LIMIT must look like 20/60"):
            RateLimit.from_env({"PAPERBOT_RATE_LIMIT": bad})


def test_limiter_counts_per_person_per_window_and_forgets(redis_client, prefix):
    now = [1000.0]
    limiter = RateLimiter(redis_client, prefix, RateLimit(3, 60), clock=lambda: now[0])
    assert [limiter.check("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.check("a") == pytest.approx(20.0)          # the window ends at 1020
    assert limiter.check("b") == 0                            # someone else: not affected
    now[0] = 1020.0
    assert limiter.check("a") == 0                            # a new window
    assert 0 < redis_client.ttl(f"{prefix}ratelimit:a:17") <= 61
    limiter.forget("a")
    assert list(redis_client.scan_iter(match=f"{prefix}ratelimit:a:*")) == []
    assert RateLimiter(redis_client, prefix, RateLimit(0, 60)).check("a") == 0   # 0: no limit


def test_console_cheap_commands_are_never_limited(rec, demo):
    session = ConsoleSession(rec, "mallory")
    session.actions.limiter = RateLimiter(rec.store.r, rec.store.prefix, RateLimit(2, 3600),
                                          clock=lambda: 7200.0)
    assert "Papers matching" in session.handle("search graph neural networks")
    assert "Papers similar" in session.handle("similar demo-001")
    slow = session.handle("digest")
    assert slow.startswith("Slow down a little") and "Try again in 3600 s" in slow
    assert "Slow down" in session.handle("search anything")
    for line in ("topics", "profile", "saved", "help", "subscribe robotics"):
        assert "Slow down" not in session.handle(line)
    other = ConsoleSession(rec, "bob")
    other.actions.limiter = session.actions.limiter
    assert "Papers matching" in other.handle("search graph neural networks")


async def test_a_flood_of_200_commands_is_throttled_and_others_are_still_answered(slack_h, rec):
    slack = slack_h
    # a fixed clock: the whole flood falls in one window, whatever the time of day
    slack.bot.actions.limiter = RateLimiter(rec.store.r, rec.store.prefix, RateLimit(20, 60),
                                            clock=lambda: 6000.0)
    rec.subscribe(MALLORY, "graph neural networks")

    in_flight = asyncio.Semaphore(10)    # a script firing commands, 10 at a time, no pause

    async def mallory(i: int):
        payload = slash_command("digest", slack.fake.response_url(f"flood{i}"), user="UMALLORY",
                                user_name="mallory")
        async with in_flight:
            response, _ = await slack.send(payload)
        return response.status_code

    async def bob() -> float:
        start = time.monotonic()
        await slack.command("search graph neural networks", "bob", user="UBOB", user_name="bob")
        await slack.posts(5)                                  # Bob's search is posted
        return time.monotonic() - start

    # Bob asks in the middle of the flood
    half = FLOOD // 2
    done = await asyncio.gather(*(mallory(i) for i in range(half)), bob(),
                                *(mallory(i) for i in range(half, FLOOD)))
    statuses, bob_took = done[:half] + done[half + 1:], done[half]
    assert statuses == [200] * FLOOD                          # every request acknowledged
    answers = [texts(await slack.answer(f"flood{i}")) for i in range(FLOOD)]
    throttled = [a for a in answers if a.startswith("Slow down a little")]
    assert len(throttled) == FLOOD - 20
    assert all("Traceback" not in a and "Sorry" not in a for a in answers)
    assert bob_took < 15, bob_took
    assert rec.profile(MALLORY)["shown"] > 0  # the first 20 were answered


def test_topic_cap_per_person_and_per_channel(rec, demo):
    session = ConsoleSession(rec, "hoarder")
    for i in range(MAX_TOPICS):
        assert "now follow" in session.handle(f"subscribe topic number {i}")
    answer = session.handle("subscribe one too many")
    assert answer.startswith(f"You follow {MAX_TOPICS} topics already")
    assert len(rec.topics(session.who.person)) == MAX_TOPICS
    assert "was followed already" in session.handle("subscribe topic number 3")
    for i in range(MAX_TOPICS):
        rec.subscribe(session.who.channel, f"channel topic {i}")
    assert f"{MAX_TOPICS} topics already" in session.handle("channel subscribe one more")


def test_k_is_capped(rec, demo):
    rec.subscribe("console:local:k", "graph neural networks")
    for call in (lambda k: rec.search("graph neural networks", k=k),
                 lambda k: rec.similar("demo-001", k=k),
                 lambda k: rec.recommend("console:local:k", k=k)):
        assert 0 < len(call(10**9)) <= MAX_K
        assert len(call(0)) == 1 and len(call(-5)) == 1
