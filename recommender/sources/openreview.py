"""OpenReview: the accepted papers of one venue, from its public API v2.

`GET https://api2.openreview.net/notes?content.venueid=ICLR.cc/2025/Conference&offset=0&limit=1000`
answers `{"notes": [...], "count": N}`; an accepted paper carries the venue id in
`content.venueid`, and every content field is wrapped (`content.title.value`). Pages are read
by offset until one comes back short. A paper's id is `openreview:<note id>`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from recommender.config import OPENREVIEW_API_URL
from recommender.paper import Paper
from recommender.sources.errors import SourceError
from recommender.sources.http import HttpClient

log = logging.getLogger(__name__)

PAGE = 1000          # the API's largest page
MAX_PAGES = 50       # 50,000 papers: more than any venue has accepted
SITE = "https://openreview.net"
VENUE_RE = re.compile(r"[A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)*")


def check_venue(venue: str) -> str:
    """The venue id if it is spelled like one (ICLR.cc/2025/Conference), else `SourceError`."""
    venue = (venue or "").strip()
    if not VENUE_RE.fullmatch(venue) or ".." in venue:
        raise SourceError(f"{venue[:80]!r} is not an OpenReview venue id "
                          "(examples: ICLR.cc/2025/Conference, NeurIPS.cc/2024/Conference)")
    return venue


def fetch_venue(venue: str, client: HttpClient, *, base_url: str | None = None,
                limit: int | None = None, page: int = PAGE) -> list[Paper]:
    """The accepted papers of `venue`, in the API's order; [] for a venue without any."""
    venue = check_venue(venue)
    url = f"{(base_url or OPENREVIEW_API_URL).rstrip('/')}/notes"
    what = f"OpenReview papers of {venue}"
    papers: list[Paper] = []
    skipped = 0
    offset = 0
    for _ in range(MAX_PAGES):
        answer = client.get_json(url, {"content.venueid": venue, "offset": offset, "limit": page},
                                 what=what)
        notes = answer.get("notes") if isinstance(answer, dict) else None
        if not isinstance(notes, list):
            raise SourceError(f"{what}: unexpected answer (no list of notes)")
        for note in notes:
            paper = _paper(note, venue) if isinstance(note, dict) else None
            if paper is None:
                skipped += 1
            else:
                papers.append(paper)
        offset += len(notes)
        count = answer.get("count")
        if len(notes) < page or (isinstance(count, int) and offset >= count) or (
                limit is not None and len(papers) >= limit):
            break
    if skipped:
        log.warning("%s: skipped %d note(s) without an id or a title", what, skipped)
    return papers[:limit]


def _paper(note: dict[str, Any], venue: str) -> Paper | None:
    content = note.get("content") if isinstance(note.get("content"), dict) else {}
    note_id = str(note.get("id") or "")
    if not re.fullmatch(r"[\w\-]+", note_id):
        return None
    pdf = _value(content, "pdf")
    extras = {"venue": _value(content, "venue"), "venueid": venue,
              "keywords": _value(content, "keywords") or None,
              "pdf_url": f"{SITE}/pdf?id={note_id}" if pdf else None}
    authors = _value(content, "authors")
    try:
        return Paper.from_dict({
            "id": f"openreview:{note_id}",
            "title": _value(content, "title"),
            "abstract": _value(content, "abstract"),
            "authors": authors if isinstance(authors, list) else [],
            "url": f"{SITE}/forum?id={note_id}",
            "published": _ms_date(note.get("pdate") or note.get("odate") or note.get("cdate")),
            "extras": {key: value for key, value in extras.items() if value},
        }, source="openreview")
    except (ValueError, TypeError, AttributeError):
        return None


def _value(content: dict[str, Any], key: str) -> Any:
    """A v2 content field's value (`{"value": …}`); a bare value is taken as it is."""
    field = content.get(key)
    return field.get("value") if isinstance(field, dict) else field


def _ms_date(value: Any) -> dt.date | None:
    """The UTC date of a time in milliseconds since 1970, as OpenReview gives them."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc).date()
    except (OverflowError, OSError, ValueError):
        return None
