"""One HTTP client for every network paper source: timeouts, retries with back-off, a polite
rate, a deadline and a size cap for each download, and a stop that ends one at once.

arXiv asks for one request every 3 seconds and answers bursts with 429/503; Hugging Face
rate-limits too. Keeping these rules in one client means no source can forget them.

Read timeouts alone do not bound a download: a server that sends a byte every few seconds
never trips one (such a feed kept `paperbot serve` alive 75 s after SIGTERM). So each call has
a deadline for all its attempts and waits, the body is read as a stream and counted against
`max_bytes`, and a watchdog shuts the socket of a request whose deadline passes or whose
caller sets `stop`, which ends even a read blocked on a silent server.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import tenacity

from recommender.sources.errors import SourceError, Stopped

log = logging.getLogger(__name__)

USER_AGENT = "paperbot/0.1 (+https://github.com/paperbot/paperbot)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEADLINE = 300.0               # seconds for one call, every attempt and wait included
MAX_BYTES = 64 * 1024 * 1024   # a day's arXiv listing of a big category is a few MB
WATCH_EVERY = 0.1              # how often the watchdog looks at the clock and the stop


class StopFlag(Protocol):
    """What `stop` must offer (a `threading.Event` does)."""

    def is_set(self) -> bool: ...


class _Retryable(Exception):
    """One failed attempt that another attempt may fix (overload, timeout, dropped connection)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _OutOfTime(Exception):
    """The call's deadline passed (mid-request, or a retry would have to wait past it)."""


class HttpClient:
    """A polite `httpx.Client` whose failures all end as one readable `SourceError`.

    Retries 429/5xx, timeouts and connection errors with exponential back-off plus jitter, or
    exactly the server's `Retry-After` when it sends one. A `Retry-After` longer than `max_wait`
    is not shortened (that would ignore the server): the client gives up at once instead.
    `min_interval` seconds separate the end of one request and the start of the next to the
    same host. Each call ends within `deadline` seconds, retries and waits included, and
    refuses a body over `max_bytes`; once `stop` is set, a call under way ends within about
    0.1 s with `Stopped` (`connect_timeout` bounds a connection still being opened). Tests
    pass small `backoff_base`/`min_interval`, or their own `sleep`.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        max_wait: float = 120.0,
        min_interval: float = 3.0,
        deadline: float = DEADLINE,
        max_bytes: int = MAX_BYTES,
        stop: StopFlag | None = None,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] | None = None,
    ):
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.min_interval = min_interval
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.stop = stop
        self._sleep = sleep or self._pause
        # backoff_base * 2**n plus up to backoff_base of jitter, so that clients spread out.
        self._backoff = (tenacity.wait_exponential(multiplier=backoff_base)
                         + tenacity.wait_random(0, backoff_base))
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        # No kept-alive connections: every request opens its own, so the watchdog always has
        # its socket (a reused one is not announced), and the polite rate makes reuse moot.
        self._client = httpx.Client(
            timeout=self._timeout,
            headers={"User-Agent": user_agent},
            follow_redirects=True,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._last_request: dict[str, float] = {}
        self._lock = threading.Lock()

    def get_text(self, url: str, params: dict[str, Any] | None = None, *, what: str = "") -> str:
        """The response body as text. `what` names the resource in error messages."""
        body, encoding = self._get(url, params, what or _describe(url))
        return body.decode(encoding, errors="replace")

    def get_json(self, url: str, params: dict[str, Any] | None = None, *, what: str = "") -> Any:
        """The response body parsed as JSON; a body that is not JSON is a `SourceError`."""
        what = what or _describe(url)
        body, _ = self._get(url, params, what)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SourceError(f"{what} returned malformed JSON ({exc})") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, url: str, params: dict[str, Any] | None, what: str) -> tuple[bytes, str]:
        attempts = 0
        deadline = time.monotonic() + self.deadline

        def attempt() -> tuple[bytes, str]:
            nonlocal attempts
            attempts += 1
            return self._attempt(url, params, what, deadline)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            retry=tenacity.retry_if_exception(self._worth_retrying),
            wait=self._wait,
            sleep=lambda seconds: self._sleep_within(seconds, deadline),
            before_sleep=lambda state: self._log_retry(url, state),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            reason = exc.reason
            if exc.retry_after is not None and exc.retry_after > self.max_wait:
                reason += f" (server asks to retry after {exc.retry_after:.0f} s)"
            plural = "" if attempts == 1 else "s"
            message = f"{what} unavailable: {reason} after {attempts} attempt{plural}"
            raise SourceError(message) from None
        except _OutOfTime:
            retried = f" ({attempts} attempts)" if attempts > 1 else ""
            raise SourceError(f"{what} unavailable: no complete answer within the "
                              f"{self.deadline:g} s deadline{retried}") from None
        except Stopped:
            raise Stopped(f"{what}: download stopped (shutting down)") from None

    def _attempt(self, url: str, params: dict[str, Any] | None, what: str,
                 deadline: float) -> tuple[bytes, str]:
        host = _host(url)
        self._wait_turn(host, deadline)
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        left = deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime
        # No single wait may outlast the call's deadline (the watchdog ends the rest).
        timeout = httpx.Timeout(min(self._timeout.read or left, left),
                                connect=min(self._timeout.connect or left, left))
        watchdog = _Watchdog(deadline, self.stop)
        try:
            with self._client.stream("GET", url, params=params, timeout=timeout,
                                     extensions={"trace": watchdog.trace}) as response:
                if response.status_code in RETRY_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise _Retryable(f"HTTP {response.status_code}", retry_after)
                if response.is_error:
                    raise SourceError(f"{what} unavailable: HTTP {response.status_code}")
                return self._read_body(response, what), response.encoding or "utf-8"
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            watchdog.raise_if_fired()
            if isinstance(exc, httpx.TimeoutException):
                raise _Retryable("timed out") from None
            if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, OSError)):
                raise _Retryable(f"connection failed ({type(exc).__name__})") from None
            raise SourceError(f"{what} unavailable: {exc}") from None
        finally:
            watchdog.close()
            self._last_request[host] = time.monotonic()

    def _read_body(self, response: httpx.Response, what: str) -> bytes:
        """The (decoded) body, read as it comes; more than `max_bytes` is a `SourceError`,
        raised before the rest is read (or, with a Content-Length, before any is)."""
        too_big = SourceError(f"{what} unavailable: the answer is larger than the "
                              f"{_size(self.max_bytes)} size cap")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    def _wait_turn(self, host: str, deadline: float) -> None:
        """Sleep until `min_interval` has passed since the last request to `host` ended.
        Threads sharing the client queue up on the lock: that is the point."""
        with self._lock:
            last = self._last_request.get(host)
            if last is not None:
                delay = last + self.min_interval - time.monotonic()
                if delay > 0:
                    self._sleep_within(delay, deadline)
            self._last_request[host] = time.monotonic()

    def _sleep_within(self, seconds: float, deadline: float) -> None:
        """Wait `seconds` unless that ends past `deadline` (then give up now, not later)."""
        if time.monotonic() + seconds > deadline:
            raise _OutOfTime
        self._sleep(seconds)

    def _pause(self, seconds: float) -> None:
        """The default sleep: `Stopped` as soon as `stop` is set."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stop is not None and self.stop.is_set():
                raise Stopped
            time.sleep(min(left, WATCH_EVERY))
        if self.stop is not None and self.stop.is_set():
            raise Stopped

    def _worth_retrying(self, exc: BaseException) -> bool:
        if not isinstance(exc, _Retryable):
            return False
        return exc.retry_after is None or exc.retry_after <= self.max_wait

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return min(self._backoff(state), self.max_wait)

    def _log_retry(self, url: str, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "GET %s failed (%s); retrying in %.1f s (attempt %d of %d)",
            _safe_url(url), getattr(exc, "reason", exc), wait, state.attempt_number,
            self.max_attempts,
        )


