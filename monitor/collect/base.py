"""What every collector hands back to the pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# An entry not yet made into an item: its item id, and what makes the item (None: nothing
# worth keeping).
Pending = tuple[str, Callable[[], dict[str, Any] | None]]


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
    # Entries in document order, made into items (after `items`) only when their id is not
    # stored yet: most entries of a changed feed are, and normalising them (HTML to text)
    # would be wasted work.
    pending: Sequence[Pending] = ()


class Source(Protocol):
    """A thing the pipeline can poll. `fetch` does network I/O only and may run in a thread."""

    name: str
    kind: str
    target: str
    interval: float

    def fetch(self, state: dict[str, Any], now: datetime) -> Fetched: ...
