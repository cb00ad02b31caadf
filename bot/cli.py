"""The `paperbot` command line: ingest, search, similar, people, schedule, console, serve, and
the commands other packages add through the `paperbot.commands` entry point (eval, bench).

Every failure a person can cause or meet (Redis down, a source down, a bad id) ends in one
clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from importlib import resources

import click

from recommender import PaperNotFound, Recommender, Result
from recommender.sources import SourceError, read_source

from .cli_common import WHO, open_recommender, open_redis
from .cli_common import bot_settings as _settings
from .cli_common import check_user as _check_who
from .cli_common import fail as _fail

log = logging.getLogger("paperbot")


def _results_json(results: list[Result]) -> str:
    return json.dumps([
        {"id": r.paper.id, "title": r.paper.title, "url": r.paper.url, "score": round(r.score, 4),
         "why": r.why, "authors": r.paper.authors, "categories": r.paper.categories,
         "published": r.paper.published.isoformat() if r.paper.published else None,
         "abstract": r.paper.abstract, "pdf_url": r.paper.pdf_url, "code_url": r.paper.code_url,
         "upvotes": r.paper.upvotes, "tldr": r.paper.tldr}
        for r in results
    ], ensure_ascii=False, indent=2)


def _print_results(results: list[Result], as_json: bool) -> None:
    from .actions import Reply
    from .render_text import json_safe, render_reply

    if as_json:
        click.echo(json_safe(_results_json(results)))
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


def _ingest_one(rec: Recommender, spec: str, limit: int | None, read: list[str]) -> dict:
    """One source's counts, or its failure: a source that fails never stops the others. The
    ids it read go to `read`."""
    from tqdm import tqdm

    from recommender.tldr import noting_ids

    try:
        with tqdm(desc=spec, unit=" papers", total=limit, file=sys.stderr, disable=None) as bar:
            papers = read_source(spec, limit=limit, endpoints=rec.settings.sources)
            counts = rec.add_papers(noting_ids(papers, read), progress=bar.update)
    except SourceError as exc:
        log.info("ingest of %s failed: %s", spec, exc)
        return {"source": spec, "status": "failed", "error": " ".join(str(exc).split())}
    return {"source": spec, "status": "ok", **counts.as_dict()}


def _write_tldrs(rec: Recommender, read: list[str]) -> dict | None:
    """The TL;DRs of the papers this ingest read that have none yet, with progress; None with
    no model set."""
    from tqdm import tqdm

    from recommender.tldr import write_tldrs

    ids = list(dict.fromkeys(read)) if rec.settings.llm.enabled else []
    with tqdm(desc="TL;DRs", unit=" papers", total=len(ids), file=sys.stderr,
              disable=None if ids else True) as bar:
        counts = write_tldrs(rec.store, rec.settings.llm, ids, progress=bar.update)
    return counts.as_dict() if counts else None


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(min=1), help="Read at most N papers from each source.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: read, new, embedded, and each source's outcome.")
@click.option("--no-tldr", is_flag=True, help="Don't write TL;DRs of the new papers (with "
              "PAPERBOT_LLM_URL set, they are written before the command ends).")
def ingest(sources: tuple[str, ...], limit: int | None, as_json: bool, no_tldr: bool) -> None:
    """Add papers from files (JSONL, JSONL.gz, CSV), arxiv:CATEGORY, arxiv-api:CATEGORY,
    hf-daily[:YYYY-MM-DD], biorxiv:SUBJECT / medrxiv:SUBJECT[:FROM..TO], rss:URL, atom:URL or
    openreview:VENUE; only text never seen before is embedded. Every source is tried;
    the exit code is 1 when any of them failed."""
    with open_recommender() as rec:
        read: list[str] = []
        outcomes = [_ingest_one(rec, spec, limit, read) for spec in sources]
        tldr = None if no_tldr else _write_tldrs(rec, read)
    done = [o for o in outcomes if o["status"] == "ok"]
    totals = {key: sum(o[key] for o in done) for key in ("read", "new", "embedded")}
    failed = len(outcomes) - len(done)
    if as_json:
        click.echo(json.dumps({**totals, "sources": outcomes, "tldr": tldr}))
    else:
        for o in outcomes:
            click.echo(f"{o['source']}: {o['read']} papers ({o['new']} new)" if o["status"] == "ok"
                       else f"{o['source']}: failed — {o['error']}")
        click.echo(f"read {totals['read']} · new {totals['new']} · embedded {totals['embedded']}"
                   + (f" · {failed} of {len(outcomes)} sources failed" if failed else ""))
        if tldr is not None:
            click.echo(f"TL;DRs: {tldr['written']} written · {tldr['failed']} failed"
                       + (f" · {tldr['over_budget']} over the daily budget" if tldr["over_budget"] else ""))
    if failed:
        sys.exit(1)


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
        except (PaperNotFound, ValueError) as exc:
            _fail(str(exc))
        _print_results(results, as_json)


@main.command()
@click.argument("paper_id")
@click.option("-k", default=5, type=click.IntRange(1, 50), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def similar(paper_id: str, k: int, as_json: bool) -> None:
    """Papers similar to PAPER_ID (an arXiv id, an arXiv, DOI or Hugging Face link, or a
    paperbot id)."""
    from .commands import paper_ref

    with open_recommender() as rec:
        try:
            results = rec.similar(paper_ref(paper_id), k=k)
        except PaperNotFound as exc:
            _fail(str(exc))
        _print_results(results, as_json)


@main.command()
@WHO
@click.argument("topic")
def subscribe(who: str, topic: str) -> None:
    """Follow TOPIC (for a person or a channel)."""
    with open_recommender() as rec:
        try:
            added = rec.subscribe(_check_who(who), topic)
        except ValueError as exc:
            _fail(str(exc))
        click.echo(f"subscribed to {topic!r}" if added else f"already subscribed to {topic!r}")


@main.command()
@WHO
@click.argument("topic")
def unsubscribe(who: str, topic: str) -> None:
    """Stop following TOPIC."""
    with open_recommender() as rec:
        removed = rec.unsubscribe(_check_who(who), topic)
        click.echo(f"unsubscribed from {topic!r}" if removed else f"{topic!r} was not followed")


@main.command()
@WHO
@click.argument("paper_id")
@click.argument("kind", type=click.Choice(["like", "dislike", "save", "clear"]))
@click.option("--channel", help="The channel the paper was posted in (a scoped key).")
def feedback(who: str, paper_id: str, kind: str, channel: str | None) -> None:
    """Record feedback on PAPER_ID: like, dislike, save, or clear it."""
    with open_recommender() as rec:
        try:
            changed = rec.record_feedback(_check_who(who), paper_id, kind, channel=channel)
        except (PaperNotFound, ValueError) as exc:
            _fail(str(exc))
        click.echo(f"{kind} recorded" if changed else f"{kind} was already recorded")


@main.command()
@WHO
@click.option("-k", default=5, type=click.IntRange(1, 50), show_default=True)
@click.option("--channel", "is_channel", is_flag=True, help="--user names a channel: its picks.")
@click.option("--mark-shown", is_flag=True, help="Record the picks as shown (they won't repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def recommend(who: str, k: int, is_channel: bool, mark_shown: bool, as_json: bool) -> None:
    """Picks for a person (or, with --channel, a channel) from topics and feedback."""
    with open_recommender() as rec:
        picks_of = rec.picks_for_channel if is_channel else rec.recommend
        results = picks_of(_check_who(who), k=k)
        if mark_shown:
            rec.mark_shown(who, [r.paper.id for r in results])
        _print_results(results, as_json)


@main.command()
@WHO
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def profile(who: str, as_json: bool) -> None:
    """What paperbot knows about a person or channel."""
    with open_recommender() as rec:
        data = rec.profile(_check_who(who))
    from .render_text import json_safe, terminal_safe

    if as_json:
        click.echo(json_safe(json.dumps(data, ensure_ascii=False, indent=2)))
        return
    counts = data["counts"]
    click.echo(terminal_safe(f"{data['who']}\ntopics: {', '.join(data['topics']) or 'none'}"))
    click.echo(f"feedback: {counts['like']} like · {counts['dislike']} dislike · "
               f"{counts['save']} saved · {data['shown']} shown")
    click.echo(terminal_safe(f"follows: {', '.join(data['follows']) or 'none'} · filters: "
                             f"{json.dumps(data['filters'], ensure_ascii=False)}"))
    for event in data["recent"]:
        click.echo(terminal_safe(f"  {event['kind']:8} {event['paper']}  {event['title'] or ''}"))


@main.command()
@WHO
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
def forget(who: str, yes: bool) -> None:
    """Delete every key and event of a person."""
    who = _check_who(who)
    if not yes:
        click.confirm(f"Delete everything paperbot keeps about {who}?", abort=True)
    from .actions import Actions

    with open_recommender() as rec:
        removed = Actions(rec).forget(who)   # as `forget-me` does: schedule registry included
    click.echo(f"forgot {who} ({removed} keys removed)")


@main.command()
@WHO
def repair(who: str) -> None:
    """Rebuild a person's feedback (and channels' view of it) from their event history."""
    from recommender.people import PeopleStore
    from recommender.repair import repair as rebuild

    who = _check_who(who)
    with open_redis() as (client, settings):
        click.echo(rebuild(PeopleStore(client, settings.prefix), who).describe())


def _demo_papers():
    from recommender.sources.files import read_file

    with resources.as_file(resources.files("recommender") / "demo_papers.jsonl") as path:
        yield from read_file(path)


def _load_starter_papers(rec: Recommender) -> None:
    """Today's arXiv listing when the network allows; the bundled demo corpus otherwise."""
    from recommender.sources import HttpClient

    try:
        with HttpClient(max_attempts=1, connect_timeout=3, timeout=10) as client:
            counts = rec.add_papers(read_source("arxiv:cs.LG", client=client,
                                                endpoints=rec.settings.sources))
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

    settings = _settings()
    with open_recommender(settings) as rec:
        if offline:
            if len(rec) == 0:
                rec.add_papers(_demo_papers())
        else:
            _load_starter_papers(rec)
        run_console(rec, user, settings=settings)


