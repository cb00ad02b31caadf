"""What every `paperbot` command shares: one-line failures, the settings, Redis and the
recommender opened and closed, the --user option. Its own module so that the commands kept
in other modules (bot/cli_*.py) need not import bot/cli.py, which imports them."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from recommender import Recommender, StoreUnavailable

if TYPE_CHECKING:
    from .settings import BotSettings


def fail(message: str) -> None:
    from .render_text import terminal_safe   # a message may repeat what a feed or a person wrote

    click.echo(f"paperbot: {terminal_safe(message)}", err=True)
    sys.exit(1)


def bot_settings() -> BotSettings:
    """Every setting, `.env` included, read once by the command that needs them (see
    bot/settings.py); a bad value stops it with one line."""
    from .settings import read_settings

    try:
        return read_settings()
    except ValueError as exc:
        fail(f"bad setting: {exc}")


@contextlib.contextmanager
def open_recommender(settings: BotSettings | None = None) -> Iterator[Recommender]:
    try:
        rec = Recommender.open((settings or bot_settings()).core)
    except StoreUnavailable as exc:
        fail(str(exc))
    try:
        yield rec
    except StoreUnavailable as exc:
        fail(str(exc))
    finally:
        rec.close()


WHO = click.option("--user", "who", required=True,
                   help="A scoped person or channel key, e.g. console:local:alice or slack:T01:U02.")


def check_user(who: str) -> str:
    from recommender.people import check_who

    try:
        return check_who(who)
    except ValueError as exc:
        fail(f"--user: {exc}")


@contextlib.contextmanager
def open_redis():
    """Redis alone (no model): for commands that only read or write settings."""
    from recommender.store import connect

    settings = bot_settings().core
    try:
        client, embedded = connect(settings)
    except StoreUnavailable as exc:
        fail(str(exc))
    try:
        yield client, settings
    except Exception as exc:  # redis errors after connecting
        import redis

        if isinstance(exc, redis.RedisError):
            fail(f"Redis failed: {exc}")
        raise
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()
