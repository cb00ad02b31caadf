"""`paperbot follow`, `unfollow` and `filter`: what the chat commands of the same names do, for
any person or channel key. They need Redis only, not the model."""

from __future__ import annotations

import click

from recommender.preferences import FILTER_KINDS, PreferenceStore, filter_terms

from .cli_common import WHO, check_user, fail, open_redis
from .render_text import terminal_safe


@click.command()
@WHO
@click.argument("name")
def follow(who: str, name: str) -> None:
    """Follow the author NAME: their new papers come first in the picks ("Y. LeCun" and
    "Yann LeCun" are one name)."""
    with open_redis() as (client, settings):
        try:
            added = PreferenceStore(client, settings.prefix).follow(check_user(who), name)
        except ValueError as exc:
            fail(str(exc))
    click.echo(terminal_safe(f"following {name}" if added else f"{name} was followed already"))


@click.command()
@WHO
@click.argument("name")
def unfollow(who: str, name: str) -> None:
    """Stop following the author NAME (any spelling of the name)."""
    with open_redis() as (client, settings):
        written = PreferenceStore(client, settings.prefix).unfollow(check_user(who), name)
    click.echo(terminal_safe(f"unfollowed {written}" if written else f"{name} was not followed"))


@click.command("filter")
@WHO
@click.argument("kind", type=click.Choice([*FILTER_KINDS, "clear", "show"]))
@click.argument("value", required=False)
def filter_command(who: str, kind: str, value: str | None) -> None:
    """Keep papers out of the picks and daily posts: exclude words, include only papers with
    some words, only some arXiv categories (cs.LG …), or clear them all. Comma-separated
    phrases; exclude wins. `search` is never filtered."""
    with open_redis() as (client, settings):
        store = PreferenceStore(client, settings.prefix)
        who = check_user(who)
        if kind == "clear":
            click.echo("filters cleared" if store.clear_filters(who) else "there were no filters")
            return
        if kind != "show":
            if not value or not value.strip():
                fail(f"filter {kind} needs a VALUE, e.g. paperbot filter --user {who} {kind} "
                     f"{'cs.LG' if kind == 'category' else 'survey'}")
            try:
                store.add_filter(who, kind, filter_terms(kind, value))
            except ValueError as exc:
                fail(str(exc))
        click.echo(terminal_safe(f"filters: {store.get(who).describe_filters()}"))


COMMANDS = (follow, unfollow, filter_command)
