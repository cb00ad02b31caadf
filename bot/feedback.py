"""Where a reaction or a button click becomes stored feedback, for every platform.

An adapter translates its platform's event into a `FeedbackEvent` (who, which post or paper,
which emoji or button, added or removed) and phrases the `Outcome`; everything else happens
here, once: what is feedback at all (👍 ❤️ 🔥 ⭐ like, 👎 dislike, 🔖 save, skin tones and emoji
variants alike), which paper a post shows, the order of one person's events on one post, the
retries while the store is down, and what is recorded or retracted.

One removal rule everywhere: removing an emoji retracts only that emoji's signal (removing 🔖
keeps the 👍), unless the person still shows another emoji of the same kind on the post, when
the platform can tell (Slack can; `still_shown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Literal

from .actions import STORE_DOWN, Actions, Who

log = logging.getLogger(__name__)

# Slack sends emoji by short name (`+1`, `+1::skin-tone-3`), Discord as the character itself
EMOJI_KINDS = {
    "+1": "like", "thumbsup": "like", "heart": "like", "fire": "like", "star": "like",
    "-1": "dislike", "thumbsdown": "dislike", "bookmark": "save",
    "👍": "like", "❤": "like", "🔥": "like", "⭐": "like", "👎": "dislike", "🔖": "save",
}
BUTTON_KINDS = ("like", "dislike", "save", "clear")   # `clear`: the Undo button
# variation selectors (❤ vs ❤️) and skin tones (👍🏽) do not change the meaning
_MODIFIERS = re.compile("[\ufe0e\ufe0f\U0001F3FB-\U0001F3FF]")
# While Redis is down an event is tried again after these delays (seconds), then given up
# and the person told: a reaction has no reply to carry an error.
RETRY_DELAYS = (0.5, 2.0)
NOT_RECORDED = ("paperbot's storage is temporarily unavailable, so your {what} was not recorded. "
                "Please try again in a few minutes.")
FAILED = "Sorry, your {what} could not be recorded; it has been logged for whoever runs paperbot."


def emoji_kind(emoji: str | None) -> str | None:
    """like / dislike / save for a feedback emoji (`+1::skin-tone-3`, `👍🏽`, `❤️`); else None."""
    name = _MODIFIERS.sub("", (emoji or "").split("::", 1)[0])
    return EMOJI_KINDS.get(name)


@dataclasses.dataclass(frozen=True)
class FeedbackEvent:
    """A reaction (`emoji` on the message `post`) or a click (`button` naming `paper_id`)."""

    who: Who                              # the person, and the channel it counts for (or None)
    added: bool = True                    # False: the reaction was removed
    emoji: str | None = None
    post: tuple[str, str] | None = None   # (where paperbot remembers its posts, message id)
    button: str | None = None             # one of BUTTON_KINDS
    paper_id: str | None = None
    # kinds the person's remaining reactions on the post still express, when the platform can
    # tell (None: unknown). Asked only for a removal of feedback on one of paperbot's posts.
    still_shown: Callable[[], Awaitable[set[str]]] | None = None

    @property
    def what(self) -> str:
        """The event in a person's words: "👍 reaction", "removal of your 🔖", "👍 click"."""
        if self.button is not None:
            return "click"
        return f"{self.emoji} reaction" if self.added else f"removal of your {self.emoji}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of an event, for the adapter to phrase (`text` is a default wording)."""

    status: Literal["ignored", "done", "not_recorded", "failed"]   # done: recorded, or refused
    text: str = ""
    paper_id: str | None = None
    kind: str | None = None


class FeedbackPath:
    """The one path from a platform's feedback event to the store."""

    def __init__(self, actions: Actions, retry_delays: tuple[float, ...] = RETRY_DELAYS):
        self.actions = actions
        self.retry_delays = retry_delays
        self._in_order = InOrder()

    async def handle(self, event: FeedbackEvent) -> Outcome:
        """Record or retract what the event says; never raises."""
        kind = event.button if event.button is not None else emoji_kind(event.emoji)
        if kind is None or (event.button is not None and kind not in BUTTON_KINDS):
            return Outcome("ignored")
        # one person's events on one post are applied in the order they came (a 👍 and its
        # removal a moment later must not land the other way round); others' go on at once
        async with self._in_order(event.who.person, event.post or event.paper_id):
            try:
                return await self._retrying(lambda: self._apply(event, kind))
            except STORE_DOWN as exc:
                log.warning("%s by %s not recorded, storage unavailable: %s",
                            event.what, event.who.person, exc)
                return Outcome("not_recorded", NOT_RECORDED.format(what=event.what), event.paper_id, kind)
            except Exception:
                log.exception("recording %s by %s on %s failed", event.what, event.who.person,
                              event.post or event.paper_id)
                return Outcome("failed", FAILED.format(what=event.what), event.paper_id, kind)

    async def _retrying(self, attempt: Callable[[], Awaitable[Outcome]]) -> Outcome:
        """`attempt()`, again after each retry delay while Redis is down (feedback is
        idempotent: a retry stores it once); the last attempt's error goes to the caller."""
        for delay in self.retry_delays:
            try:
                return await attempt()
            except STORE_DOWN as exc:
                # info: the operator's one warning line is the outcome's (recorded, or not)
                log.info("feedback not stored yet, storage unavailable (retry in %ss): %s", delay, exc)
                await asyncio.sleep(delay)
        return await attempt()

    async def _apply(self, event: FeedbackEvent, kind: str) -> Outcome:
        rec = self.actions.rec
        paper_id = event.paper_id
        if paper_id is None:
            if event.post is None:
                return Outcome("ignored")
            paper_id = await asyncio.to_thread(rec.paper_of_post, *event.post)
            if paper_id is None:
                return Outcome("ignored", kind=kind)   # not one of paperbot's papers
        if not event.added:
            if event.still_shown is not None and kind in await event.still_shown():
                return Outcome("done", paper_id=paper_id, kind=kind)   # ❤️ gone, 👍 stays
            kind = "un" + kind
        log.info("feedback %s on %s from %s (%s)", kind, paper_id, event.who.person, event.what)
        reply = await asyncio.to_thread(self.actions.react, event.who, paper_id, kind)
        return Outcome("done", reply.text, paper_id, kind)


class InOrder:
    """An asyncio lock per key, kept only while someone holds or awaits it. Locks are fair, and
    an event's task takes its lock before its first await, so events run in arrival order."""

    def __init__(self) -> None:
        self._locks: dict[tuple, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, *key):
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
