"""The exceptions monitor raises; the CLI turns each into one line on stderr."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class for errors a user or operator can act on."""


class ConfigError(MonitorError):
    """The configuration file is missing, unreadable or invalid."""


class StoreError(MonitorError):
    """The database cannot be opened or written."""


class SourceError(MonitorError):
    """Fetching or reading one source failed.

    `retryable` says whether trying again later can help; `gap` names a coverage gap
    (e.g. "private", "banned") when the source is unreachable for policy reasons.
    """

    def __init__(self, message: str, *, retryable: bool = True, gap: str | None = None,
                 retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.gap = gap
        self.retry_after = retry_after
        self.status = status  # the HTTP status, when the server answered with an error
