"""The SQLite store: schema (idempotent migrations), writes and the reads the CLI needs.

This is the only module that writes SQL. Every write that must be all-or-nothing (new items
together with the source state that says they were seen) happens in one transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
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
_INSERT_ITEM = (f"INSERT OR IGNORE INTO items ({', '.join(ITEM_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(ITEM_COLUMNS))})")

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


@migrations()
def m002_digest_outbox(db: Database) -> None:
    # The outbox needs to know which ISO week a row is for (the period shifts if the time
    # zone changes), when it was last tried and when to try again, and who got it.
    for column in ("week", "created_at", "last_attempt_at", "next_attempt_at", "recipients"):
        db["digests"].add_column(column, str)
    db["digests"].create_index(["week"])


@migrations()
def m003_analyst_views(db: Database) -> None:
    # The views are defined with the analysts' reads at the end of this module.
    create_analyst_views(db)


@migrations()
def m004_successor_intel(db: Database) -> None:
    # Successor intelligence: lineage edges (one row per predecessor -> successor, with the
    # items that show it in lineage_evidence), corroborations, and whether each alert was
    # mailed. The takedown_response view gains shares, daily counts and warnings.
    db["lineage"].create({
        "predecessor": str, "successor": str, "kind": str, "origin": str, "count": int,
        "first_seen_at": str, "last_seen_at": str, "first_item_id": str, "last_item_id": str,
    }, pk=("predecessor", "successor"), defaults={"count": 0}, not_null={"kind", "origin"})
    db["lineage"].create_index(["successor"])
    db["lineage_evidence"].create({
        "predecessor": str, "successor": str, "item_id": str, "kind": str, "seen_at": str,
    }, pk=("predecessor", "successor", "item_id"), foreign_keys=[("item_id", "items", "id")])
    db["lineage_evidence"].create_index(["item_id"])
    db["corroborations"].create({
        "id": int, "market": str, "corroborated_at": str, "news_item_id": str,
        "reddit_item_id": str,
    }, pk="id", not_null={"market", "corroborated_at"})
    db["corroborations"].create_index(["market", "corroborated_at"])
    db["corroborations"].create_index(["corroborated_at"])
    db["alerts"].add_column("notified_at", str)
    db["alerts"].add_column("notify_error", str)
    db["alerts"].add_column("cleared_at", str)  # the spike was over: the market may re-alert
    db["alerts"].create_index(["market", "raised_at"])
    db.create_view("takedown_response", TAKEDOWN_RESPONSE_SQL.strip(), replace=True)


@migrations()
def m005_scale_indexes(db: Database) -> None:
    # Issue 9, measured on a million items (bench/queries.py):
    # - source_health counts each source's failed runs: without (job, ok) it read every run
    #   row (2.6M for 90 days of 500 sources), 0.5 s; with it, 0.16 s;
    # - takedown_response and the warnings read mentions by role: SQLite built a temporary
    #   index over all mentions for each query; (role, item_id, market) also serves
    #   flagged_items' "successors of this item" (item_id before market: with market second,
    #   SQLite walked every successor mention per flagged item, 100 times slower);
    # - market_daily and new_markets read mentions by market for their item ids: covering.
    db["runs"].create_index(["job", "ok"], if_not_exists=True)
    db["mentions"].create_index(["role", "item_id", "market"], if_not_exists=True)
    db["mentions"].create_index(["market", "role", "item_id"], if_not_exists=True)
    db.execute("DROP INDEX IF EXISTS idx_mentions_market_role")  # a prefix of the last one


@migrations()
def m006_takedown_response_joins(db: Database) -> None:
    # The same rows, found by joins (TAKEDOWN_RESPONSE_SQL's `linked`); issue 9.
    db.create_view("takedown_response", TAKEDOWN_RESPONSE_SQL.strip(), replace=True)


@migrations()
def m007_summary_tables(db: Database) -> None:
    # Issue 9: the aggregating views read summary tables that triggers keep up to date
    # (SUMMARY_TABLES_SQL below), filled here from the existing rows.
    create_summaries(db)
    create_analyst_views(db)


@migrations()
def m008_runs_by_time_covering(db: Database) -> None:
    # The digest counts a week's collection runs and failures: with only (started_at) SQLite
    # read each of the week's run rows for its job and ok (200,000 at 500 sources: 0.37 s);
    # covered by the index, far less. (started_at) alone is a prefix of it.
    db["runs"].create_index(["started_at", "job", "ok"], if_not_exists=True)
    db.execute("DROP INDEX IF EXISTS idx_runs_started_at")


@migrations()
def m009_source_counts(db: Database) -> None:
    # source_health counted each source's runs (twice) and items on every read: 2.6 million
    # runs and 1 million items took ~290 ms, and more as the database grows. The counts are
    # kept on the source row by triggers (_SOURCE_COUNT_TRIGGERS), filled here once.
    create_source_counts(db)
    create_analyst_views(db)


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
        db = _Database(conn)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys=ON")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if migrate:
            ensure_schema(db)
    except sqlite3.DatabaseError as exc:
        reason = describe_error(exc, path) or str(exc)
        raise StoreError(f"{path}: cannot open the database: {reason}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the database: {exc.strerror}") from None
    return db


class _Database(Database):
    """sqlite-utils' Database whose transactions take the write lock as they begin.

    A deferred BEGIN that reads before it writes cannot wait for another process's write
    lock: SQLite answers SQLITE_BUSY at once, busy timeout or not. BEGIN IMMEDIATE waits for
    the lock (up to the busy timeout) before anything is read.
    """

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:
            with super().atomic():  # nested: a savepoint
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise


# --- database errors, in words an operator can act on -----------------------------------

def describe_error(exc: sqlite3.Error, path: Path | str) -> str | None:
    """What a failed database operation means for the operator, or None for errors that
    are bugs rather than conditions of the file (a bad query, a broken constraint)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    path = Path(path)
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN) and not _writable(path):
        return (f"{exc}: the database is read-only for this user (monitor needs to write "
                f"{path.name} and, for its -wal and -shm files, the directory {path.parent})")
    hints = {
        sqlite3.SQLITE_READONLY: "the database cannot be written",
        sqlite3.SQLITE_CANTOPEN: "check that the file and its directory exist and are "
                                 "readable and writable",
        sqlite3.SQLITE_FULL: "the disk is full; free some space (what was not stored is "
                             "fetched again on the next pass)",
        sqlite3.SQLITE_BUSY: f"another process held the write lock for more than "
                             f"{BUSY_TIMEOUT_MS / 1000:.0f}s; try again",
        sqlite3.SQLITE_LOCKED: "the database is locked; try again",
        sqlite3.SQLITE_IOERR: "the disk reported an I/O error",
        sqlite3.SQLITE_CORRUPT: "the file is damaged; restore it from a backup",
        sqlite3.SQLITE_NOTADB: "the file is not a SQLite database",
    }
    return f"{exc}: {hints[code]}" if code in hints else None


def _writable(path: Path) -> bool:
    # os.access also says no for immutable files and read-only mounts, also to root.
    target = path if path.exists() else path.parent
    return os.access(target, os.W_OK) and os.access(path.parent, os.W_OK)


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
        marks = _marks(names)
        db.execute(f"UPDATE sources SET active = 0 WHERE name NOT IN ({marks}) "
                   "AND kind != 'replay'", names)


def ensure_source(db: Database, name: str, kind: str, target: str = "") -> None:
    db.execute("INSERT INTO sources (name, kind, target) VALUES (?, ?, ?) "
               "ON CONFLICT(name) DO NOTHING", [name, kind, target])


def source_state(db: Database, name: str) -> dict[str, Any]:
    return source_states(db, [name])[name]


