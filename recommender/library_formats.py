"""Reference-manager files in and out, as plain data: BibTeX, RIS, a Zotero CSV export, or a
plain list of arXiv ids, arXiv links and DOIs.

`parse_library(text, name)` gives one `LibraryEntry` per reference; `to_bibtex`, `to_ris` and
`to_csv` write papers back. Nothing here touches Redis or the network, so each format is
tested on text alone. arXiv ids are found where Zotero and Better BibTeX put them: `eprint`,
`url`, `doi` (10.48550/arXiv.…), `note` / `number` / `Extra` ("arXiv:2401.01234 [cs]").
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import bibtexparser
import rispy
from bibtexparser.middlewares import LatexDecodingMiddleware
from bibtexparser.model import Entry, Field

from .paper import Paper, clean_text, parse_arxiv_id

FORMATS = ("bibtex", "ris", "csv", "ids")
_ID = r"(\d{4}\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]+(?:\.[A-Za-z]{2})?/\d{7}(?:v\d+)?)"
# "arXiv:2401.01234", "arXiv: 2401.01234", "arXiv 2401.01234", "arxiv.org/abs/2401.01234", "arXiv.2401.01234"
_ARXIV_IN_TEXT = re.compile(r"arxiv(?:\.org/(?:abs|pdf|html)/|\s*[:.]\s*|\s+)" + _ID, re.IGNORECASE)
_ARXIV_DOI = re.compile(r"10\.48550/arxiv\." + _ID, re.IGNORECASE)
_DOI = re.compile(r"\b(10\.\d{4,9}/\S+)")
_HF_PAPER = re.compile(r"huggingface\.co/papers/" + _ID, re.IGNORECASE)
_WRAPPED_LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|[^>]*)?>")
# Zotero's CSV export: the header names paperbot reads (others are ignored)
CSV_COLUMNS = ("Key", "Item Type", "Publication Year", "Author", "Title", "Publication Title",
               "DOI", "Url", "Abstract Note", "Date", "Extra", "Manual Tags")


@dataclasses.dataclass
class LibraryEntry:
    """One reference of an imported file; `problem` says why it cannot be read at all."""

    label: str                      # how a report names it: the citation key, title or id
    title: str = ""
    abstract: str = ""
    authors: list[str] = dataclasses.field(default_factory=list)
    year: str = ""
    date: str = ""                  # a full date when the file gives one (2025-03-18)
    arxiv_id: str | None = None
    doi: str = ""
    url: str = ""
    categories: list[str] = dataclasses.field(default_factory=list)
    problem: str = ""

    def paper_dict(self) -> dict[str, Any]:
        """What `Paper.from_dict` needs to store this entry from the file's own text."""
        data: dict[str, Any] = {"title": self.title, "abstract": self.abstract,
                                "authors": self.authors, "categories": self.categories,
                                "url": self.url, "source": "import"}
        if self.arxiv_id:
            data["id"] = self.arxiv_id
        if self.doi:
            data["doi"] = self.doi
        if re.fullmatch(r"\d{4}", self.year or ""):
            data["year"] = self.year   # kept in `extras`, for the export
        day = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})\b.*", self.date.strip())
        if day:   # a year alone is no date: the card would show 1 January
            data["published"] = f"{day[1]}-{int(day[2]):02d}-{int(day[3]):02d}"
        return data


def find_arxiv_id(*texts: str) -> str | None:
    """The arXiv id named in any of `texts` (an id, an arXiv link or DOI, "arXiv:…" in a note)."""
    for text in texts:
        text = clean_text(text)
        if not text:
            continue
        found = parse_arxiv_id(text)
        for pattern in (_ARXIV_DOI, _ARXIV_IN_TEXT, _HF_PAPER):
            match = None if found else pattern.search(text)
            if match:
                found = parse_arxiv_id(match[1])
        if found:
            return found
    return None


