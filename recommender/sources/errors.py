"""The one error every paper source raises, so callers catch a single type and show its message."""

from __future__ import annotations


class SourceError(Exception):
    """A source could not deliver papers. The message is one line meant for a person to read."""


class Stopped(SourceError):
    """A download given up because its caller asked to stop (the process is shutting down):
    not the source's fault, so an ingest records it as stopped, not as an outage."""
