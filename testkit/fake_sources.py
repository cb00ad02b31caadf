"""A real HTTP server on 127.0.0.1 that replays recorded-shape arXiv and Hugging Face responses.

The paper sources are tested through the real `HttpClient` (httpx, tenacity) against it, so
retries, timeouts and the polite rate are exercised on real sockets, not on mocks.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# the recorded responses are the test suite's data files: tests/fixtures/sources of this checkout
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sources"


@dataclasses.dataclass
class Reply:
    """One canned response; `delay` seconds pass before it is sent (to provoke client timeouts).

    `drip` > 0 sends the body `piece` bytes at a time, `drip` seconds apart: a feed that never
    goes silent long enough for a read timeout, yet takes for ever. `length=False` sends no
    Content-Length (the body ends when the connection closes), as a streaming server would.
    """

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/xml; charset=utf-8"
    drip: float = 0.0
    piece: int = 1
    length: bool = True


def fixture_reply(name: str, **kwargs) -> Reply:
    content_type = "application/json; charset=utf-8" if name.endswith(".json") else None
    if content_type:
        kwargs.setdefault("content_type", content_type)
    return Reply(body=(FIXTURES / name).read_bytes(), **kwargs)


@dataclasses.dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float  # time.monotonic() when the server received it


class FakeSourceServer:
    """Routes a path to a queue of replies; the last reply of a queue repeats for ever."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.answers: list[tuple[str, Callable[[Request], Reply]]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def answer(self, prefix: str, answer: Callable[[Request], Reply]) -> None:
        """Answer every request under `prefix` with `answer(request)`, as a live API would
        (queued `route` replies of the exact path go first)."""
        self.answers.append((prefix, answer))

    def url(self, path: str = "") -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FakeSourceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            queue = self.routes.get(request.path)
            if queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        for prefix, answer in self.answers:
            if request.path.startswith(prefix):
                return answer(request)
        return Reply(404, b"not found", content_type="text/plain")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                request = Request(parts.path, parse_qs(parts.query), dict(self.headers),
                                  time.monotonic())
                server.requests.append(request)
                reply = server._next_reply(request)
                time.sleep(reply.delay)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    if reply.length:
                        self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if not reply.drip:
                        self.wfile.write(body)
                        return
                    for start in range(0, len(body), reply.piece):
                        self.wfile.write(body[start:start + reply.piece])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout, deadline and size-cap tests)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