@main.command()
@click.option("--slack-http", is_flag=True, help="Serve Slack over HTTP at /slack/events "
              "instead of Socket Mode.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for --slack-http.")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--discord", is_flag=True, help="Run the Discord bot (default when DISCORD_TOKEN is set).")
def serve(slack_http: bool, host: str, port: int, discord: bool) -> None:
    """Run the configured chat adapters, the daily-post scheduler and the periodic ingestion
    (PAPERBOT_SOURCES) in one process, with a health endpoint (PAPERBOT_HEALTH_PORT)."""
    import asyncio
    import functools

    from .serve import serve as serve_adapters

    settings = _settings()
    adapters = {}
    posters: dict = {}   # filled by the adapters once connected; the scheduler posts through them
    try:  # the adapters' settings are checked before the model loads: a missing token fails now
        slack, chat = settings.slack(http=slack_http), settings.discord(asked=discord)
    except ValueError as exc:
        _fail(str(exc))
    if slack:
        from .slack import run_slack

        adapters["slack"] = functools.partial(run_slack, config=slack, host=host, port=port,
                                              posters=posters, rate_limit=settings.rate_limit)
    if chat:
        from .discord_bot import run_discord

        adapters["discord"] = functools.partial(run_discord, settings=chat, posters=posters,
                                                rate_limit=settings.rate_limit)
    if not adapters:
        _fail("nothing to serve: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode), "
              "use --slack-http, or set DISCORD_TOKEN. See the README.")
    with open_recommender(settings) as rec:
        try:
            asyncio.run(serve_adapters(rec, adapters, posters=posters, settings=settings))
        except ValueError as exc:  # a token the platform refused, a port in use
            _fail(str(exc))


