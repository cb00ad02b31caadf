"""Live-API replays for bioRxiv/medRxiv and OpenReview, mounted on a `FakeSourceServer`.

Each answers like the real API from a list of recorded-shape records (tests/fixtures/sources):
bioRxiv's `/details/<server>/<from>/<to>/<cursor>?category=…` by date, subject and cursor, and
OpenReview's `/notes?content.venueid=…&offset=…&limit=…` by venue and offset. So a source is
tested against pagination, empty days and filters as the service applies them, whatever day
the test runs; `fail_first` replies (429, 503) are sent before the first real answer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from testkit.fake_sources import FIXTURES, Reply, Request

JSON = "application/json; charset=utf-8"


def fixture_records(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())


class _Replay:
    def __init__(self, fail_first: Iterable[Reply] = ()):
        self.fail_first = list(fail_first)

    def __call__(self, request: Request) -> Reply:
        if self.fail_first:
            return self.fail_first.pop(0)
        return self.reply(request)

    def reply(self, request: Request) -> Reply:
        raise NotImplementedError


class BiorxivReplay(_Replay):
    """api.biorxiv.org's details endpoint over `records` (their `server` field says which)."""

    def __init__(self, records: list[dict[str, Any]], page: int = 100, **kwargs: Any):
        super().__init__(**kwargs)
        self.records = records
        self.page = page

    def reply(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) not in (5, 6) or parts[0] != "details":
            return Reply(404, "not found", content_type="text/plain")
        _, server, first, last, cursor, *_ = parts
        try:
            start, end, at = dt.date.fromisoformat(first), dt.date.fromisoformat(last), int(cursor)
        except ValueError:
            return _json({"messages": [{"status": "Error with interval or cursor"}], "collection": []})
        category = (request.query.get("category") or [""])[0].replace("_", " ")
        matching = [r for r in self.records
                    if r["server"].lower() == server and start <= dt.date.fromisoformat(r["date"]) <= end
                    and (not category or r["category"] == category)]
        if not matching:
            return _json({"messages": [{"status": "no posts found"}], "collection": []})
        page = matching[at:at + self.page]
        return _json({"messages": [{"status": "ok", "interval": f"{first}:{last}",
                                    "cursor": str(at), "count": len(page),
                                    "count_new_papers": str(len(page)), "total": str(len(matching))}],
                      "collection": page})


class OpenReviewReplay(_Replay):
    """api2.openreview.net's `/notes` over `notes`: accepted papers by `content.venueid`."""

    def __init__(self, notes: list[dict[str, Any]], **kwargs: Any):
        super().__init__(**kwargs)
        self.notes = notes

    def reply(self, request: Request) -> Reply:
        venue = (request.query.get("content.venueid") or [""])[0]
        offset = int((request.query.get("offset") or ["0"])[0])
        limit = int((request.query.get("limit") or ["1000"])[0])
        matching = [n for n in self.notes if n["content"].get("venueid", {}).get("value") == venue]
        return _json({"notes": matching[offset:offset + limit], "count": len(matching)})


def _json(data: Any) -> Reply:
    return Reply(body=json.dumps(data), content_type=JSON)
