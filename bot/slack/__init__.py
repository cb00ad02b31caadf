"""paperbot in Slack, through slack-bolt: `/papers` commands, papers in Block Kit with feedback
buttons, and reactions on paperbot's posts as feedback.

Where things are:
- `app.py`: the Bolt `AsyncApp`, Socket Mode or HTTP (`/slack/events`), `run_slack` for `paperbot serve`
- `commands.py`: `/papers …` → the shared grammar (`bot.commands`) → `bot.actions.Actions`
- `channel_rights.py`: who may change a channel's daily post and topics (owner, admins, shares)
- `buttons.py`: 👍 / 👎 / 🔖 / Undo clicks and the forget-me confirmation
- `reactions.py`: reactions on posted papers → `bot.feedback` (the one feedback path)
- `posting.py`: `post_papers`, one message per paper, remembered for reactions
- `daily_posts.py`: `SlackPoster`, the scheduler's way to post daily picks (channels and DMs)
- `render.py`: Block Kit rendering and the escaping that keeps user text from pinging anyone
- `replies.py`: ephemeral answers and the friendly line for a failure
- `identity.py`: Slack ids → scoped keys, workspace admins (`users.info`); `inflight.py`: work
  in progress, drained at shutdown
- `settings.py`: SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL,
  PAPERBOT_SLACK_CHANNEL_ADMINS
"""

from .app import SlackBot, build_app, run_slack, web_client
from .settings import SlackConfig
from .daily_posts import SlackPoster
from .posting import post_papers

__all__ = ["SlackBot", "SlackConfig", "SlackPoster", "build_app", "post_papers", "run_slack", "web_client"]
