"""What a person sees when something fails: one friendly ephemeral line, never a traceback.

The operator gets the traceback in the log instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..actions import STORE_DOWN

log = logging.getLogger(__name__)

SORRY = ("Sorry, something went wrong with that; it has been logged for whoever runs paperbot. "
         "Please try again.")
UNAVAILABLE = "paperbot's storage is temporarily unavailable; please try again in a few minutes."


@contextlib.asynccontextmanager
async def answered_errors(respond: Callable[..., Awaitable[Any]], what: str) -> AsyncIterator[None]:
    """Turn any exception inside into an ephemeral apology (via `respond`) and a logged traceback."""
    try:
        yield
    except STORE_DOWN as exc:
        log.warning("Slack %s: storage unavailable: %s", what, exc)
        await say_privately(respond, UNAVAILABLE)
    except Exception:
        log.exception("Slack %s failed", what)
        await say_privately(respond, SORRY)


async def say_privately(respond: Callable[..., Awaitable[Any]], text: str) -> None:
    try:
        await respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:  # an expired response_url, Slack down: nothing more to do than log
        log.warning("could not tell the person %r: %s", text[:60], exc)


def api_error(exc: Exception) -> str:
    """Slack's error code of a failed Web API call (`not_in_channel`), or its HTTP status."""
    response = getattr(exc, "response", None)
    data = getattr(response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(response, 'status_code', '?')}"
