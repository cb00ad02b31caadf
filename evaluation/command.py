"""The `paperbot eval` command: the three offline tasks in one run, tables or JSON.

It lives here, with the evaluation, so that the runtime (bot/, recommender/) carries neither it
nor scikit-learn; bot/cli.py finds it through the `paperbot.commands` entry point.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click

TASKS = ("citeulike", "expertise", "topic")
NEEDS_SKLEARN = "paperbot eval needs scikit-learn: pip install 'paperbot[eval]'"


def _fail(message: str) -> None:
    click.echo(f"paperbot: {message}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def open_recommender() -> Iterator:
    """The Recommender of paperbot's settings (Redis, model); a store or setting error is one
    line."""
    from bot.settings import read_settings
    from recommender import Recommender, StoreUnavailable

    try:
        rec = Recommender.open(read_settings().core)
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


def _runnable_tasks(tasks: str, citeulike: Path, expertise: Path) -> list[str]:
    """The chosen tasks whose data is there; a task without its files is skipped, and says so."""
    chosen = [t.strip() for t in tasks.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in TASKS]
    if unknown or not chosen:
        _fail(f"unknown task(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(TASKS)}")
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
    return chosen


def _citeulike(folder: Path, embed, users: int, seed: int) -> tuple[dict, str]:
    from tqdm import tqdm

    from .citeulike import format_table, run_evaluation

    bars: dict[str, tqdm] = {}

    def progress(variant: str, done: int, total: int) -> None:
        bar = bars.setdefault(variant, tqdm(desc=f"eval {variant}", total=total, file=sys.stderr,
                                            disable=None, unit=" users"))
        bar.update(done - bar.n)

    started = time.perf_counter()
    results = run_evaluation(folder, embed, users=users or None, seed=seed, progress=progress)
    for bar in bars.values():
        bar.close()
    meta = results.pop("meta")
    click.echo(f"citeulike: seed {meta['seed']}, holdout {meta['holdout']:.0%}, "
               f"{time.perf_counter() - started:.0f} s; users per variant: "
               + ", ".join(f"{v} {m.get('users', '?')}" for v, m in meta["variants"].items()),
               err=True)
    return results, "CiteULike libraries\n" + format_table(results)


def _expertise(folder: Path, embed, seed: int) -> tuple[dict, str]:
    from . import tasks

    started = time.perf_counter()
    results, meta = tasks.run_expertise(folder, embed, seed=seed)
    table = tasks.format_task_table(
        f"Reviewer expertise: {meta['researchers']} researchers, {meta['rated_papers']} "
        f"rated papers, mean of {meta['profile_datasets']} profile datasets",
        results, ("loss",), lower_is_better=True, paired=meta.get("paperbot_minus"))
    click.echo(f"expertise: {time.perf_counter() - started:.1f} s "
               f"(embedding {meta['embed_seconds']:.1f} s)", err=True)
    return results, table


def _topic(folder: Path, embed, seed: int) -> tuple[dict, str]:
    from . import tasks

    started = time.perf_counter()
    results, meta = tasks.run_topic(folder, embed, seed=seed)
    table = tasks.format_task_table(
        f"Typed topics (CiteULike tags, {meta['half']} half): {meta['topics']} topics, "
        f"{meta['papers']} papers, mean {meta['mean_relevant']:.0f} relevant",
        results, tasks.TOPIC_METRICS, paired=meta.get("paperbot_minus"))
    click.echo(f"topic: {time.perf_counter() - started:.1f} s "
               f"(embedding {meta['embed_seconds']:.1f} s)", err=True)
    return results, table


@click.command("eval")
@click.option("--data", "data_dir", default="../shared/data", show_default=True,
              type=click.Path(file_okay=False),
              help="The folder that holds citeulike/ and reviewer-expertise-dev/.")
@click.option("--tasks", default=",".join(TASKS), show_default=True,
              help="Comma list of the tasks to run: citeulike, expertise, topic.")
@click.option("--users", default=2000, show_default=True, type=click.IntRange(min=0),
              help="Users sampled (seeded) per variant; 0 evaluates every eligible user.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object {variant: {method: {metric: value}}}.")
def eval_command(data_dir: str, tasks: str, users: int, seed: int, as_json: bool) -> None:
    """Offline evaluation against baselines, in one run: CiteULike user libraries, reviewer
    expertise (ordering a few close papers) and typed topics (day-one users)."""
    try:
        import sklearn  # noqa: F401  (the tf-idf baselines)
    except ImportError:
        click.echo(NEEDS_SKLEARN, err=True)
        sys.exit(1)
    citeulike = Path(data_dir) / "citeulike"
    expertise = Path(data_dir) / "reviewer-expertise-dev"
    chosen = _runnable_tasks(tasks, citeulike, expertise)
    results: dict = {}
    tables: list[str] = []
    with open_recommender() as rec:
        if "citeulike" in chosen:
            cite, table = _citeulike(citeulike, rec.embed_texts, users, seed)
            results.update(cite)
            tables.append(table)
        if "expertise" in chosen:
            results["expertise"], table = _expertise(expertise, rec.embed_texts, seed)
            tables.append(table)
        if "topic" in chosen:
            results["topic"], table = _topic(citeulike, rec.embed_texts, seed)
            tables.append(table)
    click.echo(json.dumps(results, indent=2) if as_json else "\n\n".join(tables))
