"""bioRxiv and medRxiv: the preprints posted in one subject, from their public details API.

`https://api.biorxiv.org/details/<server>/<from>/<to>/<cursor>?category=<subject>` answers
`{"messages": [{"status", "cursor", "count", "total"}], "collection": [...]}` in pages of 100;
medRxiv is the same API with `medrxiv`. Without dates the source reads the newest posting day:
today (UTC), else the day before, up to `LOOK_BACK_DAYS` back. A paper's id is its DOI
(`doi:10.1101/…`); versions are folded: one paper per DOI, with the newest version's text. The
journal DOI a preprint was published under (`published`) is kept in `extras["published_doi"]`,
so the journal version from a feed is the same paper (`recommender.dedupe`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from recommender.config import BIORXIV_API_URL
from recommender.paper import Paper, doi_id, parse_doi
from recommender.sources.errors import SourceError
from recommender.sources.http import HttpClient

log = logging.getLogger(__name__)

SERVERS = ("biorxiv", "medrxiv")
SITES = {"biorxiv": "https://www.biorxiv.org", "medrxiv": "https://www.medrxiv.org"}
NAMES = {"biorxiv": "bioRxiv", "medrxiv": "medRxiv"}
LOOK_BACK_DAYS = 7     # "the newest posting day" looks this many days back at most
MAX_PAGES = 200        # 20,000 preprints: more than any subject posts in a fortnight
SUBJECT_RE = re.compile(r"[a-z][a-z_]*[a-z]")
# "2026-11-01..2026-11-07" or one day "2026-11-01"
_DATES = re.compile(r"(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?")


def parse_spec(server: str, arg: str) -> tuple[str, tuple[dt.date, dt.date] | None]:
    """`cell_biology` or `cell_biology:2026-11-01..2026-11-07` → (subject, days or None);
    a bad subject or interval is a `SourceError` naming the spec's forms."""
    subject, _, dates = arg.partition(":")
    subject = subject.strip().lower()
    forms = (f"write {server}:SUBJECT or {server}:SUBJECT:YYYY-MM-DD..YYYY-MM-DD, "
             f"with underscores for spaces ({server}:cell_biology)")
    if not SUBJECT_RE.fullmatch(subject):
        raise SourceError(f"{server}:{arg} names no subject; {forms}")
    if not dates:
        return subject, None
    match = _DATES.fullmatch(dates.strip())
    try:
        first = dt.date.fromisoformat(match[1]) if match else None
        last = dt.date.fromisoformat(match[2] or match[1]) if match else None
    except ValueError:
        first = last = None
    if first is None or last is None or last < first:
        raise SourceError(f"{server}:{arg}: {dates!r} is not a date interval; {forms}")
    return subject, (first, last)


def fetch_preprints(
    server: str, subject: str, days: tuple[dt.date, dt.date] | None, client: HttpClient, *,
    base_url: str | None = None, limit: int | None = None, today: dt.date | None = None,
) -> list[Paper]:
    """The preprints of `subject` posted in `days` (both ends included), or on the newest
    posting day when `days` is None; [] when there are none. Newest version per DOI."""
    base = (base_url or BIORXIV_API_URL).rstrip("/")
    if days is not None:
        return _fold(_interval(server, subject, days, client, base, limit), server, limit)
    day = today or dt.datetime.now(dt.timezone.utc).date()
    for _ in range(LOOK_BACK_DAYS):
        records = _interval(server, subject, (day, day), client, base, limit)
        if records:
            return _fold(records, server, limit)
        day -= dt.timedelta(days=1)
    return []


def _interval(server: str, subject: str, days: tuple[dt.date, dt.date], client: HttpClient,
              base: str, limit: int | None) -> list[dict[str, Any]]:
    """Every record of the interval, page by page (the API's cursor)."""
    first, last = (d.isoformat() for d in days)
    span = first if first == last else f"{first}..{last}"
    what = f"{NAMES[server]} {subject} for {span}"
    records: list[dict[str, Any]] = []
    cursor = 0
    for _ in range(MAX_PAGES):
        answer = client.get_json(f"{base}/details/{server}/{first}/{last}/{cursor}",
                                 {"category": subject}, what=what)
        page, total = _page(answer, what)
        records += page
        cursor += len(page)
        if not page or cursor >= total or (limit is not None and len(records) >= limit):
            return records
    log.warning("%s: stopped after %d pages (%d records); ask for fewer days", what, MAX_PAGES,
                len(records))
    return records


def _page(answer: Any, what: str) -> tuple[list[dict[str, Any]], int]:
    """The records of one answer and the interval's total; a wrong shape is a `SourceError`."""
    if not isinstance(answer, dict) or not isinstance(answer.get("collection", []), list):
        raise SourceError(f"{what}: unexpected answer (not a details object with a collection)")
    messages = answer.get("messages")
    message = messages[0] if isinstance(messages, list) and messages else {}
    message = message if isinstance(message, dict) else {}
    records = [r for r in answer.get("collection") or [] if isinstance(r, dict)]
    status = str(message.get("status", "ok"))
    if not records and status != "ok" and "no posts found" not in status.lower():
        raise SourceError(f"{what}: the API says {status[:200]!r}")
    try:
        total = int(message.get("total", len(records)))
    except (TypeError, ValueError):
        total = len(records)
    return records, total


def _fold(records: list[dict[str, Any]], server: str, limit: int | None) -> list[Paper]:
    """One paper per DOI, the newest version's text, in the order the API listed them."""
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    skipped = 0
    for record in records:
        doi = parse_doi(str(record.get("doi") or ""))
        if not doi:
            skipped += 1
            continue
        version = _int(record.get("version"))
        if doi not in newest or version >= newest[doi][0]:
            newest[doi] = (version, record)
    papers = []
    for doi, (version, record) in newest.items():
        try:
            papers.append(_paper(doi, version, record, server))
        except (ValueError, TypeError, AttributeError):
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d record(s) without a DOI or a title", NAMES[server], skipped)
    return papers[:limit]


def _paper(doi: str, version: int, record: dict[str, Any], server: str) -> Paper:
    page = f"{SITES[server]}/content/{doi}v{version}" if version else f"{SITES[server]}/content/{doi}"
    published = parse_doi(str(record.get("published") or ""))
    extras = {"doi": doi, "version": version or None, "server": server,
              "published_doi": published, "type": record.get("type") or None,
              "license": record.get("license") or None, "pdf_url": f"{page}.full.pdf"}
    category = str(record.get("category") or "").strip()
    return Paper.from_dict({
        "id": doi_id(doi),
        "title": record.get("title"),
        "abstract": record.get("abstract"),
        "authors": [a for a in str(record.get("authors") or "").split(";") if a.strip()],
        "url": page,
        "categories": [category] if category else [],
        "published": record.get("date"),
        "extras": {key: value for key, value in extras.items() if value is not None},
    }, source=server)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
