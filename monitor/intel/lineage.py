"""The predecessor -> successor graph, built from the mentions and kept in `lineage`.

An edge comes from two places. The markets table states some (the gazetteer's `predecessor`,
or a discovered market's): those edges have origin `gazetteer` or `discovered` as the market
row has. The chatter shows others: an item that names a successor and a predecessor is
evidence for that edge (origin `discovered` unless the gazetteer states it too). Each evidence
row keeps the item and its time, so an edge carries its count, first and last sighting.

The kind of an edge:
- `relaunch`: the same brand again ("X" -> "X 2.0", "X Reloaded", "X (2021)");
- `migration`: the chatter says users moved there ("everyone went to Y");
- `replacement`: anything else (a new market that took the old one's place).

When an item names several predecessors (“X 3.0 is up; X 2.0 was seized, and X before it”),
the edge goes from the nearest one only: a predecessor that is an ancestor of another named
predecessor (by known edges or by version number) is skipped, so a chain X -> X 2.0 -> X 3.0
does not also grow a shortcut X -> X 3.0. An item that names only a versioned successor
("X 3.0 is live") links it to the newest older version of the same brand already known.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from .. import store

KINDS = ("relaunch", "migration", "replacement")
_PRIORITY = {"relaunch": 2, "migration": 1, "replacement": 0}

_GENERIC = {"market", "marketplace", "markets", "shop", "store", "dnm", "the", "new", "site"}
_ROMAN = {"ii": 2.0, "iii": 3.0, "iv": 4.0}
# Words that mark a relaunch without saying which one.
_AGAIN = {"reloaded", "reborn", "returns", "relaunched", "relaunch", "resurrected", "revived",
          "redux", "remastered", "rebooted", "returned", "next", "again"}
_TOKEN = re.compile(r"\d+\.\d+|[^\W_]+")
_YEAR = re.compile(r"\(\s*(?:19|20)\d\d\s*\)")
_MAX_DEPTH = 12
# Users going somewhere: "moved to Y", "migrating from X to Y", "everyone went to Y",
# "X refugees", "where now?".
_MIGRATION = re.compile("|".join(f"(?:{p})" for p in (
    r"\bmigrat\w*",
    r"\b(?:mov|switch|shift|relocat)\w*\s+(?:\w+\s+){0,3}?(?:over\s+)?(?:to|from)\b",
    r"\b(?:went|gone|go|going|head\w*|flock\w*|fle[de]\w*|jump\w*)\s+(?:over\s+)?(?:to|into)\b",
    r"\brefugees?\b", r"\bexodus\b", r"\binflux\b", r"\bdisplaced\b", r"\bnew home\b",
    r"\bwhere (?:is everyone|did everyone|to go|do we go|now)\b", r"\bwhere everyone\b",
)))


@dataclass(frozen=True)
class Brand:
    """A market name without its version: 'Silk Road 2.0' -> ('silkroad', 2.0).

    `generation` is 1.0 for a plain name, the number for a versioned one, and None for a
    relaunch marker without a number ("Reloaded", "(2021)").
    """

    base: str
    generation: float | None


def brand(name: str) -> Brand:
    text = name.lower()
    marked = bool(_YEAR.search(text))
    tokens = _TOKEN.findall(_YEAR.sub(" ", text))
    while len(tokens) > 1 and tokens[-1] in _GENERIC:
        tokens.pop()
    generation: float | None = None if marked else 1.0
    if len(tokens) > 1:
        last = tokens[-1]
        number = re.fullmatch(r"v?(\d+(?:\.\d+)?)", last)
        # A bare small number is a version ("Silk Road 2"); "Cloud 9" is a name.
        if number and ("." in last or last.startswith("v") or 1 <= float(number[1]) <= 5):
            generation = float(number[1])
            tokens.pop()
        elif last in _ROMAN:
            generation = _ROMAN[last]
            tokens.pop()
        elif last in _AGAIN:
            generation = None
            tokens.pop()
    while len(tokens) > 1 and tokens[0] in _GENERIC:
        tokens.pop(0)
    while len(tokens) > 1 and tokens[-1] in _GENERIC:
        tokens.pop()
    return Brand("".join(tokens).replace("0", "o"), generation)


def same_brand(a: str, b: str) -> bool:
    ba, bb = brand(a), brand(b)
    return bool(ba.base) and ba.base == bb.base and a != b


def older_version(a: str, b: str) -> bool:
    """True when `a` is an earlier version of the same brand as `b`."""
    ba, bb = brand(a), brand(b)
    if not ba.base or ba.base != bb.base or a == b:
        return False
    if ba.generation is not None and bb.generation is not None:
        return ba.generation < bb.generation
    # A plain name is older than its unnumbered relaunch ("X" before "X Reloaded").
    return ba.generation == 1.0 and bb.generation is None


class Graph:
    """Parents of each market, from the edges known so far."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.parents: dict[str, set[str]] = {}
        for predecessor, successor in pairs:
            self.add(predecessor, successor)

    def add(self, predecessor: str, successor: str) -> None:
        self.parents.setdefault(successor, set()).add(predecessor)

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        frontier = [name]
        for _ in range(_MAX_DEPTH):
            frontier = [p for n in frontier for p in self.parents.get(n, ()) if p not in seen]
            if not frontier:
                break
            seen.update(frontier)
        seen.discard(name)
        return seen

    def is_ancestor(self, a: str, b: str) -> bool:
        return a in self.ancestors(b) or older_version(a, b)


