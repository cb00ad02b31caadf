"""Two weeks of real daily arXiv listings through ingestion and the scheduler, with a simulated
clock: one post per channel per announcement day, none on days without new papers, no paper
twice in a channel, and every post's papers from the listing(s) that arrived since the
channel's previous post (for a daily channel: that day's listing).

The committed fixture (`fixtures/arxiv/two_weeks.jsonl.gz`, 12 papers of each day's listing,
2026-06-08 .. 06-22, where Monday 06-22 repeats Friday's listing like a holiday) always runs.
A second test replays the full shared listing files (2026-05-04 .. 05-17, whose Saturday 05-09
brought three new papers) when `../shared/data` is present; it embeds the first
PAPERBOT_REPLAY_PER_DAY (default 15; 0 = all, ~3,000 abstracts) new papers of each day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import json
import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.ingest_loop import ingest_sources
from bot.scheduler import Scheduler, ScheduleStore
from bot.scheduler.due import due_at, parse_days
from testkit.scheduler_fakes import UTC, FakePlatform, FakePoster, SimClock, fast_settings

FIXTURE = Path(__file__).parent / "fixtures" / "arxiv" / "two_weeks.jsonl.gz"
SHARED_RAW = (Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv"
              / "daily-arxiv-ai-enhanced" / "raw")
INGEST_AT = dt.time(0, 30)      # the listing (out at 00:00 UTC) is read half an hour later

# target: (kind, time, zone, days, k, empty-day mode, topic)
TARGETS = {
    "slack:T1:CTOKYO": ("channel", dt.time(10, 0), "Asia/Tokyo", "daily", 3, None,
                        "reasoning in large language models"),
    "slack:T1:CLA": ("channel", dt.time(9, 0), "America/Los_Angeles", "daily", 3, None,
                     "image generation with diffusion models"),
    "slack:T1:CBERLIN": ("channel", dt.time(8, 0), "Europe/Berlin", "mon-fri", 2, "note",
                         "robot learning and manipulation"),
    "slack:T1:UANA": ("dm", dt.time(12, 0), "UTC", "mon-fri", 2, None, "speech and audio"),
}


def fixture_listings() -> dict[dt.date, list[dict]]:
    listings: dict[dt.date, list[dict]] = {}
    for line in gzip.open(FIXTURE, "rt"):
        row = json.loads(line)
        for day in row.pop("listings"):
            listings.setdefault(dt.date.fromisoformat(day), []).append(row)
    return dict(sorted(listings.items()))


def raw_listings(raw: Path, first: dt.date, last: dt.date, per_day: int) -> dict[dt.date, list[dict]]:
    """Each day's raw listing file, kept to the `per_day` new papers with the smallest
    sha1(id) (0: all) and their later repeats (as `fixtures/arxiv/make_two_weeks.py` does)."""
    kept: set[str] = set()
    seen: set[str] = set()
    listings = {}
    day = first
    while day <= last:
        rows = {r["id"]: r for r in map(json.loads, gzip.open(raw / f"{day}.jsonl.gz", "rt"))}
        new = sorted(set(rows) - seen, key=lambda i: hashlib.sha1(i.encode()).hexdigest())
        kept |= set(new[:per_day] if per_day else new)
        seen |= set(rows)
        listings[day] = [rows[i] for i in sorted(set(rows) & kept)]
        day += dt.timedelta(days=1)
    return listings


async def replay(rec, listings: dict[dt.date, list[dict]], tmp_path: Path):
    """Day by day, every 30 simulated minutes: at 00:30 UTC ingest that day's listing (a file,
    through the ingestion loop's code), and tick the scheduler."""
    days = list(listings)
    clock = SimClock(dt.datetime.combine(days[0], dt.time(0, 0), UTC))
    platform = FakePlatform(clock)
    store = ScheduleStore(rec.store.r, rec.store.prefix)
    for target, (kind, at, tz, on, k, empty, topic) in TARGETS.items():
        rec.subscribe(target, topic)
        store.set(target, kind, now=clock(), time=at, tz=tz, k=k, days=on, empty=empty)
    scheduler = Scheduler(rec, {"slack": FakePoster(platform)}, fast_settings(), clock, "replay")
    ingested: list[tuple[dt.datetime, dt.date]] = []
    end = dt.datetime.combine(days[-1], dt.time(23, 30), UTC)
    while clock() <= end:
        now = clock()
        if now.time() == INGEST_AT and now.date() in listings:
            path = tmp_path / f"{now.date()}.jsonl"
            path.write_text("".join(json.dumps(row) + "\n" for row in listings[now.date()]))
            results = await asyncio.to_thread(ingest_sources, rec, [str(path)], now.timestamp())
            assert "error" not in results[str(path)]
            ingested.append((now, now.date()))
        await scheduler.tick()
        clock.set(now + dt.timedelta(minutes=30))
    return platform, ingested


