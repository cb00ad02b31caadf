"""Weekly digests: `channel weekly <day> HH:MM zone`, `dm weekly …` and `paperbot schedule
--weekly`, through the grammar, the console, the fake Slack, the fake Discord and the CLI; and
the post itself: on its weekday at its local time only, once (two replicas, a restart), with
the best k (10 by default) of every paper the week brought."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from importlib import resources

import pytest

from bot.actions import Actions
from bot.commands import HELP, parse
from bot.console import ConsolePoster, ConsoleSession
from bot.ingest_loop import ingest_sources
from bot.reply import Who
from bot.scheduler import Scheduler, ScheduleStore
from bot.scheduler.due import zone
from bot.scheduler.schedules import DEFAULT_K, WEEKLY_K
from testkit.fake_slack import TEAM
from testkit.scheduler_fakes import FakePlatform, FakePoster, SimClock, at, fast_settings

LAB = "slack:T1:CLAB"
HOUR = dt.timedelta(hours=1)


# -- the grammar ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, name, day, hhmm, tz", [
    ("channel weekly mon 09:00 Europe/Berlin", "channel weekly", "mon", "09:00", "Europe/Berlin"),
    ("/papers channel weekly Monday 9:05", "channel weekly", "mon", "09:05", "UTC"),
    ("dm weekly SUNDAY 07:30 Asia/Tokyo", "dm weekly", "sun", "07:30", "Asia/Tokyo"),
    ("dm weekly thu 23:59 America/New_York", "dm weekly", "thu", "23:59", "America/New_York"),
    ("channel weekly Wednesday 00:00 UTC", "channel weekly", "wed", "00:00", "UTC"),
])
def test_the_grammar_reads_a_day_a_time_and_a_zone(text, name, day, hhmm, tz):
    command = parse(text)
    assert (command.name, command.text, f"{command.time:%H:%M}", command.tz) == (name, day, hhmm, tz)


@pytest.mark.parametrize("text, says", [
    ("channel weekly funday 09:00 UTC", "'funday' is not a day of the week: write mon … sun"),
    ("dm weekly <!channel> 09:00", "'channel' is not a day of the week"),
    ("dm weekly", "`dm weekly` needs a day and a time, e.g. `dm weekly mon 09:00 Europe/Berlin`"),
    ("channel weekly mon", "I need a time like 09:00, e.g. `channel weekly mon 09:00 Europe/Berlin`"),
    ("channel weekly fri 25:00 UTC", "I need a time like 09:00"),
    ("dm weekly fri 09:00 Mars/Olympus", "'Mars/Olympus' is not an IANA time zone"),
])
def test_a_bad_weekly_command_gets_one_line_with_an_example(text, says):
    command = parse(text)
    assert command.name == "help" and says in command.note
    assert "\n" not in command.note and len(command.note) <= 200 and "<!" not in command.note
    if "day of the week" in command.note:
        assert "weekly mon 09:00 Europe/Berlin`" in command.note


def test_off_stays_off_and_help_lists_the_weekly_commands():
    assert parse("dm off").name == "dm off" and parse("channel off").name == "channel off"
    assert parse("dm 09:00 UTC").name == "dm" and parse("channel time 09:00").name == "channel time"
    assert "channel weekly <day> HH:MM <IANA time zone>" in HELP
    assert "dm weekly <day> HH:MM <IANA time zone>" in HELP


# -- the schedule ---------------------------------------------------------------------------
def test_a_weekly_schedule_is_stored_described_and_switched_back_to_daily(rec):
    store = ScheduleStore(rec.store.r, rec.store.prefix)
    now = at("2026-06-10T12:00Z")
    weekly = store.set(LAB, "channel", now=now, time=dt.time(9, 0), tz="Europe/Berlin",
                       weekday="Monday")
    assert weekly.describe() == "weekly on Monday 09:00 Europe/Berlin, 10 papers"
    assert (weekly.cadence, weekly.days, weekly.k) == ("weekly", frozenset({0}), WEEKLY_K)
    data = weekly.to_dict()
    assert (data["cadence"], data["weekday"], data["k"], data["days"]) == ("weekly", "mon", 10, "mon")
    assert store.set(LAB, "channel", now=now, k=7).describe() == \
        "weekly on Monday 09:00 Europe/Berlin, 7 papers"     # a weekly change keeps it weekly
    daily = store.set(LAB, "channel", now=now, time=dt.time(8, 0), tz="UTC", cadence="daily")
    assert daily.describe() == f"08:00 UTC, mon-fri, {DEFAULT_K} papers" and daily.cadence == "daily"
    store.set(LAB, "channel", now=now, k=3, days="mon,wed")           # the daily k and days
    again = store.set(LAB, "channel", now=now, weekday="fri")
    assert again.describe() == "weekly on Friday 08:00 UTC, 7 papers"   # the weekly k came back
    assert store.set(LAB, "channel", now=now, cadence="daily").describe() == "08:00 UTC, mon,wed, 3 papers"
    with pytest.raises(ValueError, match="one day"):
        store.set(LAB, "channel", now=now, cadence="weekly", days="mon-fri")
    with pytest.raises(ValueError, match="not a day of the week"):
        store.set(LAB, "channel", now=now, weekday="someday")
    with pytest.raises(ValueError, match="needs a day of the week"):
        store.set("slack:T1:CNEW", "channel", now=now, time=dt.time(9, 0), cadence="weekly")
    with pytest.raises(ValueError, match="between 1 and 10"):
        store.set(LAB, "channel", now=now, weekday="mon", k=11)


# -- the console ----------------------------------------------------------------------------
async def test_the_console_sets_weekly_posts_and_prints_one_on_its_day(rec, demo):
    clock = SimClock(at("2026-06-10T10:00Z"))            # a Wednesday
    session = ConsoleSession(rec, "ana", now=clock)
    store = ScheduleStore(rec.store.r, rec.store.prefix)
    session.handle("subscribe graph neural networks")
    answer = session.handle("dm weekly friday 09:00 Asia/Tokyo")
    assert answer == ("Your picks will come as a direct message: weekly on Friday 09:00 "
                      "Asia/Tokyo, 10 papers (next: Fri 12 Jun 09:00).")
    answer = session.handle("channel weekly MON 07:00 Europe/Berlin")
    assert "This channel's picks: weekly on Monday 07:00 Europe/Berlin, 10 papers (next: Mon 15 Jun 07:00)" in answer
    assert "follows no topics yet" in answer
    assert "'someday' is not a day of the week" in session.handle("dm weekly someday 09:00")
    assert store.get("console:local:ana").cadence == "weekly"
    assert "dm weekly <day> HH:MM" in session.handle("help")

    printed: list[str] = []
    scheduler = Scheduler(rec, {"console": ConsolePoster(session, printed.append)},
                          fast_settings(), clock, "console")
    while clock() < at("2026-06-12T00:00Z"):             # Thursday 09:00 in Tokyo and after
        await scheduler.tick()
        clock.set(clock() + HOUR)
    assert printed == []
    clock.set(at("2026-06-12T00:00Z"))                   # Friday 09:00 in Tokyo
    await scheduler.tick()
    assert printed[0].startswith("📰 This week's picks for you, week to Fri 12 Jun: 10 papers\n\n[1] ")
    assert len(printed) == 10 and printed[9].startswith("[10]")
    assert "More like this" in session.handle("like 10")
    await scheduler.tick()
    assert len(printed) == 10                            # once

    assert session.handle("dm off") == ("Your weekly direct message is off. "
                                        "`dm weekly <day> HH:MM <time zone>` turns it on again.")
    assert "weekly picks are off" in session.handle("channel off")
    assert store.targets() == []
    daily = session.handle("channel time 09:00 UTC")    # back to daily
    assert "This channel's daily picks: 09:00 UTC, mon-fri, 5 papers" in daily


# -- the post: its day, its time, once, the week's best --------------------------------------
def _ingest_week(rec, demo_corpus, tmp_path, offsets_days, parts):
    """The demo corpus in `parts` rounds, paper i in round i % parts; the first len(offsets)
    ingested, each recorded (ingest marks) `offset` days before now (None: now). Returns the
    ids of each round and the paths of the rounds left to ingest."""
    papers, vectors = demo_corpus
    rec.store.put_vectors(rec.embedder.tag, [p.content_hash for p in papers], vectors)
    with resources.as_file(resources.files("recommender") / "demo_papers.jsonl") as path:
        lines = path.read_text().splitlines()
    rounds: list[list[str]] = []
    later = []
    for n in range(parts):
        chunk = lines[n::parts]
        source = tmp_path / f"round{n}.jsonl"
        source.write_text("\n".join(chunk) + "\n")
        rounds.append([json.loads(line)["id"] for line in chunk])
        if n >= len(offsets_days):
            later.append(str(source))
            continue
        results = ingest_sources(rec, [str(source)], at=time.time() - offsets_days[n] * 86400)
        assert results[str(source)]["new"] == len(chunk)
    return rounds, later


def test_the_first_weekly_post_takes_the_seven_days_before_it(rec, demo_corpus, tmp_path):
    from bot.ingest_loop import seq_reached_by
    from bot.scheduler.weekly import first_post_seq

    rounds, _ = _ingest_week(rec, demo_corpus, tmp_path, [5, 2], 2)
    r, p = rec.store.r, rec.store.prefix
    after_first = seq_reached_by(r, p, time.time() - 4 * 86400)
    assert 0 < after_first < seq_reached_by(r, p, time.time())
    thursday = at("2026-06-11T09:00Z")
    # set on Thursday for Monday 09:00: the week from last Monday, so not the round of 5 days ago
    assert first_post_seq(r, p, thursday, weekday="mon", at=dt.time(9, 0), tz="UTC") == after_first
    # for Thursday 10:00, in an hour: the whole week before, both rounds
    assert first_post_seq(r, p, thursday, weekday="thu", at=dt.time(10, 0), tz="UTC") == 0.0
    # daily: the last day's papers, neither round
    assert first_post_seq(r, p, thursday, cadence="daily") == seq_reached_by(r, p, time.time())
    candidates = {pid for pid, _ in rec.store.paper_ids(after_first)}
    assert candidates == set(rounds[1])


async def test_a_weekly_post_comes_on_its_day_once_with_the_best_of_the_whole_week(
        make_recommender, demo_corpus, tmp_path):
    rec = make_recommender()
    # ten days ago (before the week), then six, four and two days before the first post
    (old, *week, next_week), [listing] = _ingest_week(rec, demo_corpus, tmp_path, [10, 6, 4, 2], 5)
    clock = SimClock(at("2026-06-08T08:00+02:00"))       # Monday 08:00 in Berlin
    rec.subscribe(LAB, "graph neural networks")
    answer = Actions(rec, now=clock).run(parse("channel weekly mon 09:00 Europe/Berlin"),
                                         Who("slack:T1:UANA", LAB))
    assert answer.text.startswith("This channel's picks: weekly on Monday 09:00 Europe/Berlin, "
                                  "10 papers (next: Mon 8 Jun 09:00)")
    week_ids = [pid for day in week for pid in day]
    best_of_week = [r.paper.id for r in rec.picks_for_channel(LAB, k=10, candidates=week_ids)]
    best_of_all = [r.paper.id for r in rec.picks_for_channel(LAB, k=10)]
    assert set(best_of_all) & set(old)          # the old papers would be picked: the window matters
    last_day = [r.paper.id for r in rec.picks_for_channel(LAB, k=10, candidates=week[-1])]
    assert set(best_of_week) - set(last_day)    # and a day's best is not the week's

    platform = FakePlatform(clock)
    a = Scheduler(rec, {"slack": FakePoster(platform)}, fast_settings(), clock, "a")
    b = Scheduler(make_recommender(), {"slack": FakePoster(platform)}, fast_settings(), clock, "b")
    done = []
    while clock() < at("2026-06-10T00:00Z"):             # two replicas, every 15 minutes
        for outcome in await asyncio.gather(a.tick(), b.tick()):
            done += [(target, day, result) for target, day, result in outcome if result == "done"]
        clock.set(clock() + dt.timedelta(minutes=15))
    assert done == [(LAB, dt.date(2026, 6, 8), "done")]
    posted = platform.of(LAB)
    assert [m.item for m in posted] == best_of_week and len(posted) == 10   # k: 10 by default
    assert {m.at for m in posted} == {at("2026-06-08T09:00+02:00")}        # Monday, 09:00 local
    assert posted[0].header == "📰 This week's picks for this channel, week to Mon 8 Jun: 10 papers"
    assert not set(old) & {m.item for m in posted}
    assert all(any(m.item in day for m in posted) for day in week)        # every day of the week

    # a restart (a new replica, the same Redis) and the rest of the week: nothing more, and
    # the next Monday takes only what came since
    c = Scheduler(make_recommender(), {"slack": FakePoster(platform)}, fast_settings(), clock, "c")
    while clock() < at("2026-06-15T06:00Z"):
        if clock() == at("2026-06-11T12:00Z"):           # a new listing on Thursday
            ingest_sources(rec, [listing])
        assert [r for r in await c.tick() if r[2] == "done"] == []
        clock.set(clock() + HOUR)
    assert len(platform.of(LAB)) == 10
    clock.set(at("2026-06-15T07:00Z"))                   # Monday 09:00 in Berlin
    outcomes = [r[2] for o in await asyncio.gather(a.tick(), c.tick()) for r in o]
    assert outcomes.count("done") == 1 and set(outcomes) <= {"done", "held", "already done"}
    second = platform.of(LAB)[10:]
    assert second and {m.item for m in second} <= set(next_week)   # only the new week's
    assert len(platform.posts(LAB)) == 2                 # one post a week


# -- Slack ----------------------------------------------------------------------------------
async def test_slack_sets_a_weekly_channel_post_and_it_lands_on_its_day(slack_h, rec):
    from bot.slack import SlackPoster
    from test_slack import texts

    s = slack_h
    await s.command("channel subscribe graph neural networks", "sub")
    await s.answer("sub")
    await s.command("channel weekly mon 09:00 Europe/Berlin", "weekly")
    answer = await s.answer("weekly")
    assert answer["response_type"] == "in_channel"
    assert "This channel's picks: weekly on Monday 09:00 Europe/Berlin, 10 papers" in texts(answer)
    await s.command("channel weekly Funday 09:00", "bad")
    bad = await s.answer("bad")
    assert bad["response_type"] == "ephemeral" and "'funday' is not a day of the week" in texts(bad)
    await s.command("channel weekly tue 10:00 UTC", "bob", user="UBOB", user_name="bob")
    assert "Only" in texts(await s.answer("bob"))       # not the channel's owner: refused
    await s.command("dm weekly fri 07:30 Asia/Tokyo", "dm")
    dm = await s.answer("dm")
    assert dm["response_type"] == "ephemeral"
    assert "Your picks will come as a direct message: weekly on Friday 07:30 Asia/Tokyo" in texts(dm)
    await s.command("dm off", "dmoff")
    assert "weekly direct message is off" in texts(await s.answer("dmoff"))

    channel = f"slack:{TEAM}:CLAB"
    schedule = ScheduleStore(rec.store.r, rec.store.prefix).get(channel)
    assert schedule.describe() == "weekly on Monday 09:00 Europe/Berlin, 10 papers"
    from bot.scheduler.due import next_due
    due = next_due(schedule.time, schedule.tz, schedule.days, dt.datetime.now(dt.timezone.utc))
    assert due.astimezone(zone("Europe/Berlin")).strftime("%a %H:%M") == "Mon 09:00"
    clock = SimClock(due - dt.timedelta(minutes=1))
    scheduler = Scheduler(rec, {"slack": SlackPoster(s.bot.client, TEAM)}, fast_settings(),
                          clock, "one")
    assert await scheduler.tick() == []
    clock.set(due)
    assert await scheduler.tick() == [(channel, due.astimezone(zone("Europe/Berlin")).date(), "done")]
    posts = await s.posts(10)
    assert len(posts) == 10
    assert posts[0]["text"].startswith("📰 This week's picks for this channel, week to Mon")
    assert await scheduler.tick() == []
    await s.command("channel off", "off")
    assert "This channel's weekly picks are off" in texts(await s.answer("off"))


# -- Discord --------------------------------------------------------------------------------
async def test_discord_weekly_commands(discord_fake, rec, demo):
    from test_discord import MODERATOR, RunningBot, ask, channel, person, private
    from testkit.fake_discord import MANAGE_CHANNELS, MEMBER_PERMISSIONS

    fake = discord_fake
    bot = await RunningBot(fake, rec, guild_id=fake.guild_id).start()
    try:
        await fake.wait_for(lambda: str(fake.guild_id) in fake.commands)
        [papers] = fake.commands[str(fake.guild_id)]
        groups = {o["name"]: {c["name"]: c for c in o.get("options", [])} for o in papers["options"]}
        for group in ("channel", "dm"):
            weekly = {o["name"]: o for o in groups[group]["weekly"]["options"]}
            assert [c["value"] for c in weekly["day"]["choices"]] == [
                "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            assert weekly["day"]["choices"][0]["name"] == "Monday" and weekly["day"]["required"]
            assert weekly["timezone"]["autocomplete"] is True

        refused = await ask(fake, "channel", "weekly", day="mon", time="09:00")
        assert "needs the Manage Channels permission" in refused.text and private(refused.visible[0])
        moderator = dict(user_id=MODERATOR, permissions=MEMBER_PERMISSIONS | MANAGE_CHANNELS)
        zones = await fake.interact(fake.slash("channel", "weekly", day="mon", time="09:00",
                                               timezone="berl", focused="timezone", **moderator))
        await fake.wait_for(lambda: zones.callbacks)
        assert [c["value"] for c in zones.callbacks[0]["data"]["choices"]] == ["Europe/Berlin"]
        done = await ask(fake, "channel", "weekly", day="wed", time="09:00",
                         timezone="Europe/Berlin", **moderator)
        assert "This channel's picks: weekly on Wednesday 09:00 Europe/Berlin, 10 papers" in done.text
        assert not private(done.visible[0])                # the channel sees its schedule
        bad = await ask(fake, "channel", "weekly", day="wed", time="9h", **moderator)
        assert "I need a time like 09:00" in bad.text
        off = await ask(fake, "channel", "off", **moderator)
        assert "weekly picks are off" in off.text and "`/papers channel weekly`" in off.text
        dm = await ask(fake, "dm", "weekly", day="sun", time="18:00", timezone="Asia/Tokyo")
        assert "direct message: weekly on Sunday 18:00 Asia/Tokyo, 10 papers" in dm.text
        assert private(dm.visible[0])
        store = ScheduleStore(rec.store.r, rec.store.prefix)
        assert store.get(person(fake)).cadence == "weekly"
        assert store.get(channel(fake)).enabled is False
        assert "`/papers dm weekly`" in (await ask(fake, "dm", "off")).text
    finally:
        await bot.close()


# -- the command line -----------------------------------------------------------------------
def test_paperbot_schedule_weekly(cli_env):
    def paperbot(*args, ok=True):
        done = subprocess.run([sys.executable, "-m", "bot.cli", "schedule", *args], env=cli_env,
                              capture_output=True, text=True, timeout=120)
        assert (done.returncode == 0) == ok, done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout if ok else done.stderr

    out = paperbot("--user", LAB, "--weekly", "mon", "--time", "09:00", "--tz", "UTC")
    assert "slack:T1:CLAB: channel post weekly on Monday 09:00 UTC, 10 papers" in out
    out = paperbot("--user", "slack:T1:UANA", "--dm", "--weekly", "Friday", "--time", "17:30",
                   "--tz", "America/New_York", "-k", "4")
    assert "slack:T1:UANA: dm post weekly on Friday 17:30 America/New_York, 4 papers" in out
    listed = paperbot("--list")
    assert "slack:T1:CLAB  channel weekly on Monday 09:00 UTC, 10 papers" in listed
    [lab, ana] = sorted(json.loads(paperbot("--list", "--json")), key=lambda s: s["target"])
    assert (lab["cadence"], lab["weekday"], lab["k"]) == ("weekly", "mon", 10)
    assert (ana["cadence"], ana["weekday"], ana["k"], ana["kind"]) == ("weekly", "fri", 4, "dm")
    assert "not a day of the week" in paperbot("--user", LAB, "--weekly", "funday", ok=False)
    assert "one day" in paperbot("--user", LAB, "--weekly", "mon", "--days", "mon-fri", ok=False)
    assert "weekly on Monday 09:00 UTC, 6 papers" in paperbot("--user", LAB, "-k", "6")
    out = paperbot("--user", LAB, "--days", "mon-fri")                       # back to daily
    assert "slack:T1:CLAB: channel post 09:00 UTC, mon-fri, 5 papers" in out
    assert "daily post off" in paperbot("--user", "slack:T1:UANA", "--off")


def test_a_weekly_posts_notes_speak_of_the_week(rec):
    from bot.scheduler.scheduler import note_for
    from bot.scheduler.weekly import in_week_words

    store = ScheduleStore(rec.store.r, rec.store.prefix)
    weekly = store.set(LAB, "channel", now=at("2026-06-10T12:00Z"), time=dt.time(9, 0), weekday="mon")
    assert in_week_words(weekly, note_for(weekly, 0, ["gnn"])) == \
        "No new papers this week. The picks come back with the next listing."
    assert in_week_words(weekly, note_for(weekly, 4, [])).startswith("No picks this week: this channel")
    daily = store.set(LAB, "channel", now=at("2026-06-10T12:00Z"), cadence="daily")
    assert in_week_words(daily, note_for(daily, 0, ["gnn"])).startswith("No new papers today (arXiv")
