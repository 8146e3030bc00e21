"""The run and item counts kept on each source row (migration m009) equal counting the
rows, after every kind of write, and source_health shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor import store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

RECOUNT = """
SELECT s.name,
  (SELECT count(*) FROM runs r WHERE r.job = 'collect:' || s.name),
  (SELECT count(*) FROM runs r WHERE r.job = 'collect:' || s.name AND r.ok = 0),
  (SELECT count(*) FROM items i WHERE i.source = s.name)
FROM sources s ORDER BY s.name"""


def kept(db) -> list[tuple]:
    return db.execute("SELECT name, runs_total, runs_failed, items_total FROM sources "
                      "ORDER BY name").fetchall()


def recount(db) -> list[tuple]:
    return db.execute(RECOUNT).fetchall()


def item(n: int, source: str) -> dict:
    return {"id": f"feed:{source}-{n}", "source": source, "kind": "news", "url": None,
            "title": f"title {n}", "body": f"body {n} of {source}", "author": None,
            "published_at": "2026-11-27T10:00:00Z", "collected_at": "2026-11-27T10:00:00Z",
            "content_hash": f"{source}-{n}", "parent_id": None}


def run(db, source: str, when: datetime, ok: bool | None) -> int:
    run_id = store.start_run(db, f"collect:{source}", when)
    if ok is not None:
        store.finish_run(db, run_id, when, ok=ok)
    return run_id


def test_counts_follow_runs_items_sources_and_pruning(fresh_db):
    db = fresh_db
    store.register_sources(db, [("a", "feed", "https://a.example/f"),
                                ("b", "feed", "https://b.example/f")])
    old = NOW - timedelta(days=200)
    for day in range(6):
        run(db, "a", old + timedelta(days=day), ok=day % 3 != 0)  # 2 failures, 4 successes
    unfinished = run(db, "b", NOW, ok=None)
    run(db, "b", NOW, ok=False)
    run(db, "c", NOW, ok=False)  # a source with no row yet
    store.start_run(db, "digest", NOW)  # not a source's run
    store.record_fetch(db, "a", [item(n, "a") for n in range(5)], NOW)
    store.record_fetch(db, "b", [item(n, "b") for n in range(3)], NOW)
    assert kept(db) == recount(db) == [("a", 6, 2, 5), ("b", 2, 1, 3)]

    store.finish_run(db, unfinished, NOW, ok=False)  # unfinished -> failed
    db.execute("UPDATE runs SET ok = 1 WHERE job = 'collect:b' AND id != ?", [unfinished])
    db.execute("UPDATE runs SET job = 'collect:b' WHERE id = (SELECT min(id) FROM runs "
               "WHERE job = 'collect:a' AND ok = 0)")  # moved between sources
    db.execute("DELETE FROM items WHERE id = 'feed:a-0'")
    db.execute("UPDATE items SET source = 'b' WHERE id = 'feed:a-1'")
    assert kept(db) == recount(db)

    # Pruning deletes old runs (each job's first stays); a source added later finds its runs
    # and items already there.
    while store.prune_runs(db, NOW - timedelta(days=30), batch=2) == 2:
        pass
    store.ensure_source(db, "c", "feed", "https://c.example/f")
    assert kept(db) == recount(db)
    assert dict((r[0], r[1]) for r in kept(db))["a"] == 1
    health = {r["source"]: r for r in db.query("SELECT * FROM source_health")}
    assert (health["c"]["runs"], health["c"]["failed_runs"], health["c"]["items"]) == (1, 1, 0)
    db.execute("UPDATE sources SET name = 'c2' WHERE name = 'c'")  # no runs go by that name
    assert kept(db) == recount(db)


def test_the_migration_fills_the_counts_of_rows_already_stored(fresh_db):
    db = fresh_db
    store.register_sources(db, [("a", "feed", "https://a.example/f")])
    for ok in (True, False, False):
        run(db, "a", NOW, ok=ok)
    store.record_fetch(db, "a", [item(n, "a") for n in range(4)], NOW)
    # As a database from before m009 would be: counts unset.
    db.execute("UPDATE sources SET runs_total = 0, runs_failed = 0, items_total = 0")
    store.create_source_counts(db)  # what m009 runs; safe to repeat
    store.create_source_counts(db)
    assert kept(db) == recount(db) == [("a", 3, 2, 4)]
