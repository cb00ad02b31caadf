"""The `Paper` record and the rules that give every paper one canonical id.

arXiv papers are keyed by their arXiv id without the version (v1 and v2 are one paper).
Papers with a DOI (bioRxiv, medRxiv, journal feeds) are `doi:<doi in lower case>` (an arXiv
DOI, 10.48550/arXiv.…, is the arXiv id), OpenReview papers `openreview:<note id>`, feed items
with neither a link's short hash `u:…`; the rest get a stable id from their normalised title
`t:…`, so the same paper read twice from any file gets the same id. `paper_key` turns what a
person types (an id, a DOI, a bioRxiv, OpenReview or arXiv link) into such an id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import unicodedata
from typing import Any

# New-style ids (0704.0001 .. 2401.01234) and old-style ids (hep-th/9901001, math.GT/0309136).
_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]+(?:\.[A-Za-z]{2})?/\d{7}"
ARXIV_ID_RE = re.compile(rf"(?:arxiv:)?({_NEW_ID}|{_OLD_ID})(?:v\d+)?", re.IGNORECASE)
_ARXIV_URL_RE = re.compile(
    rf"arxiv\.org/(?:abs|pdf|html|format)/({_NEW_ID}|{_OLD_ID})(?:v\d+)?(?:\.pdf)?",
    re.IGNORECASE,
)


def parse_arxiv_id(text: str) -> str | None:
    """The versionless arXiv id in `text` (a bare id, `arXiv:` id, or abs/pdf/html URL), else None."""
    text = (text or "").strip()
    match = _ARXIV_URL_RE.search(text)
    if match:
        return _normalise_old_id(match.group(1))
    match = ARXIV_ID_RE.fullmatch(text)
    if match:
        return _normalise_old_id(match.group(1))
    return None


def _normalise_old_id(arxiv_id: str) -> str:
    # Old-style archive names are lower case; the subject class (".GT") keeps its case.
    if "/" in arxiv_id:
        archive, number = arxiv_id.split("/", 1)
        head, dot, sub = archive.partition(".")
        return f"{head.lower()}{dot}{sub.upper()}/{number}"
    return arxiv_id


def normalise_title(title: str) -> str:
    """Lower case letters and digits only, so punctuation, case and accents don't split a paper.

    Letters of every script count, so titles in Chinese or Greek get ids of their own.
    """
    text = unicodedata.normalize("NFKD", title or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def title_id(title: str) -> str:
    """Stable id for a paper without an arXiv id: a short hash of its normalised title."""
    digest = hashlib.sha1(normalise_title(title).encode()).hexdigest()[:16]
    return f"t:{digest}"


# A DOI: "10." registrant "/" suffix; in links it ends at a query, fragment or space.
_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>?#&]+)", re.IGNORECASE)
# bioRxiv/medRxiv links add the version and the page: …/10.1101/2024.01.02.123456v2.full.pdf
_PREPRINT_TAIL = re.compile(r"(?:v\d+)?(?:\.(?:full|abstract|supplementary-material))?(?:\.pdf|\.txt)?/?$")
_OPENREVIEW_URL = re.compile(r"openreview\.net/(?:forum|pdf)\?(?:.*&)?id=([\w\-]+)", re.IGNORECASE)


def parse_doi(text: str) -> str | None:
    """The DOI in `text` (bare, `doi:`, a doi.org or bioRxiv link) in lower case, else None.
    A bioRxiv/medRxiv (10.1101) DOI loses a link's version and page suffix."""
    match = _DOI_RE.search(text or "")
    if not match:
        return None
    doi = match[1].rstrip(".,;:)]}'").lower()
    if doi.startswith("10.1101/"):
        doi = _PREPRINT_TAIL.sub("", doi)
    return doi


def doi_id(doi: str) -> str:
    """The paper id of a DOI: arXiv's own DOIs are the arXiv id, others `doi:<doi>`."""
    doi = (doi or "").strip().lower()
    if doi.startswith("10.48550/arxiv."):
        found = parse_arxiv_id(doi.removeprefix("10.48550/arxiv."))
        if found:
            return found
    return f"doi:{doi}"


def link_id(url: str) -> str:
    """Stable id for a feed item with neither DOI nor arXiv link: a short hash of its link."""
    link = (url or "").strip().split("#", 1)[0]
    return "u:" + hashlib.sha1(link.encode()).hexdigest()[:16]


def paper_key(text: str) -> str | None:
    """The id a typed reference names: an arXiv id or link, a DOI or DOI link (bioRxiv too),
    an OpenReview link, `openreview:<id>`; None when it names none of them."""
    text = (text or "").strip()
    found = parse_arxiv_id(text)
    if found:
        return found
    match = _OPENREVIEW_URL.search(text)
    if match:
        return f"openreview:{match[1]}"
    if re.fullmatch(r"openreview:[\w\-]+", text):
        return text
    doi = parse_doi(text)
    return doi_id(doi) if doi else None


def content_hash(text: str) -> str:
    """Key of a text's vector in the embedding cache (together with the model's tag)."""
    return hashlib.sha1(text.encode()).hexdigest()


