"""Hardening: source outages and malformed feeds.

Through the real ingestion loop (`IngestLoop`: its lock, its rounds, `read_source`, the real
`HttpClient`), a real Redis or Valkey, the real embedding model and the local replay server of
`fake_sources` on 127.0.0.1; the daily post through the real `Scheduler`. A source that is down
(503, timeouts) or sends a broken feed (truncated XML or JSON, an item without a title, a gzip
file cut off) costs one log line per round; the other sources, and everything stored before, are
kept; the next round picks the source up again; and the daily post after a round in which every
source failed repeats nothing and claims no new papers.

The loop makes its own `HttpClient` per source; the tests give it the real class with test
timings (short timeouts, two attempts, no polite interval), as `tests/test_sources.py` does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import gzip
import json
import logging
import re
import time
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

import recommender.sources
from bot.ingest_loop import IngestLoop, IngestSettings, seq_reached_by
from bot.scheduler import Scheduler, ScheduleStore
from bot.scheduler.scheduler import NO_NEW_PAPERS
from recommender.config import Settings
from recommender.paper import clean_text
from recommender.sources import HttpClient
from testkit.fake_sources import FakeSourceServer, Reply
from testkit.scheduler_fakes import FakePlatform, FakePoster, SimClock, at, fast_settings

TWO_WEEKS = Path(__file__).parent / "fixtures" / "arxiv" / "two_weeks.jsonl.gz"
ROWS = [json.loads(line) for line in gzip.open(TWO_WEEKS, "rt")]   # 120 real arXiv papers

RSS_PATH, API_PATH, HF_PATH = "/rss/cs.LG", "/api/query", "/api/daily_papers"
ARXIV, ARXIV_API, HF_DAILY = "arxiv:cs.LG", "arxiv-api:cs.LG", "hf-daily"
JSON = "application/json; charset=utf-8"
BUSY = Reply(503, "Service Unavailable", content_type="text/plain")
TRACEBACK = re.compile(r"Traceback|File \".*\", line \d+")


@pytest.fixture
def server(rec, monkeypatch):
    with FakeSourceServer() as fake:
        # the sources' endpoints as `ARXIV_RSS_URL` … in the environment would set them
        monkeypatch.setattr(rec, "settings", Settings.from_env({
            "ARXIV_RSS_URL": fake.url("/rss"), "ARXIV_API_URL": fake.url(API_PATH),
            "HF_API_URL": fake.url(HF_PATH)}))
        monkeypatch.setattr(recommender.sources, "HttpClient", functools.partial(
            HttpClient, timeout=1.0, connect_timeout=1.0, max_attempts=2, backoff_base=0.01,
            max_wait=5, min_interval=0))
        yield fake


# -- feeds in the recorded shapes of tests/fixtures/sources, from real papers ------------------
def rss_item(row: dict, *, title: str | None = None, link: str | None = None) -> str:
    paper_id = row["id"]
    categories = "".join(f"<category>{c}</category>" for c in row["categories"])
    return f"""
    <item>
      <title>{escape(row["title"] if title is None else title)}</title>
      <link>{link if link is not None else f"https://arxiv.org/abs/{paper_id}"}</link>
      <description>arXiv:{paper_id}v1 Announce Type: new \nAbstract: {escape(row["abstract"])}</description>
      <guid isPermaLink="false">{"" if link is not None else f"oai:arXiv.org:{paper_id}v1"}</guid>
      {categories}
      <pubDate>Mon, 08 Jun 2026 00:00:00 -0400</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>
      <dc:creator>{escape(", ".join(row["authors"]))}</dc:creator>
    </item>"""


def rss(rows: list[dict] = (), items: str = "") -> str:
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
  <channel>
    <title>cs.LG updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.LG</link>
    <pubDate>Mon, 08 Jun 2026 00:00:00 -0400</pubDate>{"".join(rss_item(r) for r in rows)}{items}
  </channel>
</rss>
"""


def atom(rows: list[dict]) -> str:
    entries = "".join(f"""
  <entry>
    <id>http://arxiv.org/abs/{r["id"]}v1</id>
    <published>{r["published"]}T17:59:59Z</published>
    <title>{escape(r["title"])}</title>
    <summary>  {escape(r["abstract"])}\n</summary>
    {"".join(f"<author><name>{escape(a)}</name></author>" for a in r["authors"])}
    <arxiv:primary_category term="{r["categories"][0]}" scheme="http://arxiv.org/schemas/atom"/>
    {"".join(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in r["categories"])}
  </entry>""" for r in rows)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query: search_query=cat:cs.LG</title>
  <id>http://arxiv.org/api/5RQCDQIJ4jVI3cVbHVrFcLmmKvA</id>{entries}
