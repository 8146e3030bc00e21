"""What `monitor markets` adds under the lineage trees: warnings per market, and the lineage
edges the chatter shows (with their evidence) next to those the gazetteer states."""

from __future__ import annotations

from collections.abc import Collection

from sqlite_utils import Database

from .. import store
from ..tables import render_table, short_time


def markets_text(db: Database, names: Collection[str] | None = None) -> str:
    """Two tables (either may be missing), or "" when there is nothing to add."""
    parts = []
    warned = [w for w in store.warnings_between(db)
              if names is None or w["market"] in names]
    if warned:
        parts.append("Warnings (items calling the market a scam, phishing clone or honeypot):")
        parts.append(render_table(
            ["market", "warnings", "first", "last"],
            [[w["market"], w["warnings"], short_time(w["first_at"]), short_time(w["last_at"])]
             for w in warned], widths={"market": 32}))
    edges = [e for e in store.lineage_edges(db)
             if (e["count"] or e["origin"] == "discovered")
             and (names is None or e["predecessor"] in names or e["successor"] in names)]
    if edges:
        if parts:
            parts.append("")
        parts.append("Lineage in the chatter (evidence: items naming both):")
        parts.append(render_table(
            ["predecessor", "successor", "kind", "origin", "items", "first seen", "last seen"],
            [[e["predecessor"], e["successor"], e["kind"], e["origin"], e["count"],
              short_time(e["first_seen_at"]) if e["first_seen_at"] else "",
              short_time(e["last_seen_at"]) if e["last_seen_at"] else ""]
             for e in sorted(edges, key=lambda e: (-(e["count"] or 0), e["predecessor"],
                                                   e["successor"]))],
            widths={"predecessor": 28, "successor": 28}))
    return "\n".join(parts)
