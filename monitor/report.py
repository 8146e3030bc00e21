"""`monitor report`: recent activity as aligned tables that fit an 80-column terminal.

The window is the last N local days (today included) in the configured time zone; days are
local days too, so the report agrees with the digest about what "Monday" was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from . import store
from .tables import render_table, short_time
from .timeutil import iso, parse_iso, utcnow

WIDTH = 80
BAR_WIDTH = 30
TOP_MARKETS = 10


@dataclass
class Report:
    start: datetime
    end: datetime
    timezone: str
    model_version: str | None
    days: list[tuple[date, int, int]] = field(default_factory=list)  # day, items, flagged
    markets: list[dict[str, Any]] = field(default_factory=list)
    new_names: list[dict[str, Any]] = field(default_factory=list)
    failing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items(self) -> int:
        return sum(n for _, n, _ in self.days)

    @property
    def flagged(self) -> int:
        return sum(f for _, _, f in self.days)


def window(now: datetime, days: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight `days - 1` days ago, now)."""
    local_now = now.astimezone(tz)
    first = local_now.date() - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    return start, now


def build_report(db: Database, *, days: int = 7, timezone: str = "UTC",
                 now: datetime | None = None) -> Report:
    tz = ZoneInfo(timezone)
    now = now or utcnow()
    start, end = window(now, days, tz)
    report = Report(start=start, end=end, timezone=timezone,
                    model_version=store.current_model_version(db))
    counts = {start.date() + timedelta(days=i): [0, 0] for i in range(days)}
    for row in store.daily_flags(db, iso(start), iso(end)):
        day = parse_iso(row["published_at"]).astimezone(tz).date()
        if day in counts:
            counts[day][0] += 1
            counts[day][1] += int(row["flagged"] == 1)
    report.days = [(day, n, f) for day, (n, f) in sorted(counts.items())]
    report.markets = store.top_markets(db, iso(start), iso(end),
                                       previous_start=iso(start - (end - start)),
                                       limit=TOP_MARKETS)
    report.new_names = store.new_market_rows(db, iso(start), iso(end))
    report.failing = store.failing_sources(db)
    return report


def _bar(value: int, largest: int) -> str:
    if not value:
        return ""
    return "#" * max(1, round(BAR_WIDTH * value / largest))


def _change(now: int, before: int) -> str:
    if not before:
        return "from 0" if now else ""
    return f"{(now - before) / before:+.0%}"


def render_report(report: Report) -> str:
    first, last = report.days[0][0], report.days[-1][0]
    model = report.model_version or "none yet (run `monitor classify`)"
    lines = [
        f"monitor report: {first} to {last} ({len(report.days)} days, {report.timezone})",
        f"{report.items} items, {report.flagged} flagged; model {model}",
        "",
        "Flagged by day",
    ]
    largest = max((f for _, _, f in report.days), default=0)
    digits = len(str(largest))
    lines.append(render_table(
        ["day", "items", "flagged"],
        [[d.strftime("%a %Y-%m-%d"), n, f"{f:>{digits}} {_bar(f, largest)}".rstrip()]
         for d, n, f in report.days]))

    n = len(report.days)
    lines += ["", f"Top markets (items in these {n} days; before: in the {n} days before)"]
    lines.append(render_table(
        ["market", "flagged", "mentions", "before", "change"],
        [[m["market"], m["flagged"], m["mentions"], m["previous"],
          _change(m["mentions"], m["previous"])] for m in report.markets],
        widths={"market": 30}))

    lines += ["", "New market names (first mentioned in this window)"]
    lines.append(render_table(
        ["market", "first seen", "origin", "predecessor", "items"],
        [[n["market"], short_time(n["first_seen_at"]), n["origin"] or "unlisted",
          n["predecessor"] or "", n["mentions"]] for n in report.new_names],
        widths={"market": 20, "predecessor": 16}))

    lines += ["", "Failing sources"]
    lines.append(render_table(
        ["source", "fails", "last success", "error"],
        [[s["source"], s["consecutive_failures"], short_time(s["last_success_at"]),
          s["gap_reason"] or s["last_error"] or ""] for s in report.failing],
        widths={"source": 20, "error": 30}))
    return "\n".join(lines)