def source_states(db: Database, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """source_state of each name ({} for a source not stored), read a chunk at a time."""
    wanted = list(dict.fromkeys(names))
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(wanted):
        for row in db.query(f"SELECT * FROM sources WHERE name IN ({_marks(chunk)})", chunk):
            found[row["name"]] = row
    return {name: found.get(name, {}) for name in wanted}


def mark_attempt(db: Database, name: str, now: datetime) -> None:
    db.execute("UPDATE sources SET last_attempt_at = ? WHERE name = ?", [iso(now), name])


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """BEGIN IMMEDIATE: take the write lock up front (waiting up to the busy timeout), so a
    transaction that reads before it writes cannot fail half-way because another process
    committed in between."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def record_fetch(db: Database, name: str, items: Sequence[dict], now: datetime, *,
                 etag: str | None = None, modified: str | None = None,
                 cursor: str | None = None, keep_validators: bool = False,
                 pending: Sequence[tuple[str, Callable[[], dict | None]]] = ()) -> list[str]:
    """Store new items and the source's success state in one transaction.

    Returns the ids of the items that were new. Items already stored are left alone, so a
    fetch repeated after a crash stores nothing twice. `pending` are (id, make item) in
    document order, after `items`: only those whose id is not stored are made.
    """
    with write_transaction(db):
        # One lookup of what is stored serves both the pending entries and the items.
        stored = _stored_item_ids(db, [*(i["id"] for i in items), *(i for i, _ in pending)])
        if pending:
            items = [*items, *_make_pending(pending, stored)]
        _ensure_item_sources(db, name, items)
        new_ids = _insert_new_items(db, items, stored)
        stamp = iso(now)
        state: dict[str, Any] = {
            "last_attempt_at": stamp, "last_success_at": stamp,
            "consecutive_failures": 0, "last_error": None, "next_attempt_at": None, "gap": None,
        }
        if not keep_validators:
            state.update(etag=etag, modified=modified)
        if cursor is not None:
            state["cursor"] = cursor
        sets = ", ".join(f"{k} = ?" for k in state)
        db.execute(f"UPDATE sources SET {sets} WHERE name = ?", [*state.values(), name])
    return new_ids


def _make_pending(pending: Sequence[tuple[str, Callable[[], dict | None]]], stored: set[str]
                  ) -> list[dict]:
    """The items of the pending entries whose ids are not stored, as entries_to_items would
    make them (the first entry of an id that gives an item wins)."""
    made: dict[str, dict] = {}
    for item_id, make in pending:
        if item_id not in stored and item_id not in made:
            item = make()
            if item is not None:
                made[item_id] = item
    return list(made.values())


def _stored_item_ids(db: Database, ids: Sequence[str]) -> set[str]:
    """Which of these item ids are stored."""
    stored: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(ids))):
        stored.update(r[0] for r in db.execute(
            f"SELECT id FROM items WHERE id IN ({_marks(chunk)})", chunk))
    return stored


def _ensure_item_sources(db: Database, name: str, items: Sequence[dict]) -> None:
    """Items may name a finer source than the one fetched (Reddit: a listing brings items of
    many subreddits, each item names its subreddit). Give each such source a row, of the
    fetching source's kind, inactive until the config names it."""
    others = {item["source"] for item in items} - {name}
    if not others:
        return
    row = db.execute("SELECT kind FROM sources WHERE name = ?", [name]).fetchone()
    kind = row[0] if row else "replay"
    for other in sorted(others):
        db.execute("INSERT INTO sources (name, kind, target, active) VALUES (?, ?, '', 0) "
                   "ON CONFLICT(name) DO NOTHING", [other, kind])


def save_items(db: Database, items: Sequence[dict]) -> list[str]:
    """Insert the items not yet stored (one transaction); return the new ids."""
    with db.atomic():
        sources = {item["source"] for item in items}
        for source in sources:
            ensure_source(db, source, "replay")
        return _insert_new_items(db, items)


def _insert_new_items(db: Database, items: Sequence[dict], stored: set[str] | None = None
                      ) -> list[str]:
    """Insert the items whose ids are not stored (`stored`: that lookup, when the caller has
    made it), marking syndicated copies; return the new ids."""
    unique: dict[str, dict] = {}
    for item in items:
        unique.setdefault(item["id"], item)
    ids = list(unique)
    existing = _stored_item_ids(db, ids) if stored is None else stored
    new = [unique[i] for i in ids if i not in existing]
    if not new:
        return []
    hashes = {i["content_hash"] for i in new if i.get("content_hash")}
    first_by_hash: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(list(hashes)):
        marks = _marks(chunk)
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
    # Plain SQL, not Table.insert_all: that reads the table's and views' names and columns
    # on every call, several times what storing a feed's few new items costs. Both callers
    # hold a transaction, which commits it.
    db.conn.executemany(_INSERT_ITEM, [[row[c] for c in ITEM_COLUMNS] for row in rows])
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


def prune_runs(db: Database, before: datetime, *, batch: int = 5000) -> int:
    """Delete up to `batch` finished runs started before `before`; return how many went.

    Each job's first run stays: it tells when a source was first tried (the start of a gap
    for a source that never succeeded) and when monitor started collecting (the digest's
    catch-up). Call it until it returns less than `batch`; each call is one short write.
    """
    with write_transaction(db):
        cur = db.execute(
            "DELETE FROM runs WHERE id IN (SELECT r.id FROM runs r "
            "WHERE r.started_at < :before AND r.finished_at IS NOT NULL "
            "AND r.id != (SELECT f.id FROM runs f WHERE f.job = r.job "
            "ORDER BY f.started_at, f.id LIMIT 1) LIMIT :batch)",
            {"before": iso(before), "batch": batch})
    return cur.rowcount


# --- meta ----------------------------------------------------------------------------------

def set_meta(db: Database, key: str, value: str) -> None:
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])


def get_meta(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


# --- daemon: heartbeat, lifecycle, runs left unfinished ------------------------------------
# The daemon keeps its state in meta under "daemon.*" keys (pid, host, started_at,
# heartbeat_at, heartbeat_every, stopped_at, jobs), so that any reader of the file can tell a
# live daemon from a dead one.

_DAEMON_PREFIX = "daemon."


def set_daemon_state(db: Database, values: dict[str, str | None]) -> None:
    """Write daemon.* meta keys in one transaction; a None value deletes the key."""
    with db.atomic():
        for key, value in values.items():
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", [_DAEMON_PREFIX + key])
            else:
                set_meta(db, _DAEMON_PREFIX + key, value)


def daemon_state(db: Database) -> dict[str, str]:
    """The daemon.* meta keys, without the prefix."""
    return {key[len(_DAEMON_PREFIX):]: value for key, value in db.execute(
        "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
        [len(_DAEMON_PREFIX), _DAEMON_PREFIX])}


def close_unfinished_runs(db: Database, now: datetime, error: str) -> int:
    """Mark as failed every run that never finished (its process died); return how many."""
    cur = db.execute("UPDATE runs SET finished_at = ?, ok = 0, error = ? "
                     "WHERE finished_at IS NULL AND started_at <= ?",
                     [iso(now), error[:2000], iso(now)])
    return cur.rowcount


def unclassified_item_ids(db: Database, limit: int) -> list[str]:
    """Items no model has scored at all (a crash or a failure cut their classification
    short), oldest first."""
    return [row[0] for row in db.execute(
        "SELECT i.id FROM items i WHERE NOT EXISTS (SELECT 1 FROM classifications c "
        "WHERE c.item_id = i.id) ORDER BY i.collected_at, i.id LIMIT ?", [limit])]


# --- reddit: per-subreddit health ----------------------------------------------------------
# A Reddit listing reads a batch of subreddits at once; each subreddit also has its own row
# (reddit/r/<name>), which its items name as their source and which carries its health: a
# subreddit that turns private or is banned shows as a gap there while the batch goes on.

def record_subreddit_checks(db: Database, checks: Sequence[dict[str, Any]], now: datetime, *,
                            kind: str = "reddit") -> None:
    """Apply what one fetch learnt about each subreddit it asked for, in one transaction.

    Each check: {"name", "target", "ok": True} or {"name", "target", "ok": False, "gap",
    "error", "failures", "next_attempt_at"}. Values are set, not incremented, because the
    listings of one batch (new posts, comments) report on the same subreddits.
    """
    when = iso(now)
    with db.atomic():
        for check in checks:
            db.execute("INSERT INTO sources (name, kind, target, active) VALUES (?, ?, ?, 1) "
                       "ON CONFLICT(name) DO UPDATE SET active = 1",
                       [check["name"], kind, check.get("target") or ""])
            if check["ok"]:
                db.execute(
                    "UPDATE sources SET last_attempt_at = ?, last_success_at = ?, "
                    "consecutive_failures = 0, last_error = NULL, gap = NULL, "
                    "next_attempt_at = NULL WHERE name = ?", [when, when, check["name"]])
            else:
                db.execute(
                    "UPDATE sources SET last_attempt_at = ?, consecutive_failures = ?, "
                    "last_error = ?, gap = ?, next_attempt_at = ? WHERE name = ?",
                    [when, int(check["failures"]), str(check["error"])[:2000], check["gap"],
                     check["next_attempt_at"], check["name"]])


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


# --- successor intelligence: lineage, warnings, corroboration, alerts, takedowns -----------
# The times are the items' published_at (when the chatter happened; in `monitor replay` also
# when it was recorded). Syndicated copies (duplicate_of) never count twice.

# One row per (event, successor): the successor chatter in the 90 days after a takedown. A
# successor mention counts for an event when the same item names one of the event's markets,
# or the successor's recorded predecessor (markets.predecessor or a lineage edge) is one of
# them, and the item was published within 90 days of the event: a retrospective years later
# is not a response (first_mention_at, days_to_first_mention and mentions_total count only
# that window). share_30d is the successor's part of all the event's successor mentions in
# 30 days; daily_30d a JSON array of distinct items per day, day 0 starting at happened_at.
# It reads the summary table market_items (one row per market and item, copies marked), by
# market and time, so only the window's rows are read.
RESPONSE_DAYS = 90
TAKEDOWN_RESPONSE_SQL = f"""
WITH fallen AS (
  SELECT e.id AS event_id, e.happened_at, j.value AS market,
    -- a text bound a little past the window, so that the time indexes can be used
    date(e.happened_at, '+{RESPONSE_DAYS + 1} days') AS until
  FROM events e, json_each(CASE WHEN json_valid(e.markets) THEN e.markets
                                ELSE json_array(e.markets) END) j
  WHERE e.happened_at IS NOT NULL),
linked AS (
  -- The three reasons as three indexed joins over the window, each starting from the
  -- events (CROSS JOIN keeps that order; SQLite would otherwise read all of market_items).
  SELECT f.event_id, f.happened_at, s.market, s.item_id, o.published_at
  FROM fallen f
  CROSS JOIN market_items o ON o.market = f.market AND o.published_at >= f.happened_at
    AND o.published_at < f.until AND o.copy = 0
  CROSS JOIN market_items s ON s.item_id = o.item_id AND s.successor = 1
  UNION
  SELECT f.event_id, f.happened_at, s.market, s.item_id, s.published_at
  FROM fallen f
  CROSS JOIN markets k ON k.predecessor = f.market
  CROSS JOIN market_items s ON s.market = k.name AND s.successor = 1 AND s.copy = 0
    AND s.published_at >= f.happened_at AND s.published_at < f.until
  UNION
  SELECT f.event_id, f.happened_at, s.market, s.item_id, s.published_at
  FROM fallen f
  CROSS JOIN lineage l ON l.predecessor = f.market
  CROSS JOIN market_items s ON s.market = l.successor AND s.successor = 1 AND s.copy = 0
    AND s.published_at >= f.happened_at AND s.published_at < f.until),
hits AS (
  SELECT event_id, market, item_id, published_at, day FROM (
    SELECT DISTINCT event_id, market, item_id, published_at,
      CAST(julianday(published_at) - julianday(happened_at) AS INTEGER) AS day,
      julianday(published_at) - julianday(happened_at) AS days
    FROM linked)
  WHERE days < {RESPONSE_DAYS}),
per AS (
  SELECT event_id, market, min(published_at) AS first_mention_at,
    count(DISTINCT CASE WHEN day < 7 THEN item_id END) AS mentions_7d,
    count(DISTINCT CASE WHEN day < 30 THEN item_id END) AS mentions_30d,
    count(DISTINCT item_id) AS mentions_total
  FROM hits GROUP BY event_id, market),
days(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM days WHERE n < 29),
counts AS (
  SELECT event_id, market, day, count(DISTINCT item_id) AS n FROM hits WHERE day < 30
  GROUP BY event_id, market, day),
daily AS (
  SELECT event_id, market, json_group_array(n) AS daily_30d FROM (
    SELECT p.event_id, p.market, d.n AS day, coalesce(c.n, 0) AS n
    FROM per p CROSS JOIN days d
    LEFT JOIN counts c ON c.event_id = p.event_id AND c.market = p.market AND c.day = d.n
    ORDER BY p.event_id, p.market, d.n)
  GROUP BY event_id, market),
warned AS (
  SELECT f.event_id, w.market, count(DISTINCT w.item_id) AS warnings_30d
  FROM (SELECT DISTINCT event_id, happened_at FROM fallen) f
  JOIN market_items w ON w.warning = 1 AND w.copy = 0 AND w.published_at >= f.happened_at
    AND w.published_at < date(f.happened_at, '+31 days')
    AND julianday(w.published_at) < julianday(f.happened_at) + 30
  GROUP BY f.event_id, w.market)
SELECT e.id AS event_id, e.name AS event, e.kind, e.happened_at, e.markets AS fallen,
  p.market AS successor, p.first_mention_at,
  round(julianday(p.first_mention_at) - julianday(e.happened_at), 2) AS days_to_first_mention,
  p.mentions_7d, p.mentions_30d, p.mentions_total,
  round(1.0 * p.mentions_30d / nullif(sum(p.mentions_30d) OVER (PARTITION BY p.event_id), 0),
        3) AS share_30d,
  rank() OVER (PARTITION BY p.event_id ORDER BY p.mentions_30d DESC) AS rank_30d,
  d.daily_30d, coalesce(w.warnings_30d, 0) AS warnings_30d
FROM per p
JOIN events e ON e.id = p.event_id
LEFT JOIN daily d ON d.event_id = p.event_id AND d.market = p.market
LEFT JOIN warned w ON w.event_id = p.event_id AND w.market = p.market
ORDER BY e.happened_at DESC, p.first_mention_at, p.market"""

_FAMILY_KINDS = {"news": ("news",), "reddit": ("reddit_post", "reddit_comment")}


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def intel_items(db: Database, item_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The given items that are not syndicated copies, oldest first."""
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(list(dict.fromkeys(item_ids))):
        rows += db.query(
            "SELECT id, source, kind, title, body, url, published_at FROM items "
            f"WHERE id IN ({_marks(chunk)}) AND duplicate_of IS NULL", chunk)
    return sorted(rows, key=lambda r: (r["published_at"], r["id"]))


def add_mentions(db: Database, rows: Sequence[dict[str, Any]]) -> int:
    """Insert (item_id, market, surface, role) rows not stored yet; return how many were."""
    return _insert_missing(db, "mentions", ("item_id", "market", "surface", "role"), rows)


def _insert_missing(db: Database, table: str, columns: Sequence[str],
                    rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows whose key is not stored yet (one transaction); return how many were."""
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(columns)}) "
           "ON CONFLICT DO NOTHING")
    added = 0
    with db.atomic():
        for row in rows:
            added += db.execute(sql, [row.get(c) for c in columns]).rowcount
    return added


