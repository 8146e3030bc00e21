"""Times as the schema wants them: ISO 8601 UTC text with a T and an offset."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    """2026-11-28T14:55:03+00:00: compares correctly as text."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_iso(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def from_struct(t: time.struct_time) -> datetime | None:
    """feedparser's *_parsed values are UTC struct_times; None when out of range."""
    try:
        return datetime.fromtimestamp(calendar.timegm(t), UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None
