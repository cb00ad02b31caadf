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
| sending:<item>   | wall-clock time a send of that item began (written before the send)   |
| sent:<item>      | JSON {id, where}: the platform's message id and the key its reactions belong to |
| retry_at, error  | after a failed send: not before this (scheduler clock, unix), and why |
| finished_at      | when it reached a final state                                         |

The protocol (see `Scheduler._post`): claim the lease (SET NX PX) · freeze the picks once (a
retry or a takeover posts the same papers) · per item: renew the lease, write `sending`, send,
write `sent` · mark done. Every write that decides something is fenced: it happens only while
the writer still holds the lease (compare the token and write, in one script). A `sent` record
is a fact and is written unfenced. An item with `sending` and no `sent` is *in doubt* (the
sender died or timed out mid-send): before anything else the platform is asked whether the
message exists (Slack: message metadata; Discord: nonce and the channel's history).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import redis

from recommender.people import check_who

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
    def __init__(self, client: redis.Redis, prefix: str = "paperbot:", lease_seconds: float = 120):
        self.r = client
        self.prefix = prefix
        self.lease_ms = int(lease_seconds * 1000)
        self._freeze = client.register_script(_FENCED_FREEZE)
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
    def freeze(self, target: str, day: dt.date, token: str, fields: dict[str, Any]) -> bool | None:
        """Write the day's entry once. True: written; False: an entry was there already;
        None: the lease is no longer ours."""
        result = self._freeze(keys=self._keys(target, day),
                              args=[token, KEEP_DAYS * 86400, *_flat(fields)])
        return None if result == -1 else bool(result)

    def update(self, target: str, day: dt.date, token: str, **fields: Any) -> bool:
        return bool(self._hset(keys=self._keys(target, day), args=[token, *_flat(fields)]))

    def forget_fields(self, target: str, day: dt.date, token: str, *fields: str) -> bool:
        return bool(self._hdel(keys=self._keys(target, day), args=[token, *fields]))

    def record_sent(self, target: str, day: dt.date, item: str, message: dict[str, Any]) -> None:
        """A message exists on the platform: a fact, recorded whoever holds the lease."""
        self.r.hset(self.key(target, day), f"sent:{item}", json.dumps(message))

    def mark_missed(self, target: str, day: dt.date, due: dt.datetime, now: dt.datetime) -> bool:
        """Record (once) that a day's post was due while no replica ran and is past the
        catch-up window; True for the one caller that recorded it."""
        key = self.key(target, day)
        if not self.r.hsetnx(key, "state", "missed"):
            return False
        self.r.hset(key, mapping={"due": due.isoformat(), "finished_at": now.isoformat()})
        self.r.expire(key, KEEP_DAYS * 86400)
        return True
