"""One HTTP client for every network paper source: timeouts, retries with back-off, a polite rate.

arXiv asks for one request every 3 seconds and answers bursts with 429/503; Hugging Face
rate-limits too. Keeping these rules in one client means no source can forget them.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import tenacity

from recommender.sources.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = "paperbot/0.1 (+https://github.com/paperbot/paperbot)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Retryable(Exception):
    """One failed attempt that another attempt may fix (overload, timeout, dropped connection)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class HttpClient:
    """A polite `httpx.Client` whose failures all end as one readable `SourceError`.

    Retries 429/5xx, timeouts and connection errors with exponential back-off plus jitter, or
    exactly the server's `Retry-After` when it sends one. A `Retry-After` longer than `max_wait`
    is not shortened (that would ignore the server): the client gives up at once instead.
    `min_interval` seconds separate the end of one request and the start of the next to the
    same host. Tests pass small `backoff_base`/`min_interval`, or their own `sleep`.
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
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.min_interval = min_interval
        self._sleep = sleep
        # backoff_base * 2**n plus up to backoff_base of jitter, so that clients spread out.
        self._backoff = (tenacity.wait_exponential(multiplier=backoff_base)
                         + tenacity.wait_random(0, backoff_base))
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"User-Agent": user_agent},
            follow_redirects=True,
        )
        self._last_request: dict[str, float] = {}
        self._lock = threading.Lock()

    def get_text(self, url: str, params: dict[str, Any] | None = None, *, what: str = "") -> str:
        """The response body as text. `what` names the resource in error messages."""
        return self._get(url, params, what or _describe(url)).text

    def get_json(self, url: str, params: dict[str, Any] | None = None, *, what: str = "") -> Any:
        """The response body parsed as JSON; a body that is not JSON is a `SourceError`."""
        what = what or _describe(url)
        response = self._get(url, params, what)
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(f"{what} returned malformed JSON ({exc})") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, url: str, params: dict[str, Any] | None, what: str) -> httpx.Response:
        attempts = 0

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return self._attempt(url, params, what)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            retry=tenacity.retry_if_exception(self._worth_retrying),
            wait=self._wait,
            sleep=self._sleep,
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

    def _attempt(self, url: str, params: dict[str, Any] | None, what: str) -> httpx.Response:
        host = _host(url)
        self._wait_turn(host)
        try:
            response = self._client.get(url, params=params)
        except httpx.TimeoutException:
            raise _Retryable("timed out") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__})") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SourceError(f"{what} unavailable: {exc}") from None
        finally:
            self._last_request[host] = time.monotonic()
        if response.status_code in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise _Retryable(f"HTTP {response.status_code}", retry_after)
        if response.is_error:
            raise SourceError(f"{what} unavailable: HTTP {response.status_code}")
        return response

    def _wait_turn(self, host: str) -> None:
        """Sleep until `min_interval` has passed since the last request to `host` ended.
        Threads sharing the client queue up on the lock: that is the point."""
        with self._lock:
            last = self._last_request.get(host)
            if last is not None:
                delay = last + self.min_interval - time.monotonic()
                if delay > 0:
                    self._sleep(delay)
            self._last_request[host] = time.monotonic()

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