def all_markets(db: Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM markets ORDER BY name"))


# Lineage

def lineage_edges(db: Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM lineage ORDER BY predecessor, successor"))


def stated_predecessors(db: Database) -> list[dict[str, Any]]:
    """(predecessor, successor, origin) as the markets table states them."""
    return list(db.query(
        "SELECT predecessor, name AS successor, coalesce(origin, 'gazetteer') AS origin "
        "FROM markets WHERE coalesce(predecessor, '') != '' AND predecessor != name"))


def save_lineage_evidence(db: Database, rows: Sequence[dict[str, Any]]) -> int:
    """Insert evidence rows (predecessor, successor, item_id, kind, seen_at) not stored yet."""
    return _insert_missing(db, "lineage_evidence",
                           ("predecessor", "successor", "item_id", "kind", "seen_at"), rows)


def lineage_evidence(db: Database, predecessor: str, successor: str) -> list[dict[str, Any]]:
    return list(db.query(
        "SELECT * FROM lineage_evidence WHERE predecessor = ? AND successor = ? "
        "ORDER BY seen_at, item_id", [predecessor, successor]))


def upsert_lineage_edge(db: Database, edge: dict[str, Any]) -> None:
    """Write one edge. A gazetteer origin is never downgraded to discovered."""
    db.execute(
        "INSERT INTO lineage (predecessor, successor, kind, origin, count, first_seen_at, "
        "last_seen_at, first_item_id, last_item_id) VALUES (:predecessor, :successor, :kind, "
        ":origin, :count, :first_seen_at, :last_seen_at, :first_item_id, :last_item_id) "
        "ON CONFLICT(predecessor, successor) DO UPDATE SET kind = excluded.kind, "
        "origin = CASE WHEN lineage.origin = 'gazetteer' THEN 'gazetteer' "
        "ELSE excluded.origin END, count = excluded.count, "
        "first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at, "
        "first_item_id = excluded.first_item_id, last_item_id = excluded.last_item_id",
        {"count": 0, "first_seen_at": None, "last_seen_at": None, "first_item_id": None,
         "last_item_id": None, **edge})


# Warnings

def warning_counts(db: Database, start: str | None = None, end: str | None = None
                   ) -> dict[str, int]:
    """Distinct items warning about each market (published in [start, end) when given)."""
    return {r["market"]: r["warnings"] for r in warnings_between(db, start, end)}


def warnings_between(db: Database, start: str | None = None, end: str | None = None
                     ) -> list[dict[str, Any]]:
    """Per market warned about: how many items, the first and last, and their ids (JSON),
    most warned first."""
    return list(db.query(
        "SELECT m.market, count(DISTINCT i.id) AS warnings, min(i.published_at) AS first_at, "
        "max(i.published_at) AS last_at, json_group_array(DISTINCT i.id) AS item_ids "
        "FROM mentions m JOIN items i ON i.id = m.item_id WHERE m.role = 'warning' "
        "AND i.duplicate_of IS NULL AND (:start IS NULL OR i.published_at >= :start) "
        "AND (:end IS NULL OR i.published_at < :end) "
        "GROUP BY m.market ORDER BY warnings DESC, m.market", {"start": start, "end": end}))


# Rising-name alerts

def market_mention_times(db: Database, market: str, since: str, until: str, *,
                         fallen_at: str | None = None) -> list[tuple[str, str]]:
    """(published_at, item id) of the items naming `market` in [since, until], oldest first.

    Items that name it only as a predecessor are left out (talk of a market's end is not the
    market rising), and so, from `fallen_at` on, is everything but talk of its return."""
    # market_items by (market, published_at): only the window is read, however long the
    # market's history (all its mentions were read before; bench/ingest.py at 100,000 items).
    return [tuple(r) for r in db.execute(
        "SELECT x.published_at, x.item_id FROM market_items x "
        "WHERE x.market = ? AND x.copy = 0 AND x.published_at >= ? AND x.published_at <= ? "
        "AND EXISTS (SELECT 1 FROM mentions m WHERE m.item_id = x.item_id "
        "AND m.market = x.market AND m.role != 'predecessor' "
        "AND (? IS NULL OR x.published_at < ? OR m.role = 'successor')) "
        "ORDER BY x.published_at, x.item_id", [market, since, until, fallen_at, fallen_at])]


def market_fallen_at(db: Database, market: str) -> str | None:
    """When a market went down: the earliest of its down_at and its events, if any."""
    row = db.execute(
        "SELECT min(t) FROM (SELECT down_at AS t FROM markets WHERE name = :m "
        "UNION ALL SELECT e.happened_at FROM events e, json_each(CASE WHEN "
        "json_valid(e.markets) THEN e.markets ELSE json_array(e.markets) END) j "
        "WHERE j.value = :m) WHERE coalesce(t, '') != ''", {"m": market}).fetchone()
    return row[0] if row else None


def first_mention_at(db: Database, market: str) -> str | None:
    row = db.execute("SELECT min(i.published_at) FROM mentions m JOIN items i "
                     "ON i.id = m.item_id WHERE m.market = ?", [market]).fetchone()
    return row[0] if row else None


def latest_alert(db: Database, market: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM alerts WHERE market = ? ORDER BY raised_at DESC, "
                         "id DESC LIMIT 1", [market]))
    return rows[0] if rows else None


def clear_alert(db: Database, alert_id: int, now: datetime) -> None:
    db.execute("UPDATE alerts SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL",
               [iso(now), alert_id])


def save_alert(db: Database, market: str, kind: str, raised_at: datetime,
               detail: dict[str, Any]) -> int:
    cur = db.execute("INSERT INTO alerts (market, kind, raised_at, detail) VALUES (?, ?, ?, ?)",
                     [market, kind, iso(raised_at), json.dumps(detail, sort_keys=True)])
    return int(cur.lastrowid)


def alerts_by_id(db: Database, ids: Sequence[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    return list(db.query(f"SELECT * FROM alerts WHERE id IN ({_marks(ids)}) ORDER BY id",
                         list(ids)))


def unnotified_alerts(db: Database, since: str) -> list[dict[str, Any]]:
    """Alerts raised at or after `since` that were never mailed."""
    return list(db.query("SELECT * FROM alerts WHERE notified_at IS NULL AND raised_at >= ? "
                         "ORDER BY raised_at, id", [since]))


def mark_alerts_notified(db: Database, ids: Sequence[int], now: datetime, *,
                         error: str | None = None) -> None:
    """Record a delivery (error None) or a failed attempt (notified_at stays empty)."""
    with db.atomic():
        for alert_id in ids:
            if error is None:
                db.execute("UPDATE alerts SET notified_at = ?, notify_error = NULL "
                           "WHERE id = ?", [iso(now), alert_id])
            else:
                db.execute("UPDATE alerts SET notify_error = ? WHERE id = ?",
                           [error[:2000], alert_id])


def recent_alerts(db: Database, limit: int = 10) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM alerts ORDER BY raised_at DESC, id DESC LIMIT ?",
                         [limit]))


def last_alert_id(db: Database) -> int:
    return db.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]


