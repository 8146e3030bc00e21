"""`monitor export`: the current model's flagged items with their market mentions, as CSV
(one row per item, mentions flattened) or JSON Lines (mentions as a list)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlite_utils import Database

from . import store
from .errors import MonitorError
from .timeutil import iso, parse_iso

FORMATS = ("csv", "jsonl")
CSV_COLUMNS = ("item_id", "published_at", "source", "kind", "title", "url", "score",
               "markets", "successors", "mentions", "label", "duplicate_of", "model_version")


def parse_time(text: str, option: str = "--since") -> str:
    """'2026-11-01' or an ISO 8601 time -> the schema's UTC text; MonitorError otherwise."""
    try:
        value = parse_iso(text.strip())
    except ValueError:
        raise MonitorError(f"{option}: {text!r} is not a date (write 2026-11-01 or "
                           "2026-11-01T08:00:00+00:00)") from None
    return iso(value)


def flagged_with_mentions(db: Database, since: str | None = None,
                          until: str | None = None) -> Iterator[dict[str, Any]]:
    """Flagged items, oldest first, each with its mentions (market, role, surface)."""
    rows = store.flagged_rows(db, since, until)
    mentions = store.item_mentions(db, [r["item_id"] for r in rows])
    for row in rows:
        out = {k: v for k, v in row.items() if k not in ("item_rowid", "excerpt")}
        out["mentions"] = mentions.get(row["item_id"], [])
        yield out


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat = dict(row)
    flat["mentions"] = "; ".join(f"{m['market']} ({m['role']})" for m in row["mentions"])
    return {k: ("" if flat.get(k) is None else flat[k]) for k in CSV_COLUMNS}


def write_export(rows: Iterator[dict[str, Any]], out: TextIO, fmt: str) -> int:
    """Write rows in `fmt`; return how many."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(_flat(row))
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    else:
        raise MonitorError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return count
