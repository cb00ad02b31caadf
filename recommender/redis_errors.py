"""A Redis that answers but refuses writes is storage being down, as much as one that is gone.

Production Redis refuses writes in four ways, and redis-py raises ResponseError subclasses
for them, not ConnectionError:

- READONLY: a failover demoted this primary to a replica (`ReadOnlyError`)
- OOM: maxmemory reached under noeviction (`OutOfMemoryError`)
- MISCONF: a background save failed (a full disk) and stop-writes-on-bgsave-error is on
- NOREPLICAS: min-replicas-to-write, and too few replicas are connected
- (MASTERDOWN: a replica that lost its primary refuses reads too, `MasterDownError`)

redis-py has no class of its own for MISCONF and NOREPLICAS (a plain ResponseError), so
paperbot's client parses them as `WritesRefused`: `except REFUSED` then catches all of them,
while a ResponseError that is a bug (WRONGTYPE, a bad script) stays one.
"""

from __future__ import annotations

from redis.connection import DefaultParser
from redis.exceptions import (ClusterDownError, MasterDownError, OutOfMemoryError, ReadOnlyError,
                              RedisClusterUnreachableError, ResponseError, SlotNotCoveredError,
                              TryAgainError)


class WritesRefused(ResponseError):
    """MISCONF or NOREPLICAS: the server answers, but takes no writes now."""


def _refused(code: str):
    def make(message: str, **_) -> WritesRefused:   # redis-py >= 6 passes status_code=
        error = WritesRefused(f"{code} {message}")
        error.status_code = code
        return error
    return make


class Parser(DefaultParser):
    """redis-py's parser (hiredis when installed), with MISCONF and NOREPLICAS as WritesRefused."""

    EXCEPTION_CLASSES = {**DefaultParser.EXCEPTION_CLASSES,
                         "MISCONF": _refused("MISCONF"), "NOREPLICAS": _refused("NOREPLICAS")}


REFUSED = (ReadOnlyError, OutOfMemoryError, WritesRefused, MasterDownError)
# A Redis Cluster missing a primary (CLUSTERDOWN, slots no node serves), or moving slots
# (TRYAGAIN), or whose every node is gone: storage down as well. (A node that stops answering
# raises ConnectionError, as a single server does.)
CLUSTER_DOWN = (ClusterDownError, TryAgainError, SlotNotCoveredError, RedisClusterUnreachableError)
_CODES = {ReadOnlyError: "READONLY", OutOfMemoryError: "OOM", MasterDownError: "MASTERDOWN"}


def describe(exc: BaseException) -> str:
    """One line for an operator: `ReadOnlyError (READONLY You can't write ...)`, or the type."""
    if not isinstance(exc, REFUSED):
        return type(exc).__name__
    text = str(exc)
    code = _CODES.get(type(exc))
    if code and not text.startswith(code):   # redis-py strips the code from the message
        text = f"{code} {text}"
    return f"{type(exc).__name__} ({text[:160]})"