def alerts_after(db: Database, alert_id: int) -> list[dict[str, Any]]:
    """Alerts stored after the one with this id, in the order they were raised."""
    return list(db.query("SELECT * FROM alerts WHERE id > ? ORDER BY id", [alert_id]))


# Corroboration

def latest_family_mention(db: Database, market: str, family: str, since: str, until: str
                          ) -> dict[str, Any] | None:
    """The newest item of a family ("news" or "reddit") naming `market` in [since, until]."""
    kinds = _FAMILY_KINDS[family]
    rows = list(db.query(  # the window of market_items, newest first (as above)
        "SELECT i.id, i.published_at FROM market_items x JOIN items i ON i.id = x.item_id "
        f"WHERE x.market = ? AND x.copy = 0 AND x.published_at >= ? AND x.published_at <= ? "
        f"AND i.kind IN ({_marks(kinds)}) "
        "ORDER BY x.published_at DESC, x.item_id DESC LIMIT 1", [market, since, until, *kinds]))
    return rows[0] if rows else None


def latest_corroboration(db: Database, market: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM corroborations WHERE market = ? "
                         "ORDER BY corroborated_at DESC, id DESC LIMIT 1", [market]))
    return rows[0] if rows else None


def save_corroboration(db: Database, market: str, corroborated_at: str, news_item_id: str,
                       reddit_item_id: str) -> int:
    cur = db.execute(
        "INSERT INTO corroborations (market, corroborated_at, news_item_id, reddit_item_id) "
        "VALUES (?, ?, ?, ?)", [market, corroborated_at, news_item_id, reddit_item_id])
    return int(cur.lastrowid)


def corroborations_between(db: Database, start: str, end: str) -> list[dict[str, Any]]:
    """Markets corroborated in [start, end): when first, and how many news and Reddit items
    named them in that period."""
    news, reddit = _FAMILY_KINDS["news"], _FAMILY_KINDS["reddit"]
    return list(db.query(
        "SELECT c.market, min(c.corroborated_at) AS corroborated_at, "
        "(SELECT count(DISTINCT i.id) FROM mentions m JOIN items i ON i.id = m.item_id "
        f" WHERE m.market = c.market AND i.kind IN ({_marks(news)}) AND i.duplicate_of IS NULL"
        "  AND i.published_at >= ? AND i.published_at < ?) AS news_items, "
        "(SELECT count(DISTINCT i.id) FROM mentions m JOIN items i ON i.id = m.item_id "
        f" WHERE m.market = c.market AND i.kind IN ({_marks(reddit)}) "
        "  AND i.duplicate_of IS NULL AND i.published_at >= ? AND i.published_at < ?"
        ") AS reddit_items "
        "FROM corroborations c WHERE c.corroborated_at >= ? AND c.corroborated_at < ? "
        "GROUP BY c.market ORDER BY corroborated_at, c.market",
        [*news, start, end, *reddit, start, end, start, end]))


# Takedown response

def takedown_response_rows(db: Database, event_ids: Sequence[str] = ()
                           ) -> list[dict[str, Any]]:
    where, params = "", list(event_ids)
    if event_ids:
        where = f"WHERE event_id IN ({_marks(event_ids)})"
    return list(db.query(f"SELECT * FROM takedown_response {where}", params))


