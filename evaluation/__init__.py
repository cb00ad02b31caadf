"""Offline evaluation of paperbot's ranking against baselines, kept out of the runtime core.

- `citeulike`: CiteULike-a user libraries (held-out papers among all others), the metrics
- `tasks`: reviewer expertise (ordering a few close papers) and typed topics (day-one users)
- `command`: `paperbot eval`, registered through the `paperbot.commands` entry point

Needs scikit-learn (the tf-idf baselines): `pip install 'paperbot[eval]'`.
"""
