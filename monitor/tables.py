"""Aligned plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate


def _cut(value: Any, width: int | None) -> Any:
    if width is None or not isinstance(value, str) or len(value) <= width:
        return value
    return value[: width - 1] + "…"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 widths: dict[str, int] | None = None) -> str:
    """A table with simple rules; columns named in `widths` are cut to that many characters."""
    widths = widths or {}
    limits = [widths.get(h) for h in headers]
    cut = [[_cut(v, w) for v, w in zip(row, limits, strict=False)] for row in rows]
    if not cut:
        return "(none)"
    return tabulate(cut, headers=list(headers), tablefmt="simple", disable_numparse=True)


def short_time(value: str | None) -> str:
    """'2026-11-28T14:55:03+00:00' -> '2026-11-28 14:55' (UTC); '' for None."""
    if not value:
        return "never"
    return value[:16].replace("T", " ")