def event_rows(db: Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM events ORDER BY happened_at, id"))


# --- digest: the week's reads and the outbox -----------------------------------------------
# A week holds the items *published* in [start, end) (UTC ISO text, so they compare as text).
# Syndicated copies (duplicate_of) are left out so one story is counted once. "Flagged" is the
# current model's verdict (meta "model_version"; without it, each item's latest
# classification), as in the analysts' views; the analyst's label comes along beside it.

def _week_sql(model_version: str | None) -> str:
    in_week = ("SELECT id FROM items WHERE published_at >= :start AND published_at < :end "
               "AND duplicate_of IS NULL")
    if model_version:
        cls = ("SELECT item_id, score, flagged FROM classifications "
               f"WHERE model_version = :mv AND item_id IN ({in_week})")
    else:
        cls = ("SELECT item_id, score, flagged FROM (SELECT item_id, score, flagged, "
               "row_number() OVER (PARTITION BY item_id ORDER BY classified_at DESC, "
               "model_version DESC) AS rn FROM classifications "
               f"WHERE item_id IN ({in_week})) WHERE rn = 1")
    return (
        f"WITH cls AS ({cls}), wk AS ("
        "SELECT i.id, i.source, i.kind, i.url, i.title, i.body, i.author, i.published_at, "
        "c.score, c.flagged, l.label FROM items i LEFT JOIN cls c ON c.item_id = i.id "
        "LEFT JOIN labels l ON l.item_id = i.id "
        "WHERE i.published_at >= :start AND i.published_at < :end "
        "AND i.duplicate_of IS NULL) ")


def _week_params(start: str, end: str, model_version: str | None, **extra: Any) -> dict:
    return {"start": start, "end": end, "mv": model_version, **extra}


def digest_kind_counts(db: Database, start: str, end: str,
                       model_version: str | None) -> list[dict[str, Any]]:
    """Per item kind: items, flagged items and items not classified yet."""
    return list(db.query(
        _week_sql(model_version) + "SELECT kind, count(*) AS items, "
        "coalesce(sum(flagged = 1), 0) AS flagged, "
        "coalesce(sum(score IS NULL), 0) AS unclassified FROM wk GROUP BY kind ORDER BY kind",
        _week_params(start, end, model_version)))


def digest_flagged_mentions(db: Database, start: str, end: str,
                            model_version: str | None) -> list[dict[str, Any]]:
    """One row per (flagged item, market, role) in the week."""
    return list(db.query(
        _week_sql(model_version) + "SELECT m.market, m.role, wk.id AS item_id, "
        "wk.published_at FROM wk JOIN mentions m ON m.item_id = wk.id WHERE wk.flagged = 1 "
        "ORDER BY wk.published_at, wk.id", _week_params(start, end, model_version)))


def digest_flagged_items(db: Database, start: str, end: str, model_version: str | None, *,
                         limit: int, markets: Sequence[str] = (), since: str | None = None
                         ) -> list[dict[str, Any]]:
    """Flagged items of the week, best score first; optionally only those that mention one
    of `markets` and were published at or after `since`."""
    where = ["wk.flagged = 1"]
    params = _week_params(start, end, model_version, limit=limit, since=since)
    if markets:
        names = {f"m{i}": name for i, name in enumerate(markets)}
        params.update(names)
        where.append("wk.id IN (SELECT item_id FROM mentions WHERE market IN ("
                     + ", ".join(f":{k}" for k in names) + "))")
    if since:
        where.append("wk.published_at >= :since")
    return list(db.query(
        _week_sql(model_version) + "SELECT wk.* FROM wk WHERE " + " AND ".join(where)
        + " ORDER BY wk.score IS NULL, wk.score DESC, wk.published_at DESC, wk.id LIMIT :limit",
        params))


def digest_unsure_items(db: Database, start: str, end: str, model_version: str | None, *,
                        threshold: float, margin: float, limit: int) -> list[dict[str, Any]]:
    """Unlabeled items whose score lies within `margin` of the threshold, closest first."""
    return list(db.query(
        _week_sql(model_version) + "SELECT wk.* FROM wk WHERE wk.label IS NULL "
        "AND wk.score IS NOT NULL AND abs(wk.score - :t) <= :margin "
        "ORDER BY abs(wk.score - :t), wk.published_at DESC, wk.id LIMIT :limit",
        _week_params(start, end, model_version, t=threshold, margin=margin + 1e-9,
                     limit=limit)))


def item_mentions(db: Database, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The market mentions of each item, successors first."""
    found: dict[str, list[dict[str, Any]]] = {i: [] for i in item_ids}
    order = "CASE role WHEN 'successor' THEN 0 WHEN 'warning' THEN 1 " \
            "WHEN 'predecessor' THEN 2 ELSE 3 END"
    for chunk in _chunks(list(found)):
        marks = _marks(chunk)
        for row in db.query(f"SELECT item_id, market, role, surface FROM mentions "
                            f"WHERE item_id IN ({marks}) ORDER BY item_id, {order}, market",
                            chunk):
            found[row.pop("item_id")].append(row)
    return found


def markets_by_name(db: Database, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(names))):
        marks = _marks(chunk)
        for row in db.query(f"SELECT * FROM markets WHERE name IN ({marks})", chunk):
            found[row["name"]] = row
    return found


def market_successors(db: Database, names: Iterable[str]) -> list[str]:
    """Markets whose recorded predecessor is one of `names`."""
    names = sorted(set(names))
    if not names:
        return []
    marks = _marks(names)
    return [r[0] for r in db.execute(
        f"SELECT name FROM markets WHERE predecessor IN ({marks}) ORDER BY name", names)]


def digest_events(db: Database, first_day: str, last_day: str) -> list[dict[str, Any]]:
    """Events whose date (the first ten characters of happened_at) lies between two
    YYYY-MM-DD days, inclusive; the caller narrows it to the local week."""
    return list(db.query(
        "SELECT * FROM events WHERE length(happened_at) >= 10 "
        "AND substr(happened_at, 1, 10) BETWEEN ? AND ? ORDER BY happened_at, id",
        [first_day, last_day]))


def digest_alerts(db: Database, start: str, end: str) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM alerts WHERE raised_at >= ? AND raised_at < ? "
                         "ORDER BY raised_at, id", [start, end]))


def digest_run_counts(db: Database, start: str, end: str) -> dict[str, int]:
    """Collection runs started in [start, end): how many, and how many failed."""
    row = db.execute(
        "SELECT count(*), coalesce(sum(ok = 0), 0) FROM runs WHERE job LIKE 'collect:%' "
        "AND started_at >= ? AND started_at < ?", [start, end]).fetchone()
    return {"runs": row[0], "failed": row[1]}


def first_activity_at(db: Database) -> str | None:
    """When monitor first collected anything (an item, or a collection run)."""
    row = db.execute(
        "SELECT min(t) FROM (SELECT min(collected_at) AS t FROM items UNION ALL "
        "SELECT min(started_at) FROM runs WHERE job LIKE 'collect:%')").fetchone()
    return row[0] if row else None


# The outbox: one row per period, created (with its Message-ID) before the first attempt.
# Status: pending -> sending -> sent, or -> failed (retried after next_attempt_at). A row
# left in "sending" by a process that died is taken over once it is older than a lease.

def digest_rows(db: Database, week: str | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE week = ?", [week]) if week else ("", [])
    return list(db.query(f"SELECT rowid, * FROM digests {where} ORDER BY period_start, rowid",
                         params))


def digest_row(db: Database, period_start: str, period_end: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT rowid, * FROM digests WHERE period_start = ? "
                         "AND period_end = ?", [period_start, period_end]))
    return rows[0] if rows else None


def create_digest(db: Database, *, week: str, period_start: str, period_end: str,
                  message_id: str, now: datetime) -> dict[str, Any]:
    """The outbox row for a period, created as pending if it does not exist yet."""
    db.execute(
        "INSERT INTO digests (period_start, period_end, week, status, attempts, message_id, "
        "created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?) "
        "ON CONFLICT(period_start, period_end) DO NOTHING",
        [period_start, period_end, week, message_id, iso(now)])
    row = digest_row(db, period_start, period_end)
    if row is None:
        raise StoreError(f"digest {week}: outbox row vanished")
    return row


def claim_digest(db: Database, period_start: str, period_end: str, now: datetime, *,
                 stale_before: datetime, force: bool = False) -> bool:
    """Mark a due digest as being sent, atomically; False when it is sent, not due yet
    (unless `force`), or being sent by another process right now."""
    cur = db.execute(
        "UPDATE digests SET status = 'sending', attempts = coalesce(attempts, 0) + 1, "
        "last_attempt_at = :now WHERE period_start = :ps AND period_end = :pe AND ("
        "(status IN ('pending', 'failed') AND (:force OR next_attempt_at IS NULL "
        "  OR next_attempt_at <= :now)) "
        "OR (status = 'sending' AND (last_attempt_at IS NULL OR last_attempt_at < :stale)))",
        {"now": iso(now), "ps": period_start, "pe": period_end, "force": int(force),
         "stale": iso(stale_before)})
    return cur.rowcount == 1


def digest_sent(db: Database, period_start: str, period_end: str, now: datetime, *,
                recipients: Sequence[str], note: str | None = None) -> None:
    db.execute(
        "UPDATE digests SET status = 'sent', sent_at = ?, last_error = ?, recipients = ?, "
        "next_attempt_at = NULL WHERE period_start = ? AND period_end = ?",
        [iso(now), note, ", ".join(recipients), period_start, period_end])


def digest_failed(db: Database, period_start: str, period_end: str, *, error: str,
                  next_attempt_at: datetime) -> None:
    db.execute(
        "UPDATE digests SET status = 'failed', last_error = ?, next_attempt_at = ? "
        "WHERE period_start = ? AND period_end = ?",
        [error[:2000], iso(next_attempt_at), period_start, period_end])


def reopen_digest(db: Database, period_start: str, period_end: str, message_id: str) -> None:
    """Make a sent digest pending again under a new Message-ID (a deliberate resend)."""
    db.execute(
        "UPDATE digests SET status = 'pending', message_id = ?, next_attempt_at = NULL "
        "WHERE period_start = ? AND period_end = ? AND status != 'sending'",
        [message_id, period_start, period_end])


# --- analysts' surface: views, labels, report, export --------------------------------------
# Views analysts (and Datasette) query while the daemon writes. "Flagged" here is the verdict
# of the current model: the classification whose model_version is meta "model_version"; the
# analyst's label is shown beside it, not mixed in. Syndicated copies (items.duplicate_of) are
# listed but never counted twice.

_CURRENT_MODEL = "(SELECT value FROM meta WHERE key = 'model_version')"
_NOW_MINUS_30D = "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-30 days')"


def _new_markets_sql(since: str, until: str | None = None) -> str:
    """Market names whose first mention (by publication time) lies in [since, until).

    A gazetteer market that was already down before `since` is left out: an old name in a
    retrospective is not a new market.
    """
    until_clause = f"AND f.first_seen_at < {until}" if until else ""
    # Each market's first mention is kept in market_first (issue 9: it was found over every
    # mention on each read).
    return f"""
SELECT f.market, coalesce(k.origin = 'discovered', 0) AS discovered, k.origin, k.status,
  f.first_seen_at, fi.id AS first_item_id, fi.source AS first_source, fi.title AS first_title,
  fi.url AS first_url,
  coalesce(k.predecessor, (
    SELECT p.market FROM mentions s
    JOIN mentions p ON p.item_id = s.item_id AND p.role = 'predecessor' AND p.market != s.market
    WHERE s.market = f.market AND s.role = 'successor'
    GROUP BY p.market ORDER BY count(*) DESC, p.market LIMIT 1)) AS predecessor,
  f.mentions
FROM market_first f
LEFT JOIN markets k ON k.name = f.market
LEFT JOIN items fi ON fi.id = f.first_item_id
WHERE f.first_seen_at >= {since} {until_clause}
  AND NOT (coalesce(k.origin, '') = 'gazetteer' AND coalesce(k.down_at, '') != ''
           AND k.down_at < {since})
ORDER BY f.first_seen_at DESC, f.market"""


# Summary tables, kept by triggers so that every writer (the classifier, the warnings pass,
# replay, an analyst's manual SQL) keeps them right without knowing about them (issue 9:
# the views aggregated the whole history on every read).
# - market_items: one row per (market, item) named in `mentions`, with the item's time,
#   whether it is a syndicated copy, whether the current model flags it, and whether the
#   item names the market as a successor or warns about it;
# - market_days: per (market, UTC day of publication) the items that are not copies, and
#   how many of them the current model flags (market_daily);
# - market_first: per market its first mention (copies included, the original first on a
#   tie) and how many items that are not copies name it (new_markets);
# - flagged_current: the items the current model flags, with what flagged_items shows of
#   each (score, markets named, title, excerpt: about half a KB per flagged item) and the
#   item's rowid (which items_fts is keyed by too), so that the view reads one table in its
#   key order, newest first, and a page stops after its rows.
# "Current model" is meta 'model_version'; when it changes the flags are recomputed.
_SUMMARY_TABLES_SQL = """
CREATE TABLE market_items (
  market TEXT NOT NULL, item_id TEXT NOT NULL, published_at TEXT NOT NULL, day TEXT NOT NULL,
  copy INTEGER NOT NULL, flagged INTEGER NOT NULL, successor INTEGER NOT NULL,
  warning INTEGER NOT NULL, PRIMARY KEY (market, item_id)) WITHOUT ROWID;
CREATE INDEX market_items_item ON market_items (item_id);
CREATE INDEX market_items_first ON market_items (market, published_at, copy, item_id);
CREATE INDEX market_items_successor ON market_items (market, published_at)
  WHERE successor = 1 AND copy = 0;
CREATE INDEX market_items_warning ON market_items (published_at)
  WHERE warning = 1 AND copy = 0;
CREATE TABLE market_days (
  market TEXT NOT NULL, day TEXT NOT NULL, mentions INTEGER NOT NULL,
  flagged INTEGER NOT NULL, PRIMARY KEY (market, day)) WITHOUT ROWID;
CREATE INDEX market_days_order ON market_days (day DESC, mentions DESC, market);
CREATE TABLE market_first (
  market TEXT PRIMARY KEY NOT NULL, first_seen_at TEXT NOT NULL, first_copy INTEGER NOT NULL,
  first_item_id TEXT NOT NULL, mentions INTEGER NOT NULL);
CREATE INDEX market_first_seen ON market_first (first_seen_at);
CREATE TABLE flagged_current (
  item_id TEXT NOT NULL, published_at TEXT NOT NULL, item_rowid INTEGER, score REAL,
  classified_at TEXT, markets TEXT, successors TEXT, source TEXT, kind TEXT, title TEXT,
  url TEXT, excerpt TEXT, duplicate_of TEXT,
  PRIMARY KEY (published_at DESC, item_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX flagged_current_item ON flagged_current (item_id);
"""

# The current model's verdict on item `{item}` (1 flagged, else 0).
_FLAG_OF = ("coalesce((SELECT c.flagged = 1 FROM classifications c WHERE c.item_id = {item} "
            "AND c.model_version = " + _CURRENT_MODEL + "), 0)")


def _market_list(item: str, role: str = "") -> str:
    """The distinct markets item `item` names (in `role` if given), sorted, comma-separated."""
    where = f" AND m.role = '{role}'" if role else ""
    return ("(SELECT group_concat(market, ', ') FROM (SELECT DISTINCT m.market FROM mentions m "
            f"WHERE m.item_id = {item}{where} ORDER BY m.market))")


def _flagged_rows(where: str) -> str:
    """INSERT of the flagged_current rows of the current model's flagged items matching
    `where` (over classifications c and items i)."""
    return f"""
  INSERT INTO flagged_current (item_id, published_at, item_rowid, score, classified_at, markets,
                               successors, source, kind, title, url, excerpt, duplicate_of)
  SELECT i.id, i.published_at, i.rowid, c.score, c.classified_at, {_market_list('i.id')},
    {_market_list('i.id', 'successor')}, i.source, i.kind, i.title, i.url,
    substr(i.body, 1, 300), i.duplicate_of
  FROM classifications c JOIN items i ON i.id = c.item_id
  WHERE c.model_version = {_CURRENT_MODEL} AND c.flagged = 1 AND {where};"""


def _markets_listed(item: str) -> str:
    """Statement refreshing the market lists of item `item` if it is flagged."""
    return f"""
  UPDATE flagged_current SET markets = {_market_list(item)},
    successors = {_market_list(item, 'successor')}
  WHERE item_id = {item};"""


def _mention_added(row: str) -> str:
    """Statements adding mention `row` (new or old) to market_items and flagged_current."""
    return f"""
  INSERT INTO market_items (market, item_id, published_at, day, copy, flagged, successor,
                            warning)
  SELECT {row}.market, i.id, i.published_at, substr(i.published_at, 1, 10),
    i.duplicate_of IS NOT NULL, {_FLAG_OF.format(item='i.id')},
    {row}.role = 'successor', {row}.role = 'warning'
  FROM items i WHERE i.id = {row}.item_id
  ON CONFLICT (market, item_id) DO UPDATE SET
    successor = max(successor, excluded.successor), warning = max(warning, excluded.warning);""" \
        + _markets_listed(f"{row}.item_id")


def _mention_removed(row: str) -> str:
    """Statements taking mention `row` out of market_items: the (market, item) row goes
    when no role is left, else its role flags are recomputed. Recomputing rather than
    counting also stays right after an INSERT OR REPLACE (which fires no delete trigger)."""
    has = ("EXISTS (SELECT 1 FROM mentions m WHERE m.item_id = {r}.item_id "
           "AND m.market = {r}.market{role})")
    return f"""
  DELETE FROM market_items WHERE market = {row}.market AND item_id = {row}.item_id
    AND NOT {has.format(r=row, role='')};
  UPDATE market_items SET
    successor = {has.format(r=row, role=" AND m.role = 'successor'")},
    warning = {has.format(r=row, role=" AND m.role = 'warning'")}
  WHERE market = {row}.market AND item_id = {row}.item_id;""" \
        + _markets_listed(f"{row}.item_id")


def _item_flags_refreshed(item: str) -> str:
    """Statements recomputing the current model's verdict on item `item` everywhere."""
    return f"""
  UPDATE market_items SET flagged = {_FLAG_OF.format(item='market_items.item_id')}
  WHERE item_id = {item};
  DELETE FROM flagged_current WHERE item_id = {item};""" + _flagged_rows(f"c.item_id = {item}")


_ALL_FLAGS_REFRESHED = f"""
  UPDATE market_items SET flagged = {_FLAG_OF.format(item='market_items.item_id')};
  DELETE FROM flagged_current;""" + _flagged_rows("1")


def _market_item_added(row: str) -> str:
    """Statements counting market_items row `row` in market_days and market_first."""
    return f"""
  INSERT INTO market_days (market, day, mentions, flagged)
  SELECT {row}.market, {row}.day, 1, {row}.flagged WHERE {row}.copy = 0
  ON CONFLICT (market, day) DO UPDATE SET mentions = mentions + 1,
    flagged = flagged + excluded.flagged;
  INSERT INTO market_first (market, first_seen_at, first_copy, first_item_id, mentions)
  VALUES ({row}.market, {row}.published_at, {row}.copy, {row}.item_id, 1 - {row}.copy)
  ON CONFLICT (market) DO UPDATE SET mentions = mentions + excluded.mentions,
    first_seen_at = CASE WHEN {_EARLIER} THEN excluded.first_seen_at ELSE first_seen_at END,
    first_copy = CASE WHEN {_EARLIER} THEN excluded.first_copy ELSE first_copy END,
    first_item_id = CASE WHEN {_EARLIER} THEN excluded.first_item_id ELSE first_item_id END;"""


# An incoming first mention is earlier: by time, the original before a copy, then by id
# (the order new_markets always used).
_EARLIER = ("(excluded.first_seen_at, excluded.first_copy, excluded.first_item_id) "
            "< (first_seen_at, first_copy, first_item_id)")


def _market_item_removed(row: str) -> str:
    """Statements uncounting market_items row `row`; a market's first mention is looked up
    again (one index probe) only when that row was it."""
    return f"""
  UPDATE market_days SET mentions = mentions - 1, flagged = flagged - {row}.flagged
  WHERE market = {row}.market AND day = {row}.day AND {row}.copy = 0;
  DELETE FROM market_days WHERE market = {row}.market AND day = {row}.day AND mentions <= 0;
  UPDATE market_first SET mentions = mentions - (1 - {row}.copy) WHERE market = {row}.market;
  UPDATE market_first SET (first_seen_at, first_copy, first_item_id) = (
    SELECT x.published_at, x.copy, x.item_id FROM market_items x WHERE x.market = {row}.market
    ORDER BY x.published_at, x.copy, x.item_id LIMIT 1)
  WHERE market = {row}.market AND first_item_id = {row}.item_id
    AND EXISTS (SELECT 1 FROM market_items x WHERE x.market = {row}.market);
  DELETE FROM market_first WHERE market = {row}.market
    AND NOT EXISTS (SELECT 1 FROM market_items x WHERE x.market = {row}.market);"""


_SUMMARY_TRIGGERS: dict[str, str] = {
    "mentions_summary_insert": "AFTER INSERT ON mentions BEGIN" + _mention_added("new"),
    "mentions_summary_delete": "AFTER DELETE ON mentions BEGIN" + _mention_removed("old"),
    "mentions_summary_update": "AFTER UPDATE ON mentions BEGIN" + _mention_removed("old")
                               + _mention_added("new"),
    "classifications_summary_insert":
        f"AFTER INSERT ON classifications WHEN new.model_version IS {_CURRENT_MODEL} BEGIN"
        + _item_flags_refreshed("new.item_id"),
    "classifications_summary_update":
        f"AFTER UPDATE ON classifications WHEN new.model_version IS {_CURRENT_MODEL} "
        f"OR old.model_version IS {_CURRENT_MODEL} BEGIN"
        # (the old item's part matches nothing unless the row moved to another item)
        + _item_flags_refreshed("new.item_id")
        + _item_flags_refreshed("CASE WHEN old.item_id IS NOT new.item_id THEN old.item_id END"),
    "classifications_summary_delete":
        f"AFTER DELETE ON classifications WHEN old.model_version IS {_CURRENT_MODEL} BEGIN"
        + _item_flags_refreshed("old.item_id"),
    # The current model changed: every verdict follows the new version.
    "meta_summary_insert": "AFTER INSERT ON meta WHEN new.key = 'model_version' BEGIN"
                           + _ALL_FLAGS_REFRESHED,
    # (set_meta writes the same version on every classify pass: nothing to do then)
    "meta_summary_update": "AFTER UPDATE ON meta WHEN (new.key = 'model_version' "
                           "OR old.key = 'model_version') AND (old.key IS NOT new.key "
                           "OR old.value IS NOT new.value) BEGIN" + _ALL_FLAGS_REFRESHED,
    "meta_summary_delete": "AFTER DELETE ON meta WHEN old.key = 'model_version' BEGIN"
                           + _ALL_FLAGS_REFRESHED,
    # An item was edited (nothing in monitor does this; a manual edit).
    "items_summary_update": """AFTER UPDATE OF published_at, duplicate_of, source, kind, title,
  url, body ON items BEGIN
  UPDATE market_items SET published_at = new.published_at,
    day = substr(new.published_at, 1, 10), copy = new.duplicate_of IS NOT NULL
  WHERE item_id = new.id;
  UPDATE flagged_current SET published_at = new.published_at, source = new.source,
    kind = new.kind, title = new.title, url = new.url, excerpt = substr(new.body, 1, 300),
    duplicate_of = new.duplicate_of
  WHERE item_id = new.id;""",
    # Mentions or scores stored before their item (possible only with foreign keys off).
    "items_summary_insert": """AFTER INSERT ON items
WHEN EXISTS (SELECT 1 FROM mentions m WHERE m.item_id = new.id)
  OR EXISTS (SELECT 1 FROM classifications c WHERE c.item_id = new.id) BEGIN
  INSERT INTO market_items (market, item_id, published_at, day, copy, flagged, successor,
                            warning)
  SELECT m.market, new.id, new.published_at, substr(new.published_at, 1, 10),
    new.duplicate_of IS NOT NULL, """ + _FLAG_OF.format(item="new.id") + """,
    max(m.role = 'successor'), max(m.role = 'warning')
  FROM mentions m WHERE m.item_id = new.id GROUP BY m.market;""" + _item_flags_refreshed("new.id"),
    "items_summary_delete": """AFTER DELETE ON items BEGIN
  DELETE FROM market_items WHERE item_id = old.id;
  DELETE FROM flagged_current WHERE item_id = old.id;""",
    "market_items_insert": "AFTER INSERT ON market_items BEGIN" + _market_item_added("new"),
    "market_items_delete": "AFTER DELETE ON market_items BEGIN" + _market_item_removed("old"),
    # Only the verdict changed (a new model, a rescore): one counter moves.
    "market_items_flag": """AFTER UPDATE OF flagged ON market_items
WHEN old.flagged IS NOT new.flagged AND old.published_at IS new.published_at
  AND old.copy IS new.copy AND new.copy = 0 BEGIN
  UPDATE market_days SET flagged = flagged + new.flagged - old.flagged
  WHERE market = new.market AND day = new.day;""",
    "market_items_move": "AFTER UPDATE ON market_items WHEN old.published_at IS NOT "
                         "new.published_at OR old.copy IS NOT new.copy BEGIN"
                         + _market_item_removed("old") + _market_item_added("new"),
}


def create_summaries(db: Database) -> None:
    """Create the summary tables and their triggers, filled from the rows already stored."""
    with db.atomic():
        for statement in _SUMMARY_TABLES_SQL.split(";"):
            if statement.strip():
                db.execute(statement)
        _fill_summaries(db)
        _create_triggers(db, _SUMMARY_TRIGGERS)


def _create_triggers(db: Database, triggers: dict[str, str]) -> None:
    """(Re)create each trigger from its name and its text up to END."""
    for name, body in triggers.items():
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
        db.execute(f"CREATE TRIGGER {name} {body}\nEND")


def _fill_summaries(db: Database) -> None:
    """The summary tables' rows, computed from the base tables in bulk."""
    db.execute(f"""
INSERT INTO market_items (market, item_id, published_at, day, copy, flagged, successor, warning)
SELECT m.market, i.id, i.published_at, substr(i.published_at, 1, 10),
  i.duplicate_of IS NOT NULL, {_FLAG_OF.format(item='i.id')},
  max(m.role = 'successor'), max(m.role = 'warning')
FROM mentions m JOIN items i ON i.id = m.item_id
GROUP BY m.market, i.id""")
    db.execute("""
INSERT INTO market_days (market, day, mentions, flagged)
SELECT market, day, count(*), sum(flagged) FROM market_items WHERE copy = 0
GROUP BY market, day""")
    db.execute("""
INSERT INTO market_first (market, first_seen_at, first_copy, first_item_id, mentions)
SELECT f.market, f.published_at, f.copy, f.item_id,
  (SELECT count(*) FROM market_items x WHERE x.market = f.market AND x.copy = 0)
FROM market_items f
WHERE f.item_id = (SELECT x.item_id FROM market_items x WHERE x.market = f.market
                   ORDER BY x.published_at, x.copy, x.item_id LIMIT 1)""")
    db.execute(_flagged_rows("1"))


ANALYST_VIEWS: dict[str, str] = {
    # item_rowid is the rowid in items_fts, so that Datasette can full-text search the view.
    # Read from flagged_current in its index order: a page (or a search box) stops after its
    # rows instead of computing and sorting every flagged item first.
    "flagged_items": f"""
SELECT f.item_rowid, f.item_id, f.published_at, f.source, f.kind, f.title, f.url, f.score,
  f.markets, f.successors, f.excerpt, l.label, f.duplicate_of,
  {_CURRENT_MODEL} AS model_version, f.classified_at
FROM flagged_current f
LEFT JOIN labels l ON l.item_id = f.item_id
ORDER BY f.published_at DESC, f.item_id""",
    # The counts are kept per (market, day) in market_days.
    "market_daily": """
SELECT market, day, flagged, mentions FROM market_days
ORDER BY day DESC, mentions DESC, market""",
    "new_markets": _new_markets_sql(_NOW_MINUS_30D),
    # Per event, the successor chatter after it: defined with the successor intelligence
    # (TAKEDOWN_RESPONSE_SQL, migration m004), so that recreating the views keeps it.
    "takedown_response": TAKEDOWN_RESPONSE_SQL,
    # The coverage gap: while a source fails (or is unreadable), what it published since its
    # last success (or its first attempt) is missing; gap_hours runs from then to the last try.
    "source_health": """
SELECT s.name AS source, s.kind, s.active, s.last_success_at, s.last_attempt_at,
  coalesce(s.consecutive_failures, 0) AS consecutive_failures,
  s.runs_failed AS failed_runs, s.runs_total AS runs,
  s.last_error, s.gap AS gap_reason, g.since AS gap_since,
  CASE WHEN g.since IS NULL THEN 0
       ELSE round(24 * (julianday(s.last_attempt_at) - julianday(g.since)), 1) END AS gap_hours,
  s.next_attempt_at,
  s.items_total AS items,
  (SELECT max(i.published_at) FROM items i WHERE i.source = s.name) AS newest_item_at
FROM sources s
LEFT JOIN (
  SELECT s2.name, coalesce(s2.last_success_at, (SELECT min(r.started_at) FROM runs r
                                               WHERE r.job = 'collect:' || s2.name)) AS since
  FROM sources s2
  WHERE coalesce(s2.consecutive_failures, 0) > 0 OR s2.gap IS NOT NULL) g ON g.name = s.name
ORDER BY s.active DESC, consecutive_failures DESC, s.name""",
}


# What source_health shows of each source's runs and items, kept on its row. A run counts
# for the source its job names ("collect:<name>"); a source added later (or renamed) takes
# the counts of the rows already there.
_SOURCE_COUNTS = """
UPDATE sources SET
  runs_total = (SELECT count(*) FROM runs r WHERE r.job = 'collect:' || sources.name),
  runs_failed = (SELECT count(*) FROM runs r WHERE r.job = 'collect:' || sources.name
                 AND r.ok = 0),
  items_total = (SELECT count(*) FROM items i WHERE i.source = sources.name)"""
_RUN_ADDS = """
  UPDATE sources SET runs_total = runs_total + {sign},
    runs_failed = runs_failed + {sign} * ({row}.ok IS 0)
  WHERE substr({row}.job, 1, 8) = 'collect:' AND name = substr({row}.job, 9);"""
_SOURCE_COUNT_TRIGGERS: dict[str, str] = {
    "source_counts_run_insert": "AFTER INSERT ON runs BEGIN"
                                + _RUN_ADDS.format(sign=1, row="NEW"),
    # A run is inserted unfinished and updated when it ends: only a failure changes a count.
    "source_counts_run_update": "AFTER UPDATE OF job, ok ON runs WHEN OLD.job IS NOT NEW.job "
                                "OR (OLD.ok IS 0) IS NOT (NEW.ok IS 0) BEGIN"
                                + _RUN_ADDS.format(sign=-1, row="OLD")
                                + _RUN_ADDS.format(sign=1, row="NEW"),
    "source_counts_run_delete": "AFTER DELETE ON runs BEGIN"
                                + _RUN_ADDS.format(sign=-1, row="OLD"),
    "source_counts_item_insert": "AFTER INSERT ON items BEGIN\n"
                                 "  UPDATE sources SET items_total = items_total + 1 "
                                 "WHERE name = NEW.source;",
    "source_counts_item_delete": "AFTER DELETE ON items BEGIN\n"
                                 "  UPDATE sources SET items_total = items_total - 1 "
                                 "WHERE name = OLD.source;",
    "source_counts_item_source": "AFTER UPDATE OF source ON items "
                                 "WHEN OLD.source IS NOT NEW.source BEGIN\n"
                                 "  UPDATE sources SET items_total = items_total - 1 "
                                 "WHERE name = OLD.source;\n"
                                 "  UPDATE sources SET items_total = items_total + 1 "
                                 "WHERE name = NEW.source;",
    "source_counts_new_source": "AFTER INSERT ON sources BEGIN"
                                + _SOURCE_COUNTS + " WHERE name = NEW.name;",
    "source_counts_renamed_source": "AFTER UPDATE OF name ON sources BEGIN"
                                    + _SOURCE_COUNTS + " WHERE name = NEW.name;",
}


def create_source_counts(db: Database) -> None:
    """The count columns on `sources`, filled from the rows stored, and their triggers."""
    with db.atomic():
        columns = db["sources"].columns_dict
        for column in ("runs_total", "runs_failed", "items_total"):
            if column not in columns:
                db.execute(f"ALTER TABLE sources ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
        db.execute(_SOURCE_COUNTS)
        _create_triggers(db, _SOURCE_COUNT_TRIGGERS)


def create_analyst_views(db: Database) -> None:
    """(Re)create the analysts' views; safe to repeat."""
    for name, sql in ANALYST_VIEWS.items():
        db.create_view(name, sql.strip(), replace=True)


def current_model_version(db: Database) -> str | None:
    return get_meta(db, "model_version")


def item_brief(db: Database, item_id: str) -> dict[str, Any] | None:
    """An item with the current model's score and verdict and the analyst's label, if any."""
    rows = list(db.query(
        "SELECT i.id, i.source, i.kind, i.title, i.url, i.published_at, c.score, c.flagged, "
        "l.label, l.analyst, l.note, l.labeled_at FROM items i "
        f"LEFT JOIN classifications c ON c.item_id = i.id AND c.model_version = {_CURRENT_MODEL} "
        "LEFT JOIN labels l ON l.item_id = i.id WHERE i.id = ?", [item_id]))
    return rows[0] if rows else None


def save_label(db: Database, item_id: str, label: int, *, analyst: str, note: str | None,
               now: datetime) -> None:
    """Record (or replace) the analyst's judgement of one item."""
    db.execute(
        "INSERT INTO labels (item_id, label, analyst, labeled_at, note) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(item_id) DO UPDATE SET label = excluded.label, analyst = excluded.analyst, "
        "labeled_at = excluded.labeled_at, note = excluded.note",
        [item_id, int(label), analyst, iso(now), note])


def delete_label(db: Database, item_id: str) -> bool:
    return db.execute("DELETE FROM labels WHERE item_id = ?", [item_id]).rowcount == 1


def labeled_items(db: Database) -> list[dict[str, Any]]:
    """Every analyst label with its item's text, oldest label first (for training and eval)."""
    return list(db.query(
        "SELECT l.item_id, l.label, l.analyst, l.labeled_at, l.note, i.kind, i.title, i.body "
        "FROM labels l JOIN items i ON i.id = l.item_id ORDER BY l.labeled_at, l.item_id"))


def label_queue(db: Database, model_version: str, *, threshold: float, limit: int,
                since: str | None = None) -> list[dict[str, Any]]:
    """Unlabeled items scored by `model_version`, the closest to the threshold first."""
    where = "AND i.published_at >= :since" if since else ""
    return list(db.query(
        "SELECT i.id, i.source, i.kind, i.title, i.url, i.published_at, c.score, c.flagged "
        "FROM classifications c JOIN items i ON i.id = c.item_id "
        "WHERE c.model_version = :mv AND i.duplicate_of IS NULL "
        f"AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = i.id) {where} "
        "ORDER BY abs(c.score - :t), i.published_at DESC, i.id LIMIT :limit",
        {"mv": model_version, "t": threshold, "limit": limit, "since": since}))


def daily_flags(db: Database, start: str, end: str) -> list[dict[str, Any]]:
    """Items published in [start, end) (copies left out) with the current model's verdict."""
    return list(db.query(
        "SELECT i.published_at, c.flagged FROM items i "
        f"LEFT JOIN classifications c ON c.item_id = i.id AND c.model_version = {_CURRENT_MODEL} "
        "WHERE i.published_at >= ? AND i.published_at < ? AND i.duplicate_of IS NULL",
        [start, end]))


def top_markets(db: Database, start: str, end: str, *, previous_start: str,
                limit: int) -> list[dict[str, Any]]:
    """Markets by flagged items, then by all items, mentioned in [start, end); `previous`
    counts the items in [previous_start, start), for comparison."""
    return list(db.query(
        "WITH w AS (SELECT m.market, m.item_id, i.published_at, c.flagged FROM mentions m "
        "JOIN items i ON i.id = m.item_id "
        f"LEFT JOIN classifications c ON c.item_id = m.item_id AND c.model_version = "
        f"{_CURRENT_MODEL} WHERE i.duplicate_of IS NULL AND i.published_at < :end "
        "AND i.published_at >= :previous_start) "
        "SELECT market, count(DISTINCT CASE WHEN flagged = 1 AND published_at >= :start "
        "  THEN item_id END) AS flagged, "
        "count(DISTINCT CASE WHEN published_at >= :start THEN item_id END) AS mentions, "
        "count(DISTINCT CASE WHEN published_at < :start THEN item_id END) AS previous "
        "FROM w GROUP BY market HAVING mentions > 0 "
        "ORDER BY flagged DESC, mentions DESC, market LIMIT :limit",
        {"start": start, "end": end, "previous_start": previous_start, "limit": limit}))


def new_market_rows(db: Database, start: str, end: str | None = None) -> list[dict[str, Any]]:
    """The new_markets view's rows for any window."""
    return list(db.query(_new_markets_sql(":start", ":end" if end else None),
                         {"start": start, "end": end}))


def failing_sources(db: Database) -> list[dict[str, Any]]:
    """Active sources that failed their last attempt or cannot be read, worst first."""
    return list(db.query(
        "SELECT * FROM source_health WHERE active = 1 "
        "AND (consecutive_failures > 0 OR gap_reason IS NOT NULL)"))


def market_rows(db: Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM markets ORDER BY name"))


def flagged_rows(db: Database, since: str | None = None,
                 until: str | None = None) -> list[dict[str, Any]]:
    """The flagged_items view, oldest first, optionally within [since, until)."""
    where, params = [], []
    if since:
        where.append("published_at >= ?")
        params.append(since)
    if until:
        where.append("published_at < ?")
        params.append(until)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    return list(db.query(
        f"SELECT * FROM flagged_items {clause} ORDER BY published_at, item_id", params))


def labels_with_verdicts(db: Database, model_version: str) -> list[dict[str, Any]]:
    """Every analyst label with the item's title and the given model's score and verdict
    (None when that model has not scored the item)."""
    return list(db.query(
        "SELECT l.item_id, l.label, l.labeled_at, i.title, c.score, c.flagged, c.classified_at "
        "FROM labels l JOIN items i ON i.id = l.item_id LEFT JOIN classifications c "
        "ON c.item_id = l.item_id AND c.model_version = ? ORDER BY l.labeled_at, l.item_id",
        [model_version]))


# --- classifier: gazetteer, scores, market mentions, discovered markets --------------------
# The classifier owns the mention roles successor, predecessor and mention; `warning` rows
# come from the warnings pass (monitor.intel) and are left alone when an item is rescored.
CLASSIFIER_ROLES = ("successor", "predecessor", "mention")


def load_gazetteer(db: Database, markets: Sequence[dict[str, Any]],
                   events: Sequence[dict[str, Any]]) -> None:
    """Upsert the gazetteer's markets (origin "gazetteer") and events; safe to repeat.

    A market's first_seen_at is kept; a discovered market that the gazetteer now lists
    becomes a gazetteer market.
    """
    with db.atomic():
        for row in markets:
            db.execute(
                "INSERT INTO markets (name, aliases, status, predecessor, launched_at, down_at, "
                "origin) VALUES (:name, :aliases, :status, :predecessor, :launched_at, "
                ":down_at, 'gazetteer') ON CONFLICT(name) DO UPDATE SET "
                "aliases = excluded.aliases, status = excluded.status, "
                "predecessor = excluded.predecessor, launched_at = excluded.launched_at, "
                "down_at = excluded.down_at, origin = 'gazetteer'", dict(row))
        if events:
            db["events"].upsert_all([dict(e) for e in events], pk="id")


def gazetteer_loaded(db: Database, digest: str) -> bool:
    return get_meta(db, "gazetteer_digest") == digest


def unscored_item_ids(db: Database, model_version: str, *, rescore: bool = False,
                      limit: int | None = None) -> list[str]:
    """Items without a score from `model_version` (every item when `rescore`), oldest first."""
    where = "" if rescore else (
        "WHERE NOT EXISTS (SELECT 1 FROM classifications c WHERE c.item_id = i.id "
        "AND c.model_version = :mv)")
    tail = "LIMIT :limit" if limit else ""
    return [r["id"] for r in db.query(
        f"SELECT i.id FROM items i {where} ORDER BY i.collected_at, i.id {tail}",
        {"mv": model_version, "limit": limit})]


def items_for_classification(db: Database, ids: Sequence[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(list(dict.fromkeys(ids))):
        rows += db.query("SELECT id, title, body, collected_at, published_at FROM items "
                         f"WHERE id IN ({_marks(chunk)})", chunk)
    order = {item_id: n for n, item_id in enumerate(ids)}
    return sorted(rows, key=lambda r: order.get(r["id"], 0))


def save_classifications(db: Database, scores: Sequence[dict[str, Any]],
                         mentions: Sequence[dict[str, Any]],
                         discovered: Sequence[dict[str, Any]]) -> None:
    """In one transaction: the scores, each item's mentions (replacing the classifier's
    earlier ones for those items) and the discovered markets (first_seen_at is the earliest
    time seen)."""
    with db.atomic():
        if scores:
            db.conn.executemany(_SAVE_SCORE_SQL, [
                (s["item_id"], s["model_version"], s["score"], s["flagged"],
                 s["classified_at"]) for s in scores])
        _replace_classifier_mentions(db, [s["item_id"] for s in scores], mentions)
        for row in discovered:
            db.execute(
                "INSERT INTO markets (name, aliases, status, predecessor, first_seen_at, origin) "
                "VALUES (:name, '[]', 'unknown', :predecessor, :first_seen_at, 'discovered') "
                "ON CONFLICT(name) DO UPDATE SET first_seen_at = min(coalesce("
                "markets.first_seen_at, excluded.first_seen_at), excluded.first_seen_at), "
                "predecessor = coalesce(markets.predecessor, excluded.predecessor) "
                "WHERE markets.origin = 'discovered'",
                {"name": row["name"], "predecessor": row.get("predecessor"),
                 "first_seen_at": row["first_seen_at"]})


_SAVE_SCORE_SQL = (
    "INSERT INTO classifications (item_id, model_version, score, flagged, classified_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (item_id, model_version) DO UPDATE SET "
    "score = excluded.score, flagged = excluded.flagged, classified_at = excluded.classified_at")


def _replace_classifier_mentions(db: Database, item_ids: Sequence[str],
                                 mentions: Sequence[dict[str, Any]]) -> None:
    """Make the classifier's mentions of `item_ids` exactly those in `mentions` (other rows
    are only added if missing), touching only the rows that differ: each mention inserted
    or deleted costs the summary triggers a few index probes, and a rescore mostly finds
    the same mentions again."""
    stored: dict[tuple[str, str, str], tuple[int, str | None]] = {}
    roles = _marks(CLASSIFIER_ROLES)
    for chunk in _chunks(list(dict.fromkeys(item_ids))):
        for rowid, item, market, role, surface in db.execute(
                "SELECT rowid, item_id, market, role, surface FROM mentions "
                f"WHERE item_id IN ({_marks(chunk)}) AND role IN ({roles})",
                [*chunk, *CLASSIFIER_ROLES]):
            stored[(item, market, role)] = (rowid, surface)
    wanted: dict[tuple[str, str, str], str | None] = {}
    for row in mentions:  # the first of repeated rows wins, as with ON CONFLICT DO NOTHING
        wanted.setdefault((row["item_id"], row["market"], row["role"]), row.get("surface"))
    # New rows first: a role that changed keeps its (market, item) summary row in place.
    db.conn.executemany(
        "INSERT INTO mentions (item_id, market, surface, role) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [(item, market, surface, role) for (item, market, role), surface in wanted.items()
         if (item, market, role) not in stored])
    db.conn.executemany("DELETE FROM mentions WHERE rowid = ?",
                        [(rowid,) for key, (rowid, _) in stored.items() if key not in wanted])
    db.conn.executemany("UPDATE mentions SET surface = ? WHERE rowid = ?",
                        [(wanted[key], rowid) for key, (rowid, surface) in stored.items()
                         if key in wanted and wanted[key] != surface])


def discovered_market_names(db: Database) -> list[str]:
    return [r["name"] for r in db.query(
        "SELECT name FROM markets WHERE origin = 'discovered' ORDER BY name")]



# --- demo: the database `monitor demo` fills from the bundled sample -----------------------

DEMO_META_KEY = "demo_sample"


def is_demo_database(path: Path | str) -> bool:
    """Whether an existing file is a database that `monitor demo` made (its meta says so).

    Opened read-only and never migrated: the file may be anything, even an operator's real
    database given by mistake, which the demo must not touch.
    """
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?",
                               [DEMO_META_KEY]).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is not None


def demo_counts(db: Database) -> dict[str, int]:
    """What the demo shows it made: items, flagged items (current model), mentions, warnings,
    discovered markets, lineage edges seen in the chatter, alerts and events."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM items), "
        f"(SELECT count(*) FROM classifications WHERE flagged = 1 AND model_version = "
        f"{_CURRENT_MODEL}), "
        "(SELECT count(*) FROM mentions), "
        "(SELECT count(*) FROM mentions WHERE role = 'warning'), "
        "(SELECT count(*) FROM markets WHERE origin = 'discovered'), "
        "(SELECT count(*) FROM lineage WHERE origin = 'discovered'), "
        "(SELECT count(*) FROM alerts), (SELECT count(*) FROM events)").fetchone()
    names = ("items", "flagged", "mentions", "warnings", "discovered_markets",
             "discovered_edges", "alerts", "events")
    return dict(zip(names, row, strict=True))


def discovered_successors(db: Database) -> list[dict[str, Any]]:
    """Lineage edges the chatter showed whose successor monitor discovered (no gazetteer
    entry): predecessor, successor, kind, count, first_seen_at; strongest first."""
    return list(db.query(
        "SELECT l.predecessor, l.successor, l.kind, l.count, l.first_seen_at FROM lineage l "
        "JOIN markets m ON m.name = l.successor AND m.origin = 'discovered' "
        "WHERE l.origin = 'discovered' ORDER BY l.count DESC, l.first_seen_at, l.successor"))


# --- performance (issue 9): cheap fingerprints, so that unchanged inputs are not re-read ----

def labels_stamp(db: Database) -> tuple:
    """Changes whenever an analyst label is added, replaced or removed, at the cost of one
    pass over the labels (thousands of rows at most)."""
    return tuple(db.execute(
        "SELECT count(*), max(labeled_at), group_concat(item_id || ':' || label, ' ') "
        "FROM labels").fetchone())
