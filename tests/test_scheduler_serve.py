"""`paperbot serve` from outside: replicas as subprocesses against one Redis and one fake Slack.

1. Two replicas; a channel due at 09:00 (their test clock, PAPERBOT_FAKE_NOW, reads just past
   it): exactly one post, three messages.
2. The replica making the post is SIGKILLed while Slack holds its second message but has not
   answered (a slow chat.postMessage): the other replica takes the post over when the lease
   expires, finds that message through its metadata, and sends only the third.
3. The killed replica restarts: it posts nothing again. A replica started on the next day, an
   hour and a half after 09:00, catches that day's post up, with the papers new that day.
4. Health endpoint; SIGTERM ends every replica cleanly.
"""

from __future__ import annotations

import datetime as dt
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.scheduler import ScheduleStore
from bot.scheduler.ledger import PostLedger
from testkit.fake_slack import BOT_TOKEN, SIGNING_SECRET, TEAM
from testkit.fake_slack_history import HistoryFakeSlack

LAB = f"slack:{TEAM}:CLAB"
DAY1, DAY2 = dt.date(2026, 6, 9), dt.date(2026, 6, 10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Replica:
    def __init__(self, env: dict[str, str], log: Path, fake_now: str, anchor: float):
        self.health_port = _free_port()
        self.log = log
        env = {**env, "PAPERBOT_HEALTH_PORT": str(self.health_port), "PAPERBOT_FAKE_NOW": fake_now,
               "PAPERBOT_FAKE_NOW_AT": str(anchor)}
        self._log_file = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "-v", "serve", "--slack-http", "--host", "127.0.0.1",
             "--port", str(_free_port())], env=env, stdout=subprocess.DEVNULL, stderr=self._log_file)

    @property
    def pid(self) -> int:
        return self.process.pid

    def health(self) -> tuple[int, dict]:
        response = httpx.get(f"http://127.0.0.1:{self.health_port}/health", timeout=5)
        return response.status_code, response.json()

    def wait_ready(self, timeout: float = 180) -> dict:
        """Up, with the Slack poster registered (the scheduler can post through it)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                status, body = self.health()
                if status == 200 and "slack" in body["scheduler"]["posting_to"]:
                    return body
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "replica did not come up:\n" + self.log.read_text()
            time.sleep(0.2)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        finally:
            self._log_file.close()
        text = self.log.read_text()
        assert self.process.returncode == 0, text
        assert "Traceback" not in text and BOT_TOKEN not in text and SIGNING_SECRET not in text
        return text


def wait_until(check, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.1)
    return result


def lab_posts(fake: HistoryFakeSlack) -> list[dict]:
    return [c.body for c in fake.calls_to("chat.postMessage") if c.body.get("channel") == "CLAB"]


def items(posts: list[dict], day: dt.date) -> list[str]:
    return [p["metadata"]["event_payload"]["item"] for p in posts
            if p["metadata"]["event_payload"]["post_id"] == f"{LAB}/{day}"]


def test_replicas_post_once_and_a_sigkill_mid_post_neither_duplicates_nor_misses_a_day(
        cli_env, rec, demo, tmp_path):
    fake = HistoryFakeSlack()
    fake.start()
    fake.post_delay = 1.5          # Slack keeps each message, then answers 1.5 s later
    env = {**cli_env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": fake.api_url, "PAPERBOT_SCHEDULER_TICK": "0.2",
           "PAPERBOT_POST_LEASE_SECONDS": "7.5", "PAPERBOT_CHANNEL_INTERVAL": "0",
           "PAPERBOT_REFRESH_EVERY": "1s"}
    anchor = time.time()
    day1 = "2026-06-09T09:00:00+00:00"          # both replicas' clock: 09:00 at `anchor`
    replicas: list[Replica] = []
    started = time.monotonic()
    try:
        a = Replica(env, tmp_path / "a.log", day1, anchor)
        b = Replica(env, tmp_path / "b.log", day1, anchor)
        replicas += [a, b]
        a.wait_ready()
        b.wait_ready()
        print(f"two replicas up in {time.monotonic() - started:.0f} s")

        # 1. the channel is due at 09:00: both replicas see it at their next tick
        rec.subscribe(LAB, "graph neural networks")
        ScheduleStore(rec.store.r, rec.store.prefix).set(
            LAB, "channel", now=dt.datetime(2026, 6, 9, tzinfo=dt.timezone.utc),
            time=dt.time(9, 0), tz="UTC", k=3, days="daily")
        ledger = PostLedger(rec.store.r, rec.store.prefix)
        fake.wait_for("chat.postMessage", 2, timeout=60, where=lambda c: c.body.get("channel") == "CLAB")
        # 2. kill the sender while Slack holds its 2nd message and has not answered yet
        token = wait_until(lambda: rec.store.r.get(ledger.lease_key(LAB, DAY1)), what="a lease")
        sender = next(r for r in replicas if f":{r.pid}:" in token.decode())
        sender.process.send_signal(signal.SIGKILL)
        sender.process.wait(10)
        killed_at = time.monotonic()
        entry = ledger.read(LAB, DAY1)
        assert len(entry.sent) == 1 and len(lab_posts(fake)) == 2

        wait_until(lambda: (ledger.read(LAB, DAY1).state == "done"), 60, "the takeover")
        print(f"taken over and finished {time.monotonic() - killed_at:.1f} s after the SIGKILL")
        posts = lab_posts(fake)
        assert len(posts) == 3 and len(set(items(posts, DAY1))) == 3      # no duplicate
        assert items(posts, DAY1) == [i["id"] for i in entry.items]       # the frozen picks
        done = ledger.read(LAB, DAY1)
        assert fake.calls_to("conversations.history")       # the message in doubt was looked up
        assert all(m["id"] and rec.paper_of_post(LAB, m["id"]) == item   # and found: its ts
                   for item, m in done.sent.items())
        assert rec.people.shown(LAB) == set(items(posts, DAY1))
        survivor = next(r for r in replicas if r is not sender)

        # 3. the killed replica comes back on day 1 (nothing to do), and one starts on day 2
        #    at 10:30, after the 09:00 post time passed with no replica on that day
        rec.add_papers([{"id": f"day2-{n}", "title": f"Graph neural networks for {what}",
                         "abstract": f"We apply message passing neural networks to {what}."}
                        for n, what in enumerate(("traffic forecasting", "protein docking"))])
        restarted = Replica(env, tmp_path / "a2.log", day1, anchor)
        next_day = Replica(env, tmp_path / "c.log", "2026-06-10T10:30:00+00:00", time.time())
        replicas += [restarted, next_day]
        restarted.wait_ready()
        next_day.wait_ready()
        wait_until(lambda: ledger.read(LAB, DAY2) and ledger.read(LAB, DAY2).state == "done", 60,
                   "the day-2 catch-up")
        time.sleep(1.0)   # a few more ticks of every replica
        posts = lab_posts(fake)
        assert items(posts, DAY1) == [i["id"] for i in entry.items]       # still once
        assert sorted(items(posts, DAY2)) == ["day2-0", "day2-1"]         # the day's new papers
        assert len(posts) == 5

        # 4. health, then a clean SIGTERM everywhere
        status, body = survivor.health()
        assert status == 200 and body["redis"] == "ok" and body["adapters"] == {"slack": "running"}
        assert body["papers"] == 98 and body["scheduler"]["posts"].get("done") == 1
        assert body["ingest"]["last_ingest"] is None    # PAPERBOT_SOURCES is not set here
        for replica in (survivor, restarted, next_day):
            log = replica.stop()
            assert "scheduler: stopped" in log
        print(f"whole scenario in {time.monotonic() - started:.0f} s")
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.kill()
        fake.stop()
