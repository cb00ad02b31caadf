"""The `paperbot` command line: ingest, search, similar, console, and the rest as they land.

Every failure a person can cause or meet (Redis down, a source down, a bad id) ends in one
clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from importlib import resources

import click

from recommender import PaperNotFound, Recommender, Result, StoreUnavailable
from recommender.sources import SourceError, read_source

log = logging.getLogger("paperbot")


def _fail(message: str) -> None:
    click.echo(f"paperbot: {message}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def open_recommender() -> Iterator[Recommender]:
    try:
        rec = Recommender.from_env()
    except StoreUnavailable as exc:
        _fail(str(exc))
    except ValueError as exc:  # a malformed setting
        _fail(f"bad setting: {exc}")
    try:
        yield rec
    except StoreUnavailable as exc:
        _fail(str(exc))
    finally:
        rec.close()


def _results_json(results: list[Result]) -> str:
    return json.dumps([
        {"id": r.paper.id, "title": r.paper.title, "url": r.paper.url, "score": round(r.score, 4),
         "why": r.why, "authors": r.paper.authors, "categories": r.paper.categories,
         "published": r.paper.published.isoformat() if r.paper.published else None}
        for r in results
    ], ensure_ascii=False, indent=2)


def _print_results(results: list[Result], as_json: bool) -> None:
    from .actions import Reply
    from .render_text import render_reply

    if as_json:
        click.echo(_results_json(results))
    elif not results:
        click.echo("No papers found.")
    else:
        click.echo(render_reply(Reply("", results)))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what paperbot does (to stderr).")
def main(verbose: bool) -> None:
    """paperbot: research-paper picks for Slack, Discord and the terminal."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(min=1), help="Read at most N papers from each source.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: read, new, embedded.")
def ingest(sources: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """Add papers from files (JSONL, JSONL.gz, CSV), arxiv:CATEGORY, arxiv-api:CATEGORY or
    hf-daily[:YYYY-MM-DD]; only text never seen before is embedded."""
    from tqdm import tqdm

    totals = {"read": 0, "new": 0, "embedded": 0}
    with open_recommender() as rec:
        for spec in sources:
            try:
                with tqdm(desc=spec, unit=" papers", total=limit, file=sys.stderr,
                          disable=None) as bar:
                    counts = rec.add_papers(read_source(spec, limit=limit), progress=bar.update)
            except SourceError as exc:
                _fail(str(exc))
            for key, value in counts.as_dict().items():
                totals[key] += value
    if as_json:
        click.echo(json.dumps(totals))
    else:
        click.echo(f"read {totals['read']} · new {totals['new']} · embedded {totals['embedded']}")


@main.command()
@click.argument("query")
@click.option("-k", default=5, type=click.IntRange(1, 50), show_default=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only papers published on/after.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def search(query: str, k: int, since: dt.datetime | None, as_json: bool) -> None:
    """Papers matching QUERY."""
    with open_recommender() as rec:
        try:
            results = rec.search(query, k=k, since=since.date() if since else None)
        except ValueError as exc:
            _fail(str(exc))
        _print_results(results, as_json)


@main.command()
@click.argument("paper_id")
@click.option("-k", default=5, type=click.IntRange(1, 50), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def similar(paper_id: str, k: int, as_json: bool) -> None:
    """Papers similar to PAPER_ID (an arXiv id, arXiv URL, or paperbot id)."""
    with open_recommender() as rec:
        try:
            results = rec.similar(paper_id, k=k)
        except PaperNotFound as exc:
            _fail(str(exc))
        _print_results(results, as_json)


def _demo_papers():
    from recommender.sources.files import read_file

    with resources.as_file(resources.files("recommender") / "demo_papers.jsonl") as path:
        yield from read_file(path)


def _load_starter_papers(rec: Recommender) -> None:
    """Today's arXiv listing when the network allows; the bundled demo corpus otherwise."""
    from recommender.sources import HttpClient

    try:
        with HttpClient(attempts=1, connect_timeout=3, read_timeout=10) as client:
            counts = rec.add_papers(read_source("arxiv:cs.LG", client=client))
        click.echo(f"Loaded today's arXiv cs.LG listing: {counts.new} new papers.")
        if counts.read:
            return
    except SourceError as exc:
        log.info("arXiv listing unavailable: %s", exc)
    if len(rec) == 0:
        counts = rec.add_papers(_demo_papers())
        click.echo(f"Offline: loaded the demo corpus ({counts.read} papers written for paperbot).")


@main.command()
@click.option("--user", default="you", show_default=True, help="Your name in this console.")
@click.option("--offline", is_flag=True, help="Don't try to fetch today's arXiv listing.")
def console(user: str, offline: bool) -> None:
    """Chat with paperbot in the terminal, with the same commands as Slack and Discord."""
    from .console import run_console

    with open_recommender() as rec:
        if offline:
            if len(rec) == 0:
                rec.add_papers(_demo_papers())
        else:
            _load_starter_papers(rec)
        run_console(rec, user)


if __name__ == "__main__":
    main()
