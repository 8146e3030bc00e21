"""Queries: the analysts' reads on a database of a million items.

    python -m bench queries [--items 1000000] [--db /tmp/monitor-bench-1m.db] [--quick]

Generates the database once (bench/_bigdb.py: two years of items, 3% flagged, mentions on
5%; kept at --db and reused when its size matches), then times what analysts run: each view
(the first page, as Datasette shows it, and all of its rows), full-text searches, the ready-made
Datasette queries, `monitor status` and `monitor report`, and the digest's data for the last
complete week (digest_data.gather). Each figure is the median of three runs after one
warm-up run; the plan of each query is checked for full scans of the large tables.

The baseline, in the same run: one pass over every item (sum of the body lengths): what a
query that cannot use an index pays at least.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ._bigdb import GENERATOR, generate, progress_printer
from ._common import Report, quiet_logs, timed

GOAL_QUERY = 0.2
GOAL_DIGEST = 2.0
# Tables that grow with the items, market_items (migration m007) among them: a view that
# read all of it on every call would be the old problem again. Not flagged_current: it holds
# the flagged_items view's own rows, which that view reads in key order (newest first), so a
# page stops after its rows and "all rows" reads no more than it returns.
BIG_TABLES = ("items", "classifications", "mentions", "runs", "lineage_evidence",
              "market_items")
_WEEK_AGO = "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-7 days')"


# Words for the full-text searches: two that occur together in a few thousand of the
# generated items, and one in about 15% of them (145,660 of 1,000,000).
RARE_WORDS = "phishing clone"
COMMON_WORD = "escrow"


def analyst_queries(canned: dict[str, str],
                    search_box: list[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
    """(name, SQL, parameters) of every read an analyst runs, views first. `canned` are the
    ready-made queries' SQL by name; `search_box` the statements Datasette ran for the items
    table's search box (datasette_search)."""
    queries = []
    for view in ("flagged_items", "market_daily", "new_markets", "takedown_response",
                 "source_health"):
        queries.append((f"view {view}: first page", f"SELECT * FROM {view} LIMIT 101", {}))
        queries.append((f"view {view}: all rows", f"SELECT * FROM {view}", {}))
    queries += [
        ("view flagged_items: last 7 days",
         f"SELECT * FROM flagged_items WHERE published_at >= {_WEEK_AGO}", {}),
        ("full-text search, items: query search_items (rare words)",
         canned["search_items"], {"q": RARE_WORDS}),
        ("full-text search, items: query search_items (common word)",
         canned["search_items"], {"q": COMMON_WORD}),
        *search_box,
        ("full-text search, flagged_items (Datasette search box)",
         "SELECT * FROM flagged_items WHERE item_rowid IN (SELECT rowid FROM items_fts "
         "WHERE items_fts MATCH :q) LIMIT 101", {"q": '"vendors"'}),
        ("query search_flagged", canned["search_flagged"], {"q": "moved vendors"}),
        ("query market_over_time", canned["market_over_time"], {"market": "AlphaBay"}),
        ("query new_this_week", canned["new_this_week"], {}),
        ("query after_takedown", canned["after_takedown"], {"event": ""}),
    ]
    return queries


def datasette_search(path: Path, words: str) -> list[tuple[str, str]]:
    """(SQL, parameter) of the statements Datasette runs for the items table's search box
    (`/db/items?_search=words`): the page's rows (sorted by the metadata's sort_desc) and
    its count. Taken from Datasette's own trace of the request, so the benchmark times the
    SQL the installed Datasette writes, not a copy of it. Facets and suggestions are left
    out (they have their own time limit, facet_time_limit_ms)."""
    import asyncio

    from datasette.app import Datasette

    from monitor.serve import SETTINGS, database_name, load_metadata

    name = database_name(path)
    datasette = Datasette([str(path)], metadata=load_metadata(name),
                          settings={**SETTINGS, "trace_debug": True})

    async def traced() -> list[dict]:
        response = await datasette.client.get(
            f"/{name}/items.json", params={"_search": words, "_trace": "1",
                                           "_nofacet": "1", "_nosuggest": "1"})
        response.raise_for_status()
        return response.json()["_trace"]["traces"]

    statements = [(t["sql"], t["params"]["search"]) for t in asyncio.run(traced())
                  if "items_fts match" in (t.get("sql") or "")]
    assert statements, "Datasette ran no full-text search"
    return statements