def check_replay(platform, ingested, listings, first_day, last_day) -> dict[str, list[dt.date]]:
    """The replay's promises, target by target; returns the local days each target posted."""
    first_listed: dict[str, dt.date] = {}
    for day, rows in listings.items():
        for row in rows:
            first_listed.setdefault(row["id"], day)
    new_on = {day: {r["id"] for r in rows if first_listed[r["id"]] == day}
              for day, rows in listings.items()}
    posted_days = {}
    for target, (kind, at, tz, on, k, empty, topic) in TARGETS.items():
        posts = platform.posts(target)
        messages = platform.of(target)
        seen: set[str] = set()
        previous = dt.datetime.min.replace(tzinfo=UTC)
        made = []
        day = first_day
        while day <= last_day:
            if day.weekday() in parse_days(on):
                due = due_at(day, at, tz)
                window = [d for t, d in ingested if previous < t <= due]
                candidates = set().union(*(new_on[d] for d in window)) if window else set()
                post = f"{target}/{day}"
                items = posts.get(post, [])
                if candidates:
                    assert len(items) == min(k, len(candidates)), (post, items, candidates)
                    assert set(items) <= candidates, f"{post} posted papers not new since the last post"
                    assert not seen & set(items), f"{post} repeats a paper"
                    seen |= set(items)
                    assert {m.at for m in messages if m.post_id == post} == {due}
                    made.append(day)
                elif empty == "note":
                    assert items == ["note"], post
                else:
                    assert not items, f"{post}: a post on a day without new papers"
                if on == "daily" and candidates:   # one listing a day: that day's
                    assert len(window) == 1 and set(items) <= {r["id"] for r in listings[window[0]]}
                previous = due
            day += dt.timedelta(days=1)
        assert set(posts) == {f"{target}/{d}" for d in made} | (
            {p for p, i in posts.items() if i == ["note"]} if empty == "note" else set())
        posted_days[target] = made
    return posted_days


async def test_two_weeks_of_daily_listings(rec, tmp_path):
    listings = fixture_listings()
    assert len(listings) == 15 and sum(map(len, listings.values())) == 15 * 12
    started = time.monotonic()
    platform, ingested = await replay(rec, listings, tmp_path)
    took = time.monotonic() - started
    days = check_replay(platform, ingested, listings, dt.date(2026, 6, 8), dt.date(2026, 6, 22))
    announced = [dt.date(2026, 6, d) for d in (8, 9, 10, 11, 12, 15, 16, 17, 18, 19)]
    for target in TARGETS:   # weekends and Monday 06-22 repeat Friday's listing: no post
        assert days[target] == announced, (target, days[target])
    berlin = platform.posts("slack:T1:CBERLIN")
    assert berlin["slack:T1:CBERLIN/2026-06-22"] == ["note"]   # the holiday-like Monday
    tokyo = platform.of("slack:T1:CTOKYO")
    assert {m.at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") for m in tokyo} == {"10:00"}
    la = platform.of("slack:T1:CLA")
    assert {m.at.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%H:%M") for m in la} == {"09:00"}
    print(f"replayed 15 days, 4 targets, {len(platform.messages)} messages in {took:.1f} s")


@pytest.mark.skipif(not SHARED_RAW.is_dir(), reason="../shared/data/arxiv is not present")
async def test_two_weeks_of_the_full_shared_listing_files(rec, tmp_path):
    per_day = int(os.environ.get("PAPERBOT_REPLAY_PER_DAY", "15"))
    first, last = dt.date(2026, 5, 4), dt.date(2026, 5, 17)
    listings = raw_listings(SHARED_RAW, first, last, per_day)
    started = time.monotonic()
    platform, ingested = await replay(rec, listings, tmp_path)
    days = check_replay(platform, ingested, listings, first, last)
    seen: set[str] = set()
    announced = []     # days whose listing file has papers no earlier file had
    for day, rows in listings.items():
        if {r["id"] for r in rows} - seen:
            announced.append(day)
        seen |= {r["id"] for r in rows}
    assert dt.date(2026, 5, 9) in announced and dt.date(2026, 5, 10) not in announced
    assert days["slack:T1:CLA"] == days["slack:T1:CTOKYO"] == announced
    assert days["slack:T1:CBERLIN"] == [d for d in announced if d.weekday() < 5]
    print(f"replayed the shared files ({sum(map(len, listings.values()))} listed papers, "
          f"{per_day or 'all'} new per day) in {time.monotonic() - started:.1f} s")
