"""The post ledger: each target's daily post happens exactly once, across replicas and crashes.

One entry per (target, local day), `P {target}:post:<YYYY-MM-DD>` (a hash), and a lease,
`P {target}:post:<day>:lease` (a string holding the token of the replica at work, with a TTL).
Both carry the target as a hash tag, so the Lua scripts below touch one Redis Cluster slot.

| field            | holds                                                                 |
|------------------|-----------------------------------------------------------------------|
| state            | frozen (picks chosen, sending) · done · skipped (nothing to post) · missed (due while every replica was down, past the catch-up window) · failed (the platform refused, or retries ran out) |
| items            | JSON list of what is posted, in order: {id, score, why} per paper, or {id: "note", text} |
| header, due, upto_seq | the first message's header; the due instant; the ingest sequence the picks were taken up to |
| frozen_at, frozen_by | wall-clock time the picks were frozen (platform look-ups start there); the replica |
| sending:<item>   | wall-clock time a send of that item began (the last lease check, right before the send) |
| sent:<item>      | JSON {id, where}: the platform's message id and the key its reactions belong to |
| retry_at, error  | after a failed send: not before this (scheduler clock, unix), and why |
| finished_at      | when it reached a final state                                         |

The protocol (see `Scheduler._post`): claim the lease (SET NX PX) · freeze the picks once (a
retry or a takeover posts the same papers) · per item: renew the lease, pace, renew it and
write `sending` in one step (`begin_send`), send, write `sent` · mark done. Every write that
decides something is fenced: it happens only while the writer still holds the lease (compare
the token and write, in one script). A `sent` record is a fact and is written unfenced. An item
with `sending` and no `sent` is *in doubt* (the sender died, froze or timed out mid-send):
before anything else the platform is asked whether the message exists (Slack: message
metadata; Discord: nonce and the channel's history).

Failover (`replicas`, from PAPERBOT_REDIS_REPLICAS): the writes a promotion must not lose, the
picks (`freeze`), the in-doubt mark (`begin_send`), `sent` and the final state (`close`), are
followed by `WAIT replicas wait_ms` on the same connection (on a cluster, to the primary of the
target's slot), so that when the call returns the write is on that many replicas (and, the
replication stream being in order, every write made before it). A WAIT that times out costs
one log line (at most one a minute) and the post goes on: the write stands on the primary and,
until a replica has it, a promotion can lose it.
The lease is waited for only where `begin_send` renews it: a promotion may lose the claim or
another renewal and a takeover then comes early, which is why a takeover waits out the old
holder's send deadline before it looks an item up (scheduler).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from recommender import slots
from recommender.people import check_who

log = logging.getLogger(__name__)

FINAL_STATES = ("done", "skipped", "missed", "failed")
KEEP_DAYS = 40      # ledger entries outlive any catch-up window by far; then Redis drops them

_FENCED_FREEZE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('HEXISTS', KEYS[2], 'state') == 1 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""
_FENCED_HSET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1
"""
_FENCED_HDEL = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], unpack(ARGV, 2))
return 1
"""
_BEGIN_SEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


@dataclasses.dataclass
class Entry:
    target: str
    day: dt.date
    state: str | None
    items: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    header: str = ""
    upto_seq: float = 0.0
    frozen_at: float = 0.0
    sent: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    sending: dict[str, float] = dataclasses.field(default_factory=dict)
    retry_at: float | None = None
    error: str = ""

    @property
    def post_id(self) -> str:
        """Names this post on the platform (Slack metadata, Discord nonce)."""
        return f"{self.target}/{self.day.isoformat()}"

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def unsent(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item["id"] not in self.sent]


def _entry(target: str, day: dt.date, raw: dict[bytes, bytes]) -> Entry | None:
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return Entry(
        target=target, day=day, state=data.get("state"),
        items=json.loads(data.get("items", "[]")), header=data.get("header", ""),
        upto_seq=float(data.get("upto_seq", 0) or 0), frozen_at=float(data.get("frozen_at", 0) or 0),
        sent={k[5:]: json.loads(v) for k, v in data.items() if k.startswith("sent:")},
        sending={k[8:]: float(v) for k, v in data.items() if k.startswith("sending:")},
        retry_at=float(data["retry_at"]) if data.get("retry_at") else None,
        error=data.get("error", ""))


def _flat(fields: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in fields.items():
        out += [key, value if isinstance(value, str) else json.dumps(value)]
    return out


class PostLedger:
    def __init__(self, client: redis.Redis, prefix: str = "paperbot:", lease_seconds: float = 120,
                 replicas: int = 0, wait_ms: int = 1000):
        self.r = client
        self.prefix = prefix
        self.lease_ms = int(lease_seconds * 1000)
        self.replicas, self.wait_ms = replicas, wait_ms
        self.wait_timeouts = 0          # WAITs that ended before enough replicas had the write
        self._warned_at, self._unwarned = 0.0, 0
        self._freeze = client.register_script(_FENCED_FREEZE)
        self._begin = client.register_script(_BEGIN_SEND)
        self._hset = client.register_script(_FENCED_HSET)
        self._hdel = client.register_script(_FENCED_HDEL)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def key(self, target: str, day: dt.date) -> str:
        return f"{self.prefix}{{{check_who(target)}}}:post:{day.isoformat()}"

    def lease_key(self, target: str, day: dt.date) -> str:
        return self.key(target, day) + ":lease"

    def _keys(self, target: str, day: dt.date) -> list[str]:
        return [self.lease_key(target, day), self.key(target, day)]

    # -- reading --------------------------------------------------------------------------
    def read(self, target: str, day: dt.date) -> Entry | None:
        return _entry(target, day, self.r.hgetall(self.key(target, day)))

    def glance(self, posts: list[tuple[str, dt.date]]) -> list[tuple[str | None, float | None, bool]]:
        """(state, retry_at, lease held) of many posts in one round trip: the tick's quick look."""
        pipe = self.r.pipeline(transaction=False)
        for target, day in posts:
            pipe.hmget(self.key(target, day), "state", "retry_at")
            pipe.exists(self.lease_key(target, day))
        raw = pipe.execute()
        out = []
        for (state, retry_at), leased in zip(raw[0::2], raw[1::2]):
            out.append((state.decode() if state else None,
                        float(retry_at) if retry_at else None, bool(leased)))
        return out

    # -- the lease ------------------------------------------------------------------------
    def claim(self, target: str, day: dt.date, token: str) -> bool:
        return bool(self.r.set(self.lease_key(target, day), token, nx=True, px=self.lease_ms))

    def renew(self, target: str, day: dt.date, token: str) -> bool:
        return bool(self._renew(keys=[self.lease_key(target, day)], args=[token, self.lease_ms]))

    def release(self, target: str, day: dt.date, token: str) -> None:
        self._release(keys=[self.lease_key(target, day)], args=[token])

    # -- writing (fenced by the lease unless said otherwise) -------------------------------
    def _durably(self, what: str, target: str, day: dt.date, write: Callable[[Any], Any]) -> Any:
        """Run `write(client)`; with replicas, then WAIT on the same connection (a pipeline to
        the server that holds the entry: on a cluster, its slot's primary)."""
        if not self.replicas:
            return write(self.r)
        pipe = slots.node_client(self.r, self.key(target, day)).pipeline(transaction=False)
        write(pipe)
        pipe.wait(self.replicas, self.wait_ms)
        result, acked = pipe.execute()
        if acked < self.replicas:
            self._wait_timed_out(what, target, acked)
        return result

    def _wait_timed_out(self, what: str, target: str, acked: int) -> None:
        self.wait_timeouts += 1
        now = time.monotonic()
        if self._warned_at and now - self._warned_at < 60:
            self._unwarned += 1
            return
        log.warning("Redis WAIT: %d of %d replicas had the %s write of %s after %d ms; it stands "
                    "on the primary, a failover before a replica has it can lose it (%d more "
                    "such writes since the last line)", acked, self.replicas, what, target,
                    self.wait_ms, self._unwarned)
        self._warned_at, self._unwarned = now, 0

    def freeze(self, target: str, day: dt.date, token: str, fields: dict[str, Any]) -> bool | None:
        """Write the day's entry once. True: written; False: an entry was there already;
        None: the lease is no longer ours."""
        result = self._durably("picks", target, day, lambda c: self._freeze(
            keys=self._keys(target, day), args=[token, KEEP_DAYS * 86400, *_flat(fields)],
            client=c))
        return None if result == -1 else bool(result)

    def begin_send(self, target: str, day: dt.date, token: str, item: str) -> bool:
        """The last lease check before a send: renew the lease and mark `item` in doubt
        (`sending:<item>`, now) in one step; False if the lease is no longer ours."""
        return bool(self._durably("sending", target, day, lambda c: self._begin(
            keys=self._keys(target, day),
            args=[token, self.lease_ms, f"sending:{item}", repr(time.time())], client=c)))

    def close(self, target: str, day: dt.date, token: str, state: str, finished_at: str) -> bool:
        """The post's final state (done, failed), fenced and, with replicas, waited for."""
        return bool(self._durably(state, target, day, lambda c: self._hset(
            keys=self._keys(target, day), args=[token, *_flat(
                {"state": state, "finished_at": finished_at})], client=c)))

    def update(self, target: str, day: dt.date, token: str, **fields: Any) -> bool:
        return bool(self._hset(keys=self._keys(target, day), args=[token, *_flat(fields)]))

    def forget_fields(self, target: str, day: dt.date, token: str, *fields: str) -> bool:
        return bool(self._hdel(keys=self._keys(target, day), args=[token, *fields]))

    def record_sent(self, target: str, day: dt.date, item: str, message: dict[str, Any]) -> None:
        """A message exists on the platform: a fact, recorded whoever holds the lease."""
        self._durably("sent", target, day, lambda c: c.hset(
            self.key(target, day), f"sent:{item}", json.dumps(message)))

    def sent_of(self, target: str, day: dt.date, item: str) -> dict[str, Any] | None:
        raw = self.r.hget(self.key(target, day), f"sent:{item}")
        return json.loads(raw) if raw else None

    def mark_missed(self, target: str, day: dt.date, due: dt.datetime, now: dt.datetime) -> bool:
        """Record (once) that a day's post was due while no replica ran and is past the
        catch-up window; True for the one caller that recorded it."""
        key = self.key(target, day)
        if not self.r.hsetnx(key, "state", "missed"):
            return False
        self.r.hset(key, mapping={"due": due.isoformat(), "finished_at": now.isoformat()})
        self.r.expire(key, KEEP_DAYS * 86400)
        return True