def detect_format(text: str, name: str = "") -> str:
    """bibtex, ris, csv or ids, from the file name's extension, else from the text."""
    ext = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    by_ext = {"bib": "bibtex", "bibtex": "bibtex", "ris": "ris", "csv": "csv", "txt": "ids"}
    if ext in by_ext:
        return by_ext[ext]
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("@") or re.search(r"^\s*@\w+\s*[{(]", text, re.MULTILINE):
        return "bibtex"
    if re.match(r"TY\s{1,2}-", head):
        return "ris"
    first = head.split("\n", 1)[0]
    if '"Title"' in first or first.startswith(("Key,", '"Key"')):
        return "csv"
    return "ids"


def parse_library(text: str, name: str = "", fmt: str | None = None) -> list[LibraryEntry]:
    """The references of a file's text, in its format (`fmt`, else `detect_format`)."""
    fmt = fmt or detect_format(text, name)
    text = text.lstrip("\ufeff")
    return {"bibtex": parse_bibtex, "ris": parse_ris, "csv": parse_zotero_csv,
            "ids": parse_id_list}[fmt](text)


# -- reading --------------------------------------------------------------------------------
def parse_bibtex(text: str) -> list[LibraryEntry]:
    # `\textbraceleft{}` is how `to_bibtex` writes a lone brace; LaTeX decoding would drop it
    text = re.sub(r"\\textbrace(left|right)(?:\{\}|\b)",
                  lambda m: "\\{" if m[1] == "left" else "\\}", text)
    library = bibtexparser.parse_string(text, append_middleware=[LatexDecodingMiddleware()])
    entries = []
    for entry in library.entries:
        fields = {f.key.lower(): clean_text(f.value) for f in entry.fields
                  if isinstance(f.value, str)}
        prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "arxiv").lower()
        arxiv_id = find_arxiv_id(fields.get("eprint", "") if prefix == "arxiv" else "",
                                 fields.get("url", ""), fields.get("doi", ""),
                                 fields.get("note", ""), fields.get("number", ""),
                                 fields.get("journal", ""), fields.get("howpublished", ""))
        categories = [fields["primaryclass"]] if "." in fields.get("primaryclass", "") else []
        entries.append(LibraryEntry(
            label=entry.key, title=fields.get("title", ""),
            abstract=fields.get("abstract", ""), authors=_bibtex_names(fields.get("author", "")),
            year=(fields.get("year") or fields.get("date", ""))[:4], date=fields.get("date", ""),
            arxiv_id=arxiv_id, doi=_doi(fields.get("doi", "")),
            url=fields.get("url", ""), categories=categories))
    for block in library.failed_blocks:
        line = f"line {block.start_line + 1}" if block.start_line is not None else "a block"
        entries.append(LibraryEntry(label=f"BibTeX at {line}",
                                    problem="not valid BibTeX (unbalanced braces or a missing comma?)"))
    return entries


def _unbrace(text: str) -> str:
    return clean_text(text.replace("{", "").replace("}", ""))


def _bibtex_names(text: str) -> list[str]:
    """BibTeX's "Last, First and Other, Name" as ["First Last", "Name Other"]."""
    names = []
    for name in re.split(r"\s+and\s+", _unbrace(text)):
        last, comma, first = name.partition(",")
        names.append(clean_text(f"{first} {last}" if comma else name))
    return [n for n in names if n and n.lower() != "others"]


def _doi(text: str) -> str:
    match = _DOI.search(text or "")
    return match[1].rstrip(".") if match else ""