@main.command()
@click.option("--user", "who", help="The channel (or, with --dm, the person) as a scoped key, "
              "e.g. slack:T0123:C0456.")
@click.option("--time", "at", help="Local posting time, HH:MM.")
@click.option("--tz", help="IANA time zone, e.g. Europe/Berlin (default UTC for a new schedule).")
@click.option("-k", "--k", type=click.IntRange(1, 10), help="Papers per post (default 5; weekly 10).")
@click.option("--days", help="Days of the week: mon-fri (default), daily, mon,wed,fri …")
@click.option("--weekly", metavar="DAY", help="Weekly instead, on DAY (mon … sun): the week's best.")
@click.option("--empty", type=click.Choice(["skip", "note"]),
              help="A day without new papers: skip it, or post a one-line note "
                   "(default: PAPERBOT_EMPTY_DAY).")
@click.option("--dm", "is_dm", is_flag=True, help="--user is a person: a daily DM digest.")
@click.option("--off", is_flag=True, help="Turn the daily post off.")
@click.option("--list", "show", is_flag=True, help="List the enabled schedules.")
@click.option("--json", "as_json", is_flag=True, help="With --list: a JSON array.")
def schedule(who: str | None, at: str | None, tz: str | None, k: int | None, days: str | None,
             weekly: str | None, empty: str | None, is_dm: bool, off: bool, show: bool,
             as_json: bool) -> None:
    """Set, change, turn off or list daily or weekly posts (what `channel time`, `channel
    weekly` and `dm` do in chat, plus the number of papers, the days and the empty-day
    behaviour)."""
    from .scheduler import ScheduleStore, system_clock
    from .scheduler.schedules import Schedule
    from .scheduler.weekly import first_post_seq

    with open_redis() as (client, settings):
        store = ScheduleStore(client, settings.prefix)
        if show:
            schedules = store.all()
            if as_json:
                click.echo(json.dumps([s.to_dict() for s in schedules], indent=2))
            for item in [] if as_json else schedules:
                click.echo(f"{item.target}  {item.kind:7} {item.describe()}")
            if not schedules and not as_json:
                click.echo("No daily posts are scheduled.")
            return
        if not who:
            _fail("--user is required (or --list)")
        who = _check_who(who)
        if off:
            click.echo(f"{who}: daily post off" if store.disable(who, system_clock())
                       else f"{who} had no daily post")
            return
        when = None
        if at is not None:
            try:
                when = dt.datetime.strptime(at, "%H:%M").time()
            except ValueError:
                _fail(f"--time must be HH:MM, like 09:00, not {at!r}")
        old = store.get(who)
        kind = "dm" if is_dm else (old.kind if old else "channel")
        try:
            first = first_post_seq(client, settings.prefix, system_clock(), old, weekday=weekly,
                                   days=days, at=when, tz=tz)
            result: Schedule = store.set(who, kind, now=system_clock(), time=when, tz=tz, k=k,
                                         days=days, weekday=weekly, empty=empty, after_seq=first)
        except ValueError as exc:
            _fail(str(exc))
        click.echo(f"{who}: {result.kind} post {result.describe()}"
                   + (f", empty days: {result.empty}" if result.empty else ""))


def _add_plugin_commands(group: click.Group) -> None:
    """Commands that other packages register under the `paperbot.commands` entry point (see
    pyproject.toml: the benchmarks and the evaluation), so that bot/ imports neither of them.
    One that fails to load is one log line, and the rest of the command line works."""
    from importlib.metadata import entry_points

    for point in entry_points(group="paperbot.commands"):
        try:
            command = point.load()
        except Exception as exc:  # a missing package, a broken install
            log.warning("paperbot %s is unavailable: %s (%s)", point.name, exc, point.value)
            continue
        if isinstance(command, click.Command):
            group.add_command(command, point.name)
        else:
            log.warning("paperbot %s is unavailable: %s is not a click command", point.name,
                        point.value)


def _add_module_commands(group: click.Group) -> None:
    """The commands kept in modules of their own (bot/cli_*.py)."""
    from . import cli_library, cli_preferences

    for command in (*cli_preferences.COMMANDS, *cli_library.COMMANDS):
        group.add_command(command)


_add_module_commands(main)
_add_plugin_commands(main)

if __name__ == "__main__":
    main()