class _Watchdog:
    """Shuts the socket of one request when the call's deadline passes or `stop` is set, so that
    a read blocked on a silent or dripping server returns at once. Sockets are announced by
    httpcore's trace hook as connections open (plain, then TLS)."""

    def __init__(self, deadline: float, stop: StopFlag | None):
        self.fired: type[Exception] | None = None
        self._deadline = deadline
        self._stop = stop
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._watch, name="http-watchdog", daemon=True).start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if not event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            return
        sock = info["return_value"].get_extra_info("socket")
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired is not None
        if fired:
            _shut(sock)

    def raise_if_fired(self) -> None:
        if self.fired is not None:
            raise self.fired

    def close(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(WATCH_EVERY):
            if self._stop is not None and self._stop.is_set():
                reason: type[Exception] = Stopped
            elif time.monotonic() >= self._deadline:
                reason = _OutOfTime
            else:
                continue
            with self._lock:
                if self._done.is_set():
                    return
                self.fired = reason
                sockets = list(self._sockets)
            for sock in sockets:
                _shut(sock)
            return


def _shut(sock: socket.socket) -> None:
    """End both directions of `sock`; a blocked read in another thread then returns. The
    plain socket's shutdown, also for TLS: it leaves the TLS object to its own thread."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass   # already closed


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n} bytes"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP-date), else None."""
    value = (value or "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host
    except httpx.InvalidURL:
        return ""


def _safe_url(url: str) -> str:
    """The URL without query, fragment or credentials: safe to log (queries may carry tokens)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def _describe(url: str) -> str:
    return _safe_url(url).split("://", 1)[-1]
