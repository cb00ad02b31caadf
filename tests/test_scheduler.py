"""The scheduler's core with a simulated clock: due times (time zones, DST, days of the week,
catch-up), the ledger (racing replicas, a replica dying mid-post, failed sends), pacing, the
empty-day setting, and the chat commands and CLI that set schedules.

Everything runs against the real Redis and the real Recommender; only the platform is a fake
(`scheduler_fakes.FakePlatform`), so days pass in milliseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest

from bot.scheduler import NotDelivered, Scheduler, ScheduleStore, latest_due, parse_days
from bot.scheduler.due import due_at, format_days, next_due
from bot.scheduler.scheduler import NO_NEW_PAPERS
from bot.scheduler.settings import SchedulerSettings
from testkit.scheduler_fakes import FakePlatform, FakePoster, SimClock, at, fast_settings

LAB = "slack:T1:CLAB"
OTHER = "slack:T1:COTHER"
NINE = dt.time(9, 0)


def make_scheduler(rec, platform, clock, name="replica-a", poster=None, **settings):
    poster = poster or FakePoster(platform)
    return Scheduler(rec, {"slack": poster}, fast_settings(**settings), clock, name), poster


def schedule(rec, target, clock, *, time=NINE, tz="UTC", days="daily", k=3, kind="channel",
             empty=None, topic="graph neural networks"):
    if topic:
        rec.subscribe(target, topic)
    return ScheduleStore(rec.store.r, rec.store.prefix).set(
        target, kind, now=clock(), time=time, tz=tz, k=k, days=days, empty=empty)


async def run_until(scheduler, clock, end, step=dt.timedelta(minutes=15)):
    """Tick every `step` of simulated time up to `end`."""
    while clock() <= end:
        await scheduler.tick()
        clock.set(clock() + step)


# -- due times ------------------------------------------------------------------------------------
def test_days_of_the_week_parse_and_print():
    assert parse_days("mon-fri") == frozenset(range(5)) and format_days(range(5)) == "mon-fri"
    assert parse_days("daily") == frozenset(range(7)) and format_days(range(7)) == "daily"
    assert parse_days("mon,wed,fri") == {0, 2, 4} and format_days({0, 2, 4}) == "mon,wed,fri"
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    assert parse_days("Saturday, sunday") == {5, 6}
    for bad in ("", "funday", "mon-xyz"):
        with pytest.raises(ValueError):
            parse_days(bad)


@pytest.mark.parametrize("day, tokyo_utc, la_utc", [
    ("2026-03-07", "00:00", "17:00"),   # Saturday before the US switch: PST, UTC-8
    ("2026-03-08", "00:00", "16:00"),   # the switch: PDT, UTC-7 (Tokyo has no DST)
    ("2026-03-09", "00:00", "16:00"),
    ("2026-10-31", "00:00", "16:00"),
    ("2026-11-01", "00:00", "17:00"),   # back to PST
    ("2026-11-02", "00:00", "17:00"),
])
def test_nine_in_tokyo_and_los_angeles_across_daylight_saving(day, tokyo_utc, la_utc):
    date = dt.date.fromisoformat(day)
    assert f"{due_at(date, NINE, 'Asia/Tokyo'):%H:%M}" == tokyo_utc
    assert due_at(date, NINE, "Asia/Tokyo").date() == date     # 09:00 JST is 00:00 UTC that day
    assert f"{due_at(date, NINE, 'America/Los_Angeles'):%H:%M}" == la_utc


def test_a_missing_and_a_doubled_wall_time_are_due_once():
    # 02:30 does not exist in Los Angeles on 2026-03-08: it is read as 03:30 PDT (10:30 UTC)
    assert due_at(dt.date(2026, 3, 8), dt.time(2, 30), "America/Los_Angeles") == at("2026-03-08T10:30Z")
    # 01:30 happens twice on 2026-11-01: the first one (PDT, 08:30 UTC)
    assert due_at(dt.date(2026, 11, 1), dt.time(1, 30), "America/Los_Angeles") == at("2026-11-01T08:30Z")


def test_latest_due_honours_days_of_the_week_and_when_the_schedule_was_set():
    weekdays = parse_days("mon-fri")
    saturday_noon = at("2026-06-13T12:00Z")
    assert latest_due(NINE, "UTC", weekdays, saturday_noon) == (dt.date(2026, 6, 12), at("2026-06-12T09:00Z"))
    assert latest_due(NINE, "UTC", weekdays, at("2026-06-15T08:59Z"))[0] == dt.date(2026, 6, 12)
    assert latest_due(NINE, "UTC", weekdays, at("2026-06-15T09:00Z"))[0] == dt.date(2026, 6, 15)
    # set on Monday at 10:00 for 09:00: nothing is due until Tuesday
    assert latest_due(NINE, "UTC", weekdays, at("2026-06-15T10:00Z"), since=at("2026-06-15T10:00Z")) is None
    assert latest_due(NINE, "UTC", weekdays, at("2026-06-16T09:00Z"), since=at("2026-06-15T10:00Z"))[0] \
        == dt.date(2026, 6, 16)
    assert next_due(NINE, "UTC", weekdays, saturday_noon) == at("2026-06-15T09:00Z")
    # Tokyo's local date runs ahead of UTC: Monday 09:00 JST is Monday 00:00 UTC
    assert latest_due(NINE, "Asia/Tokyo", weekdays, at("2026-06-15T00:00Z"))[0] == dt.date(2026, 6, 15)


async def test_tokyo_and_los_angeles_post_at_their_own_nine_through_dst_changes(rec):
    """Day by day, simulated every 15 minutes: each channel posts once per local day, at 09:00
    local, on both sides of the US switches (Tokyo has none), and the 02:30 and 01:30 channels
    post once on the days those times are missing or doubled."""
    clock = SimClock(at("2026-03-05T00:00Z"))
    platform = FakePlatform(clock)
    scheduler, _ = make_scheduler(rec, platform, clock)
    channels = {"slack:T1:CTOKYO": ("Asia/Tokyo", NINE), "slack:T1:CLA": ("America/Los_Angeles", NINE),
                "slack:T1:CGAP": ("America/Los_Angeles", dt.time(2, 30)),
                "slack:T1:CTWICE": ("America/Los_Angeles", dt.time(1, 30))}
    for target, (tz, when) in channels.items():   # no papers at all: every day gets its note
        schedule(rec, target, clock, time=when, tz=tz, empty="note", topic=None)
    started = time.monotonic()
    for first, last in (("2026-03-05", "2026-03-11"), ("2026-10-29", "2026-11-04")):
        clock.set(at(f"{first}T00:00Z"))
        store = ScheduleStore(rec.store.r, rec.store.prefix)
        for target, (tz, when) in channels.items():   # re-set, so no gap in between is "missed"
            store.set(target, "channel", now=clock(), time=when, tz=tz)
        await run_until(scheduler, clock, at(f"{last}T23:45Z"))
    print(f"simulated 2 x 7 days, 4 channels, in {time.monotonic() - started:.1f} s")

    for target, (tz, when) in channels.items():
        posts = platform.of(target)
        local = [m.at.astimezone(ZoneInfo(tz)) for m in posts]
        days = [t.date() for t in local]
        assert len(days) == len(set(days)), f"{target} posted twice on a day: {days}"
        assert all(m.text == NO_NEW_PAPERS for m in posts)
        if when == NINE:
            assert all(f"{t:%H:%M}" == "09:00" for t in local), (target, local)
    la = [m.at for m in platform.of("slack:T1:CLA")]
    assert at("2026-03-07T17:00Z") in la and at("2026-03-08T16:00Z") in la      # PST → PDT
    assert at("2026-10-31T16:00Z") in la and at("2026-11-01T17:00Z") in la      # PDT → PST
    tokyo = [m.at for m in platform.of("slack:T1:CTOKYO")]
    assert at("2026-03-08T00:00Z") in tokyo and at("2026-11-01T00:00Z") in tokyo
    assert at("2026-03-08T10:30Z") in [m.at for m in platform.of("slack:T1:CGAP")]
    twice = [m.at for m in platform.of("slack:T1:CTWICE") if m.at.date() == dt.date(2026, 11, 1)]
    assert twice == [at("2026-11-01T08:30Z")]                                    # not again at 09:30 UTC


# -- catch-up, missed days, empty days ----------------------------------------------------------
async def test_a_post_missed_while_all_replicas_were_down_is_caught_up_within_the_window(
        rec, demo, caplog):
    clock = SimClock(at("2026-06-08T06:00Z"))
    platform = FakePlatform(clock)
    schedule(rec, LAB, clock, k=2)
    scheduler, _ = make_scheduler(rec, platform, clock)
    clock.set(at("2026-06-08T14:30Z"))     # back 5 h 30 after 09:00: inside the 6 h window
    assert await scheduler.tick() == [(LAB, dt.date(2026, 6, 8), "done")]
    assert [m.at for m in platform.of(LAB)] == [clock()] * 2
    assert await scheduler.tick() == []    # once

    clock.set(at("2026-06-09T15:30Z"))     # 6 h 30 late: the day is recorded as missed
    with caplog.at_level(logging.WARNING, logger="bot.scheduler.scheduler"):
        assert await scheduler.tick() == []
    assert "missed the 2026-06-09 post of slack:T1:CLAB" in caplog.text
    assert scheduler.ledger.read(LAB, dt.date(2026, 6, 9)).state == "missed"
    assert len(platform.of(LAB)) == 2
    rec.add_papers([{"id": f"new-{n}", "title": f"Graph neural networks for {what}",
                     "abstract": f"We apply message passing networks to {what}."}
                    for n, what in enumerate(("traffic forecasting", "protein docking"))])
    clock.set(at("2026-06-10T09:00Z"))     # the next day is made as usual, with what is new
    assert await scheduler.tick() == [(LAB, dt.date(2026, 6, 10), "done")]
    assert {m.item for m in platform.of(LAB)[2:]} == {"new-0", "new-1"}


async def test_old_papers_stored_since_the_last_post_are_no_news(rec, demo):
    """An imported library (or an old paper re-announced) is stored after the last post, yet a
    post takes only papers published in the last NEWS_DAYS (or undated)."""
    clock = SimClock(at("2026-06-09T08:00Z"))
    platform = FakePlatform(clock)
    schedule(rec, LAB, clock, k=5)
    scheduler, _ = make_scheduler(rec, platform, clock)
    await run_until(scheduler, clock, at("2026-06-09T10:00Z"))
    posted = len(platform.of(LAB))
    rec.add_papers([{"id": f"{name}-{n}", "title": f"Graph neural networks for {what}",
                     "abstract": f"We apply message passing networks to {what}.", "published": day}
                    for n, what in enumerate(("traffic forecasting", "protein docking"))
                    for name, day in (("old", "2019-03-01"), ("fresh", "2026-06-05"), ("undated", None))])
    await run_until(scheduler, clock, at("2026-06-10T10:00Z"))
    assert {m.item for m in platform.of(LAB)[posted:]} == {
        "fresh-0", "fresh-1", "undated-0", "undated-1"}
    assert SchedulerSettings.from_env({"PAPERBOT_NEWS_DAYS": "0"}).news_days == 0   # any age
    with pytest.raises(ValueError, match="PAPERBOT_NEWS_DAYS must be a whole number"):
        SchedulerSettings.from_env({"PAPERBOT_NEWS_DAYS": "2.5"})


async def test_days_without_new_papers_are_skipped_or_get_a_note(rec, demo):
    clock = SimClock(at("2026-06-08T08:00Z"))
    platform = FakePlatform(clock)
    schedule(rec, LAB, clock)
    schedule(rec, OTHER, clock, empty="note")
    schedule(rec, "slack:T1:CNOTOPIC", clock, empty="note", topic=None)
    scheduler, _ = make_scheduler(rec, platform, clock)
    await run_until(scheduler, clock, at("2026-06-10T12:00Z"))
    assert list(platform.posts(LAB)) == [f"{LAB}/2026-06-08"]          # day 2 and 3: skipped
    assert scheduler.ledger.read(LAB, dt.date(2026, 6, 9)).state == "skipped"
    notes = platform.posts(OTHER)
    assert list(notes) == [f"{OTHER}/2026-06-{d}" for d in ("08", "09", "10")]
    assert notes[f"{OTHER}/2026-06-09"] == ["note"]
    assert platform.of(OTHER)[-1].text == NO_NEW_PAPERS
    assert "follows no topics yet" in platform.of("slack:T1:CNOTOPIC")[0].text


# -- exactly once ---------------------------------------------------------------------------------
async def test_two_replicas_racing_for_one_post_make_it_once(make_recommender, demo):
    """Two schedulers (each with its own Recommender, as two processes) tick at the same moment
    against one Redis and one platform, with slow sends so that they overlap."""
    rec_a, rec_b = make_recommender(), make_recommender()
    clock = SimClock(at("2026-06-08T09:00Z"))
    platform = FakePlatform(clock)
    schedule(rec_a, LAB, clock, k=4)
    a, _ = make_scheduler(rec_a, platform, clock, "a", poster=FakePoster(platform, delay=0.05))
    b, _ = make_scheduler(rec_b, platform, clock, "b", poster=FakePoster(platform, delay=0.05))
    outcomes = [o for tick in await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
                for _, _, o in tick]
    assert outcomes.count("done") == 1, outcomes
    assert set(outcomes) <= {"done", "held", "busy", "already done"}, outcomes
    posts = platform.posts(LAB)
    assert list(posts) == [f"{LAB}/2026-06-08"] and len(posts[f"{LAB}/2026-06-08"]) == 4
    assert len(set(posts[f"{LAB}/2026-06-08"])) == 4
    assert await a.tick() == [] and await b.tick() == []
    assert len(platform.of(LAB)) == 4


async def test_a_replica_dying_mid_post_is_taken_over_without_a_duplicate(make_recommender, demo):
    rec_a, rec_b = make_recommender(), make_recommender()
    clock = SimClock(at("2026-06-08T09:00Z"))
    platform = FakePlatform(clock)
    schedule(rec_a, LAB, clock, k=5)
    a, poster_a = make_scheduler(rec_a, platform, clock, "a", lease_seconds=0.5)
    poster_a.die_after = 3        # the 3rd message reaches the platform; its answer never comes
    dying = asyncio.create_task(a.tick())
    while len(platform.messages) < 3:
        await asyncio.sleep(0.01)
    dying.cancel()                # SIGKILL: nothing more happens in that process
    with pytest.raises(asyncio.CancelledError):
        await dying
    entry = a.ledger.read(LAB, dt.date(2026, 6, 8))
    assert entry.state == "frozen" and len(entry.sent) == 2 and len(entry.sending) == 3

    b, poster_b = make_scheduler(rec_b, platform, clock, "b", lease_seconds=0.5)
    assert await b.tick() == []   # the dead replica's lease still holds
    await asyncio.sleep(0.6)
    assert await b.tick() == [(LAB, dt.date(2026, 6, 8), "done")]
    items = platform.posts(LAB)[f"{LAB}/2026-06-08"]
    assert len(items) == 5 and len(set(items)) == 5           # each paper exactly once
    assert items == [i["id"] for i in entry.items]            # the frozen picks, in order
    assert poster_b.lookups == 1 and poster_b.sends == 2      # the 3rd was found, not resent
    done = b.ledger.read(LAB, dt.date(2026, 6, 8))
    assert done.state == "done" and {m["id"] for m in done.sent.values()} == {m.id for m in platform.of(LAB)}
    assert rec_b.people.shown(LAB) == set(items)
    assert all(rec_b.paper_of_post(LAB, m.id) == m.item for m in platform.of(LAB))


async def test_without_a_way_to_look_a_message_up_it_is_never_sent_twice(make_recommender, demo):
    rec_a, rec_b = make_recommender(), make_recommender()
    clock = SimClock(at("2026-06-08T09:00Z"))
    platform = FakePlatform(clock)
    schedule(rec_a, LAB, clock, k=3)
    a, poster_a = make_scheduler(rec_a, platform, clock, "a", lease_seconds=0.3)
    poster_a.die_after = 2
    dying = asyncio.create_task(a.tick())
    while len(platform.messages) < 2:
        await asyncio.sleep(0.01)
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)
    await asyncio.sleep(0.4)
    b, poster_b = make_scheduler(rec_b, platform, clock, "b", lease_seconds=0.3)
    poster_b.lookup_unavailable = True
    assert await b.tick() == [(LAB, dt.date(2026, 6, 8), "done")]
    items = [m.item for m in platform.of(LAB)]
    assert len(items) == 3 and len(set(items)) == 3 and poster_b.sends == 1
    assert b.ledger.read(LAB, dt.date(2026, 6, 8)).sent[items[1]]["unconfirmed"] is True


async def test_failed_sends_are_retried_and_never_duplicated(rec, demo, caplog):
    clock = SimClock(at("2026-06-08T09:00Z"))
    platform = FakePlatform(clock)
    schedule(rec, LAB, clock, k=3)
    scheduler, poster = make_scheduler(rec, platform, clock, retry_later=600)
    poster.refuse = [NotDelivered("Slack: ratelimited")]   # refused: sent again at once
    poster.doubt_after_accept = 1                          # then: landed, but no answer
    assert await scheduler.tick() == [(LAB, dt.date(2026, 6, 8), "deferred")]
    assert len(platform.of(LAB)) == 1
    assert await scheduler.tick() == []                    # not before retry_at
    clock.set(clock() + dt.timedelta(minutes=11))
    assert await scheduler.tick() == [(LAB, dt.date(2026, 6, 8), "done")]
    items = [m.item for m in platform.of(LAB)]
    assert len(items) == 3 and len(set(items)) == 3 and poster.lookups == 1

    schedule(rec, OTHER, clock, k=3)                       # a channel paperbot can't post to
    clock.set(at("2026-06-09T09:00Z"))
    poster.refuse = [NotDelivered("Slack: channel_not_found", permanent=True)]
    outcomes = dict(((t, o) for t, _, o in await scheduler.tick()))
    assert outcomes == {LAB: "skipped", OTHER: "failed"}    # LAB: no new papers since day 1
    assert scheduler.ledger.read(OTHER, dt.date(2026, 6, 9)).error == "Slack: channel_not_found"
    clock.set(clock() + dt.timedelta(hours=1))
    assert await scheduler.tick() == []                    # a failed day is not retried forever


async def test_many_channels_are_paced(rec, demo):
    clock = SimClock(at("2026-06-08T09:00Z"))
    platform = FakePlatform(clock)
    targets = [f"slack:T1:C{n}" for n in range(5)]
    for target in targets:
        schedule(rec, target, clock, k=3)
    scheduler, poster = make_scheduler(rec, platform, clock, channel_interval=0.2, post_rate=5,
                                       concurrency=5)
    sent_at: dict[str, list[float]] = {}
    real_send = poster.send

    async def timed(delivery, item):
        sent_at.setdefault(delivery.target, []).append(time.monotonic())
        return await real_send(delivery, item)
    poster.send = timed
    started = time.monotonic()
    assert {o for _, _, o in await scheduler.tick()} == {"done"}
    took = time.monotonic() - started
    for target in targets:
        gaps = [b - a for a, b in zip(sent_at[target], sent_at[target][1:])]
        assert len(gaps) == 2 and min(gaps) >= 0.15, gaps   # one channel: 0.2 s apart (less jitter)
    every = sorted(t for times in sent_at.values() for t in times)
    # all channels together: a burst of 5, then 5/s: ~2 s (per channel alone it would be 0.4 s)
    assert every[-1] - every[0] >= 1.6
    assert all(sum(1 for t in every if s <= t < s + 1.0) <= 10 for s in every)
    print(f"15 messages to 5 channels in {took:.2f} s")


async def test_posts_due_together_are_chosen_together_as_one_by_one(rec, demo):
    """Targets due at the same tick get their picks from one batch (`picks_for_many`): the
    same picks as `picks_for_channel` / `recommend` one by one; a pick shown to its target
    between the batch and its turn to post (here: while the first target is being posted) is
    not posted: that target's picks are chosen again."""
    clock = SimClock(at("2026-06-08T09:00Z"))
    platform = FakePlatform(clock)
    ids = list(demo)
    channels = {"slack:T1:CGNN": "graph neural networks", "slack:T1:CSPEECH": "speech recognition",
                "slack:T1:CROBOT": "robot learning"}
    people = {"slack:T1:UANN": "diffusion models", "slack:T1:UBOB": "language models"}
    for target, topic in channels.items():
        schedule(rec, target, clock, topic=topic)
    for target, topic in people.items():
        schedule(rec, target, clock, topic=topic, kind="dm")
    for pid in ids[:3]:
        rec.record_feedback("slack:T1:UANN", pid, "like")
    rec.record_feedback("slack:T1:UBOB", ids[3], "dislike")
    expected = {t: [r.paper.id for r in rec.picks_for_channel(t, k=3, candidates=ids)]
                for t in channels}
    expected |= {t: [r.paper.id for r in rec.recommend(t, k=3, candidates=ids)] for t in people}
    assert all(len(v) == 3 for v in expected.values())
    scheduler, poster = make_scheduler(rec, platform, clock, concurrency=1)
    first, late = "slack:T1:CGNN", "slack:T1:UBOB"
    real_send = poster.send

    async def send(delivery, item):   # while the first target posts, `late` is shown a pick
        if delivery.target == first:
            rec.mark_shown(late, expected[late][:1])
        return await real_send(delivery, item)
    poster.send = send
    assert {o for _, _, o in await scheduler.tick()} == {"done"}
    for target, picks in expected.items():
        posted = [m.item for m in platform.of(target)]
        if target == late:
            assert expected[late][0] not in posted and len(set(posted)) == 3   # chosen again
        else:
            assert posted == picks, target


