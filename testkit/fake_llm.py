"""A fake OpenAI-compatible chat completions server on 127.0.0.1, for the TL;DR writer's tests.

It answers `POST /v1/chat/completions` as Ollama, llama.cpp's server or vLLM do. What it does
for one paper depends on a word in the paper's title: "slow" answers after `slow_s`, "busy" is
a 429 with Retry-After (for its first `busy_times` tries), "broken" is not JSON, "empty" has no
choices; anything else gets a one-sentence TL;DR naming the title.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLlm:
    def __init__(self, slow_s: float = 2.0, busy_times: int = 1, retry_after: str = "0"):
        self.slow_s, self.busy_times, self.retry_after = slow_s, busy_times, retry_after
        self.requests: list[dict[str, Any]] = []    # (headers, body) of each request
        self.tries: dict[str, int] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:   # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                status, headers, payload = fake.answer(self.path, dict(self.headers), body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeLlm:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]):
        prompt = body["messages"][-1]["content"]
        title = re.search(r"Title: (.*)", prompt)[1]
        with self.lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            self.tries[title] = tries = self.tries.get(title, 0) + 1
        if path != "/v1/chat/completions":
            return 404, {}, {"error": "not found"}
        words = title.lower().split()
        if "slow" in words:
            time.sleep(self.slow_s)
        if "busy" in words and tries <= self.busy_times:
            return 429, {"retry-after": self.retry_after}, {"error": {"message": "rate limited"}}
        if "broken" in words:
            return 200, {}, b"<html>502 Bad Gateway</html>"
        if "empty" in words:
            return 200, {}, {"id": "x", "object": "chat.completion", "choices": []}
        content = f"TL;DR: \"The paper {title.lower()} shows a clear, measured gain.\""
        return 200, {}, {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": content}}]}
