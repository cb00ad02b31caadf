"""Where papers come from: local files, arXiv (daily RSS listing, API), Hugging Face Daily Papers,
bioRxiv and medRxiv (their details API), any journal's or PubMed's RSS/Atom feed, OpenReview.

`read_source(spec)` turns the one-line spec that a CLI flag or a config holds into papers, so
callers need not know which module serves which source. Every failure is a `SourceError`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

from recommender.config import SourceEndpoints
from recommender.paper import Paper
from recommender.sources import biorxiv
from recommender.sources.arxiv import check_category, fetch_listing, search_api
from recommender.sources.errors import SourceError, Stopped
from recommender.sources.feeds import check_url, fetch_feed
from recommender.sources.files import FORMATS, read_file
from recommender.sources.hf_daily import fetch_daily
from recommender.sources.http import HttpClient, StopFlag
from recommender.sources.openreview import check_venue, fetch_venue

__all__ = ["HttpClient", "SourceError", "Stopped", "read_file", "read_source"]

SPEC_FORMS = (
    "a source is a file (.jsonl, .json, .csv, each optionally .gz), "
    "arxiv:CATEGORY (today's listing, e.g. arxiv:cs.LG), "
    "arxiv-api:CATEGORY (newest papers from the arXiv API), "
    "hf-daily (the latest Hugging Face Daily Papers) or hf-daily:YYYY-MM-DD, "
    "biorxiv:SUBJECT or medrxiv:SUBJECT (the newest posting day, e.g. biorxiv:cell_biology; "
    "a span: biorxiv:cell_biology:2026-11-01..2026-11-07), "
    "rss:URL or atom:URL (a journal's or PubMed's feed), "
    "openreview:VENUE (accepted papers, e.g. openreview:ICLR.cc/2025/Conference)"
)


def read_source(
    spec: str, client: HttpClient | None = None, limit: int | None = None,
    endpoints: SourceEndpoints = SourceEndpoints(), stop: StopFlag | None = None,
) -> Iterator[Paper]:
    """The papers of `spec` (see `SPEC_FORMS`), at most `limit`, from `endpoints` (the core
    settings' `sources`: a mirror, a proxy, a test server).

    The spec is checked now, before any request or file read; the fetch itself happens on the
    first `next()`. Without a `client`, a default one is made for this fetch and closed after
    it; setting `stop` ends its download at once with `Stopped`.
    """
    spec = spec.strip()
    if Path(spec).is_file():
        return read_file(spec, limit)
    kind, _, arg = spec.partition(":")
    fetch: Callable[[HttpClient], list[Paper]]
    if kind == "arxiv":
        fetch = functools.partial(fetch_listing, check_category(arg), base_url=endpoints.arxiv_rss)
    elif kind == "arxiv-api":
        fetch = functools.partial(search_api, check_category(arg), max_results=limit or 100,
                                  base_url=endpoints.arxiv_api)
    elif kind == "hf-daily":
        fetch = functools.partial(fetch_daily, _parse_day(arg) if arg else None, base_url=endpoints.hf_api)
    elif kind in biorxiv.SERVERS:
        subject, days = biorxiv.parse_spec(kind, arg)
        fetch = functools.partial(biorxiv.fetch_preprints, kind, subject, days,
                                  base_url=endpoints.biorxiv_api, limit=limit)
    elif kind in ("rss", "atom"):
        fetch = functools.partial(fetch_feed, check_url(kind, arg), kind=kind)
    elif kind == "openreview":
        fetch = functools.partial(fetch_venue, check_venue(arg), base_url=endpoints.openreview_api,
                                  limit=limit)
    elif "/" in spec or "\\" in spec or spec.lower().removesuffix(".gz").endswith(tuple(FORMATS)):
        raise SourceError(f"no such file: {spec} ({SPEC_FORMS})")
    else:
        raise SourceError(f"unknown source {spec!r} ({SPEC_FORMS})")
    return _fetch(fetch, client, limit, stop)


def _fetch(fetch: Callable[[HttpClient], list[Paper]], client: HttpClient | None,
           limit: int | None, stop: StopFlag | None) -> Iterator[Paper]:
    if client is None:
        with HttpClient(stop=stop) as own_client:
            papers = fetch(own_client)
    else:
        papers = fetch(client)
    yield from papers[:limit]


def _parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise SourceError(f"hf-daily:{text} is not a date; write hf-daily:YYYY-MM-DD") from None