# -- setting schedules --------------------------------------------------------------------------
def test_chat_commands_set_and_stop_daily_posts(rec, demo):
    from bot.console import ConsoleSession

    clock = SimClock(at("2026-06-12T10:00Z"))   # a Friday
    session = ConsoleSession(rec, "ana", now=clock)
    store = ScheduleStore(rec.store.r, rec.store.prefix)
    answer = session.handle("channel time 09:00 Asia/Tokyo")
    assert "This channel's daily picks: 09:00 Asia/Tokyo, mon-fri, 5 papers (next: Mon 15 Jun 09:00)" in answer
    assert "follows no topics yet" in answer
    terminal = store.get("console:local:terminal")
    assert (terminal.kind, terminal.tz, terminal.deliver_to) == ("channel", "Asia/Tokyo", "terminal")
    session.handle("subscribe speech recognition")
    answer = session.handle("/papers dm 07:30 Europe/Berlin")
    assert "Your picks will come as a direct message: 07:30 Europe/Berlin" in answer
    assert "You follow no topics" not in answer
    assert store.get("console:local:ana").kind == "dm"
    assert set(store.targets()) == {"console:local:terminal", "console:local:ana"}
    assert "I need a time like 09:00" in session.handle("dm 7h30")
    assert "not an IANA time zone" in session.handle("dm 07:30 Mars/Olympus")
    assert "direct message is off" in session.handle("dm off")
    assert "no daily direct message" in session.handle("dm off")
    assert "daily picks are off" in session.handle("channel off")
    assert store.targets() == [] and store.get("console:local:terminal").enabled is False
    assert "dm HH:MM <IANA time zone>" in session.handle("help")


