"""The Discord adapter: `/papers` slash commands, papers as embeds with 👍 / 👎 / 🔖 buttons,
and reactions as feedback — the same commands and recommender as Slack and the console.

- `settings.py`        DISCORD_TOKEN and the optional endpoints and command-sync settings
- `app.py`             the discord.py client (gateway, no privileged intents) and `run_discord`
- `context.py`         what the client's parts share (client, recommender, actions, feedback path)
- `commands.py`        /papers subcommands with typed options → the shared grammar → Actions
- `replies.py`         answering within Discord's deadlines: direct, or defer then follow up
- `render.py`          paper embeds, persistent feedback buttons, text made safe to show
- `reactions.py`       reactions on posted papers → `bot.feedback` (the one feedback path)
- `buttons.py`         👍 / 👎 / 🔖 clicks → `bot.feedback`
- `daily_posts.py`     `DiscordPoster`: the scheduler's daily picks into channels and DMs
- `identity.py`        Discord ids → scoped keys (`discord:<guild>:<user>`)

Setup for a real server: the README, "Add to Discord".
"""

from .app import PaperbotDiscord, run_discord
from .settings import DiscordSettings

__all__ = ["DiscordSettings", "PaperbotDiscord", "run_discord"]
