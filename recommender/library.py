"""A person's library in and out: `import_library` makes every paper of a reference file a 🔖,
`saved_papers` is what `paperbot export` and `saved bibtex` write.

An imported paper is *known* when paperbot had it already (in its corpus, from any source),
*imported* when this import stored it: from the file's title and abstract, or, for an arXiv id
without an abstract in the file, from the arXiv API when it can be reached. Both kinds are
saved (🔖) for the person; what cannot become a paper is *skipped*, with the reason. Keys:
none of its own (papers go through `Recommender.add_papers`, the 🔖 through `record_feedback`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from .config import SourceEndpoints
from .library_formats import LibraryEntry
from .paper import Paper, title_id
from .people import PeopleStore, check_who
from .service import Recommender
from .sources.arxiv import fetch_ids
from .sources.errors import SourceError
from .sources.http import HttpClient
from .store import PaperStore

log = logging.getLogger(__name__)

LOOKUP_BATCH = 100   # ids per arXiv API request
Lookup = Callable[[list[str]], list[Paper]]   # arXiv ids → the papers arXiv has; SourceError if down

UNREACHABLE = "not in paperbot and arXiv could not be reached"
NOT_ON_ARXIV = "arXiv has no paper with this id"
NO_LOOKUP = "not in paperbot, and the file has no abstract for it"
NO_ABSTRACT = "no abstract and no arXiv id"
FOREIGN_DOI = "a DOI that is not arXiv's, and no title or abstract (only arXiv ids can be looked up)"


@dataclasses.dataclass
class ImportReport:
    imported: list[str] = dataclasses.field(default_factory=list)   # paper ids stored now
    known: list[str] = dataclasses.field(default_factory=list)      # paper ids paperbot had
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (entry, reason)

    def as_dict(self) -> dict:
        return {"imported": self.imported, "known": self.known,
                "skipped": [{"entry": label, "reason": why} for label, why in self.skipped]}

    def summary(self) -> str:
        return (f"{len(self.imported)} imported · {len(self.known)} already known · "
                f"{len(self.skipped)} skipped")


def arxiv_lookup(endpoints: SourceEndpoints = SourceEndpoints(), *, deadline: float = 60.0,
                 attempts: int = 3, min_interval: float = 3.0) -> Lookup:
    """Look ids up on the arXiv API (`endpoints.arxiv_api`), each request within `deadline`
    seconds, politely spaced; any failure is one `SourceError`."""
    def lookup(ids: list[str]) -> list[Paper]:
        papers: list[Paper] = []
        with HttpClient(deadline=deadline, max_attempts=attempts, timeout=min(30.0, deadline),
                        min_interval=min_interval) as client:
            for start in range(0, len(ids), LOOKUP_BATCH):
                papers += fetch_ids(ids[start:start + LOOKUP_BATCH], client,
                                    base_url=endpoints.arxiv_api)
        return papers
    return lookup


def _paper_id(entry: LibraryEntry) -> str | None:
    """The id the entry's paper has (or would have) in paperbot: its arXiv id, else the id
    paperbot gives every paper from elsewhere, from its normalised title."""
    if entry.arxiv_id:
        return entry.arxiv_id
    return title_id(entry.title) if entry.title.strip() else None


def import_library(rec: Recommender, person: str, entries: list[LibraryEntry],
                   lookup: Lookup | None = None) -> ImportReport:
    """Store what paperbot lacks, then save (🔖) every paper of `entries` for `person`."""
    person = check_who(person)
    report = ImportReport()
    wanted: dict[str, LibraryEntry] = {}   # paper id → entry (a paper listed twice counts once)
    for entry in entries:
        pid = None if entry.problem else _paper_id(entry)
        if pid is None:
            reason = entry.problem or (FOREIGN_DOI if entry.doi else "no title and no arXiv id")
            report.skipped.append((entry.label, reason))
        elif pid in wanted:   # listed twice (or two entries with one title: one id)
            report.skipped.append((entry.label, f"the same paper as {wanted[pid].label}"))
        else:
            wanted[pid] = entry
    stored = rec.store.existing_hashes(list(wanted))
    new: list[Paper] = []
    to_look_up: list[str] = []
    for pid, entry in wanted.items():
        if stored[pid] is not None:
            continue
        if entry.title.strip() and entry.abstract.strip():
            new.append(Paper.from_dict(entry.paper_dict(), source="import"))
        elif entry.arxiv_id:
            to_look_up.append(pid)
        else:
            report.skipped.append((entry.label, NO_ABSTRACT))
    found = _look_up(to_look_up, lookup)
    for pid in to_look_up:
        if isinstance(found, str):
            report.skipped.append((wanted[pid].label, found))
        elif pid in found:
            new.append(found[pid])
        else:
            report.skipped.append((wanted[pid].label, NOT_ON_ARXIV))
    if new:
        rec.add_papers(new)
    new_ids = {p.id for p in new}
    for pid in wanted:
        if stored[pid] is None and pid not in new_ids:
            continue
        rec.record_feedback(person, pid, "save")
        (report.imported if pid in new_ids else report.known).append(pid)
    return report


def _look_up(ids: list[str], lookup: Lookup | None) -> dict[str, Paper] | str:
    """The papers arXiv has of `ids` by id, or the reason none could be had."""
    if not ids:
        return {}
    if lookup is None:
        return NO_LOOKUP
    try:
        return {p.id: p for p in lookup(ids)}
    except SourceError as exc:
        log.warning("import: arXiv lookup of %d ids failed: %s", len(ids), exc)
        return UNREACHABLE


def saved_papers(people: PeopleStore, store: PaperStore, person: str) -> list[Paper]:
    """The papers `person` saved (🔖), newest first (Redis alone: no model needed)."""
    feedback = people.feedback(check_who(person))
    ids = [pid for pid, st in sorted(feedback.items(), key=lambda kv: -kv[1]["ts"])
           if st.get("saved")]
    return [p for p in store.get_papers(ids) if p]