def test_paperbot_schedule_sets_lists_and_turns_off(cli_env):
    def paperbot(*args):
        done = subprocess.run([sys.executable, "-m", "bot.cli", "schedule", *args], env=cli_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = paperbot("--user", LAB, "--time", "08:15", "--tz", "Europe/Berlin", "--k", "3",
                   "--days", "mon,wed,fri", "--empty", "note")
    assert "slack:T1:CLAB: channel post 08:15 Europe/Berlin, mon,wed,fri, 3 papers, empty days: note" in out
    paperbot("--user", "slack:T1:UANA", "--dm", "--time", "07:00")
    [lab, ana] = sorted(json.loads(paperbot("--list", "--json")), key=lambda s: s["kind"])
    assert lab["k"] == 3 and lab["days"] == "mon,wed,fri" and ana["kind"] == "dm" and ana["tz"] == "UTC"
    assert "daily post off" in paperbot("--user", LAB, "--off")
    bad = subprocess.run([sys.executable, "-m", "bot.cli", "schedule", "--user", LAB, "--tz", "Mars/Base"],
                         env=cli_env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "not an IANA time zone" in bad.stderr and "Traceback" not in bad.stderr


async def test_on_stop_a_post_under_way_hands_back_at_once_and_is_finished_elsewhere(
        make_recommender, demo):
    rec_a, rec_b = make_recommender(), make_recommender()
    clock = SimClock(at("2026-06-08T09:00Z"))
    platform = FakePlatform(clock)
    schedule(rec_a, LAB, clock, k=5)
    a, _ = make_scheduler(rec_a, platform, clock, "a", poster=FakePoster(platform, delay=0.2),
                          lease_seconds=60)
    stop = asyncio.Event()
    running = asyncio.create_task(a.run(stop))
    while len(platform.messages) < 2:
        await asyncio.sleep(0.01)
    stop.set()                                   # SIGTERM
    await asyncio.wait_for(running, 5)           # returns after the message being sent
    entry = a.ledger.read(LAB, dt.date(2026, 6, 8))
    assert entry.state == "frozen" and 2 <= len(entry.sent) < 5
    assert not rec_a.store.r.exists(a.ledger.lease_key(LAB, dt.date(2026, 6, 8)))   # handed back
    b, poster_b = make_scheduler(rec_b, platform, clock, "b", lease_seconds=60)
    assert await b.tick() == [(LAB, dt.date(2026, 6, 8), "done")]   # no 60 s lease to wait out
    items = [m.item for m in platform.of(LAB)]
    assert len(items) == 5 and len(set(items)) == 5 and poster_b.lookups == 0