def search_box_queries(path: Path) -> list[tuple[str, str, dict]]:
    """The items search box's statements for the rare and the common words, named."""
    queries = []
    for label, words in (("rare words", RARE_WORDS), ("common word", COMMON_WORD)):
        for sql, search in datasette_search(path, words):
            part = "count" if sql.lower().startswith("select count(") else "page"
            queries.append((f"full-text search, items: Datasette search box, {part} "
                            f"({label})", sql, {"search": search}))
    return queries


def canned_queries() -> dict[str, str]:
    """The ready-made queries `monitor serve` gives Datasette."""
    from monitor.serve import load_metadata

    meta = load_metadata("monitor")
    return {name: q["sql"] for name, q in meta["databases"]["monitor"]["queries"].items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench queries")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--run-days", type=int, default=90,
                        help="days of collection runs in the database (runs grows daily)")
    parser.add_argument("--db", help="where the generated database lives (reused)")
    parser.add_argument("--quick", action="store_true", help="a tiny database, for the tests")
    parser.add_argument("--dir", help="work directory for --quick")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.run_days = 3000, 1
    path = Path(args.db) if args.db else (
        Path(args.dir or "/tmp") / f"monitor-bench-{args.items}.db")
    run(path, items=args.items, run_days=args.run_days)
    return 0


def ensure_database(path: Path, items: int, run_days: int) -> dict:
    """The generated database at `path`, made now unless it is there with this shape."""
    from monitor import store

    if path.exists():
        db = store.open_db(path)  # migrates: new indexes are built on the existing file
        found = store.get_meta(db, "bench.shape")
        db.close()
        if found == _shape(items, run_days):
            return {"reused": str(path)}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    show = progress_printer()
    with timed() as t:
        counts = generate(path, items, run_days=run_days, show=show)
    show("done\n")
    db = store.open_db(path)
    store.set_meta(db, "bench.shape", _shape(items, run_days))
    db.close()
    return {**counts, "generated_in_s": round(t.wall, 1)}


def _shape(items: int, run_days: int) -> str:
    return f"{GENERATOR}:{items}:{run_days}"


