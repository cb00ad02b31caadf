"""Test support shared by tests/ and bench/: fakes of Slack, Discord, the paper sources and the
scheduler's platforms, each a real server on 127.0.0.1 (or a plain double), never a mock.

- `fake_slack`: Web API, response_urls and a Socket Mode websocket (`FakeSlack`)
- `fake_slack_history`: `HistoryFakeSlack`, plus what the daily posts need (history, DMs, delays)
- `fake_discord`: REST API and gateway for the unmodified discord.py client (`FakeDiscord`)
- `fake_sources`: recorded-shape arXiv and Hugging Face responses (`FakeSourceServer`)
- `scheduler_fakes`: a simulated clock, a fake platform and its posters
- `fake_discord_posts`: `PostsFakeDiscord`, with Discord's nonce deduplication and channel history
- `ports`: `free_port()` for a server of a test's own

An importable package, installed with paperbot (editable in a checkout): tests and benchmarks
import it by name, wherever they run from.
"""
