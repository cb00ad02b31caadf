"""One-sentence TL;DRs of new papers, written by any OpenAI-compatible chat completions
endpoint (a local Ollama, llama.cpp server or vLLM, or a hosted one). Optional, off by default.

Why it is shaped this way: a post never waits for a TL;DR (a paper without one yet is posted
without it); each failure (a slow answer, 429s, a malformed answer, the server down) costs only
that paper's TL;DR, with one log line; a daily budget shared by every replica through Redis
bounds what a hosted model can cost. With no model configured there is no TL;DR at all.

| key                       | type   | holds                                                  |
|---------------------------|--------|--------------------------------------------------------|
| P tldr:budget:<UTC date>  | string | TL;DRs asked for that day, by every process (expires in 2 days) |

The TL;DR itself is kept in the paper's stored JSON (`Paper.tldr`, `PaperStore.set_tldr`),
only while the paper's text is the one summarised.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from .config import LlmSettings
from .paper import Paper
from .store import PaperStore

log = logging.getLogger(__name__)

MAX_CHARS = 300          # a TL;DR longer than this is cut (a model that ignored "one sentence")
MAX_RETRY_AFTER = 30.0   # seconds: a 429 asking for a longer wait gives up on that paper
TRIES = 3
PROMPT = ("Write a TL;DR of this research paper: one plain sentence in {language}, at most 30 "
          "words, saying what it does and finds. No preamble, no quotes, no markdown.\n\n"
          "Title: {title}\n\nAbstract: {abstract}")


@dataclasses.dataclass
class TldrCounts:
    written: int = 0
    failed: int = 0
    over_budget: int = 0    # left without one: the day's budget was spent

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Unavailable(Exception):
    """The endpoint refused or failed this request (a status, a network error)."""

    def __init__(self, message: str, retry_after: float | None = None, transient: bool = False):
        super().__init__(message)
        self.retry_after, self.transient = retry_after, transient


class Malformed(Exception):
    """An answer that holds no TL;DR."""


def endpoint(url: str) -> str:
    """The chat completions address of a base URL (`…/v1`) or of the full one."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def clean(text: str) -> str | None:
    """The TL;DR in an answer: no reasoning block, no "TL;DR:" label or quotes, one line."""
    text = re.sub(r"<think>.*?</think>", " ", text, flags=re.DOTALL | re.IGNORECASE)
    text = " ".join(text.split())
    text = re.sub(r"^\**(tl;? ?dr|summary)\**\s*[:\-–—]\s*", "", text, flags=re.IGNORECASE)
    text = text.strip().strip("\"'“”*").strip()
    if not text:
        return None
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1].rstrip() + "…"


class TldrWriter:
    def __init__(self, store: PaperStore, settings: LlmSettings, client: httpx.Client | None = None):
        self.store, self.settings = store, settings
        headers = {"Authorization": f"Bearer {settings.key}"} if settings.key else {}
        self.client = client or httpx.Client(timeout=settings.timeout, headers=headers)
        self.url = endpoint(settings.url or "")

    def close(self) -> None:
        self.client.close()

    def write(self, ids: list[str], progress: Callable[[int], None] | None = None,
              stop: threading.Event | None = None) -> TldrCounts:
        """Write the TL;DR of each paper of `ids` that has an abstract and none yet, a few at
        once (`concurrency`); `progress(1)` after each paper; `stop` ends it after the
        requests under way."""
        counts = TldrCounts()
        papers = [p for p in self.store.get_papers(ids) if p and p.abstract and not p.tldr]
        lock = threading.Lock()

        def one(paper: Paper) -> None:
            if stop is not None and stop.is_set():
                return
            outcome = self._one(paper)
            with lock:
                setattr(counts, outcome, getattr(counts, outcome) + 1)
            if progress:
                progress(1)

        with ThreadPoolExecutor(max(1, self.settings.concurrency), thread_name_prefix="tldr") as pool:
            list(pool.map(one, papers))
        if counts.over_budget:
            log.warning("tldr: the daily budget (%d, PAPERBOT_TLDR_DAILY_BUDGET) is spent: %d "
                        "papers left without one", self.settings.daily_budget, counts.over_budget)
        return counts

    def _one(self, paper: Paper) -> str:
        if not self._spend():
            return "over_budget"
        try:
            text = self._ask(paper)
        except (Unavailable, Malformed, httpx.HTTPError) as exc:
            log.warning("tldr %s: %s", paper.id, _reason(exc))
            return "failed"
        self.store.set_tldr(paper.id, paper.content_hash, text)
        return "written"

    def _spend(self) -> bool:
        """Take one TL;DR from today's budget (UTC), shared by every process."""
        key = self.store.key("tldr", "budget", dt.datetime.now(dt.timezone.utc).date().isoformat())
        pipe = self.store.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 2 * 86400)
        return int(pipe.execute()[0]) <= self.settings.daily_budget

    def _ask(self, paper: Paper) -> str:
        body = {"model": self.settings.model, "temperature": 0.2, "max_tokens": 200,
                "messages": [{"role": "user", "content": PROMPT.format(
                    language=self.settings.language, title=paper.title, abstract=paper.abstract)}]}
        for attempt in Retrying(stop=stop_after_attempt(TRIES), wait=_wait, reraise=True,
                                retry=retry_if_exception(_transient)):
            with attempt:
                return self._answer(self.client.post(self.url, json=body))
        raise AssertionError("unreachable")   # Retrying returns or raises

    @staticmethod
    def _answer(response: httpx.Response) -> str:
        if response.status_code != 200:
            raise Unavailable(f"HTTP {response.status_code}", _retry_after(response),
                              transient=response.status_code in (429, 500, 502, 503, 504))
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise Malformed("the answer is not a chat completion") from None
        text = clean(content) if isinstance(content, str) else None
        if text is None:
            raise Malformed("the answer holds no text")
        return text


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, Unavailable):
        return exc.transient and (exc.retry_after or 0) <= MAX_RETRY_AFTER
    return isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError))


def _wait(state) -> float:
    """Retry-After when the server gave one, else 1 s, 2 s …"""
    exc = state.outcome.exception()
    given = getattr(exc, "retry_after", None)
    return given if given is not None else float(state.attempt_number)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time (PAPERBOT_LLM_TIMEOUT)"
    if isinstance(exc, httpx.HTTPError):
        return f"the model server could not be reached ({type(exc).__name__})"
    return str(exc)


def noting_ids(papers: Iterable[Paper], ids: list[str]) -> Iterator[Paper]:
    """The papers as they are read, each one's id added to `ids`: what an ingest read is what
    its TL;DR pass looks at (those without a TL;DR yet: new ones, changed ones, earlier misses)."""
    for paper in papers:
        ids.append(paper.id)
        yield paper


def write_tldrs(store: PaperStore, settings: LlmSettings, ids: list[str],
                progress: Callable[[int], None] | None = None,
                stop: threading.Event | None = None) -> TldrCounts | None:
    """The TL;DRs of `ids` (see TldrWriter.write); None when no model is configured."""
    if not settings.enabled:
        return None
    if not ids:
        return TldrCounts()
    writer = TldrWriter(store, settings)
    try:
        return writer.write(ids, progress, stop)
    finally:
        writer.close()
