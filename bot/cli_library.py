"""`paperbot import` and `paperbot export`: a person's library from and to BibTeX, RIS, a
Zotero CSV export or a list of arXiv ids (recommender.library_formats does the formats)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from recommender.library import arxiv_lookup, import_library, saved_papers
from recommender.library_formats import FORMATS, export, parse_library

from .cli_common import WHO, check_user, fail, open_recommender, open_redis
from .render_text import json_safe, terminal_safe


@click.command("import")
@WHO
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="The file's format (default: from its name, else from its text).")
@click.option("--offline", is_flag=True, help="Don't look up on arXiv the ids paperbot lacks.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: imported and known (paper ids), skipped (entry, reason).")
def import_command(who: str, file: str, fmt: str | None, offline: bool, as_json: bool) -> None:
    """Save (🔖) every paper of FILE: BibTeX, RIS, a Zotero CSV export, or arXiv ids, arXiv
    links and DOIs (one or more a line). Papers paperbot lacks are stored from the file's title
    and abstract, or looked up on arXiv by id; entries with neither are skipped, with why."""
    who = check_user(who)
    try:
        text = click.open_file(file, encoding="utf-8").read()
        entries = parse_library(text, Path(file).name, fmt)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        fail(f"cannot read {file}: {exc}")
    with open_recommender() as rec:
        lookup = None if offline else arxiv_lookup(rec.settings.sources)
        report = import_library(rec, who, entries, lookup)
    if as_json:
        click.echo(json_safe(json.dumps(report.as_dict(), ensure_ascii=False)))
        return
    for label, why in report.skipped:
        click.echo(terminal_safe(f"skipped {label}: {why}"))
    click.echo(f"{report.summary()} (every imported and known paper is now saved 🔖)")


@click.command("export")
@WHO
@click.option("--format", "fmt", type=click.Choice(["bibtex", "ris", "csv"]), default="bibtex",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file "
              "(default: standard output).")
def export_command(who: str, fmt: str, output: str | None) -> None:
    """The papers saved (🔖) by --user, newest first, as BibTeX (eprint fields, unique keys),
    RIS or a Zotero-style CSV."""
    who = check_user(who)
    with open_redis() as (client, settings):
        from recommender.people import PeopleStore
        from recommender.store import PaperStore

        papers = saved_papers(PeopleStore(client, settings.prefix),
                              PaperStore(client, settings.prefix), who)
    text = export(papers, fmt)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc}")
    else:
        click.echo(terminal_safe(text), nl=False)   # no control character reaches a terminal
    click.echo(f"{len(papers)} saved papers" + (f" written to {output}" if output else ""), err=True)


COMMANDS = (import_command, export_command)
