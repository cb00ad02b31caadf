"""Hugging Face Daily Papers: the community's pick of the day's arXiv papers, with upvotes.

The upvotes, code link and comment count are kept in `extras`: they are signals a ranking
or a digest may use, though they are not part of the paper itself.
"""

from __future__ import annotations

import datetime as dt
import logging

from recommender.config import HF_API_URL
from recommender.paper import Paper
from recommender.sources.errors import SourceError
from recommender.sources.http import HttpClient

log = logging.getLogger(__name__)


def fetch_daily(
    date: dt.date | None, client: HttpClient, *, base_url: str | None = None
) -> list[Paper]:
    """The papers listed on `date`, or on the latest list when `date` is None; [] on an empty day.

    A response that is not a JSON array of `{"paper": {...}}` objects means the API changed:
    `SourceError`. A single paper without a title is skipped with a warning.
    """
    base = base_url or HF_API_URL
    what = f"Hugging Face daily papers for {date.isoformat() if date else 'the latest day'}"
    items = client.get_json(base, {"date": date.isoformat()} if date else None, what=what)
    if not isinstance(items, list):
        raise SourceError(f"{what}: expected a JSON array, got {type(items).__name__}")
    papers = []
    for item in items:
        paper = item.get("paper") if isinstance(item, dict) else None
        if not isinstance(paper, dict):
            raise SourceError(f"{what}: unexpected response shape (an item has no 'paper' object)")
        extras = {
            "upvotes": paper.get("upvotes"),
            "github_repo": paper.get("githubRepo"),
            "num_comments": item.get("numComments"),
        }
        try:
            papers.append(Paper.from_dict({
                "id": paper.get("id"),
                "title": paper.get("title") or item.get("title"),
                "abstract": paper.get("summary") or item.get("summary"),
                "authors": paper.get("authors") or [],
                "published": paper.get("publishedAt") or item.get("publishedAt"),
                "extras": {key: value for key, value in extras.items() if value is not None},
            }, source="hf-daily"))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("%s: skipped paper %r (%s)", what, paper.get("id"), exc)
    return papers
