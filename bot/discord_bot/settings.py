"""The Discord bot's settings, from the environment (`bot.settings` reads it). The token is never shown.

| variable              | meaning                                                           |
|-----------------------|-------------------------------------------------------------------|
| DISCORD_TOKEN         | the bot token (required)                                          |
| DISCORD_GUILD_ID      | register /papers in this server only (instant), not globally      |
| DISCORD_SYNC_COMMANDS | `false` to skip registering /papers at start (default: true)      |
| DISCORD_API_BASE      | REST base, default https://discord.com/api/v10 (compatible servers, tests) |
| DISCORD_GATEWAY_URL   | gateway, default wss://gateway.discord.gg/                        |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

_FALSE = ("0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class DiscordSettings:
    token: str = dataclasses.field(repr=False)
    guild_id: int | None = None
    sync_commands: bool = True
    api_base: str | None = None
    gateway_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DiscordSettings:
        """Settings from `env`; ValueError with one line a person can act on when something
        is missing or malformed."""

        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        token = get("DISCORD_TOKEN")
        if token is None:
            raise ValueError("DISCORD_TOKEN is not set: create a bot in the Discord Developer "
                             "Portal and put its token in DISCORD_TOKEN (see 'Add to Discord' in the README).")
        if token.lower().startswith("bot "):   # pasted with the HTTP header's prefix
            token = token[4:].strip()
        guild = get("DISCORD_GUILD_ID")
        if guild is not None and not guild.isdigit():
            raise ValueError(f"DISCORD_GUILD_ID must be a server id (digits), not {guild[:40]!r}")
        api_base = get("DISCORD_API_BASE")
        if api_base is not None and not api_base.startswith(("http://", "https://")):
            raise ValueError(f"DISCORD_API_BASE must be an http(s) URL like "
                             f"https://discord.com/api/v10, not {api_base[:80]!r}")
        gateway = get("DISCORD_GATEWAY_URL")
        if gateway is not None and not gateway.startswith(("ws://", "wss://")):
            raise ValueError(f"DISCORD_GATEWAY_URL must be a ws(s) URL like "
                             f"wss://gateway.discord.gg/, not {gateway[:80]!r}")
        return cls(
            token=token,
            guild_id=int(guild) if guild else None,
            sync_commands=(get("DISCORD_SYNC_COMMANDS") or "true").lower() not in _FALSE,
            api_base=api_base.rstrip("/") if api_base else None,
            gateway_url=gateway,
        )