</feed>
"""


def hf(rows: list[dict]) -> Reply:
    return Reply(body=json.dumps([{
        "paper": {"id": r["id"], "title": r["title"], "summary": r["abstract"],
                  "authors": [{"name": a, "hidden": False} for a in r["authors"]],
                  "publishedAt": f"{r['published']}T18:00:00.000Z", "upvotes": 7},
        "publishedAt": f"{r['published']}T22:00:00.000Z", "numComments": 1} for r in rows]),
        content_type=JSON)


def cut(text: str) -> str:
    """The first half of a feed: a response that breaks off mid-way."""
    return text[: len(text) // 2]


def ids(rows: list[dict]) -> set[str]:
    return {r["id"] for r in rows}


def stored(rec) -> dict[str, dict]:
    everything = [pid for pid, _ in rec.store.paper_ids()]
    return {p.id: p.to_dict() for p in rec.store.get_papers(everything) if p is not None}


def assert_clean(rec, expected_rows: list[dict]) -> None:
    """Exactly these papers are stored, none empty or cut short, each searchable."""
    papers = stored(rec)
    assert set(papers) == ids(expected_rows)
    for row in expected_rows:
        paper = papers[row["id"]]
        assert paper["title"] == clean_text(row["title"]) != ""
        assert paper["abstract"] == clean_text(row["abstract"]) != ""
    assert len(rec) == len(expected_rows)            # every one is in the index, none half-added


def warning_lines(caplog, logger: str | None = None) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
            and (logger is None or r.name == logger)]


def assert_no_traceback(caplog) -> None:
    for record in caplog.records:
        assert record.exc_info is None and record.levelno < logging.ERROR, record.getMessage()
        assert "\n" not in record.getMessage() and not TRACEBACK.search(record.getMessage())
    assert not TRACEBACK.search(caplog.text)


# -- 1. one source down or broken, the other fine; the loop goes on -----------------------------
async def test_a_failing_source_costs_one_line_per_round_and_is_picked_up_again(rec, server, caplog):
    arxiv_day1, arxiv_day5 = ROWS[0:3], ROWS[3:6]
    hf_day1, hf_day2, hf_day3 = ROWS[10:12], ROWS[12:13], ROWS[13:14]
    slow = Reply(delay=3.0, body=rss(arxiv_day5))          # answered after the client gave up
    server.route(RSS_PATH,
                 Reply(body=rss(arxiv_day1)),               # round 1
                 BUSY, BUSY,                                # round 2: 503, both attempts
                 slow, slow,                                # round 3: timeouts, both attempts
                 Reply(body=cut(rss(arxiv_day5))),          # round 4: truncated XML
                 Reply(body=rss(arxiv_day5)))               # round 5 on: back
    server.route(HF_PATH, hf(hf_day1), hf(hf_day2), hf(hf_day3),
                 Reply(body=cut(hf(hf_day3).body), content_type=JSON),   # round 4: broken JSON
                 hf(hf_day3))                               # round 5 on: the same list again
    caplog.set_level(logging.WARNING)
    loop = IngestLoop(rec, IngestSettings(sources=(ARXIV, HF_DAILY), every=1.0, refresh_every=60),
                      "replica-a")
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    rounds, first_round_papers = [], None
    deadline = time.monotonic() + 45
    while len(rounds) < 5:
        assert not task.done(), "the ingestion loop stopped"
        assert time.monotonic() < deadline, f"only {len(rounds)} rounds: {rounds}"
        if loop.last_local is not None and (not rounds or loop.last_local["at"] != rounds[-1]["at"]):
            rounds.append(loop.last_local)
            if len(rounds) == 1:   # later rounds cannot touch these: no later reply holds them
                first_round_papers = {pid: p for pid, p in stored(rec).items()
                                      if pid in ids(arxiv_day1)}
        await asyncio.sleep(0.02)
    assert not task.done()                                   # still running after four bad rounds
    stop.set()
    await asyncio.wait_for(task, 10)

    results = [r["results"] for r in rounds]
    assert results[0] == {ARXIV: {"read": 3, "new": 3, "embedded": 3},
                          HF_DAILY: {"read": 2, "new": 2, "embedded": 2}}
    assert results[1] == {ARXIV: {"error": "arXiv listing for cs.LG unavailable: HTTP 503 after 2 attempts"},
                          HF_DAILY: {"read": 1, "new": 1, "embedded": 1}}
    assert results[2] == {ARXIV: {"error": "arXiv listing for cs.LG unavailable: timed out after 2 attempts"},
                          HF_DAILY: {"read": 1, "new": 1, "embedded": 1}}
    assert results[3][ARXIV]["error"].startswith("arXiv listing for cs.LG returned malformed XML (")
    assert results[3][HF_DAILY]["error"].startswith(
        "Hugging Face daily papers for the latest day returned malformed JSON (")
    assert results[4] == {ARXIV: {"read": 3, "new": 3, "embedded": 3},
                          HF_DAILY: {"read": 1, "new": 0, "embedded": 0}}
    # How many papers the store held after each round, as the loop recorded it: a failed round
    # loses nothing and adds nothing.
    assert [seq_reached_by(rec.store.r, rec.store.prefix, r["at"]) for r in rounds] == [5, 6, 7, 7, 10]
    assert len(server.requests_to(RSS_PATH)) >= 7 and len(server.requests_to(HF_PATH)) >= 5

    # The first round's papers are intact, word for word, and still found by a search.
    assert first_round_papers is not None and len(first_round_papers) == 3
    assert {pid: p for pid, p in stored(rec).items() if pid in ids(arxiv_day1)} == first_round_papers
    assert_clean(rec, arxiv_day1 + hf_day1 + hf_day2 + hf_day3 + arxiv_day5)
    assert rec.search(arxiv_day1[0]["title"], k=1)[0].paper.id == arxiv_day1[0]["id"]

    # One line per failing source per round, naming the source and the reason; no traceback.
    assert warning_lines(caplog, "bot.ingest_loop") == [
        f"ingest {ARXIV}: {results[1][ARXIV]['error']}",
        f"ingest {ARXIV}: {results[2][ARXIV]['error']}",
        f"ingest {ARXIV}: {results[3][ARXIV]['error']}",
        f"ingest {HF_DAILY}: {results[3][HF_DAILY]['error']}",
    ]
    # The HTTP client says when it retries (once per retried attempt), and nothing else warns.
    others = [m for m in warning_lines(caplog) if not m.startswith("ingest ")]
    assert len(others) == 2 and all(
        m.startswith(f"GET {server.url(RSS_PATH)} failed (") and "retrying in" in m for m in others)
    assert "(HTTP 503)" in others[0] and "(timed out)" in others[1]
    assert_no_traceback(caplog)


# -- 2. feeds that break mid-way -------------------------------------------------------------
async def test_a_feed_that_breaks_mid_way_keeps_what_was_fetched_and_stores_nothing_corrupt(
        rec, server, tmp_path, caplog):
    listing, api_page1, api_page2, file_rows = ROWS[20:23], ROWS[30:33], ROWS[33:36], ROWS[40:52]
    # The daily listing: an item whose title is empty and one without an arXiv id, among good ones.
    broken_items = (rss_item(ROWS[60], title="   ")
                    + rss_item(ROWS[61], link="https://arxiv.org/list/cs.LG/new"))
    server.route(RSS_PATH, Reply(body=rss(listing[:2], items=broken_items + rss_item(listing[2]))))
    # The API: a good answer, then one that breaks off in the middle of an entry.
    server.route(API_PATH, Reply(body=atom(api_page1)), Reply(body=cut(atom(api_page2 + api_page1))))
    # A jsonl.gz file cut off mid-way, as an interrupted download leaves it.
    whole = gzip.compress("".join(json.dumps(r) + "\n" for r in file_rows).encode(), mtime=0)
    broken_file = tmp_path / "listing.jsonl.gz"
    broken_file.write_bytes(whole[: len(whole) // 2])
    readable = zlib.decompressobj(31).decompress(whole[: len(whole) // 2]).count(b"\n")
    assert 2 <= readable < len(file_rows)
    file_kept = file_rows[:readable]

    caplog.set_level(logging.WARNING)
    loop = IngestLoop(rec, IngestSettings(sources=(ARXIV, ARXIV_API, str(broken_file)), every=0.01),
                      "replica-a")
    assert await loop.ingest_if_due() is True
    first = loop.status()["last_ingest"]["results"]
    assert first[ARXIV] == {"read": 3, "new": 3, "embedded": 3}        # the good items, not none
    assert first[ARXIV_API] == {"read": 3, "new": 3, "embedded": 3}
    assert first[str(broken_file)]["error"].startswith(f"cannot read {broken_file}: ")
    # What the file held before the break is stored; the line cut in two is not.
    assert_clean(rec, listing + api_page1 + file_kept)
    page1 = {pid: p for pid, p in stored(rec).items() if pid in ids(api_page1)}

    await asyncio.sleep(0.02)
    assert await loop.ingest_if_due() is True                            # the API breaks now
    second = loop.status()["last_ingest"]["results"]
    assert second[ARXIV_API]["error"].startswith("arXiv API search for cs.LG returned malformed XML (")
    assert second[ARXIV] == {"read": 3, "new": 0, "embedded": 0}
    # Nothing of the broken answer is stored (not even its whole entries: the document is not
    # trusted); the first page is intact.
    assert_clean(rec, listing + api_page1 + file_kept)
    assert {pid: p for pid, p in stored(rec).items() if pid in ids(api_page1)} == page1

    lines = warning_lines(caplog)
    skipped = [m for m in lines if ROWS[60]["id"] in m]
    assert len(skipped) == 2                                             # once per round
    assert "arXiv listing for cs.LG" in skipped[0] and "title" in skipped[0]
    assert warning_lines(caplog, "bot.ingest_loop") == [
        f"ingest {broken_file}: {first[str(broken_file)]['error']}",
        f"ingest {ARXIV_API}: {second[ARXIV_API]['error']}",
        f"ingest {broken_file}: {second[str(broken_file)]['error']}",
    ]
    assert len(lines) == 5
    assert_no_traceback(caplog)


# -- 3. the daily post after a round in which every source failed ----------------------------
LAB, OTHER = "slack:T1:CLAB", "slack:T1:COTHER"


async def test_the_post_after_a_failed_round_repeats_nothing_and_claims_no_new_papers(
        rec, server, caplog):
    arxiv_day1, hf_day1, arxiv_day3 = ROWS[70:73], ROWS[80:82], ROWS[90:94]
    server.route(RSS_PATH, Reply(body=rss(arxiv_day1)),     # Monday
                 BUSY, BUSY,                                 # Tuesday: arXiv answers 503
                 Reply(body=rss(arxiv_day3)))                # Wednesday: back
    server.route(HF_PATH, hf(hf_day1),
                 Reply(body="<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
                 hf(hf_day1))                                # Wednesday: Monday's list again
    clock = SimClock(at("2026-06-08T08:00Z"))                 # Monday
    platform = FakePlatform(clock)
    schedules = ScheduleStore(rec.store.r, rec.store.prefix)
    for target, empty in ((LAB, "skip"), (OTHER, "note")):
        rec.subscribe(target, "language models")
        schedules.set(target, "channel", now=clock(), time=dt.time(9, 0), tz="UTC", k=3,
                      days="daily", empty=empty)
    scheduler = Scheduler(rec, {"slack": FakePoster(platform)}, fast_settings(), clock, "replica-a")
    loop = IngestLoop(rec, IngestSettings(sources=(ARXIV, HF_DAILY), every=0.01), "replica-a")

    async def day(when: str) -> list:
        await asyncio.sleep(0.02)
        assert await loop.ingest_if_due() is True
        clock.set(at(when))
        return sorted(await scheduler.tick())

    monday = dt.date(2026, 6, 8)
    assert await day("2026-06-08T09:00Z") == [(LAB, monday, "done"), (OTHER, monday, "done")]
    posted_monday = {m.item for m in platform.messages}
    assert len(platform.of(LAB)) == len(platform.of(OTHER)) == 3
    assert posted_monday <= ids(arxiv_day1 + hf_day1)
    assert platform.of(LAB)[0].header.endswith(": 3 new papers")

    caplog.set_level(logging.WARNING)
    tuesday = dt.date(2026, 6, 9)
    assert await day("2026-06-09T09:00Z") == [(LAB, tuesday, "skipped"), (OTHER, tuesday, "done")]
    results = loop.status()["last_ingest"]["results"]
    assert set(results) == {ARXIV, HF_DAILY} and all("error" in r for r in results.values())
    assert len(warning_lines(caplog, "bot.ingest_loop")) == 2
    assert_no_traceback(caplog)
    assert len(platform.of(LAB)) == 3                                    # skipped: nothing at all
    [note] = platform.of(OTHER)[3:]                                      # the configured note
    assert note.item == "note" and not note.header
    # not "arXiv announces none on weekends": it says which sources could not be read
    assert note.text != NO_NEW_PAPERS and "weekend" not in note.text
    assert note.text.startswith("No new papers today:") and ARXIV in note.text and HF_DAILY in note.text
    assert not re.search(r"\d+ new paper", note.text)
    assert scheduler.ledger.read(LAB, tuesday).state == "skipped"

    wednesday = dt.date(2026, 6, 10)
    assert await day("2026-06-10T09:00Z") == [(LAB, wednesday, "done"), (OTHER, wednesday, "done")]
    for target in (LAB, OTHER):
        post = platform.posts(target)[f"{target}/2026-06-10"]
        messages = [m for m in platform.of(target) if m.post_id == f"{target}/2026-06-10"]
        # Only what arrived since Tuesday (arXiv's new listing, not HF's stale list), no repeat,
        # and the header's count is the number of papers that follow.
        assert set(post) <= ids(arxiv_day3) and len(set(post)) == len(post) == 3
        assert messages[0].header.endswith(f": {len(post)} new papers")
        assert not set(post) & posted_monday
    assert await scheduler.tick() == []                                  # once a day
