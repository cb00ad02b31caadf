"""The recommender's settings, read from an environment mapping handed over by the caller.

Nothing in `recommender/` reads `os.environ`: the command line loads `.env` and reads the
environment once (`bot.settings`), then hands the values down. Every setting is listed with a
comment in `.env.example`. A bad value is a ValueError whose one line names the variable and
what it accepts. Secrets never get a default and are never logged; `redacted_url` hides the
password in a Redis URL for messages.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Texts per embedding batch: on a 2-core CPU with bfloat16, 32 embeds ~145 abstracts/s, 64 ~105/s.
DEFAULT_BATCH_SIZE = 32
PRECISIONS = ("auto", "float32", "bfloat16")
_PRECISION_ALIASES = {"fp32": "float32", "f32": "float32", "bf16": "bfloat16", "": "auto"}
INDEX_DTYPES = ("float32", "float16")
ANN_MODES = ("auto", "off", "on")
ANN_MIN_ROWS = 300_000      # approximate search (faiss) from this many papers on, in `auto`
ARXIV_RSS_URL = "https://rss.arxiv.org/rss"
ARXIV_API_URL = "https://export.arxiv.org/api/query"
HF_API_URL = "https://huggingface.co/api/daily_papers"
BIORXIV_API_URL = "https://api.biorxiv.org"          # bioRxiv and medRxiv: …/details/<server>/…
OPENREVIEW_API_URL = "https://api2.openreview.net"   # API v2: …/notes


# -- reading one value -------------------------------------------------------------------------
def positive_int(value: str | None, name: str, minimum: int = 1) -> int | None:
    """A whole-number setting read from text: None when empty, ValueError (one line, for a
    person) when not a whole number >= `minimum`."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value!r}")
    return int(text)


def check_precision(value: str | None) -> str:
    """The embedding precision setting, normalised; ValueError (one line) when unknown."""
    text = (value or "").strip().lower()
    text = _PRECISION_ALIASES.get(text, text)
    if text not in PRECISIONS:
        raise ValueError(f"PAPERBOT_PRECISION must be auto, float32 or bfloat16, not {value!r}")
    return text


