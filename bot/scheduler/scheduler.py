"""The scheduler: every tick, find the daily posts that are due and make each exactly once.

Platform-free: it reads schedules and the ledger from Redis, picks papers through the
Recommender, and hands messages to the posters the running adapters registered (a dict
platform → poster). The clock is injected, so tests replay weeks in milliseconds.

A post, once due (`due.latest_due`), goes through the ledger (`ledger.py`):

1. claim the (target, day) lease; whoever does not get it leaves the post alone;
2. if the day has no entry: past the catch-up window → record it as missed (and say so in
   the log); otherwise choose the picks from the papers ingested since the target's last post
   (`candidates`, so only the day's new listing), and freeze them in the entry;
3. send item by item: pace, renew the lease and write `sending` (one step), send (with a
   timeout well inside the lease), write `sent`; an item found `sending` without `sent` is
   looked up first, once its sender's deadline has passed (`_settle_doubt`);
4. mark the papers shown, move the target's watermark past the day's papers, mark it done.

A refused send is retried with back-off, then the post is retried on a later tick; a permanent
refusal (no such channel) fails the day. On stop, no new post starts, a post under way hands
back between two messages (its lease released), and one stuck in a send is left to its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from recommender import Recommender, Result

from .. import ingest_loop   # a module, not a name: ingest_loop imports bot.scheduler too

from .delivery import Delivery, Item, LookupUnavailable, NotDelivered, Poster, Sent
from .due import latest_due
from .ledger import FINAL_STATES, Entry, PostLedger
from .pacing import Pacer
from .schedules import Schedule, ScheduleStore
from .settings import Clock, SchedulerSettings, system_clock
from . import weekly

log = logging.getLogger(__name__)
T = TypeVar("T")

NO_NEW_PAPERS = ("No new papers today (arXiv announces none on weekends and holidays). "
                 "The picks come back with the next listing.")


@dataclasses.dataclass(frozen=True)
class DuePost:
    schedule: Schedule
    day: dt.date
    due: dt.datetime


@dataclasses.dataclass(frozen=True)
class Chosen:
    """A post's picks chosen with the others due at the same tick (`_choose_together`)."""

    picks: list[Result]
    upto: float
    new_papers: int


def header_for(schedule: Schedule, day: dt.date, count: int) -> str:
    whose = "this channel" if schedule.kind == "channel" else "you"
    if schedule.cadence == "weekly":
        return weekly.header(whose, day, count)
    papers = "paper" if count == 1 else "papers"
    return f"📰 Today's picks for {whose}, {day:%a} {day.day} {day:%b}: {count} new {papers}"


