"""`monitor markets`: the known and discovered markets as lineage trees (predecessor ->
successor), as text for people or nested JSON for tools. A discovered market with no stated
predecessor hangs under the one the chatter links it to most (monitor.intel.lineage).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .text import string_list


@dataclass
class Node:
    row: dict[str, Any]
    successors: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.row["name"]


def with_chatter_lineage(rows: Iterable[dict[str, Any]], edges: Iterable[dict[str, Any]]
                         ) -> list[dict[str, Any]]:
    """The market rows, with a predecessor from the chatter for discovered markets that
    state none: the lineage edge seen in the most items (then the earliest).

    Gazetteer markets keep the curated tree; a new name is what the gazetteer cannot place.
    Each row says where its predecessor came from ("stated" or "chatter") and, for the
    chatter, in how many items it was seen.
    """
    best: dict[str, dict[str, Any]] = {}
    for edge in edges:
        if edge["predecessor"] == edge["successor"]:
            continue
        key = (-(edge.get("count") or 0), edge.get("first_seen_at") or "", edge["predecessor"])
        held = best.get(edge["successor"])
        if held is None or key < held["key"]:
            best[edge["successor"]] = {"key": key, "edge": edge}
    out = []
    for row in rows:
        row = dict(row)
        if row.get("predecessor"):
            row["predecessor_origin"] = "stated"
        elif row.get("origin") == "discovered" and row["name"] in best:
            edge = best[row["name"]]["edge"]
            row.update(predecessor=edge["predecessor"], predecessor_origin="chatter",
                       evidence_items=edge.get("count") or 0)
        else:
            row["predecessor_origin"] = None
        out.append(row)
    return out


def _order(node: Node) -> tuple:
    # Known launch dates first, in time order; the undated after them, by name.
    launched = node.row.get("launched_at") or ""
    return (not launched, launched, node.name.lower())


def build_forest(rows: Iterable[dict[str, Any]]) -> list[Node]:
    """Trees rooted at markets with no (known) predecessor. A market whose predecessor is
    not in the table is a root; a cycle of predecessors is broken at its first name."""
    nodes = {r["name"]: Node(dict(r)) for r in rows}
    roots: list[Node] = []
    for node in nodes.values():
        parent = nodes.get(node.row.get("predecessor") or "")
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.successors.append(node)
    placed: set[str] = set()

    def visit(node: Node, path: set[str]) -> None:
        placed.add(node.name)
        keep = []
        for child in sorted(node.successors, key=_order):
            if child.name in path:  # a cycle: cut the link back up the tree
                continue
            keep.append(child)
            visit(child, path | {child.name})
        node.successors = keep

    roots.sort(key=_order)
    for root in roots:
        visit(root, {root.name})
    for node in sorted(nodes.values(), key=lambda n: n.name.lower()):
        if node.name not in placed:  # only reachable through a cycle
            roots.append(node)
            visit(node, {node.name})
    return roots


def lineage_of(forest: list[Node], name: str) -> list[Node]:
    """The tree that holds `name` (case-insensitive), or [] when no market has that name."""
    wanted = name.strip().lower()

    def holds(node: Node) -> bool:
        names = [node.name.lower(), *(a.lower() for a in string_list(node.row.get("aliases")))]
        return wanted in names or any(holds(c) for c in node.successors)

    return [root for root in forest if holds(root)]


def _dates(row: dict[str, Any]) -> str:
    # The day is enough here (the table keeps full ISO times).
    launched, down = (row.get("launched_at") or "")[:10], (row.get("down_at") or "")[:10]
    if launched or down:
        return f"{launched or '?'} – {down}".rstrip()
    return ""


def _label(node: Node) -> str:
    row = node.row
    parts = [node.name, f"[{row.get('status') or 'unknown'}]"]
    dates = _dates(row)
    if dates:
        parts.append(dates)
    if row.get("origin") == "discovered":
        seen = (row.get("first_seen_at") or "")[:10]
        parts.append(f"(discovered{', first seen ' + seen if seen else ''})")
    if row.get("predecessor_origin") == "chatter":
        n = row.get("evidence_items") or 0
        parts.append(f"(after {row['predecessor']} in the chatter: {n} item{'s' * (n != 1)})")
    return "  ".join(parts)


def render_forest(forest: list[Node]) -> str:
    lines: list[str] = []

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _label(node))
        inner = prefix if top else prefix + ("   " if last else "│  ")
        for i, child in enumerate(node.successors):
            walk(child, inner, i == len(node.successors) - 1, False)

    for root in forest:
        walk(root, "", True, True)
    return "\n".join(lines)


def forest_json(forest: list[Node]) -> list[dict[str, Any]]:
    def as_dict(node: Node) -> dict[str, Any]:
        row = node.row
        return {
            "name": node.name, "status": row.get("status"), "origin": row.get("origin"),
            "launched_at": row.get("launched_at"), "down_at": row.get("down_at"),
            "first_seen_at": row.get("first_seen_at"), "predecessor": row.get("predecessor"),
            "predecessor_origin": row.get("predecessor_origin"),
            "evidence_items": row.get("evidence_items"),
            "aliases": string_list(row.get("aliases")),
            "successors": [as_dict(c) for c in node.successors],
        }

    return [as_dict(root) for root in forest]