def choice(value: str | None, name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed` (case-insensitive); empty: `default`."""
    text = (value or "").strip().lower() or default
    if text not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return text


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*", re.IGNORECASE)
_UNIT = {None: 1, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, name: str) -> float:
    """`30`, `30s`, `5m`, `1h`, `250ms` → seconds."""
    match = _DURATION.fullmatch(text or "")
    if not match:
        raise ValueError(f"{name} must be a duration like 30s, 5m or 1h, not {text[:40]!r}")
    return float(match[1]) * _UNIT[(match[2] or "").lower() or None]


def http_url(value: str | None, name: str, default: str) -> str:
    text = (value or "").strip()
    if not text:
        return default
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL like {default}, not {text[:80]!r}")
    return text


# -- the settings ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SourceEndpoints:
    """Where the paper sources are fetched from (a mirror, a proxy, a test server)."""

    arxiv_rss: str = ARXIV_RSS_URL
    arxiv_api: str = ARXIV_API_URL
    hf_api: str = HF_API_URL
    biorxiv_api: str = BIORXIV_API_URL
    openreview_api: str = OPENREVIEW_API_URL


@dataclasses.dataclass(frozen=True)
class LlmSettings:
    """The optional TL;DR writer (`recommender.tldr`): any OpenAI-compatible chat completions
    endpoint. Off (no TL;DR at all) unless both a URL and a model are given."""

    url: str | None = None          # e.g. http://127.0.0.1:11434/v1 (Ollama), or the full …/chat/completions
    model: str | None = None
    key: str | None = dataclasses.field(default=None, repr=False)   # a secret: never shown
    language: str = "English"
    concurrency: int = 4            # requests at once
    daily_budget: int = 2000        # TL;DRs asked for per UTC day, all replicas together
    timeout: float = 60.0           # seconds per request

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.model)

    @classmethod
    def from_env(cls, get) -> LlmSettings:
        url = get("PAPERBOT_LLM_URL")
        concurrency = positive_int(get("PAPERBOT_TLDR_CONCURRENCY"), "PAPERBOT_TLDR_CONCURRENCY")
        budget = positive_int(get("PAPERBOT_TLDR_DAILY_BUDGET"), "PAPERBOT_TLDR_DAILY_BUDGET", 0)
        timeout = get("PAPERBOT_LLM_TIMEOUT")
        return cls(
            url=http_url(url, "PAPERBOT_LLM_URL", "http://127.0.0.1:11434/v1") if url else None,
            model=get("PAPERBOT_LLM_MODEL"), key=get("PAPERBOT_LLM_KEY"),
            language=get("PAPERBOT_TLDR_LANGUAGE") or cls.language,
            concurrency=concurrency or cls.concurrency,
            daily_budget=cls.daily_budget if budget is None else budget,
            timeout=parse_duration(timeout, "PAPERBOT_LLM_TIMEOUT") if timeout else cls.timeout)


@dataclasses.dataclass(frozen=True)
class Settings:
    redis_url: str | None = None     # None: an embedded Valkey under data_dir
    data_dir: Path = Path("~/.local/share/paperbot").expanduser()
    prefix: str = "paperbot:"
    model: str = DEFAULT_MODEL
    device: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: str = "auto"          # of the embedding model on CPU: auto, float32, bfloat16
    threads: int | None = None       # torch threads for bulk embedding (None: torch's default)
    index_dtype: str = "float32"     # the in-memory vectors: float32, or float16 (half the memory)
    ann: str = "auto"                # approximate search: auto (from ann_min_rows), off, on
    ann_min_rows: int = ANN_MIN_ROWS
    sources: SourceEndpoints = SourceEndpoints()
    llm: LlmSettings = LlmSettings()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        batch = positive_int(get("PAPERBOT_BATCH_SIZE"), "PAPERBOT_BATCH_SIZE", minimum=0)
        min_rows = positive_int(get("PAPERBOT_ANN_MIN_ROWS"), "PAPERBOT_ANN_MIN_ROWS", minimum=0)
        prefix = get("PAPERBOT_PREFIX") or cls.prefix
        data_home = Path(get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        return cls(
            redis_url=get("REDIS_URL"),
            data_dir=Path(get("PAPERBOT_DATA_DIR") or data_home / "paperbot").expanduser(),
            prefix=prefix if prefix.endswith(":") else prefix + ":",
            model=get("PAPERBOT_MODEL") or DEFAULT_MODEL,
            device=get("PAPERBOT_DEVICE"),
            batch_size=cls.batch_size if batch is None else batch,
            precision=check_precision(get("PAPERBOT_PRECISION")),
            threads=positive_int(get("PAPERBOT_THREADS"), "PAPERBOT_THREADS"),
            index_dtype=choice(get("PAPERBOT_INDEX_DTYPE"), "PAPERBOT_INDEX_DTYPE", INDEX_DTYPES, "float32"),
            ann=choice(get("PAPERBOT_ANN"), "PAPERBOT_ANN", ANN_MODES, "auto"),
            ann_min_rows=ANN_MIN_ROWS if min_rows is None else min_rows,
            sources=SourceEndpoints(
                arxiv_rss=http_url(get("ARXIV_RSS_URL"), "ARXIV_RSS_URL", ARXIV_RSS_URL),
                arxiv_api=http_url(get("ARXIV_API_URL"), "ARXIV_API_URL", ARXIV_API_URL),
                hf_api=http_url(get("HF_API_URL"), "HF_API_URL", HF_API_URL),
                biorxiv_api=http_url(get("PAPERBOT_BIORXIV_URL"), "PAPERBOT_BIORXIV_URL",
                                     BIORXIV_API_URL),
                openreview_api=http_url(get("PAPERBOT_OPENREVIEW_URL"), "PAPERBOT_OPENREVIEW_URL",
                                        OPENREVIEW_API_URL)),
            llm=LlmSettings.from_env(get),
        )


def redacted_url(url: str) -> str:
    """The URL with any password replaced by `***`, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
