"""What a Redis Cluster asks of paperbot: every command, transaction and script on one slot.

paperbot works unchanged against one Redis and against a Redis (or Valkey) Cluster: the client
is chosen from the server (`store.redis_client`). On a cluster, a multi-key command, a MULTI
and a Lua script may only touch keys of one hash slot. So:

- the keys of one person or channel carry it as a hash tag (`P {slack:T1:U2}:feedback`);
- a key that must go with another in one script is `colocated` with it;
- bulk reads over many keys (papers, vectors) are split per slot (`mget`), scripts over many
  people run once per slot (`group_by_slot`);
- a write that must reach the replicas is followed by WAIT on the node that holds its key
  (`node_client`);
- SCAN covers every primary (redis-py's cluster client does that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import redis
from redis.crc import key_slot

T = TypeVar("T")


def is_cluster(client) -> bool:
    return isinstance(client, redis.RedisCluster)


def mget(client, keys: Sequence[str]) -> list[bytes | None]:
    """MGET of keys in any slots (one MGET per slot, pipelined per node, on a cluster)."""
    if not keys:
        return []
    return client.mget_nonatomic(keys) if is_cluster(client) else client.mget(keys)


def hash_tag(key: str) -> str:
    """The part of `key` its slot is computed from (Redis Cluster's rule)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


def colocated(key: str, suffix: str) -> str:
    """A key named for `key` + `suffix` in the same slot as `key`."""
    return key + suffix if hash_tag(key) != key else f"{{{key}}}{suffix}"


def group_by_slot(client, items: Iterable[T], key_of: Callable[[T], str]) -> list[list[T]]:
    """`items` grouped by the slot of their key (in order within a group) on a cluster; on a
    single server, one group of them all."""
    if not is_cluster(client):
        return [list(items)]
    groups: dict[int, list[T]] = {}
    for item in items:
        groups.setdefault(key_slot(key_of(item).encode()), []).append(item)
    return list(groups.values())


def node_client(client, key: str):
    """The client of the server that holds `key`: itself on a single server; on a cluster the
    primary of `key`'s slot, for a command that must run on that server's connection (WAIT)."""
    if not is_cluster(client):
        return client
    return client.get_node_from_key(key).redis_connection
