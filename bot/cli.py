"""The `paperbot` command line: ingest, search, similar, people, schedule, console, serve.

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
        except (PaperNotFound, ValueError) as exc:
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


WHO = click.option("--user", "who", required=True,
                   help="A scoped person or channel key, e.g. console:local:alice or slack:T01:U02.")


def _check_who(who: str) -> str:
    from recommender.people import check_who

    try:
        return check_who(who)
    except ValueError:
        _fail(f"--user must look like platform:workspace:id (e.g. console:local:alice), not {who!r}")


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
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    counts = data["counts"]
    click.echo(f"{data['who']}\ntopics: {', '.join(data['topics']) or 'none'}")
    click.echo(f"feedback: {counts['like']} like · {counts['dislike']} dislike · "
               f"{counts['save']} saved · {data['shown']} shown")
    for event in data["recent"]:
        click.echo(f"  {event['kind']:8} {event['paper']}  {event['title'] or ''}")


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


@main.command("eval")
@click.option("--data", "data_dir", default="../shared/data", show_default=True,
              type=click.Path(file_okay=False),
              help="The folder that holds citeulike/ and reviewer-expertise-dev/.")
@click.option("--tasks", default="citeulike,expertise,topic", show_default=True,
              help="Comma list of the tasks to run: citeulike, expertise, topic.")
@click.option("--users", default=2000, show_default=True, type=click.IntRange(min=0),
              help="Users sampled (seeded) per variant; 0 evaluates every eligible user.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object {variant: {method: {metric: value}}}.")
def eval_command(data_dir: str, tasks: str, users: int, seed: int, as_json: bool) -> None:
    """Offline evaluation against baselines, in one run: CiteULike user libraries, reviewer
    expertise (ordering a few close papers) and typed topics (day-one users)."""
    import time
    from pathlib import Path

    from tqdm import tqdm

    from recommender import eval_tasks
    from recommender.evaluate import format_table, run_evaluation

    known = ("citeulike", "expertise", "topic")
    chosen = [t.strip() for t in tasks.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in known]
    if unknown or not chosen:
        _fail(f"unknown task(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(known)}")
    citeulike = Path(data_dir) / "citeulike"
    expertise = Path(data_dir) / "reviewer-expertise-dev"
    if "citeulike" in chosen and not (citeulike / "papers.jsonl").is_file():
        _fail(f"no CiteULike data in {citeulike} (a plain clone has none): pass --data DIR, "
              "the folder that holds citeulike/, e.g. --data ../shared/data")
    needs = {"expertise": [expertise / "papers.jsonl", expertise / "reviewers.jsonl"],
             "topic": [citeulike / "papers.jsonl", citeulike / "citeulike-a" / "users.dat",
                       citeulike / "citeulike-a" / "tags.dat",
                       citeulike / "citeulike-a" / "item-tag.dat"]}
    for task, paths in needs.items():
        missing = [str(path) for path in paths if not path.is_file()]
        if task in chosen and missing:
            click.echo(f"paperbot: skipping the {task} task: {missing[0]} is missing", err=True)
            chosen.remove(task)
    if not chosen:
        _fail("no task left to run")
    bars: dict[str, tqdm] = {}

    def progress(variant: str, done: int, total: int) -> None:
        bar = bars.setdefault(variant, tqdm(desc=f"eval {variant}", total=total, file=sys.stderr,
                                            disable=None, unit=" users"))
        bar.update(done - bar.n)

    results: dict = {}
    tables: list[str] = []
    with open_recommender() as rec:
        if "citeulike" in chosen:
            started = time.perf_counter()
            cite = run_evaluation(citeulike, rec.embed_texts, users=users or None, seed=seed,
                                  progress=progress)
            for bar in bars.values():
                bar.close()
            meta = cite.pop("meta")
            results.update(cite)
            tables.append("CiteULike libraries\n" + format_table(cite))
            click.echo(f"citeulike: seed {meta['seed']}, holdout {meta['holdout']:.0%}, "
                       f"{time.perf_counter() - started:.0f} s; users per variant: "
                       + ", ".join(f"{v} {m.get('users', '?')}"
                                   for v, m in meta["variants"].items()), err=True)
        if "expertise" in chosen:
            started = time.perf_counter()
            results["expertise"], meta = eval_tasks.run_expertise(expertise, rec.embed_texts,
                                                                  seed=seed)
            tables.append(eval_tasks.format_task_table(
                f"Reviewer expertise: {meta['researchers']} researchers, {meta['rated_papers']} "
                f"rated papers, mean of {meta['profile_datasets']} profile datasets",
                results["expertise"], ("loss",), lower_is_better=True,
                paired=meta.get("paperbot_minus")))
            click.echo(f"expertise: {time.perf_counter() - started:.1f} s "
                       f"(embedding {meta['embed_seconds']:.1f} s)", err=True)
        if "topic" in chosen:
            started = time.perf_counter()
            results["topic"], meta = eval_tasks.run_topic(citeulike, rec.embed_texts, seed=seed)
            tables.append(eval_tasks.format_task_table(
                f"Typed topics (CiteULike tags, {meta['half']} half): {meta['topics']} topics, "
                f"{meta['papers']} papers, mean {meta['mean_relevant']:.0f} relevant",
                results["topic"], eval_tasks.TOPIC_METRICS, paired=meta.get("paperbot_minus")))
            click.echo(f"topic: {time.perf_counter() - started:.1f} s "
                       f"(embedding {meta['embed_seconds']:.1f} s)", err=True)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        click.echo("\n\n".join(tables))


@main.command("bench")
@click.option("--quick", is_flag=True, help="Small samples and synthetic corpora (< 3 min): "
              "the CI smoke check.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--data", "data_dir", default="../shared/data", show_default=True,
              type=click.Path(file_okay=False), help="The folder that holds arxiv/; without it "
              "every benchmark runs on synthetic data (and says so).")
def bench_command(quick: bool, as_json: bool, data_dir: str) -> None:
    """Benchmarks against this machine's limits: embedding, cold start, search, daily
    fan-out, chat latency, memory; each figure with its floor measured in the same run."""
    try:
        from bench.run import run as run_bench
    except ImportError as exc:
        _fail(f"the benchmarks live in bench/ of a source checkout ({exc})")
    sys.exit(run_bench(data_dir, quick, as_json))


def _demo_papers():
    from recommender.sources.files import read_file

    with resources.as_file(resources.files("recommender") / "demo_papers.jsonl") as path:
        yield from read_file(path)


def _load_starter_papers(rec: Recommender) -> None:
    """Today's arXiv listing when the network allows; the bundled demo corpus otherwise."""
    from recommender.sources import HttpClient

    try:
        with HttpClient(max_attempts=1, connect_timeout=3, timeout=10) as client:
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
    from .ingest_loop import IngestSettings
    from .scheduler import SchedulerSettings, clock_from_env

    try:
        settings, now, ingest = SchedulerSettings.from_env(), clock_from_env(), IngestSettings.from_env()
    except ValueError as exc:
        _fail(f"bad setting: {exc}")
    with open_recommender() as rec:
        if offline:
            if len(rec) == 0:
                rec.add_papers(_demo_papers())
        else:
            _load_starter_papers(rec)
        run_console(rec, user, now=now, settings=settings, ingest=ingest)


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
    import os

    from dotenv import load_dotenv

    from .health import HealthSettings
    from .ingest_loop import IngestSettings
    from .scheduler import SchedulerSettings, clock_from_env
    from .serve import serve as serve_adapters

    load_dotenv(override=False)   # tokens may be in .env: read it before choosing the adapters
    adapters = {}
    posters: dict = {}   # filled by the adapters once connected; the scheduler posts through them
    try:  # settings are checked before the model loads, so a missing token fails at once
        if slack_http or os.environ.get("SLACK_APP_TOKEN"):
            from .slack import SlackConfig, run_slack

            SlackConfig.from_env(os.environ, http=slack_http)
            adapters["slack"] = functools.partial(run_slack, http=slack_http, host=host, port=port,
                                                  posters=posters)
        if discord or os.environ.get("DISCORD_TOKEN"):
            from .discord_bot import DiscordSettings, run_discord

            adapters["discord"] = functools.partial(run_discord, settings=DiscordSettings.from_env(),
                                                    posters=posters)
        options = dict(posters=posters, scheduler_settings=SchedulerSettings.from_env(),
                       ingest_settings=IngestSettings.from_env(),
                       health_settings=HealthSettings.from_env(), now=clock_from_env())
    except ValueError as exc:
        _fail(str(exc))
    if not adapters:
        _fail("nothing to serve: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode), "
              "use --slack-http, or set DISCORD_TOKEN. See the README.")
    with open_recommender() as rec:
        try:
            asyncio.run(serve_adapters(rec, adapters, **options))
        except ValueError as exc:  # a token the platform refused, a port in use
            _fail(str(exc))


