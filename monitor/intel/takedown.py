"""Takedown response: what successor chatter followed each event, and how it compares.

The numbers come from the `takedown_response` view (store.TAKEDOWN_RESPONSE_SQL says which
mentions count for an event), so that `monitor events`, the digest and an analyst's SQL agree.
This module groups the rows by event, works out each event's headline figures (how soon the
first successor was named, how many, which one led and by how much) and compares them with
the events before it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from .. import store
from ..tables import render_table, short_time

DAYS = 30
_BARS = " ▁▂▃▄▅▆▇█"


@dataclass
class Successor:
    market: str
    first_mention_at: str
    days_to_first_mention: float
    mentions_7d: int
    mentions_30d: int
    share_30d: float
    daily_30d: list[int]
    warnings_30d: int


@dataclass
class Response:
    event_id: str
    name: str
    kind: str
    happened_at: str
    fallen: list[str]
    successors: list[Successor] = field(default_factory=list)

    @property
    def first(self) -> Successor | None:
        return min(self.successors, key=lambda s: (s.first_mention_at, s.market), default=None)

    @property
    def leader(self) -> Successor | None:
        ranked = [s for s in self.successors if s.mentions_30d]
        return max(ranked, key=lambda s: (s.mentions_30d, -s.days_to_first_mention),
                   default=None)

    @property
    def chatter_30d(self) -> int:
        return sum(s.mentions_30d for s in self.successors)


@dataclass
class Comparison:
    """An event's figures next to the median of the earlier events that had chatter."""

    earlier: int
    days_to_first: float | None
    successors: float | None
    chatter_30d: float | None
    leader_share: float | None


def responses(db: Database, event_ids: Sequence[str] = (), *, include_quiet: bool = False
              ) -> list[Response]:
    """Each event's response, oldest event first; events without chatter only when asked."""
    by_event: dict[str, Response] = {}
    for row in store.takedown_response_rows(db, event_ids):
        response = by_event.get(row["event_id"])
        if response is None:
            response = by_event[row["event_id"]] = _response(row)
        response.successors.append(Successor(
            market=row["successor"], first_mention_at=row["first_mention_at"],
            days_to_first_mention=float(row["days_to_first_mention"] or 0.0),
            mentions_7d=row["mentions_7d"], mentions_30d=row["mentions_30d"],
            share_30d=float(row["share_30d"] or 0.0),
            daily_30d=list(json.loads(row["daily_30d"] or "[]")),
            warnings_30d=row["warnings_30d"]))
    if include_quiet or event_ids:
        for row in store.event_rows(db):
            if row["id"] not in by_event and (not event_ids or row["id"] in event_ids):
                by_event[row["id"]] = _response(
                    {"event_id": row["id"], "event": row["name"], "kind": row["kind"],
                     "happened_at": row["happened_at"], "fallen": row["markets"]})
    out = sorted(by_event.values(), key=lambda r: (r.happened_at or "", r.event_id))
    for response in out:
        response.successors.sort(key=lambda s: (-s.mentions_30d, s.first_mention_at, s.market))
    return out


def _response(row: dict[str, Any]) -> Response:
    fallen = row.get("fallen") or "[]"
    try:
        markets = json.loads(fallen)
    except ValueError:
        markets = [fallen]
    if isinstance(markets, str):
        markets = [markets]
    return Response(row["event_id"], row["event"] or row["event_id"], row["kind"] or "",
                    row["happened_at"] or "", [str(m) for m in markets])


def compare(response: Response, history: Sequence[Response]) -> Comparison:
    """`response` against the events before it (in `history`) that had successor chatter."""
    earlier = [r for r in history if r.successors and r.happened_at < response.happened_at]

    def median(values: list[float]) -> float | None:
        return float(statistics.median(values)) if values else None

    return Comparison(
        earlier=len(earlier),
        days_to_first=median([r.first.days_to_first_mention for r in earlier if r.first]),
        successors=median([float(len(r.successors)) for r in earlier]),
        chatter_30d=median([float(r.chatter_30d) for r in earlier]),
        leader_share=median([r.leader.share_30d for r in earlier if r.leader]))


def sparkline(counts: Sequence[int]) -> str:
    top = max(counts, default=0)
    if top <= 0:
        return "·" * len(counts)
    return "".join(_BARS[0 if c <= 0 else max(1, round(c / top * (len(_BARS) - 1)))]
                   for c in counts)


def duration(days: float | None) -> str:
    """0.375 -> '9h', 2.5 -> '2d 12h'."""
    if days is None:
        return "-"
    hours = round(days * 24)
    if hours < 24:
        return f"{hours}h"
    return f"{hours // 24}d {hours % 24}h" if hours % 24 else f"{hours // 24}d"


def render(items: Sequence[Response], history: Sequence[Response] | None = None) -> str:
    """The summary table, then per event with chatter its successors and the comparison."""
    history = list(history if history is not None else items)
    summary = []
    for r in sorted(items, key=lambda r: (r.happened_at, r.event_id), reverse=True):
        first, leader = r.first, r.leader
        summary.append([
            r.name, r.happened_at[:10], r.kind,
            short_time(first.first_mention_at) if first else "",
            duration(first.days_to_first_mention) if first else "",
            len(r.successors) or "", r.chatter_30d or "",
            f"{leader.market} ({leader.share_30d:.0%})" if leader else ""])
    parts = [render_table(["event", "date", "kind", "first successor", "after", "successors",
                           f"mentions {DAYS}d", "leader (share)"], summary,
                          widths={"event": 40, "leader (share)": 36})]
    for r in sorted(items, key=lambda r: (r.happened_at, r.event_id), reverse=True):
        if not r.successors:
            continue
        parts.append("")
        parts.append(f"{r.name} ({r.happened_at[:10]}, {r.kind}: {', '.join(r.fallen)})")
        parts.append(render_table(
            ["successor", "first mention", "after", "7d", f"{DAYS}d", "share", "warnings",
             f"daily, {DAYS} days from the event"],
            [[s.market, short_time(s.first_mention_at), duration(s.days_to_first_mention),
              s.mentions_7d, s.mentions_30d, f"{s.share_30d:.0%}", s.warnings_30d or "",
              sparkline(s.daily_30d)] for s in r.successors],
            widths={"successor": 28}))
        parts.append(_comparison_line(r, compare(r, history)))
    return "\n".join(parts)


def _comparison_line(r: Response, c: Comparison) -> str:
    if not c.earlier:
        return "No earlier event with successor chatter to compare with."
    first, leader = r.first, r.leader
    bits = [f"first successor after {duration(first.days_to_first_mention if first else None)}"
            f" (median {duration(c.days_to_first)})",
            f"{len(r.successors)} successors (median {c.successors:g})",
            f"{r.chatter_30d} mentions in {DAYS}d (median {c.chatter_30d:g})"]
    if leader and c.leader_share is not None:
        bits.append(f"leader share {leader.share_30d:.0%} (median {c.leader_share:.0%})")
    plural = "s" if c.earlier != 1 else ""
    return f"Against {c.earlier} earlier event{plural}: " + "; ".join(bits) + "."
