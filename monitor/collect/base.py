"""What every collector hands back to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass
class Fetched:
    """The result of fetching one source: items to store and the state to keep."""

    items: list[dict[str, Any]] = field(default_factory=list)
    not_modified: bool = False
    etag: str | None = None
    modified: str | None = None
    cursor: str | None = None
    seen: int | None = None
    moved_to: str | None = None
    warnings: list[str] = field(default_factory=list)


class Source(Protocol):
    """A thing the pipeline can poll. `fetch` does network I/O only and may run in a thread."""

    name: str
    kind: str
    target: str
    interval: float

    def fetch(self, state: dict[str, Any], now: datetime) -> Fetched: ...
