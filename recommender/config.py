"""Settings, read once from the environment (and a `.env` file when present).

Every setting is listed with a comment in `.env.example`. Secrets never get a default and are
never logged; `redacted_url` hides the password in a Redis URL for messages.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import load_dotenv

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Texts per embedding batch: on a 2-core CPU with bfloat16, 32 embeds ~145 abstracts/s, 64 ~105/s.
DEFAULT_BATCH_SIZE = 32


def positive_int(value: str | None, name: str, minimum: int = 1) -> int | None:
    """A whole-number setting read from text: None when empty, ValueError (one line, for a
    person) when not a whole number >= `minimum`."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < minimum:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(text)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "paperbot"


@dataclasses.dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    data_dir: Path = dataclasses.field(default_factory=_default_data_dir)
    prefix: str = "paperbot:"
    model: str = DEFAULT_MODEL
    device: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        if env is None:
            load_dotenv(override=False)
            env = dict(os.environ)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        batch = positive_int(get("PAPERBOT_BATCH_SIZE"), "PAPERBOT_BATCH_SIZE", minimum=0)
        prefix = get("PAPERBOT_PREFIX") or cls.prefix
        return cls(
            redis_url=get("REDIS_URL"),
            data_dir=Path(get("PAPERBOT_DATA_DIR") or _default_data_dir()).expanduser(),
            prefix=prefix if prefix.endswith(":") else prefix + ":",
            model=get("PAPERBOT_MODEL") or DEFAULT_MODEL,
            device=get("PAPERBOT_DEVICE"),
            batch_size=cls.batch_size if batch is None else batch,
        )


def redacted_url(url: str) -> str:
    """The URL with any password replaced by `***`, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
