"""The `paperbot bench` command. It lives here, not in bot/, so that the import runs from the
benchmarks to the bot; bot/cli.py finds it through the `paperbot.commands` entry point."""

from __future__ import annotations

import sys

import click


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small samples and synthetic corpora (< 3 min): "
              "the CI smoke check.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--data", "data_dir", default="../shared/data", show_default=True,
              type=click.Path(file_okay=False), help="The folder that holds arxiv/; without it "
              "every benchmark runs on synthetic data (and says so).")
@click.option("--only", type=click.Choice(["fanout"]), help="Just this one: `fanout` is the "
              "daily fan-out at scale, on REDIS_URL when set, else on the bench's own single "
              "server and a local 3-primary cluster.")
@click.option("--people", type=click.IntRange(1, 1_000_000), default=100_000, show_default=True,
              help="With --only fanout: the people to post to at once (measured against 10,000).")
def bench(quick: bool, as_json: bool, data_dir: str, only: str | None, people: int) -> None:
    """Benchmarks against this machine's limits: embedding, cold start, search, daily
    fan-out (and at scale, on a single Redis and a cluster), chat latency, memory; each
    figure with its floor measured in the same run."""
    from .run import run, run_fanout_at_scale

    if only == "fanout":
        sys.exit(run_fanout_at_scale(people, as_json))
    sys.exit(run(data_dir, quick, as_json))