def parse_ris(text: str) -> list[LibraryEntry]:
    try:
        records = rispy.loads(text, skip_unknown_tags=True)
    except Exception as exc:   # rispy raises plain IOError/ValueError on a broken file
        raise ValueError(f"not a readable RIS file ({exc})") from None
    entries = []
    for n, rec in enumerate(records, 1):
        def first(*keys: str) -> str:
            for key in keys:
                value = rec.get(key)
                if isinstance(value, list):
                    value = value[0] if value else ""
                if value:
                    return clean_text(value)
            return ""
        urls = [u for u in rec.get("urls") or [] if isinstance(u, str)]
        notes = [str(x) for x in (rec.get("notes") or [])] + [first("note")]
        title = first("title", "primary_title")
        doi = first("doi")
        authors = [*(rec.get("authors") or []), *(rec.get("first_authors") or [])]
        entries.append(LibraryEntry(
            label=title or f"RIS record {n}", title=title,
            abstract=first("abstract", "notes_abstract"),
            authors=_bibtex_names(" and ".join(authors)),
            year=(first("year", "publication_year", "date"))[:4], date=first("date"),
            arxiv_id=find_arxiv_id(*urls, doi, *notes, first("number"), first("id")),
            doi=_doi(doi), url=urls[0] if urls else ""))
    return entries


def parse_zotero_csv(text: str) -> list[LibraryEntry]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "Title" not in reader.fieldnames:
        raise ValueError("not a Zotero CSV export (it has no \"Title\" column)")
    entries = []
    for n, row in enumerate(reader, 2):
        get = lambda key: clean_text(row.get(key))   # noqa: E731
        title = get("Title")
        entries.append(LibraryEntry(
            label=title or f"CSV row {n}", title=title, abstract=get("Abstract Note"),
            authors=[clean_text(f"{f} {l}" if c else l) for l, c, f in
                     (a.strip().partition(",") for a in get("Author").split(";")) if l.strip()],
            year=get("Publication Year")[:4], date=get("Date"),
            arxiv_id=find_arxiv_id(get("Url"), get("DOI"), get("Extra"), get("Publication Title")),
            doi=_doi(get("DOI")), url=get("Url")))
    return entries


def parse_id_list(text: str) -> list[LibraryEntry]:
    """One entry per arXiv id, arXiv or Hugging Face link, or DOI (whitespace or commas apart)."""
    text = _WRAPPED_LINK.sub(r"\1", text)
    entries = []
    for token in dict.fromkeys(t.strip("()[].;'\"") for t in re.split(r"[\s,]+", text)):
        if not token:
            continue
        arxiv_id = find_arxiv_id(token)
        doi = "" if arxiv_id else _doi(token)
        problem = "" if arxiv_id or doi else "not an arXiv id, arXiv link or DOI"
        entries.append(LibraryEntry(label=token[:100], arxiv_id=arxiv_id, doi=doi, problem=problem))
    return entries


# -- writing --------------------------------------------------------------------------------
_STOP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "is", "are"}