def clean_text(text: Any) -> str:
    """Collapse whitespace runs (listings hard-wrap abstracts) and strip."""
    return " ".join(str(text or "").split())


_NOT_ARXIV = ("t:", "doi:", "u:", "openreview:")
_GITHUB_REPO = re.compile(r"https?://(?:www\.)?github\.com/[\w.-]+/[\w.-]+", re.IGNORECASE)


@dataclasses.dataclass
class Paper:
    """One paper, whatever source it came from. Plain data: safe to pass between layers."""

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = dataclasses.field(default_factory=list)
    url: str = ""
    categories: list[str] = dataclasses.field(default_factory=list)
    published: dt.date | None = None
    source: str = ""
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def text(self) -> str:
        """What the embedder reads: title and abstract."""
        return f"{self.title}\n{self.abstract}".strip()

    @property
    def content_hash(self) -> str:
        """Hash of the embedded text: the embedding cache key together with the model."""
        return content_hash(self.text)

    @property
    def arxiv_id(self) -> str | None:
        return None if self.id.startswith(_NOT_ARXIV) else parse_arxiv_id(self.id)

    @property
    def pdf_url(self) -> str | None:
        """arXiv's PDF for an arXiv paper, else the one the source gave (bioRxiv, OpenReview)."""
        if self.arxiv_id:
            return f"https://arxiv.org/pdf/{self.arxiv_id}"
        given = self.extras.get("pdf_url")
        return given if isinstance(given, str) and given.startswith(("https://", "http://")) else None

    @property
    def code_url(self) -> str | None:
        """The code repository: the one the source names (Hugging Face's `github_repo`), else
        the first GitHub repository link in the abstract, as many arXiv abstracts give it."""
        given = self.extras.get("github_repo")
        if isinstance(given, str) and given.startswith(("https://", "http://")):
            return given
        match = _GITHUB_REPO.search(self.abstract)
        return match[0].rstrip(".") if match else None

    @property
    def upvotes(self) -> int | None:
        """Hugging Face Daily Papers upvotes, when the source gave them."""
        value = self.extras.get("upvotes")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def tldr(self) -> str | None:
        """The one-sentence TL;DR a model wrote (`recommender.tldr`), when one did."""
        value = self.extras.get("tldr")
        return value if isinstance(value, str) and value else None

    def links(self) -> list[tuple[str, str]]:
        """(label, address) of the card's links beyond the paper's own page: PDF, code."""
        return [(label, url) for label, url in (("PDF", self.pdf_url), ("code", self.code_url)) if url]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> Paper:
        """Build a Paper from a loose dict (file rows, API objects, user input).

        A given `id` is kept (an arXiv id loses its version); without one, an arXiv id is looked
        for in `arxiv_id`/`url`/`abs`/`pdf`, and failing that the id comes from the title.
        """
        title = clean_text(data.get("title"))
        if not title:
            raise ValueError("a paper needs a title")
        abstract = clean_text(data.get("abstract") or data.get("summary"))
        paper_id = _pick_id(data, title)
        authors = data.get("authors") or []
        if isinstance(authors, str):  # "A; B" keeps "Last, First" names whole; else "A, B and C"
            authors = re.split(r";" if ";" in authors else r",| and ", authors)
        authors = [clean_text(a.get("name") if isinstance(a, dict) else a) for a in authors]
        categories = data.get("categories") or []
        if isinstance(categories, str):
            categories = re.split(r"[\s,;]+", categories)
        url = clean_text(data.get("url") or data.get("abs"))
        if not url and not paper_id.startswith("t:") and parse_arxiv_id(paper_id):
            url = f"https://arxiv.org/abs/{paper_id}"
        known = {"id", "title", "abstract", "summary", "authors", "url", "abs", "categories",
                 "published", "date", "source", "extras", "arxiv_id"}
        extras = dict(data.get("extras") or {})
        extras.update({k: v for k, v in data.items() if k not in known and v is not None})
        return cls(
            id=paper_id,
            title=title,
            abstract=abstract,
            authors=[a for a in authors if a],
            url=url,
            categories=[str(c) for c in categories if str(c).strip()],
            published=parse_date(data.get("published") or data.get("date")),
            source=str(data.get("source") or source),
            extras=extras,
        )


def _pick_id(data: dict[str, Any], title: str) -> str:
    given = clean_text(data.get("id"))
    if given:
        return parse_arxiv_id(given) or given
    for key in ("arxiv_id", "url", "abs", "pdf"):
        found = parse_arxiv_id(clean_text(data.get(key)))
        if found:
            return found
    return title_id(title)


def parse_date(value: Any) -> dt.date | None:
    """A date from a date, datetime or ISO-ish string ('2025-03-18', '2025-03-18T09:00:00Z')."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


@dataclasses.dataclass
class Result:
    """A paper picked or found for someone: its score and the reason, in a person's words."""

    paper: Paper
    score: float
    why: str


def shorten(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters with an ellipsis (titles inside a reason)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