def evidence_kind(predecessor: str, successor: str, lowered_text: str) -> str:
    if same_brand(predecessor, successor):
        return "relaunch"
    if _MIGRATION.search(lowered_text):
        return "migration"
    return "replacement"


def edges_for_item(successors: Sequence[str], predecessors: Sequence[str], text: str,
                   graph: Graph, known: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(predecessor, successor, kind) that one item shows.

    `known` are market names known so far, for linking a lone versioned successor.
    """
    lowered = text.lower()
    found: list[tuple[str, str, str]] = []
    known = list(known)
    for successor in dict.fromkeys(successors):
        # A predecessor newer than its successor is a misread, not lineage.
        preds = [p for p in dict.fromkeys(predecessors)
                 if p != successor and not graph.is_ancestor(successor, p)]
        if not preds:
            inferred = _older_of_brand(successor, known)
            preds = [inferred] if inferred else []
        nearest = [p for p in preds
                   if not any(q != p and graph.is_ancestor(p, q) for q in preds)]
        found += [(p, successor, evidence_kind(p, successor, lowered)) for p in nearest]
    return found


def _older_of_brand(successor: str, known: Sequence[str]) -> str | None:
    """The newest known earlier version of a successor's brand, if it has a version."""
    if brand(successor).generation == 1.0:
        return None
    older = [k for k in known if older_version(k, successor)]
    if not older:
        return None
    return max(older, key=lambda k: (brand(k).generation or 0.0, k))


def edge_from_evidence(predecessor: str, successor: str, evidence: Sequence[dict[str, Any]],
                       origin: str) -> dict[str, Any]:
    """The edge row for a pair, from all of its evidence rows (oldest first)."""
    if same_brand(predecessor, successor):
        kind = "relaunch"
    elif evidence:
        counts = Counter(row["kind"] for row in evidence)
        kind = max(counts, key=lambda k: (counts[k], _PRIORITY.get(k, 0)))
    else:
        kind = "replacement"
    row: dict[str, Any] = {"predecessor": predecessor, "successor": successor, "kind": kind,
                           "origin": origin, "count": len(evidence)}
    if evidence:
        row.update(first_seen_at=evidence[0]["seen_at"], last_seen_at=evidence[-1]["seen_at"],
                   first_item_id=evidence[0]["item_id"], last_item_id=evidence[-1]["item_id"])
    return row


def update(db: Database, item_ids: Sequence[str],
           items: list[dict[str, Any]] | None = None) -> int:
    """Add the edges that the mentions of these items show; return how many edges changed.
    `items`: store.intel_items(db, item_ids), when the caller has them."""
    markets = store.all_markets(db)
    stated = {(r["predecessor"], r["successor"]): r["origin"]
              for r in store.stated_predecessors(db)}
    stored = {(e["predecessor"], e["successor"]): e for e in store.lineage_edges(db)}
    touched: set[tuple[str, str]] = {
        pair for pair, origin in stated.items()
        if pair not in stored or (origin == "gazetteer" and stored[pair]["origin"] != origin)}
    graph = Graph([*stated, *stored])
    known = {m["name"] for m in markets} | {n for pair in stored for n in pair}
    items = store.intel_items(db, item_ids) if items is None else items
    mentions = store.item_mentions(db, [i["id"] for i in items])
    evidence = []
    for item in items:
        rows = mentions.get(item["id"], [])
        successors = [m["market"] for m in rows if m["role"] == "successor"]
        if not successors:
            continue
        predecessors = [m["market"] for m in rows if m["role"] == "predecessor"]
        text = f"{item['title'] or ''}\n{item['body'] or ''}"
        for pred, succ, kind in edges_for_item(successors, predecessors, text, graph, known):
            evidence.append({"predecessor": pred, "successor": succ, "item_id": item["id"],
                             "kind": kind, "seen_at": item["published_at"]})
            graph.add(pred, succ)
            known.update((pred, succ))
    if evidence:
        store.save_lineage_evidence(db, evidence)
        touched.update((e["predecessor"], e["successor"]) for e in evidence)
    with db.atomic():
        for pred, succ in sorted(touched):
            origin = "gazetteer" if stated.get((pred, succ)) == "gazetteer" else "discovered"
            rows = store.lineage_evidence(db, pred, succ)
            store.upsert_lineage_edge(db, edge_from_evidence(pred, succ, rows, origin))
    return len(touched)


def tree(edges: Sequence[dict[str, Any]]) -> list[tuple[int, str, dict[str, Any] | None]]:
    """The edges as an indented forest: (depth, market, edge into it or None for a root),
    roots and children in alphabetical order. A market with two parents appears under each."""
    children: dict[str, list[dict[str, Any]]] = {}
    has_parent: set[str] = set()
    for edge in edges:
        children.setdefault(edge["predecessor"], []).append(edge)
        has_parent.add(edge["successor"])
    roots = sorted({e["predecessor"] for e in edges} - has_parent)
    # A cycle has no root: start from its alphabetically first member.
    remaining = {e["predecessor"] for e in edges} | has_parent
    out: list[tuple[int, str, dict[str, Any] | None]] = []
    seen: set[str] = set()

    def walk(name: str, depth: int, edge: dict[str, Any] | None, path: frozenset[str]) -> None:
        out.append((depth, name, edge))
        seen.add(name)
        for child in sorted(children.get(name, []), key=lambda e: e["successor"]):
            if child["successor"] not in path:
                walk(child["successor"], depth + 1, child, path | {child["successor"]})

    for root in roots:
        walk(root, 0, None, frozenset([root]))
    for name in sorted(remaining - seen):
        if name not in seen:
            walk(name, 0, None, frozenset([name]))
    return out