def note_for(schedule: Schedule, new_papers: int, topics: list[str],
             unreachable: list[str] = ()) -> str:
    if new_papers == 0 and unreachable:
        return (f"No new papers today: {', '.join(unreachable)} could not be read at the last "
                "try. paperbot tries again on its next round; the picks come with the next post.")
    if new_papers == 0:
        return NO_NEW_PAPERS
    if not topics:
        if schedule.kind == "channel":
            return ("No picks today: this channel follows no topics yet. "
                    "Add one with `channel subscribe <topic>`.")
        return "No picks today: you follow no topics yet. Add one with `subscribe <topic>`."
    return f"No picks today: none of the {new_papers} new papers was new to " + (
        "this channel." if schedule.kind == "channel" else "you.")


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Scheduler:
    def __init__(self, rec: Recommender, posters: Mapping[str, Poster],
                 settings: SchedulerSettings | None = None, now: Clock = system_clock,
                 replica: str | None = None):
        self.rec = rec
        self.posters = posters          # live: adapters add theirs once connected
        self.settings = settings or SchedulerSettings()
        self.now = now
        self.replica = replica or replica_name()
        self.schedules = ScheduleStore(rec.store.r, rec.store.prefix)
        self.ledger = PostLedger(rec.store.r, rec.store.prefix, self.settings.lease_seconds,
                                 self.settings.redis_replicas, self.settings.redis_wait_ms)
        self._pacer: Pacer | None = None
        self._active: set[tuple[str, dt.date]] = set()
        self._chosen: dict[tuple[str, dt.date], Chosen] = {}
        self._stopping = False
        self.counts: dict[str, int] = {}
        self.last_tick: dt.datetime | None = None
        self.last_error: str | None = None

    # -- the loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `settings.tick` seconds until `stop`; then let posts under way hand back."""
        log.info("scheduler: ticking every %.0fs as %s", self.settings.tick, self.replica)
        while not stop.is_set():
            tick = asyncio.create_task(self.tick(), name="scheduler-tick")
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({tick, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not tick.done():
                await self._drain(tick)
                break
            if tick.exception() is not None:
                self.last_error = f"{type(tick.exception()).__name__}: {tick.exception()}"
                log.error("scheduler tick failed: %s", self.last_error)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.tick)
        log.info("scheduler: stopped")

    async def _drain(self, tick: asyncio.Task) -> None:
        self._stopping = True
        log.info("scheduler: stopping; posts under way hand back after their current message")
        done, _ = await asyncio.wait({tick}, timeout=self.settings.drain_seconds)
        if not done:
            log.warning("scheduler: a send is still under way; its lease expires and another "
                        "replica takes the post over, checking what was sent")
            tick.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await tick

    async def tick(self) -> list[tuple[str, dt.date, str]]:
        """Make every post that is due now; returns (target, day, outcome) per post tried."""
        self.last_tick = self.now()
        if self._pacer is None:
            self._pacer = Pacer(self.settings.channel_interval, self.settings.post_rate)
        due = [d for d in await asyncio.to_thread(self._find_due)
               if (d.schedule.target, d.day) not in self._active]
        if len(due) > 1:
            try:
                self._chosen = await asyncio.to_thread(self._choose_together, due)
            except Exception:   # each post then chooses its own, and reports its own errors
                log.exception("choosing the picks of %d due posts together failed", len(due))
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(post: DuePost) -> tuple[str, dt.date, str]:
            async with gate:
                return post.schedule.target, post.day, await self._post(post)

        try:
            return list(await asyncio.gather(*(one(d) for d in due)))
        finally:
            self._chosen = {}

    def _choose_together(self, due: list[DuePost]) -> dict[tuple[str, dt.date], Chosen]:
        """The picks of every post due now, in one batch (`Recommender.picks_for_many`: the
        same picks as one by one, a few matrix products instead of a loop when many channels
        and people share a posting time). Each post still claims its lease and freezes on its
        own; `_freeze` uses these picks if nothing in them was shown or reacted to meanwhile."""
        self.rec.refresh()   # papers other replicas ingested
        groups: dict[tuple[float, int], list[DuePost]] = {}
        for post in due:
            groups.setdefault((post.schedule.after_seq, post.schedule.k), []).append(post)
        chosen = {}
        for (after_seq, k), posts in groups.items():
            ids, upto = self._new_papers(after_seq)
            picks = self.rec.picks_for_many(
                [p.schedule.target for p in posts if p.schedule.kind != "channel"],
                [p.schedule.target for p in posts if p.schedule.kind == "channel"],
                k=k, candidates=ids) if ids else {}
            for post in posts:
                chosen[post.schedule.target, post.day] = Chosen(
                    picks.get(post.schedule.target, []), upto, len(ids))
        return chosen

    def _new_papers(self, after_seq: float) -> tuple[list[str], float]:
        """A post's candidates: the papers stored since `after_seq` that are news (published
        in the last PAPERBOT_NEWS_DAYS, or undated; not an imported library's old papers), and
        the ingest sequence that reaches."""
        fresh = self.rec.store.paper_ids(after_seq)
        ids = [pid for pid, _ in fresh]
        if self.settings.news_days:
            old = self.rec.index.published_before(
                self.now().date() - dt.timedelta(days=self.settings.news_days))
            rows = [self.rec.index.row_of(pid) for pid in ids]
            ids = [pid for pid, row in zip(ids, rows) if row is None or not old[row]]
        return ids, fresh[-1][1] if fresh else after_seq

    def _poster_for(self, schedule: Schedule) -> Poster | None:
        poster = self.posters.get(schedule.platform)
        return poster if poster is not None and poster.handles(schedule.target) else None

    def _find_due(self) -> list[DuePost]:
        """The posts due now that no one has finished or is working on (a thread: Redis)."""
        now = self.now()
        candidates = []
        for schedule in self.schedules.all():
            if self._poster_for(schedule) is None:
                continue   # another platform or workspace: another process posts there
            found = latest_due(schedule.time, schedule.tz, schedule.days, now, schedule.since)
            if found is not None:
                candidates.append(DuePost(schedule, *found))
        looks = self.ledger.glance([(d.schedule.target, d.day) for d in candidates])
        due = []
        for post, (state, retry_at, leased) in zip(candidates, looks):
            if state in FINAL_STATES or leased:
                continue
            if state is None and now - post.due > self.settings.catchup:
                if self.ledger.mark_missed(post.schedule.target, post.day, post.due, now):
                    self._count("missed")
                    log.warning("missed the %s post of %s (due %s): no replica was running "
                                "within the %s catch-up window (PAPERBOT_CATCHUP_HOURS); its "
                                "papers come with the next post", post.day,
                                post.schedule.target, post.due.isoformat(), self.settings.catchup)
                continue
            if retry_at is not None and now.timestamp() < retry_at:
                continue
            due.append(post)
        return due

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    # -- one post -------------------------------------------------------------------------
    async def _post(self, post: DuePost) -> str:
        key = (post.schedule.target, post.day)
        if self._stopping or key in self._active:
            return "busy"
        self._active.add(key)
        token = f"{self.replica}:{uuid.uuid4().hex[:8]}"
        try:
            if not await _io(self.ledger.claim, *key, token):
                return "held"   # another replica is at it
            release = True
            try:
                outcome = await self._post_claimed(post, token)
            except asyncio.CancelledError:
                release = False   # perhaps mid-send: the lease expires, a takeover checks
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("the %s post of %s failed; it is retried on a later tick",
                              post.day, post.schedule.target)
                outcome = "error"
            finally:
                if release:
                    with contextlib.suppress(Exception):
                        await _io(self.ledger.release, *key, token)
            self._count(outcome)
            return outcome
        finally:
            self._active.discard(key)

    async def _post_claimed(self, post: DuePost, token: str) -> str:
        target, day = post.schedule.target, post.day
        entry = await _io(self.ledger.read, target, day)
        now = self.now()
        if entry is not None and entry.final:
            return f"already {entry.state}"   # another replica finished it a moment ago
        if entry is None:
            if now - post.due > self.settings.catchup:
                await _io(self.ledger.mark_missed, target, day, post.due, now)
                return "missed"
            entry = await self._freeze(post, token)
            if entry is None:
                return "lost"
            if entry.final:
                return entry.state
        elif now - post.due > self.settings.retry_deadline:
            log.error("giving up the %s post of %s: still unfinished %s after its time (%s)",
                      day, target, self.settings.retry_deadline, entry.error or "no error recorded")
            await self._close(post, entry, token, "failed")
            return "failed"
        return await self._send_all(post, entry, token)

    async def _freeze(self, post: DuePost, token: str) -> Entry | None:
        """Choose the day's picks from the papers new since the target's last post; write them
        once. Returns the entry as stored, or None if the lease was lost meanwhile."""
        schedule = post.schedule

        def choose() -> tuple[list[Result], float, int, list[str]]:
            topics = self.rec.topics(schedule.target)
            early = self._chosen.pop((schedule.target, post.day), None)
            if early is not None and not self.rec.seen_any(
                    schedule.target, [r.paper.id for r in early.picks], schedule.kind == "channel"):
                return early.picks, early.upto, early.new_papers, topics
            self.rec.refresh()   # papers other replicas ingested
            ids, upto = self._new_papers(schedule.after_seq)
            picks_of = self.rec.picks_for_channel if schedule.kind == "channel" else self.rec.recommend
            picks = picks_of(schedule.target, k=schedule.k, candidates=ids) if ids else []
            return picks, upto, len(ids), topics

        picks, upto, new_papers, topics = await asyncio.to_thread(choose)
        fields: dict[str, Any] = {"due": post.due.isoformat(), "upto_seq": upto,
                                  "frozen_at": time.time(), "frozen_by": self.replica}
        if picks:
            fields.update(state="frozen", header=header_for(schedule, post.day, len(picks)),
                          items=[{"id": r.paper.id, "score": round(r.score, 4), "why": r.why}
                                 for r in picks])
        elif (schedule.empty or self.settings.empty_day) == "note":
            unreachable = [] if new_papers else await _io(
                ingest_loop.unreachable_sources, self.rec.store.r, self.rec.store.prefix)
            fields.update(state="frozen", header="", items=[
                {"id": "note", "text": weekly.in_week_words(
                    schedule, note_for(schedule, new_papers, topics, unreachable))}])
        else:
            fields.update(state="skipped", items=[], finished_at=self.now().isoformat())
        written = await _io(self.ledger.freeze, schedule.target, post.day, token, fields)
        if written is None:
            return None
        if written and fields["state"] == "skipped":
            await _io(self.schedules.advance, schedule.target, upto)
            log.info("no post for %s on %s: %d new papers, no picks", schedule.target,
                     post.day, new_papers)
        return await _io(self.ledger.read, schedule.target, post.day)

    async def _send_all(self, post: DuePost, entry: Entry, token: str) -> str:
        schedule = post.schedule
        poster = self._poster_for(schedule)
        if poster is None:
            return "no poster"
        delivery = Delivery(schedule.target, schedule.kind, schedule.deliver_to, entry.post_id,
                            entry.frozen_at, schedule.dm_channel)
        results = await asyncio.to_thread(self._results, entry)
        for n, data in enumerate(entry.items):
            item_id = data["id"]
            if item_id in entry.sent:
                continue
            if self._stopping:
                return "handed back"
            if item_id != "note" and item_id not in results:
                log.warning("paper %s of the %s post of %s is no longer stored: left out",
                            item_id, post.day, delivery.target)
                await _io(self.ledger.record_sent, schedule.target, post.day, item_id,
                          {"id": None, "where": None, "left_out": True})
                entry.sent[item_id] = {"id": None, "left_out": True}
                continue
            item = Item(item_id, results.get(item_id), data.get("text", ""),
                        entry.header if n == 0 and entry.header else None)
            if item_id in entry.sending:
                outcome = await self._settle_doubt(post, entry, token, poster, delivery, item)
                if outcome != "unsent":
                    if outcome in ("found", "unconfirmed"):
                        continue
                    return outcome
            outcome = await self._send_item(post, entry, token, poster, delivery, item)
            if outcome != "sent":
                return outcome
        await self._close(post, entry, token, "done")
        return "done"

    async def _settle_doubt(self, post: DuePost, entry: Entry, token: str, poster: Poster,
                            delivery: Delivery, item: Item) -> str:
        """An earlier send of `item` may or may not have landed: ask the platform, once that
        send's deadline is past (`doubt_settles`). A takeover through an expired lease comes
        later anyway; one that came early (a promotion lost the lease, clocks differ) would
        otherwise look before a send in flight lands, and post it again (Slack has no nonce)."""
        target, day = post.schedule.target, post.day
        wait = min(entry.sending[item.id] + self.settings.doubt_settles - time.time(),
                   self.settings.doubt_settles)
        if wait > 0:
            log.info("%s of the %s post of %s may still be on its way: looking it up in %.1fs",
                     item.id, day, target, wait)
            await asyncio.sleep(wait)
            if not await _io(self.ledger.renew, target, day, token):
                return "lost"
            known = await _io(self.ledger.sent_of, target, day, item.id)
            if known is not None:   # its sender recorded it meanwhile
                entry.sent[item.id] = known
                return "found"
        try:
            found = await asyncio.wait_for(poster.find_sent(delivery, item),
                                           self.settings.send_timeout)
        except LookupUnavailable as exc:
            # Sending again could post it twice; never posting twice wins over one lost paper.
            log.warning("cannot tell whether %s of the %s post of %s was sent (%s); not sending "
                        "it again", item.id, post.day, delivery.target, exc)
            await self._record(post, entry, item.id, None)
            return "unconfirmed"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self._defer(post, token, f"looking up a message failed: {exc!r}")
        if found is None:
            return "unsent"
        log.info("%s of the %s post of %s was sent before (message %s): recorded, not resent",
                 item.id, post.day, delivery.target, found.message_id)
        await self._record(post, entry, item.id, found)
        return "found"

    async def _send_item(self, post: DuePost, entry: Entry, token: str, poster: Poster,
                         delivery: Delivery, item: Item) -> str:
        target, day = post.schedule.target, post.day
        for attempt in range(self.settings.send_attempts):
            if not await _io(self.ledger.renew, target, day, token):
                log.warning("lost the lease on the %s post of %s; another replica goes on", day, target)
                return "lost"
            # paced right before the send, so the spacing is the send's; then the last lease
            # check, which renews the lease and marks the item in doubt in one step
            await self._pacer.wait(f"{post.schedule.platform}:{delivery.deliver_to}")
            if not await _io(self.ledger.begin_send, target, day, token, item.id):
                log.warning("lost the lease on the %s post of %s; another replica goes on", day, target)
                return "lost"
            try:
                sent = await asyncio.wait_for(poster.send(delivery, item), self.settings.send_timeout)
            except NotDelivered as exc:
                await _io(self.ledger.forget_fields, target, day, token, f"sending:{item.id}")
                if exc.permanent:
                    log.error("cannot post to %s: %s; the %s post fails", target, exc.reason, day)
                    await _io(self.ledger.update, target, day, token, error=exc.reason)
                    await self._close(post, entry, token, "failed")
                    return "failed"
                log.warning("posting to %s failed (%s), try %d of %d", target, exc.reason,
                            attempt + 1, self.settings.send_attempts)
                if attempt + 1 < self.settings.send_attempts:
                    await asyncio.sleep(self.settings.retry_backoff * 2 ** attempt)
                    continue
                return await self._defer(post, token, exc.reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # a timeout, a dropped connection: it may have landed
                log.warning("posting %s to %s ended in doubt (%r); it is checked before any "
                            "retry", item.id, target, exc)
                return await self._defer(post, token, f"in doubt: {exc!r}")
            await self._record(post, entry, item.id, sent)
            return "sent"
        return "deferred"

    async def _record(self, post: DuePost, entry: Entry, item_id: str, sent: Sent | None) -> None:
        schedule = post.schedule
        message = ({"id": sent.message_id, "where": sent.where} if sent
                   else {"id": None, "where": None, "unconfirmed": True})
        await _io(self.ledger.record_sent, schedule.target, post.day, item_id, message)
        entry.sent[item_id] = message
        if item_id != "note":   # at once: even if this post never finishes, it won't repeat
            await _io(self.rec.mark_shown, schedule.target, [item_id])
        if sent is None:
            return
        if item_id != "note":
            await _io(self.rec.record_post, sent.where, sent.message_id, item_id)
        if schedule.kind == "dm" and sent.where != schedule.target and schedule.dm_channel is None:
            await _io(self.schedules.remember_dm_channel, schedule.target,
                      sent.where.rsplit(":", 1)[1])

    async def _defer(self, post: DuePost, token: str, error: str) -> str:
        retry_at = self.now().timestamp() + self.settings.retry_later
        await _io(self.ledger.update, post.schedule.target, post.day, token,
                  retry_at=str(retry_at), error=error[:500])
        return "deferred"

    async def _close(self, post: DuePost, entry: Entry, token: str, state: str) -> None:
        """Done (or failed); when done, the target's watermark moves past the day's papers."""
        schedule = post.schedule
        if state == "done":
            await _io(self.schedules.advance, schedule.target, entry.upto_seq)
        if await _io(self.ledger.close, schedule.target, post.day, token, state,
                     self.now().isoformat()):
            log.info("%s post of %s %s: %d messages", post.day, schedule.target, state,
                     len(entry.sent))

    def _results(self, entry: Entry) -> dict[str, Result]:
        ids = [i["id"] for i in entry.items if i["id"] != "note"]
        papers = self.rec.store.get_papers(ids)
        return {i["id"]: Result(paper, float(i.get("score", 0)), i.get("why", ""))
                for i, paper in zip([i for i in entry.items if i["id"] != "note"], papers)
                if paper is not None}

    def status(self) -> dict[str, Any]:
        return {"last_tick": self.last_tick.isoformat() if self.last_tick else None,
                "posts": dict(self.counts), "posting_to": sorted(self.posters),
                "last_error": self.last_error}


async def _io(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Redis and the recommender are synchronous: keep them off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