@main.command()
@click.option("--user", "who", help="The channel (or, with --dm, the person) as a scoped key, "
              "e.g. slack:T0123:C0456.")
@click.option("--time", "at", help="Local posting time, HH:MM.")
@click.option("--tz", help="IANA time zone, e.g. Europe/Berlin (default UTC for a new schedule).")
@click.option("-k", "--k", type=click.IntRange(1, 10), help="Papers per post (default 5).")
@click.option("--days", help="Days of the week: mon-fri (default), daily, mon,wed,fri …")
@click.option("--empty", type=click.Choice(["skip", "note"]),
              help="A day without new papers: skip it, or post a one-line note "
                   "(default: PAPERBOT_EMPTY_DAY).")
@click.option("--dm", "is_dm", is_flag=True, help="--user is a person: a daily DM digest.")
@click.option("--off", is_flag=True, help="Turn the daily post off.")
@click.option("--list", "show", is_flag=True, help="List the enabled schedules.")
@click.option("--json", "as_json", is_flag=True, help="With --list: a JSON array.")
def schedule(who: str | None, at: str | None, tz: str | None, k: int | None, days: str | None,
             empty: str | None, is_dm: bool, off: bool, show: bool, as_json: bool) -> None:
    """Set, change, turn off or list daily posts (what `channel time` and `dm` do in chat,
    plus the number of papers, the days and the empty-day behaviour)."""
    from .scheduler import ScheduleStore, system_clock
    from .scheduler.schedules import Schedule

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
            result: Schedule = store.set(who, kind, now=system_clock(), time=when, tz=tz, k=k,
                                         days=days, empty=empty, after_seq=_first_post_seq(client, settings))
        except ValueError as exc:
            _fail(str(exc))
        click.echo(f"{who}: {result.kind} post {result.describe()}"
                   + (f", empty days: {result.empty}" if result.empty else ""))


def _first_post_seq(client, settings) -> float:
    """Where a new schedule's first post starts: the papers of the last day."""
    import time

    from .ingest_loop import seq_reached_by

    return seq_reached_by(client, settings.prefix, time.time() - 86400)


@contextlib.contextmanager
def open_redis():
    """Redis alone (no model): for commands that only read or write settings."""
    from recommender.config import Settings
    from recommender.store import connect

    try:
        settings = Settings.from_env()
        client, embedded = connect(settings)
    except StoreUnavailable as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"bad setting: {exc}")
    try:
        yield client, settings
    except Exception as exc:  # redis errors after connecting
        import redis

        if isinstance(exc, redis.RedisError):
            _fail(f"Redis failed: {exc}")
        raise
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
