"""5. Chat latency: Slack ack and Discord first response under 50 concurrent commands, while
an ingest and a daily post run.

`paperbot serve --slack-http --discord` runs as a subprocess against testkit's fake Slack and
fake Discord. In each round, 50 `/papers search …` Slack commands (signed HTTP requests, timed
to their HTTP answer: the ack) and 50 Discord `/papers search` interactions (gateway events,
timed to the interaction's first callback: the defer or the answer) are sent at once.

Loaded run: PAPERBOT_SOURCES is a file of papers not yet embedded (the ingest starts at once,
in serve's ingest thread), and 20 channels have a daily post due now (the scheduler chooses
their picks and posts them, 5 messages each). The burst starts once the first scheduled message
went out, and the run records that the ingest and the posts were still going on meanwhile.
Floor: the same rounds against the same serve setup without sources or schedules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import QUERIES, Row, log, summary
from .serve_harness import Serve

CHANNELS = 20


async def _round(fake_slack, fake_discord, url: str, tag: str, n: int) -> tuple[list, list, dict]:
    import httpx

    from testkit import fake_slack as fs

    async def slack_one(http, i: int) -> float:
        payload = fs.slash_command(f"search {QUERIES[i % len(QUERIES)]}",
                                   fake_slack.response_url(f"{tag}-{i}"), user=f"UB{i:04d}",
                                   channel="CBENCHASK", user_name=f"u{i}")
        body, ctype = fs.http_body(payload)
        headers = fs.signed_headers(body, fs.SIGNING_SECRET, content_type=ctype)
        started = time.monotonic()
        response = await http.post(url, content=body.encode(), headers=headers)
        took = time.monotonic() - started
        if response.status_code != 200:
            raise RuntimeError(f"Slack command answered {response.status_code}")
        return took

    async def discord_one(i: int) -> float:
        payload = fake_discord.slash("search", query=QUERIES[(i + 7) % len(QUERIES)],
                                     user_id=3000 + i)
        exchange = await fake_discord.interact(payload)
        await fake_discord.wait_for(lambda: exchange.callbacks or exchange.late, timeout=60)
        firsts = [r.at for r in fake_discord.requests
                  if r.path.endswith(f"/{exchange.token}/callback")]
        return min(firsts) - exchange.dispatched_at

    async with httpx.AsyncClient(timeout=60) as http:
        results = await asyncio.gather(*(slack_one(http, i) for i in range(n)),
                                       *(discord_one(i) for i in range(n)))
    late = sum(1 for e in fake_discord.exchanges.values() if e.late)
    return list(results[:n]), list(results[n:]), {"discord_late": late}


def _schedule_posts(client, prefix: str, channels: list[str], after_seq: float) -> None:
    from bot.scheduler import ScheduleStore
    from recommender.people import PeopleStore

    now = dt.datetime.now(dt.timezone.utc)
    store, people = ScheduleStore(client, prefix), PeopleStore(client, prefix)
    at = (now - dt.timedelta(minutes=1)).time().replace(second=0, microsecond=0)
    for n, channel in enumerate(channels):
        people.add_topic(channel, QUERIES[n % len(QUERIES)])
        store.set(channel, "channel", now=now - dt.timedelta(days=1), time=at, tz="UTC", k=5,
                  days="daily", after_seq=after_seq)


def _posts_so_far(fake_slack) -> int:
    return sum(1 for c in fake_slack.calls_to("chat.postMessage")
               if (c.body.get("metadata") or {}).get("event_type") or
               str(c.body.get("channel", "")).startswith("CDAILY"))


async def _run_serve(url: str, prefix: str, client, rounds: int, burst: int, loaded: bool,
                     ingest_file: Path | None, after_seq: float, workdir: Path) -> dict[str, Any]:
    from testkit import fake_discord as fd
    from testkit import fake_slack as fs

    fake_slack = fs.FakeSlack()
    fake_slack.start()
    fake_discord = await fd.FakeDiscord().start()
    team = fs.TEAM
    channels = [f"slack:{team}:CDAILY{n:03d}" for n in range(CHANNELS)]
    # the corpora's papers (synthetic, or the real one's) are dated long before today: posts of
    # any age, so that the day's candidates are the newest of them as a real day's would be
    extra: dict[str, str] = {"PAPERBOT_SCHEDULER_TICK": "0.5", "PAPERBOT_REFRESH_EVERY": "5s",
                             "PAPERBOT_NEWS_DAYS": "0"}
    if loaded:
        _schedule_posts(client, prefix, channels, after_seq)
        extra["PAPERBOT_SOURCES"] = str(ingest_file)
    serve = Serve(url, prefix, workdir / ("serve-loaded.log" if loaded else "serve-idle.log"),
                  fake_slack.api_url, discord=fake_discord, **extra)
    try:
        await asyncio.to_thread(serve.wait_ready, {"slack", "discord"})
        await fake_discord.wait_for(lambda: fake_discord.sessions, timeout=120)
        if loaded:   # start when the daily posts are going out
            deadline = time.monotonic() + 300
            while _posts_so_far(fake_slack) == 0:
                if time.monotonic() > deadline or serve.process.poll() is not None:
                    raise RuntimeError(f"no daily post started:\n{serve.log_tail()}")
                await asyncio.sleep(0.1)
        acks, firsts, notes = [], [], {"discord_late": 0}
        posts_before = _posts_so_far(fake_slack)
        papers_before = int(client.zcard(prefix + "papers"))
        health_before = await asyncio.to_thread(serve.health) or {}
        for r in range(rounds):
            a, f, extra_notes = await _round(fake_slack, fake_discord, serve.slack_url,
                                             f"{'L' if loaded else 'I'}{r}", burst)
            acks += a
            firsts += f
            notes["discord_late"] = extra_notes["discord_late"]
            await asyncio.sleep(0.5)
        health_after = await asyncio.to_thread(serve.health) or {}
        notes.update(daily_messages_during=_posts_so_far(fake_slack) - posts_before,
                     ingest_done_before=bool((health_before.get("ingest") or {}).get("last_ingest")),
                     ingest_done_after=bool((health_after.get("ingest") or {}).get("last_ingest")),
                     papers_before=papers_before, papers_after=int(client.zcard(prefix + "papers")))
        notes["vm_hwm_mb"] = serve.peak_rss_mb()
        notes["serve_papers"] = papers_before
        return {"acks": acks, "firsts": firsts, **notes}
    finally:
        code = await asyncio.to_thread(serve.stop)
        if code not in (0, -15):
            log(f"serve exited {code}: {serve.log_tail(1500)}")
        fake_slack.stop()
        await fake_discord.close()
        _last_rusage[loaded] = serve.rusage


_last_rusage: dict[bool, Any] = {}


def run(url: str, prefix: str, client, quick: bool, ingest_papers: list[dict[str, Any]],
        what: str) -> tuple[list[Row], dict[str, Any]]:
    from recommender.store import PaperStore

    rounds = 1 if quick else 3
    burst = 50
    seq = PaperStore(client, prefix).last_seq()
    after_seq = max(0.0, seq - (300 if quick else 2000))   # the day's candidates: the newest
    with tempfile.TemporaryDirectory(prefix="paperbot-bench-chat-") as tmp:
        workdir = Path(tmp)
        ingest_file = workdir / "new-papers.jsonl"
        ingest_file.write_text("".join(json.dumps(p) + "\n" for p in ingest_papers))
        log(f"chat latency: idle serve, {rounds} round(s) of {burst} Slack + {burst} Discord commands")
        idle = asyncio.run(_run_serve(url, prefix, client, rounds, burst, False, None, after_seq, workdir))
        log(f"chat latency: serve ingesting {len(ingest_papers)} papers and posting to "
            f"{CHANNELS} channels, same rounds")
        loaded = asyncio.run(_run_serve(url, prefix, client, rounds, burst, True, ingest_file,
                                        after_seq, workdir))
    ia, ld = summary(idle["acks"]), summary(loaded["acks"])
    idf, ldf = summary(idle["firsts"]), summary(loaded["firsts"])
    during = (f"during the burst: {loaded['daily_messages_during']} daily-post messages sent, "
              f"ingest {'finished' if loaded['ingest_done_after'] else 'still running'} at the end "
              f"({loaded['papers_after'] - loaded['papers_before']} papers stored meanwhile)")
    rows = [Row(f"Slack ack p99, {burst} concurrent (x{rounds})", ld["p99_ms"], "ms", ia["p99_ms"],
                "same burst, serve idle", note=f"{what}; median {ld['median_ms']:.0f} ms; {during}"),
            Row(f"Discord first response p99, {burst} concurrent (x{rounds})", ldf["p99_ms"], "ms",
                idf["p99_ms"], "same burst, serve idle",
                note=f"median {ldf['median_ms']:.0f} ms; answered after Discord's 3 s: "
                     f"{loaded['discord_late']}")]
    usage = _last_rusage.get(False)
    memory = {"vm_hwm_mb": idle.get("vm_hwm_mb"), "papers": idle.get("serve_papers"),
              "ru_maxrss_mb": usage.ru_maxrss / 1024 if usage is not None else None,
              "searches": 2 * burst * rounds}
    return rows, {"ack_p99_ms": ld["p99_ms"], "ack_median_ms": ld["median_ms"],
                  "ack_floor_p99_ms": ia["p99_ms"], "ack_ratio": round(ld["p99_ms"] / ia["p99_ms"], 3),
                  "discord_first_p99_ms": ldf["p99_ms"], "discord_first_median_ms": ldf["median_ms"],
                  "discord_first_floor_p99_ms": idf["p99_ms"],
                  "discord_first_ratio": round(ldf["p99_ms"] / idf["p99_ms"], 3),
                  "discord_late": loaded["discord_late"],
                  "chat_load": {k: loaded[k] for k in ("daily_messages_during", "ingest_done_before",
                                                       "ingest_done_after", "papers_before",
                                                       "papers_after")},
                  "_serve_memory": memory}
