"""Papers from local files: JSON Lines, a JSON array, or CSV, each optionally gzipped.

Files are streamed row by row, so a corpus of any size costs the memory of one row (a `.json`
array is the exception: JSON has to be parsed whole). A bad row never stops a file: it is
counted and reported in one warning per file.

Ids: a row's `id` is the paper's id (an arXiv id loses its version), with one exception. A row
that carries a `list` column is an entry of a reading list, and its `id` numbers that entry
(`000_0093d5b2f21bc2f7-1`), not the paper, which may sit in several lists. Such an `id` is kept
in `extras["entry_id"]`, and the paper id comes from an arXiv link or the title
(`Paper.from_dict`), so the same paper gets the same id in every list. `keep_ids=False` treats
every row that way.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from recommender.paper import Paper
from recommender.sources.errors import SourceError

log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".json": "json", ".csv": "csv"}
SUPPORTED = ", ".join(f"{suffix}[.gz]" for suffix in FORMATS)


def read_file(
    path: str | Path, limit: int | None = None, *, keep_ids: bool = True
) -> Iterator[Paper]:
    """Stream the papers in `path` (at most `limit`). A missing or unsupported file fails here,
    before iteration; an unreadable one (corrupt gzip, bad JSON array) fails while iterating."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    name = path.name.lower().removesuffix(".gz")
    fmt = next((fmt for suffix, fmt in FORMATS.items() if name.endswith(suffix)), None)
    if fmt is None:
        raise SourceError(f"cannot read {path.name}: supported files are {SUPPORTED}")
    return _read(path, fmt, limit, keep_ids)


def _read(path: Path, fmt: str, limit: int | None, keep_ids: bool) -> Iterator[Paper]:
    source = f"file:{path.name}"
    count = skipped = 0
    first_bad = None
    try:
        for number, row in _ROW_READERS[fmt](path):
            if limit is not None and count >= limit:
                return
            paper = _paper_from_row(row, source, keep_ids)
            if paper is None:
                skipped += 1
                first_bad = first_bad or number
                continue
            count += 1
            yield paper
    except (OSError, EOFError, zlib.error, csv.Error, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    finally:
        if skipped:
            log.warning("%s: skipped %d row(s) without a readable paper (bad JSON or no title); "
                        "the first is line %d", path, skipped, first_bad)


def _paper_from_row(row: Any, source: str, keep_ids: bool) -> Paper | None:
    if not isinstance(row, dict):
        return None
    if "id" in row and (not keep_ids or "list" in row):
        row["entry_id"] = row.pop("id")
    for key in ("authors", "categories"):
        if isinstance(row.get(key), str):
            row[key] = _split_names(row[key], key)
    try:
        return Paper.from_dict(row, source=source)
    except (ValueError, TypeError, AttributeError):
        return None


def _split_names(text: str, key: str) -> list[str]:
    """'A; B' or 'A, B' → [A, B]. With a ';' present, commas stay inside names ('Smith, J.')."""
    if key == "categories":
        return [c for c in re.split(r"[;,\s]+", text) if c]
    separator = ";" if ";" in text else r",| and "
    return [a.strip() for a in re.split(separator, text) if a.strip()]


def _open(path: Path, mode: str) -> IO[Any]:
    text_options = {"encoding": "utf-8-sig", "newline": ""} if "t" in mode else {}
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    return opener(path, mode, **text_options)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with _open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:  # not JSON, or not UTF-8
                row = None
            yield number, row


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with _open(path, "rb") as handle:
        try:
            data = json.load(handle)
        except ValueError as exc:
            raise SourceError(f"cannot read {path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise SourceError(f"cannot read {path}: expected a JSON array of papers")
    yield from enumerate(data, 1)  # "line" numbers of an array are item positions


def _csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with _open(path, "rt") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            # Empty cells are absent values; cells beyond the header (key None) are dropped.
            yield reader.line_num, {k.strip(): v for k, v in row.items() if k and v}


_ROW_READERS = {"jsonl": _jsonl_rows, "json": _json_rows, "csv": _csv_rows}
