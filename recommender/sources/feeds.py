"""Any journal's or PubMed's feed: RSS 2.0, RSS 1.0 (RDF, as Nature and Science publish) or Atom.

`rss:<url>` and `atom:<url>` read the same way: the document says what it is. Parsed with
defusedxml like arXiv's feeds, so a hostile or broken feed only becomes a `SourceError`; an
item that is not a paper (no title) is skipped with one warning. A paper's id is its DOI when
the item gives one (`prism:doi`, `dc:identifier`, a doi.org link, the guid), else an arXiv id
from its link, else a short hash of the link. The abstract is the description with its HTML
removed (PubMed puts the abstract there).
"""

from __future__ import annotations

import html
import logging
import re
import xml.etree.ElementTree as StdET
from html.parser import HTMLParser
from urllib.parse import urlsplit

from recommender.paper import Paper, doi_id, link_id, parse_arxiv_id, parse_date, parse_doi
from recommender.sources.arxiv import _local, _parse_xml, _rfc822_date
from recommender.sources.errors import SourceError
from recommender.sources.http import HttpClient

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RSS1 = "{http://purl.org/rss/1.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"
PRISM = "{http://prismstandard.org/namespaces/basic/2.0/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_DOI_HINT = re.compile(r"^\s*(?:doi:|https?://(?:dx\.)?doi\.org/|10\.\d{4,9}/)", re.IGNORECASE)


def check_url(kind: str, url: str) -> str:
    """The feed's URL if it is an http(s) URL, else `SourceError`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"{kind}:{url[:80]} is not a feed address; write {kind}:https://… "
                          f"(a journal's or PubMed's RSS or Atom feed)")
    return url.strip()


def fetch_feed(url: str, client: HttpClient, *, kind: str = "rss") -> list[Paper]:
    """The papers of the feed at `url`; [] for a feed without items."""
    what = f"feed {_short(url)}"
    root = _parse_xml(client.get_text(url, what=what), what)
    if root.tag == "rss" and root.find("channel") is not None:
        items = [_rss_item(item) for item in root.find("channel").iterfind("item")]
    elif root.tag == f"{RDF}RDF":
        items = [_rss_item(item, RSS1) for item in root.iterfind(f"{RSS1}item")]
    elif root.tag == f"{ATOM}feed":
        items = [_atom_entry(entry) for entry in root.iterfind(f"{ATOM}entry")]
    else:
        raise SourceError(f"{what} is not an RSS or Atom feed (root element <{_local(root.tag)}>)")
    papers, skipped = [], 0
    for data in items:
        try:
            papers.append(Paper.from_dict(data, source=kind))
        except (ValueError, TypeError, AttributeError):
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d item(s) without a title", what, skipped)
    return papers


def _rss_item(item: StdET.Element, ns: str = "") -> dict:
    link = _text(item, f"{ns}link") or item.get(f"{RDF}about", "")
    guid = _text(item, "guid")
    description = _text(item, f"{ns}description") or _text(item, f"{CONTENT}encoded")
    authors = [_text_of(a) for a in item.iterfind(f"{DC}creator")] or [_text(item, "author")]
    published = (_rfc822_date(_text(item, "pubDate")) or parse_date(_text(item, f"{DC}date"))
                 or parse_date(_text(item, f"{PRISM}publicationDate")))
    dois = [_text(item, f"{PRISM}doi"), *(_text_of(i) for i in item.iterfind(f"{DC}identifier")),
            link, guid]
    return _item(_text(item, f"{ns}title"), link, guid, description, authors, published, dois,
                 [_text_of(c) for c in item.iterfind("category")], _text(item, f"{PRISM}publicationName"))


def _atom_entry(entry: StdET.Element) -> dict:
    links = [(a.get("rel", "alternate"), a.get("href", "")) for a in entry.iterfind(f"{ATOM}link")]
    link = next((href for rel, href in links if rel == "alternate" and href), "")
    entry_id = _text(entry, f"{ATOM}id")
    description = _text(entry, f"{ATOM}summary") or _text(entry, f"{ATOM}content")
    authors = [_text(a, f"{ATOM}name") for a in entry.iterfind(f"{ATOM}author")]
    published = (parse_date(_text(entry, f"{ATOM}published")) or parse_date(_text(entry, f"{ATOM}updated")))
    dois = [_text(entry, f"{PRISM}doi"), *(_text_of(i) for i in entry.iterfind(f"{DC}identifier")),
            *(href for _, href in links), entry_id]
    return _item(_text(entry, f"{ATOM}title"), link or entry_id, entry_id, description, authors,
                 published, dois, [c.get("term", "") for c in entry.iterfind(f"{ATOM}category")],
                 _text(entry, f"{PRISM}publicationName"))


def _item(title, link, guid, description, authors, published, dois, categories, journal) -> dict:
    doi = next((found for text in dois if text and (_DOI_HINT.match(text) or "/doi/" in text)
                and (found := parse_doi(text))), None)
    arxiv_id = parse_arxiv_id(link)
    if doi:
        paper_id = doi_id(doi)
    elif arxiv_id:
        paper_id = arxiv_id
    else:
        paper_id = link_id(link or guid or title)
    extras = {"doi": doi, "journal": journal or None}
    return {"id": paper_id, "title": strip_html(title), "abstract": _PUBMED_PREAMBLE.sub("", strip_html(description), count=1),
            "authors": [strip_html(a) for a in authors if a], "url": link if link.startswith(
                ("https://", "http://")) else "", "published": published,
            "categories": [c for c in categories if c],
            "extras": {key: value for key, value in extras.items() if value}}


_BLOCKS = ("p", "br", "div", "li", "h1", "h2", "h3", "h4", "tr", "td", "section")
# PubMed's description: "<b>J Cell Biol</b>. 2026 Dec 1;…. doi: …. <b>ABSTRACT</b> The text…"
_PUBMED_PREAMBLE = re.compile(r"^.{0,400}?\bABSTRACT\b:?\s*", re.S)


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment, leaving out scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """The text of an HTML fragment (tags dropped, entities decoded, whitespace collapsed)."""
    text = text or ""
    if "<" not in text and "&" not in text:
        return " ".join(text.split())
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return " ".join(html.unescape("".join(parser.parts)).split())


def _text(element: StdET.Element, path: str) -> str:
    found = element.find(path)
    return _text_of(found) if found is not None else ""


def _text_of(element: StdET.Element) -> str:
    """All text inside `element`: an Atom `type="xhtml"` summary nests its HTML as elements."""
    return "".join(element.itertext()).strip()


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"[:100]