def _ascii_word(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", text.encode("ascii", "ignore").decode().lower())


def citation_keys(papers: Iterable[Paper]) -> list[str]:
    """`lastname2024firstword` per paper, made unique with a, b, c … suffixes."""
    keys, seen = [], set()
    for paper in papers:
        last = _ascii_word(paper.authors[0].split()[-1]) if paper.authors else ""
        words = [w for w in (_ascii_word(w) for w in paper.title.split()) if w]
        word = next((w for w in words if w not in _STOP_WORDS), words[0] if words else "paper")
        year = _year(paper)
        base = f"{last or 'anon'}{year}{word}"
        key, n = base, 0
        while key in seen:
            key = base + _suffix(n)
            n += 1
        seen.add(key)
        keys.append(key)
    return keys


def _year(paper: Paper) -> str:
    """The paper's year: of its date, else the year an imported file gave."""
    if paper.published:
        return str(paper.published.year)
    year = paper.extras.get("year")
    return year if isinstance(year, str) and re.fullmatch(r"\d{4}", year) else ""


def _suffix(n: int) -> str:
    letters = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def bibtex_value(text: str) -> str:
    """A field's text, safe inside `{…}` for BibTeX and LaTeX: `%`, `&`, `#` escaped, a
    brace without its partner written `\\textbraceleft{}` / `\\textbraceright{}` (BibTeX
    counts every brace, escaped or not), a trailing backslash spelt out."""
    text = re.sub(r"(?<!\\)([%&#])", r"\\\1", clean_text(text))
    open_at, lone = [], set()
    for i, ch in enumerate(text):
        if ch == "{":
            open_at.append(i)
        elif ch == "}":
            if open_at:
                open_at.pop()
            else:
                lone.add(i)
    lone.update(open_at)
    out = "".join(("\\textbraceleft{}" if ch == "{" else "\\textbraceright{}") if i in lone
                  else ch for i, ch in enumerate(text))
    return re.sub(r"\\$", r"\\textbackslash{}", out)


def _bibtex_author(name: str) -> str:
    return f"{{{name}}}" if re.search(r"\sand\s", name) else name


def to_bibtex(papers: list[Paper]) -> str:
    """One `@misc` entry per paper, with arXiv's `eprint`, `archivePrefix`, `primaryClass`."""
    library = bibtexparser.Library()
    for paper, key in zip(papers, citation_keys(papers)):
        fields = {"title": paper.title,
                  "author": " and ".join(_bibtex_author(a) for a in paper.authors),
                  "year": _year(paper)}
        if paper.arxiv_id:
            fields.update(eprint=paper.arxiv_id, archivePrefix="arXiv",
                          primaryClass=paper.categories[0] if paper.categories else "",
                          doi=f"10.48550/arXiv.{paper.arxiv_id}")
        elif isinstance(paper.extras.get("doi"), str):
            fields["doi"] = paper.extras["doi"]
        fields.update(url=paper.url, abstract=paper.abstract)
        library.add(Entry("misc", key, [Field(k, bibtex_value(v)) for k, v in fields.items() if v]))
    return bibtexparser.write_string(library)


def to_ris(papers: list[Paper]) -> str:
    records = []
    for paper in papers:
        record: dict[str, Any] = {"type_of_reference": "GEN", "title": paper.title,
                                  "authors": [_last_first(a) for a in paper.authors],
                                  "abstract": paper.abstract, "urls": [paper.url] if paper.url else []}
        if _year(paper):
            record["year"] = _year(paper)
        if paper.arxiv_id:
            record.update(doi=f"10.48550/arXiv.{paper.arxiv_id}", publisher="arXiv",
                          notes=[f"arXiv:{paper.arxiv_id}"])
        elif isinstance(paper.extras.get("doi"), str):
            record["doi"] = paper.extras["doi"]
        records.append({k: v for k, v in record.items() if v})
    return rispy.dumps(records, implementation=_RisWriter)


class _RisWriter(rispy.RisWriter):
    """RIS as Zotero and EndNote write it: no "1." counter line before each record."""

    def set_header(self, count: int) -> str:
        return ""


def _last_first(name: str) -> str:
    parts = name.split()
    return f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name


def to_csv(papers: list[Paper]) -> str:
    """Zotero's CSV columns, so that Zotero (or `paperbot import`) reads it back."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writeheader()
    for paper, key in zip(papers, citation_keys(papers)):
        doi = (f"10.48550/arXiv.{paper.arxiv_id}" if paper.arxiv_id
               else str(paper.extras.get("doi") or ""))
        writer.writerow({
            "Key": key, "Item Type": "preprint" if paper.arxiv_id else "document",
            "Publication Year": _year(paper),
            "Author": "; ".join(_last_first(a) for a in paper.authors), "Title": paper.title,
            "Publication Title": "arXiv" if paper.arxiv_id else "", "DOI": doi, "Url": paper.url,
            "Abstract Note": paper.abstract,
            "Date": paper.published.isoformat() if paper.published else "",
            "Extra": f"arXiv: {paper.arxiv_id}" if paper.arxiv_id else "",
            "Manual Tags": "; ".join(paper.categories)})
    return out.getvalue()


def export(papers: list[Paper], fmt: str) -> str:
    return {"bibtex": to_bibtex, "ris": to_ris, "csv": to_csv}[fmt](papers)
