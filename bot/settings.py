"""Every setting of paperbot, read once from the environment, at the command line's entry.

`paperbot` loads `.env` (what the environment sets wins) and calls `read_settings()`: the one
place that reads `os.environ`. The parts go down as plain values: `core` to the recommender,
the rest to the adapters, the scheduler, the ingest loop, the health endpoint and the rate
limit. Each part parses its own variables (listed in its module and in `.env.example`); a bad
value stops start-up with one line naming the variable and what it accepts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dotenv import load_dotenv

from recommender.config import Settings

from .health import HealthSettings
from .ingest_loop import IngestSettings
from .limits import RateLimit
from .scheduler.settings import Clock, SchedulerSettings, clock_from_env, system_clock

if TYPE_CHECKING:  # the adapters' packages load their platform libraries: only when used
    from .discord_bot.settings import DiscordSettings
    from .slack.settings import SlackConfig


@dataclasses.dataclass(frozen=True)
class BotSettings:
    core: Settings = Settings()
    scheduler: SchedulerSettings = SchedulerSettings()
    ingest: IngestSettings = IngestSettings()
    health: HealthSettings = HealthSettings()
    rate_limit: RateLimit = RateLimit()
    clock: Clock = system_clock
    env: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)  # for the adapters

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BotSettings:
        env = dict(env)
        return cls(core=Settings.from_env(env), scheduler=SchedulerSettings.from_env(env),
                   ingest=IngestSettings.from_env(env), health=HealthSettings.from_env(env),
                   rate_limit=RateLimit.from_env(env), clock=clock_from_env(env), env=env)

    def slack(self, http: bool = False) -> SlackConfig | None:
        """The Slack adapter's settings, or None when Slack is not set up (no SLACK_APP_TOKEN
        for Socket Mode, and not asked for over HTTP)."""
        from .slack.settings import SlackConfig

        if not (http or (self.env.get("SLACK_APP_TOKEN") or "").strip()):
            return None
        return SlackConfig.from_env(self.env, http=http)

    def discord(self, asked: bool = False) -> DiscordSettings | None:
        """The Discord adapter's settings, or None when DISCORD_TOKEN is unset and not `asked`."""
        from .discord_bot.settings import DiscordSettings

        if not (asked or (self.env.get("DISCORD_TOKEN") or "").strip()):
            return None
        return DiscordSettings.from_env(self.env)


def read_settings() -> BotSettings:
    """`.env`, then the process environment, read once (ValueError: one line for a person)."""
    load_dotenv(override=False)
    return BotSettings.from_env(os.environ)
