"""arXiv: the daily announcement listing (RSS) and the search API (Atom).

The RSS listing is what arXiv announced today in a category: the bot's daily feed. The API
answers "newest papers in a category" on any day (backfills, weekends). Both are parsed with
defusedxml, so a hostile or broken feed can only ever become a `SourceError`; a single item
that is not a paper (no title) is skipped with a warning.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import xml.etree.ElementTree as StdET
from collections.abc import Iterable

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from recommender.config import ARXIV_API_URL, ARXIV_RSS_URL
from recommender.paper import Paper, parse_arxiv_id
from recommender.sources.errors import SourceError
from recommender.sources.http import HttpClient

log = logging.getLogger(__name__)


# `replace` and `replace-cross` announce new versions of old papers: not news for a daily feed.
DAILY_ANNOUNCE_TYPES = ("new", "cross")

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
DC = "{http://purl.org/dc/elements/1.1/}"

# Archive, optionally a subject class: cs.LG, hep-th, math.GT, astro-ph.CO, cond-mat.mes-hall.
CATEGORY_RE = re.compile(r"[a-z][a-z\-]*(?:\.[A-Za-z][A-Za-z\-]*)?")
# An RSS description: "arXiv:2401.01234v1 Announce Type: new \nAbstract: The text ..."
_RSS_PREAMBLE = re.compile(r"^\s*arXiv:.*?Abstract:", re.S)


def check_category(category: str) -> str:
    """The category if it is spelled like an arXiv category (cs.LG, hep-th), else `SourceError`."""
    if not CATEGORY_RE.fullmatch(category or ""):
        raise SourceError(
            f"{category!r} is not an arXiv category (examples: cs.LG, hep-th, math.GT)")
    return category


def fetch_listing(
    category: str,
    client: HttpClient,
    *,
    base_url: str | None = None,
    announce_types: Iterable[str] = DAILY_ANNOUNCE_TYPES,
) -> list[Paper]:
    """Today's announced papers in `category` from the RSS listing; [] on days without one
    (weekends, holidays). Keeps new submissions and cross-lists unless `announce_types` says
    otherwise ("replace", "replace-cross")."""
    check_category(category)
    base = base_url or ARXIV_RSS_URL
    what = f"arXiv listing for {category}"
    root = _parse_xml(client.get_text(f"{base.rstrip('/')}/{category}", what=what), what)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise SourceError(f"{what} is not an RSS feed (root element <{_local(root.tag)}>)")
    keep = set(announce_types)
    papers = []
    for item in channel.iterfind("item"):
        announce_type = _text(item, f"{ARXIV}announce_type") or "new"
        if announce_type not in keep:
            continue
        arxiv_id = parse_arxiv_id(_text(item, "link")) or parse_arxiv_id(
            _text(item, "guid").removeprefix("oai:arXiv.org:"))
        if not arxiv_id:
            continue
        _add_paper(papers, what, {
            "id": arxiv_id,
            "title": _text(item, "title"),
            "abstract": _RSS_PREAMBLE.sub("", _text(item, "description"), count=1),
            "authors": _text(item, f"{DC}creator"),
            "categories": [c.text.strip() for c in item.iterfind("category") if c.text],
            "published": _rfc822_date(_text(item, "pubDate")),
            "extras": {"announce_type": announce_type},
        }, source="arxiv")
    return papers


def search_api(
    category: str,
    client: HttpClient,
    max_results: int = 100,
    start: int = 0,
    *,
    base_url: str | None = None,
) -> list[Paper]:
    """The newest submissions in `category` from the arXiv API, newest first; [] past the end."""
    check_category(category)
    base = base_url or ARXIV_API_URL
    what = f"arXiv API search for {category}"
    params = {"search_query": f"cat:{category}", "sortBy": "submittedDate",
              "sortOrder": "descending", "start": start, "max_results": max_results}
    return _feed_papers(_parse_xml(client.get_text(base, params, what=what), what), what)


def fetch_ids(ids: list[str], client: HttpClient, *, base_url: str | None = None) -> list[Paper]:
    """The papers of these arXiv ids from the API (`id_list`); an id arXiv does not know is
    simply absent from the answer."""
    if not ids:
        return []
    what = f"arXiv API lookup of {len(ids)} id{'s' if len(ids) != 1 else ''}"
    params = {"id_list": ",".join(ids), "max_results": len(ids)}
    text = client.get_text(base_url or ARXIV_API_URL, params, what=what)
    return _feed_papers(_parse_xml(text, what), what)


def _feed_papers(root: StdET.Element, what: str) -> list[Paper]:
    """The papers of an arXiv API (Atom) answer; an error entry is a `SourceError`."""
    if root.tag != f"{ATOM}feed":
        raise SourceError(f"{what} is not an Atom feed (root element <{_local(root.tag)}>)")
    papers = []
    for entry in root.iterfind(f"{ATOM}entry"):
        entry_id = _text(entry, f"{ATOM}id")
        if "/api/errors" in entry_id:
            raise SourceError(f"{what} failed: arXiv API error: {_text(entry, f'{ATOM}summary')}")
        arxiv_id = parse_arxiv_id(entry_id)
        if not arxiv_id:
            continue
        primary = entry.find(f"{ARXIV}primary_category")
        categories = [primary.get("term")] if primary is not None else []
        categories += [c.get("term") for c in entry.iterfind(f"{ATOM}category")]
        _add_paper(papers, what, {
            "id": arxiv_id,
            "title": _text(entry, f"{ATOM}title"),
            "abstract": _text(entry, f"{ATOM}summary"),
            "authors": [_text(a, f"{ATOM}name") for a in entry.iterfind(f"{ATOM}author")],
            "categories": list(dict.fromkeys(c for c in categories if c)),
            "published": _text(entry, f"{ATOM}published"),
            "extras": _arxiv_extras(entry),
        }, source="arxiv-api")
    return papers


def _add_paper(papers: list[Paper], what: str, data: dict, source: str) -> None:
    """Append the paper of one item or entry; one that is not a paper (no title) is skipped
    with a warning, and the rest of the feed is kept."""
    try:
        papers.append(Paper.from_dict(data, source=source))
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("%s: skipped paper %s (%s)", what, data.get("id"), exc)


def _arxiv_extras(entry: StdET.Element) -> dict[str, str]:
    extras = {key: _text(entry, f"{ARXIV}{key}") for key in ("comment", "journal_ref", "doi")}
    return {key: value for key, value in extras.items() if value}


def _parse_xml(text: str, what: str) -> StdET.Element:
    try:
        return SafeET.fromstring(text)
    except StdET.ParseError as exc:
        raise SourceError(f"{what} returned malformed XML ({exc})") from None
    except DefusedXmlException as exc:
        raise SourceError(f"{what} returned unsafe XML ({type(exc).__name__})") from None


def _text(element: StdET.Element, path: str) -> str:
    return (element.findtext(path) or "").strip()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _rfc822_date(text: str) -> dt.date | None:
    """The date of an RSS `pubDate` ('Mon, 08 Jan 2024 00:00:00 -0500'), in its own time zone."""
    try:
        return email.utils.parsedate_to_datetime(text).date()
    except (TypeError, ValueError):
        return None
