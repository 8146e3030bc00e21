"""The SQLite store: schema (idempotent migrations), writes and the reads the CLI needs.

This is the only module that writes SQL. Every write that must be all-or-nothing (new items
together with the source state that says they were seen) happens in one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .errors import StoreError
from .timeutil import iso

BUSY_TIMEOUT_MS = 30_000
ITEM_COLUMNS = ("id", "source", "kind", "url", "title", "body", "author", "published_at",
                "collected_at", "content_hash", "parent_id", "duplicate_of")
_CHUNK = 500

migrations = Migrations("monitor")


@migrations()
def m001_core(db: Database) -> None:
    db["sources"].create({
        "name": str, "kind": str, "target": str, "etag": str, "modified": str, "cursor": str,
        "last_attempt_at": str, "last_success_at": str, "consecutive_failures": int,
        "last_error": str, "next_attempt_at": str,
        # Beyond DESIGN.md: why a source cannot be read (private, banned, ...), and whether
        # it is still in the config.
        "gap": str, "active": int,
    }, pk="name", defaults={"consecutive_failures": 0, "active": 1}, not_null={"kind"})
    db["items"].create({
        "id": str, "source": str, "kind": str, "url": str, "title": str, "body": str,
        "author": str, "published_at": str, "collected_at": str, "content_hash": str,
        "parent_id": str,
        # The first item from another source with the same content: a syndicated copy.
        "duplicate_of": str,
    }, pk="id", not_null={"source", "kind", "published_at", "collected_at"},
        foreign_keys=[("source", "sources", "name")])
    db["items"].create_index(["published_at"])
    db["items"].create_index(["source", "published_at"])
    db["items"].create_index(["content_hash"])
    db["items"].create_index(["collected_at"])
    db["items"].create_index(["parent_id"])
    db["items"].enable_fts(["title", "body"], create_triggers=True)

    db["classifications"].create({
        "item_id": str, "model_version": str, "score": float, "flagged": int,
        "classified_at": str,
    }, pk=("item_id", "model_version"), foreign_keys=[("item_id", "items", "id")])
    db["classifications"].create_index(["model_version", "flagged"])

    db["mentions"].create({"item_id": str, "market": str, "surface": str, "role": str},
                          foreign_keys=[("item_id", "items", "id")], not_null={"market", "role"})
    db["mentions"].create_index(["item_id", "market", "role"], unique=True)
    db["mentions"].create_index(["market", "role"])

    db["markets"].create({
        "name": str, "aliases": str, "status": str, "predecessor": str, "launched_at": str,
        "down_at": str, "first_seen_at": str, "origin": str,
    }, pk="name")
    db["alerts"].create({"id": int, "market": str, "kind": str, "raised_at": str,
                         "detail": str}, pk="id")
    db["alerts"].create_index(["raised_at"])
    db["events"].create({"id": str, "name": str, "happened_at": str, "kind": str,
                         "markets": str}, pk="id")
    db["labels"].create({"item_id": str, "label": int, "analyst": str, "labeled_at": str,
                         "note": str}, pk="item_id", foreign_keys=[("item_id", "items", "id")])
    db["runs"].create({"id": int, "job": str, "started_at": str, "finished_at": str, "ok": int,
                       "items_seen": int, "items_new": int, "error": str}, pk="id")
    db["runs"].create_index(["job", "started_at"])
    db["runs"].create_index(["started_at"])
    db["digests"].create({"period_start": str, "period_end": str, "status": str,
                          "attempts": int, "last_error": str, "sent_at": str,
                          "message_id": str}, defaults={"attempts": 0})
    db["digests"].create_index(["period_start", "period_end"], unique=True)
    db["meta"].create({"key": str, "value": str}, pk="key")


def schema_version(db: Database) -> int:
    return len(migrations.applied(db))


def open_db(path: Path | str, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the database in WAL mode with a busy timeout."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Created private: the database holds collected text and source state.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys=ON")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if migrate:
            ensure_schema(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the database: {exc}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the database: {exc.strerror}") from None
    return db


def ensure_schema(db: Database) -> None:
    if migrations.pending(db):
        migrations.apply(db)
        db["meta"].upsert({"key": "schema_version", "value": str(schema_version(db))}, pk="key")


# --- sources -------------------------------------------------------------------------------

def register_sources(db: Database, sources: Iterable[tuple[str, str, str]]) -> None:
    """Make sure each (name, kind, target) has a row; mark every other source inactive."""
    rows = [{"name": n, "kind": k, "target": t, "active": 1} for n, k, t in sources]
    with db.atomic():
        if rows:
            db["sources"].upsert_all(rows, pk="name")
        names = [r["name"] for r in rows]
        marks = ",".join("?" * len(names))
        db.execute(f"UPDATE sources SET active = 0 WHERE name NOT IN ({marks}) "
                   "AND kind != 'replay'", names)


def ensure_source(db: Database, name: str, kind: str, target: str = "") -> None:
    db.execute("INSERT INTO sources (name, kind, target) VALUES (?, ?, ?) "
               "ON CONFLICT(name) DO NOTHING", [name, kind, target])


def source_state(db: Database, name: str) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM sources WHERE name = ?", [name]))
    return rows[0] if rows else {}


def mark_attempt(db: Database, name: str, now: datetime) -> None:
    db.execute("UPDATE sources SET last_attempt_at = ? WHERE name = ?", [iso(now), name])


def record_fetch(db: Database, name: str, items: Sequence[dict], now: datetime, *,
                 etag: str | None = None, modified: str | None = None,
                 cursor: str | None = None, keep_validators: bool = False) -> list[str]:
    """Store new items and the source's success state in one transaction.

    Returns the ids of the items that were new. Items already stored are left alone, so a
    fetch repeated after a crash stores nothing twice.
    """
    with db.atomic():
        new_ids = _insert_new_items(db, name, items)
        state: dict[str, Any] = {
            "last_attempt_at": iso(now), "last_success_at": iso(now),
            "consecutive_failures": 0, "last_error": None, "next_attempt_at": None, "gap": None,
        }
        if not keep_validators:
            state.update(etag=etag, modified=modified)
        if cursor is not None:
            state["cursor"] = cursor
        sets = ", ".join(f"{k} = ?" for k in state)
        db.execute(f"UPDATE sources SET {sets} WHERE name = ?", [*state.values(), name])
    return new_ids


def save_items(db: Database, items: Sequence[dict]) -> list[str]:
    """Insert the items not yet stored (one transaction); return the new ids."""
    with db.atomic():
        sources = {item["source"] for item in items}
        for source in sources:
            ensure_source(db, source, "replay")
        return _insert_new_items(db, None, items)


def _insert_new_items(db: Database, source: str | None, items: Sequence[dict]) -> list[str]:
    unique: dict[str, dict] = {}
    for item in items:
        unique.setdefault(item["id"], item)
    ids = list(unique)
    existing: set[str] = set()
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        existing.update(r[0] for r in db.execute(
            f"SELECT id FROM items WHERE id IN ({marks})", chunk))
    new = [unique[i] for i in ids if i not in existing]
    if not new:
        return []
    hashes = {i["content_hash"] for i in new if i.get("content_hash")}
    first_by_hash: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(list(hashes)):
        marks = ",".join("?" * len(chunk))
        for h, item_id, src in db.execute(
                f"SELECT content_hash, min(id), source FROM items WHERE content_hash IN ({marks}) "
                "GROUP BY content_hash", chunk):
            first_by_hash[h] = (item_id, src)
    rows = []
    for item in new:
        row = {c: item.get(c) for c in ITEM_COLUMNS}
        first = first_by_hash.get(row["content_hash"] or "")
        if first and first[1] != row["source"]:
            row["duplicate_of"] = first[0]
        elif row["content_hash"]:
            first_by_hash.setdefault(row["content_hash"], (row["id"], row["source"]))
        rows.append(row)
    db["items"].insert_all(rows, pk="id", ignore=True, batch_size=500)
    return [r["id"] for r in rows]


def record_failure(db: Database, name: str, now: datetime, error: str, *,
                   next_attempt_at: datetime | None, gap: str | None = None) -> int:
    """Record a failed fetch; return the new count of consecutive failures."""
    with db.atomic():
        db.execute(
            "UPDATE sources SET last_attempt_at = ?, last_error = ?, gap = ?, "
            "consecutive_failures = coalesce(consecutive_failures, 0) + 1, "
            "next_attempt_at = ? WHERE name = ?",
            [iso(now), error[:2000], gap, iso(next_attempt_at) if next_attempt_at else None,
             name])
        row = db.execute("SELECT consecutive_failures FROM sources WHERE name = ?",
                         [name]).fetchone()
    return row[0] if row else 0


def update_cursor(db: Database, name: str, cursor: dict | str) -> None:
    value = cursor if isinstance(cursor, str) else json.dumps(cursor, sort_keys=True)
    db.execute("UPDATE sources SET cursor = ? WHERE name = ?", [value, name])


# --- runs ----------------------------------------------------------------------------------

def start_run(db: Database, job: str, now: datetime) -> int:
    cur = db.execute("INSERT INTO runs (job, started_at) VALUES (?, ?)", [job, iso(now)])
    return int(cur.lastrowid)


def finish_run(db: Database, run_id: int, now: datetime, *, ok: bool, items_seen: int = 0,
               items_new: int = 0, error: str | None = None) -> None:
    db.execute("UPDATE runs SET finished_at = ?, ok = ?, items_seen = ?, items_new = ?, "
               "error = ? WHERE id = ?",
               [iso(now), int(ok), items_seen, items_new, error[:2000] if error else None,
                run_id])


# --- meta ----------------------------------------------------------------------------------

def set_meta(db: Database, key: str, value: str) -> None:
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])


def get_meta(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


# --- reads for the CLI ---------------------------------------------------------------------

def source_rows(db: Database, active_only: bool = True) -> list[dict[str, Any]]:
    where = "WHERE s.active = 1" if active_only else ""
    return list(db.query(
        "SELECT s.*, (SELECT count(*) FROM items i WHERE i.source = s.name) AS items "
        f"FROM sources s {where} ORDER BY s.kind, s.name"))


def recent_runs(db: Database, limit: int = 10) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit]))


def count_items(db: Database) -> int:
    return db.execute("SELECT count(*) FROM items").fetchone()[0]


def _chunks(values: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
