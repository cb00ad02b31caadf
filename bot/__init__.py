"""paperbot's adapters: the command grammar, the console, Slack, Discord, the scheduler, the CLI."""