def run(path: Path, *, items: int, run_days: int = 90) -> Report:
    from monitor import digest, digest_data, report, store
    from monitor.config import config_from_dict
    from monitor.timeutil import utcnow

    quiet_logs()
    result = Report("queries")
    print(f"queries: a database of {items:,} items at {path}", flush=True)
    facts = ensure_database(path, items, run_days)
    db = store.open_db(path)
    _register_functions(db)
    result.fact("database", facts)
    result.fact("size_mb", round(path.stat().st_size / 2**20))
    result.fact("rows", {t: db.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0]
                         for t in ("items", "classifications", "mentions", "runs", "sources")})

    baseline = _median(lambda: db.execute("SELECT sum(length(body)) FROM items").fetchone())
    queries = analyst_queries(canned_queries(), search_box_queries(path))
    scans: dict[str, list[str]] = {}
    for name, sql, params in queries:
        seconds, rows = _time_query(db, sql, params)
        full = full_scans(db, sql, params)
        if full:
            scans[name] = full
        result.add(f"{name} ({rows:,} rows)", seconds * 1000, "ms", baseline=baseline * 1000,
                   baseline_name="one pass over the items", goal=GOAL_QUERY * 1000,
                   goal_of="value", note=("full scan: " + "; ".join(full)) if full else "")

    # What a view costs SQLite itself, apart from making Python rows of its text: a view
    # returning tens of thousands of rows spends most of its time on the Python side.
    for name, sql, params in queries:
        if name.endswith(": all rows"):
            seconds = _median(lambda sql=sql, params=params: db.execute(
                f"SELECT count(*) FROM ({sql})", params).fetchone())
            result.add(f"{name}, counted in SQLite (no rows made)", seconds * 1000, "ms",
                       baseline=baseline * 1000, baseline_name="one pass over the items")

    config = config_from_dict({"database": {"path": str(path)}}, path, {})
    now = utcnow()
    week = digest.parse_week(None, config, now)
    seconds = _median(lambda: digest_data.gather(db, config, week, now))
    result.add(f"digest data, week {week.label}", seconds * 1000, "ms",
               baseline=baseline * 1000, baseline_name="one pass over the items",
               goal=GOAL_DIGEST * 1000, goal_of="value")
    seconds = _median(lambda: report.build_report(db, days=7, now=now))
    result.add("monitor report (7 days)", seconds * 1000, "ms", baseline=baseline * 1000,
               baseline_name="one pass over the items", goal=GOAL_QUERY * 1000,
               goal_of="value")
    seconds = _median(lambda: store.source_rows(db))
    result.add("monitor status (sources)", seconds * 1000, "ms", baseline=baseline * 1000,
               baseline_name="one pass over the items", goal=GOAL_QUERY * 1000,
               goal_of="value")
    result.fact("queries_with_full_scans", sorted(scans), show=bool(scans))
    result.fact("baseline_ms", round(baseline * 1000, 1))
    db.close()
    return result


def _register_functions(db: object) -> None:
    """The SQL functions Datasette gives the ready-made queries."""
    from datasette.utils import escape_fts

    db.conn.create_function("escape_fts", 1, escape_fts)  # type: ignore[attr-defined]


def _median(call: Callable[[], object], repeat: int = 3) -> float:
    call()  # warm-up: the page cache, SQLite's statement cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _time_query(db: object, sql: str, params: dict) -> tuple[float, int]:
    rows = [0]

    def call() -> None:
        rows[0] = len(db.execute(sql, params).fetchall())  # type: ignore[attr-defined]

    return _median(call), rows[0]


def full_scans(db: object, sql: str, params: dict) -> list[str]:
    """The plan steps that read a large table from end to end (the plan names a table by
    its alias, so aliases are looked up in the query and in every view's definition)."""
    views = dict(db.execute(  # type: ignore[attr-defined]
        "SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    texts, todo = [], [sql]
    while todo:  # the query and the views it reads, and the views they read
        text = todo.pop()
        texts.append(text)
        todo += [v for name, v in views.items() if v not in texts and v not in todo
                 and re.search(rf"\b{name}\b", text)]
    tables: dict[str, set[str]] = {}
    for text in texts:
        for table, alias in _ALIAS.findall(text):
            if alias.upper() not in _KEYWORDS:
                tables.setdefault(alias, set()).add(table)
    found = []
    for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall():  # type: ignore
        words = row[-1].split()
        # A scan without an index reads the table; so does an automatic index, which
        # SQLite builds from the whole table each time the query runs.
        if len(words) < 2 or not ((words[0] == "SCAN" and "INDEX" not in row[-1])
                                  or "AUTOMATIC" in row[-1]):
            continue
        named = tables.get(words[1], {words[1]})
        if named <= set(BIG_TABLES):
            found.append(f"{'/'.join(sorted(named))} ({row[-1]})")
    return found


_ALIAS = re.compile(r"(?:FROM|JOIN)\s+(\w+)\s+(?:AS\s+)?(\w+)", re.IGNORECASE)
_KEYWORDS = {"WHERE", "ON", "JOIN", "LEFT", "INNER", "CROSS", "GROUP", "ORDER", "LIMIT",
             "USING", "UNION", "AND", "OR", "AS", "NATURAL"}


def plan(db: object, sql: str, params: dict) -> list[str]:
    return [row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]  # type: ignore


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))

