"""What `import <ids…>` and `saved bibtex` do in chat: the part of `Actions` about a person's
library, kept in its own module (the formats and the import itself are recommender.library*).
"""

from __future__ import annotations

from recommender.library import Lookup, arxiv_lookup, import_library, saved_papers
from recommender.library_formats import parse_id_list, to_bibtex

from .commands import Command
from .reply import Reply

# a chat answer cannot wait long: one arXiv request, two tries, within this many seconds
CHAT_LOOKUP_SECONDS = 20.0
SKIPS_LISTED = 10
BIBTEX_FILE = "paperbot-saved.bib"


class LibraryActions:
    """Mixed into `Actions` (which gives `rec`)."""

    def arxiv_lookup(self) -> Lookup:
        """How ids paperbot lacks are looked up: arXiv's API (ARXIV_API_URL), briefly."""
        return arxiv_lookup(self.rec.settings.sources, deadline=CHAT_LOOKUP_SECONDS, attempts=2)

    def do_import(self, command: Command, who) -> Reply:
        report = import_library(self.rec, who.person, parse_id_list(command.text),
                                self.arxiv_lookup())
        saved = len(report.imported) + len(report.known)
        lines = [f"🔖 Saved {saved} paper{'s' if saved != 1 else ''}: {report.summary()}."]
        if report.skipped:
            lines.append("Skipped:")
            lines += [f"  • {label} — {why}" for label, why in report.skipped[:SKIPS_LISTED]]
            if len(report.skipped) > SKIPS_LISTED:
                lines.append(f"  … and {len(report.skipped) - SKIPS_LISTED} more")
        return Reply("\n".join(lines))

    def do_saved_bibtex(self, command: Command, who) -> Reply:
        papers = saved_papers(self.rec.people, self.rec.store, who.person)
        if not papers:
            return Reply("You haven't saved any papers yet (react 🔖 to one, or `import` them).")
        count = f"{len(papers)} saved paper{'s' if len(papers) != 1 else ''}"
        return Reply(f"Your {count} as BibTeX ({BIBTEX_FILE}):", file=(BIBTEX_FILE, to_bibtex(papers)))
