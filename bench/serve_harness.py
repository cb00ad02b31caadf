"""`paperbot serve` as a subprocess against the fake Slack and Discord of `testkit` (the test
suite's fakes, an importable package), for the chat latency and memory benchmarks."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import REPO, env_for


def fakes_available() -> bool:
    """The fakes ship in `testkit`, installed with paperbot; a trimmed install may lack it."""
    return importlib.util.find_spec("testkit") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """`paperbot serve --slack-http [--discord]` on 127.0.0.1 ports of its own."""

    def __init__(self, url: str, prefix: str, log_path: Path, slack_api: str,
                 discord: Any | None = None, **extra_env: str):
        from testkit import fake_slack

        self.health_port, self.slack_port = free_port(), free_port()
        env = env_for(url, prefix, SLACK_BOT_TOKEN=fake_slack.BOT_TOKEN,
                      SLACK_SIGNING_SECRET=fake_slack.SIGNING_SECRET, SLACK_API_URL=slack_api,
                      PAPERBOT_HEALTH_PORT=str(self.health_port), PAPERBOT_HEALTH_HOST="127.0.0.1",
                      **extra_env)
        for name in ("SLACK_APP_TOKEN", "DISCORD_TOKEN", "PAPERBOT_SOURCES", "PAPERBOT_FAKE_NOW"):
            if name not in extra_env:
                env.pop(name, None)
        args = [sys.executable, "-m", "bot.cli", "-v", "serve", "--slack-http", "--host",
                "127.0.0.1", "--port", str(self.slack_port)]
        if discord is not None:
            env.update(DISCORD_TOKEN="bench-token.abc", DISCORD_API_BASE=discord.api_base,
                       DISCORD_GATEWAY_URL=discord.gateway_url, DISCORD_GUILD_ID=str(discord.guild_id))
            args.append("--discord")
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.started = time.time()
        self.process = subprocess.Popen(args, env=env, cwd=str(REPO), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=self._log)
        self.rusage = None

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.slack_port}/slack/events"

    def health(self) -> dict[str, Any] | None:
        import httpx

        try:
            response = httpx.get(f"http://127.0.0.1:{self.health_port}/health", timeout=5)
        except httpx.HTTPError:
            return None
        try:   # 503 (an adapter not running yet) still says how far it got
            return response.json()
        except ValueError:
            return None

    def wait_ready(self, adapters: set[str], timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"paperbot serve exited:\n{self.log_tail()}")
            body = self.health()
            if body and body.get("status") == "ok" and \
                    adapters <= set(body.get("scheduler", {}).get("posting_to", [])):
                return body
            if time.monotonic() > deadline:
                raise RuntimeError(f"paperbot serve not ready in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def peak_rss_mb(self) -> float | None:
        """VmHWM (the peak resident set) from /proc, while it runs (Linux)."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while True:
            try:
                pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            except ChildProcessError:   # already reaped (it had exited on its own)
                break
            if pid:
                self.rusage = usage   # this child's own rusage: ru_maxrss in KiB on Linux
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                self.process.kill()
                deadline += 30
            time.sleep(0.1)
        self._log.close()
        return self.process.returncode

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
