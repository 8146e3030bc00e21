"""The summary tables (migration m007) that the analysts' views read: after every kind of
write the product and an analyst make, they hold exactly what the base tables say; the views
over them give the rows the earlier definitions (kept below, as they were before m007) gave.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest

from monitor import store
from monitor.timeutil import iso
from tests.analyst_helpers import Built, item_id

SUMMARIES = ("market_items", "market_days", "market_first", "flagged_current")


@pytest.fixture
def db(built: Built):
    database = store.open_db(built.db_path)
    yield database
    database.close()


# --- the same figures, recomputed from the base tables -----------------------------------

def expected_summaries(db) -> dict[str, list[tuple]]:
    """Every summary table's rows as the base tables say they should be, computed in Python
    from plain reads (no trigger, no summary table involved)."""
    version = store.current_model_version(db)
    items = {r["id"]: r for r in db.query(
        "SELECT rowid, id, published_at, duplicate_of, source, kind, title, url, body "
        "FROM items")}
    flags = {r["item_id"]: r for r in db.query(
        "SELECT item_id, score, flagged, classified_at FROM classifications "
        "WHERE model_version IS ?", [version])}
    roles: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in db.query("SELECT item_id, market, role FROM mentions"):
        if r["item_id"] in items:
            roles[(r["market"], r["item_id"])].add(r["role"])

    def flagged(item: str) -> int:
        return int(item in flags and flags[item]["flagged"] == 1)

    market_items, days, first = [], defaultdict(lambda: [0, 0]), {}
    counts: dict[str, int] = defaultdict(int)
    for (market, item), found in roles.items():
        row = items[item]
        copy = int(row["duplicate_of"] is not None)
        market_items.append((market, item, row["published_at"], row["published_at"][:10], copy,
                             flagged(item), int("successor" in found), int("warning" in found)))
        if not copy:
            day = days[(market, row["published_at"][:10])]
            day[0] += 1
            day[1] += flagged(item)
            counts[market] += 1
        key = (row["published_at"], copy, item)
        first[market] = min(first.get(market, key), key)
    lists: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"all": set(), "succ": set()})
    for r in db.query("SELECT item_id, market, role FROM mentions"):
        lists[r["item_id"]]["all"].add(r["market"])
        if r["role"] == "successor":
            lists[r["item_id"]]["succ"].add(r["market"])

    def joined(names: set[str]) -> str | None:
        return ", ".join(sorted(names)) or None

    flagged_current = [
        (item, items[item]["published_at"], items[item]["rowid"], f["score"],
         f["classified_at"],
         joined(lists[item]["all"]), joined(lists[item]["succ"]),
         *(items[item][c] for c in ("source", "kind", "title", "url")),
         None if items[item]["body"] is None else items[item]["body"][:300],
         items[item]["duplicate_of"])
        for item, f in flags.items() if f["flagged"] == 1 and item in items]
    return {
        "market_items": sorted(market_items),
        "market_days": sorted((m, d, n, f) for (m, d), (n, f) in days.items()),
        "market_first": sorted((m, *first[m], counts[m]) for m in first),
        "flagged_current": sorted(flagged_current),
    }


def stored_summaries(db) -> dict[str, list[tuple]]:
    columns = {
        "market_items": "market, item_id, published_at, day, copy, flagged, successor, warning",
        "market_days": "market, day, mentions, flagged",
        "market_first": "market, first_seen_at, first_copy, first_item_id, mentions",
        "flagged_current": "item_id, published_at, item_rowid, score, classified_at, markets, "
                           "successors, "
                           "source, kind, title, url, excerpt, duplicate_of",
    }
    return {t: sorted(tuple(r) for r in db.execute(f"SELECT {c} FROM {t}"))
            for t, c in columns.items()}


def assert_summaries_right(db) -> None:
    stored, expected = stored_summaries(db), expected_summaries(db)
    for table in SUMMARIES:
        assert stored[table] == expected[table], table


# --- the views as they were defined before m007 ------------------------------------------

OLD_FLAGGED_ITEMS = """SELECT i.rowid AS item_rowid, i.id AS item_id, i.published_at, i.source, i.kind, i.title,
  i.url, c.score,
  (SELECT group_concat(market, ', ') FROM (SELECT DISTINCT m.market FROM mentions m
    WHERE m.item_id = i.id ORDER BY m.market)) AS markets,
  (SELECT group_concat(market, ', ') FROM (SELECT DISTINCT m.market FROM mentions m
    WHERE m.item_id = i.id AND m.role = 'successor' ORDER BY m.market)) AS successors,
  substr(i.body, 1, 300) AS excerpt, l.label, i.duplicate_of, c.model_version,
  c.classified_at
FROM classifications c
JOIN items i ON i.id = c.item_id
LEFT JOIN labels l ON l.item_id = i.id
WHERE c.flagged = 1 AND c.model_version = (SELECT value FROM meta WHERE key = 'model_version')
ORDER BY i.published_at DESC, i.id"""

OLD_MARKET_DAILY = """SELECT m.market, substr(i.published_at, 1, 10) AS day,
  count(DISTINCT CASE WHEN c.flagged = 1 THEN m.item_id END) AS flagged,
  count(DISTINCT m.item_id) AS mentions
FROM mentions m
JOIN items i ON i.id = m.item_id
LEFT JOIN classifications c ON c.item_id = m.item_id AND c.model_version = (SELECT value FROM meta WHERE key = 'model_version')
WHERE i.duplicate_of IS NULL
GROUP BY m.market, day
ORDER BY day DESC, mentions DESC, m.market"""

# _new_markets_sql(":start", ":end") as it was (the end optional here).
OLD_NEW_MARKETS = """WITH first AS (
  SELECT m.market, min(i.published_at) AS first_seen_at,
    count(DISTINCT CASE WHEN i.duplicate_of IS NULL THEN m.item_id END) AS mentions
  FROM mentions m JOIN items i ON i.id = m.item_id
  GROUP BY m.market)
SELECT f.market, coalesce(k.origin = 'discovered', 0) AS discovered, k.origin, k.status,
  f.first_seen_at, fi.id AS first_item_id, fi.source AS first_source, fi.title AS first_title,
  fi.url AS first_url,
  coalesce(k.predecessor, (
    SELECT p.market FROM mentions s
    JOIN mentions p ON p.item_id = s.item_id AND p.role = 'predecessor' AND p.market != s.market
    WHERE s.market = f.market AND s.role = 'successor'
    GROUP BY p.market ORDER BY count(*) DESC, p.market LIMIT 1)) AS predecessor,
  f.mentions
FROM first f
LEFT JOIN markets k ON k.name = f.market
LEFT JOIN items fi ON fi.id = (
  SELECT i.id FROM mentions m JOIN items i ON i.id = m.item_id WHERE m.market = f.market
  ORDER BY i.published_at, i.duplicate_of IS NOT NULL, i.id LIMIT 1)
WHERE f.first_seen_at >= :start AND (:end IS NULL OR f.first_seen_at < :end)
  AND NOT (coalesce(k.origin, '') = 'gazetteer' AND coalesce(k.down_at, '') != ''
           AND k.down_at < :start)
ORDER BY f.first_seen_at DESC, f.market"""

OLD_TAKEDOWN_RESPONSE = """WITH fallen AS (
  SELECT e.id AS event_id, e.happened_at, j.value AS market
  FROM events e, json_each(CASE WHEN json_valid(e.markets) THEN e.markets
                                ELSE json_array(e.markets) END) j
  WHERE e.happened_at IS NOT NULL),
linked AS (
  -- The three reasons as three indexed joins, not three tests of every successor mention
  -- against every event (half the time on a million items; bench/queries.py).
  SELECT f.event_id, f.happened_at, s.market, s.item_id
  FROM fallen f
  JOIN mentions o ON o.market = f.market
  JOIN mentions s ON s.item_id = o.item_id AND s.role = 'successor'
  UNION
  SELECT f.event_id, f.happened_at, s.market, s.item_id
  FROM fallen f
  JOIN markets k ON k.predecessor = f.market
  JOIN mentions s ON s.market = k.name AND s.role = 'successor'
  UNION
  SELECT f.event_id, f.happened_at, s.market, s.item_id
  FROM fallen f
  JOIN lineage l ON l.predecessor = f.market
  JOIN mentions s ON s.market = l.successor AND s.role = 'successor'),
hits AS (
  SELECT DISTINCT h.event_id, h.market, h.item_id, i.published_at,
    CAST(julianday(i.published_at) - julianday(h.happened_at) AS INTEGER) AS day
  FROM linked h
  JOIN items i ON i.id = h.item_id AND i.published_at >= h.happened_at
  WHERE i.duplicate_of IS NULL),
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
  JOIN mentions w ON w.role = 'warning'
  JOIN items i ON i.id = w.item_id AND i.published_at >= f.happened_at
    AND julianday(i.published_at) < julianday(f.happened_at) + 30
  WHERE i.duplicate_of IS NULL
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


def assert_views_match_old_definitions(db) -> None:
    rows = lambda sql, params=(): [tuple(r) for r in db.execute(sql, params)]  # noqa: E731
    assert rows("SELECT * FROM flagged_items") == rows(OLD_FLAGGED_ITEMS)
    assert rows("SELECT * FROM market_daily") == rows(OLD_MARKET_DAILY)
    for start, end in (("2000-01-01", None), ("2022-04-06", "2022-05-01"),
                       (iso(datetime.now().astimezone() - timedelta(days=30)), None),
                       ("2022-04-07T10:00:00+00:00", "2022-04-07T10:00:01+00:00")):
        new = [tuple(r.values()) for r in store.new_market_rows(db, start, end)]
        assert new == rows(OLD_NEW_MARKETS, {"start": start, "end": end}), (start, end)
    # takedown_response now counts only the 90 days after each event: the old rows whose
    # chatter all lies in that window are the new rows, the others are gone.
    old = [r for r in db.query(OLD_TAKEDOWN_RESPONSE)]
    kept = [tuple(r.values()) for r in old if _all_hits_within(db, r, 90)]
    new_rows = rows("SELECT * FROM takedown_response")
    new_keys = {(r[0], r[5]) for r in new_rows}
    for r in old:
        if (r["event_id"], r["successor"]) not in new_keys:
            assert r["days_to_first_mention"] >= 90
    kept_keys = {(r[0], r[5]) for r in kept}
    # shares and ranks are over an event's rows, so compare the rows of events kept whole
    whole = {r["event_id"] for r in old} - {
        r["event_id"] for r in old if (r["event_id"], r["successor"]) not in kept_keys}
    assert [r for r in new_rows if r[0] in whole] == [r for r in kept if r[0] in whole]
    assert new_keys >= kept_keys


def _all_hits_within(db, row, days: int) -> bool:
    """Whether every item that the old view counted for this (event, successor) was
    published within `days` of the event (the old view gave no last time: look it up)."""
    last = db.execute(
        "SELECT max(i.published_at) FROM mentions s JOIN items i ON i.id = s.item_id "
        "WHERE s.market = ? AND s.role = 'successor' AND i.duplicate_of IS NULL "
        "AND i.published_at >= ?", [row["successor"], row["happened_at"]]).fetchone()[0]
    return db.execute("SELECT julianday(?) - julianday(?) < ?",
                      [last, row["happened_at"], days]).fetchone()[0] == 1


# --- tests ---------------------------------------------------------------------------------

def test_collected_and_classified_items_fill_the_summaries(db):
    assert_summaries_right(db)
    assert db.execute("SELECT count(*) FROM market_items").fetchone()[0] > 5
    assert db.execute("SELECT count(*) FROM flagged_current").fetchone()[0] == 7
    assert_views_match_old_definitions(db)


def _scores(db, version: str, flip: set[str]) -> list[dict]:
    """A score per item from `version`: the current verdicts, with those of `flip` flipped."""
    rows = []
    for r in db.query("SELECT item_id, score, flagged FROM classifications "
                      "WHERE model_version = ?", [store.current_model_version(db)]):
        flagged = 1 - r["flagged"] if r["item_id"] in flip else r["flagged"]
        rows.append({"item_id": r["item_id"], "model_version": version,
                     "score": 0.9 if flagged else 0.1, "flagged": flagged,
                     "classified_at": "2026-01-02T00:00:00+00:00"})
    return rows


def test_every_write_keeps_the_summaries_right(db, built: Built):
    kraken, alphabay, bitcoin = item_id("kraken"), item_id("alphabay"), item_id("bitcoin")
    sentenced = item_id("sentenced")

    first_model = store.current_model_version(db)
    # Reclassification with a new model: its scores (two verdicts flipped), mentions replaced
    # (the classifier deletes an item's mentions and inserts them again, one changed).
    scores = _scores(db, "model-2", flip={kraken, bitcoin})
    mentions = [dict(r) for r in db.query(
        "SELECT item_id, market, surface, role FROM mentions WHERE role != 'warning'")]
    mentions = [m for m in mentions if not (m["item_id"] == alphabay and m["role"] == "mention")]
    mentions.append({"item_id": bitcoin, "market": "Kraken", "surface": "kraken",
                     "role": "successor"})
    store.save_classifications(db, scores, mentions, [])
    assert_summaries_right(db)  # the old model is still current
    store.set_meta(db, "model_version", "model-2")
    assert_summaries_right(db)
    assert db.execute("SELECT 1 FROM flagged_current WHERE item_id = ?", [kraken]).fetchone() \
        is None
    assert_views_match_old_definitions(db)

    # A syndicated copy, stored as the collector stores one, then classified.
    copy = next(db.query("SELECT * FROM items WHERE id = ?", [alphabay]))
    copy.update(id="feed:copy-of-alphabay", source="elsewhere")
    assert store.save_items(db, [copy]) == [copy["id"]]
    assert db.execute("SELECT duplicate_of FROM items WHERE id = ?",
                      [copy["id"]]).fetchone()[0] == alphabay
    store.save_classifications(
        db, [{"item_id": copy["id"], "model_version": "model-2", "score": 0.8, "flagged": 1,
              "classified_at": "2026-01-03T00:00:00+00:00"}],
        [{"item_id": copy["id"], "market": "AlphaBay", "surface": "AlphaBay",
          "role": "successor"}], [])
    assert_summaries_right(db)

    # The warnings pass, and the same warning again (not stored twice).
    warnings = [{"item_id": i, "market": "AlphaBay", "surface": "AlphaBay", "role": "warning"}
                for i in (sentenced, bitcoin, copy["id"])]
    assert store.add_mentions(db, warnings) == 3
    assert store.add_mentions(db, warnings) == 0
    assert_summaries_right(db)

    # Deleting mentions, among them a market's first mention and a market's last.
    first = db.execute("SELECT first_item_id FROM market_first WHERE market = 'Kraken'"
                       ).fetchone()[0]
    db.execute("DELETE FROM mentions WHERE item_id = ? AND market = 'Kraken'", [first])
    assert_summaries_right(db)
    db.execute("DELETE FROM mentions WHERE market = 'Mega'")
    assert_summaries_right(db)
    assert db.execute("SELECT count(*) FROM market_first WHERE market = 'Mega'"
                      ).fetchone()[0] == 0

    # An analyst's label, and manual edits of every input.
    store.save_label(db, sentenced, 1, analyst="ana", note=None, now=built.now)
    db.execute("UPDATE items SET published_at = '2021-01-01T00:00:00+00:00' WHERE id = ?",
               [sentenced])
    db.execute("UPDATE items SET duplicate_of = NULL WHERE id = ?", [copy["id"]])
    db.execute("UPDATE items SET title = 'edited', body = 'edited body' WHERE id = ?",
               [item_id("mega-1")])
    db.execute("UPDATE classifications SET flagged = 0 WHERE item_id = ? "
               "AND model_version = 'model-2'", [alphabay])
    db.execute("UPDATE mentions SET role = 'successor' WHERE item_id = ? AND role = 'warning'",
               [sentenced])
    db.execute("INSERT OR REPLACE INTO mentions (item_id, market, surface, role) "
               "VALUES (?, 'AlphaBay', 'again', 'successor')", [sentenced])
    db.execute("DELETE FROM classifications WHERE item_id = ? AND model_version = 'model-2'",
               [bitcoin])
    assert_summaries_right(db)
    assert_views_match_old_definitions(db)

    # With foreign keys off, a mention and a score can be stored before their item.
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("INSERT INTO mentions (item_id, market, surface, role) "
               "VALUES ('feed:late', 'Kraken', 'kraken', 'successor')")
    db.execute("INSERT INTO classifications VALUES ('feed:late', 'model-2', 0.9, 1, "
               "'2026-01-04T00:00:00+00:00')")
    assert_summaries_right(db)
    db.execute("INSERT INTO items (id, source, kind, title, body, published_at, collected_at) "
               "VALUES ('feed:late', 'news', 'news', 'late', 'Kraken is the new Hydra', "
               "'2020-01-01T00:00:00+00:00', '2026-01-04T00:00:00+00:00')")
    db.execute("PRAGMA foreign_keys = ON")
    assert_summaries_right(db)
    assert db.execute("SELECT first_item_id FROM market_first WHERE market = 'Kraken'"
                      ).fetchone()[0] == "feed:late"

    # Back to the first model, then no current model at all.
    store.set_meta(db, "model_version", first_model)
    assert_summaries_right(db)
    assert_views_match_old_definitions(db)
    db.execute("DELETE FROM meta WHERE key = 'model_version'")
    assert_summaries_right(db)
    assert db.execute("SELECT count(*) FROM flagged_current").fetchone()[0] == 0


def test_the_migration_fills_the_summaries_of_an_existing_database(built: Built):
    db = store.open_db(built.db_path)
    before = stored_summaries(db)
    # The database as it was before m007: no summary tables, no triggers.
    for name in [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%summary%' "
            "OR type = 'trigger' AND tbl_name = 'market_items'")]:
        db.execute(f"DROP TRIGGER {name}")
    for table in SUMMARIES:
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_summary_tables'")
    db.conn.commit()
    db.close()

    db = store.open_db(built.db_path)
    assert stored_summaries(db) == before
    assert_summaries_right(db)
    assert_views_match_old_definitions(db)
    # ... and the triggers work from then on.
    db.execute("DELETE FROM mentions WHERE market = 'Kraken'")
    assert_summaries_right(db)
    db.close()


def test_takedown_response_counts_the_90_days_after_the_event(db, built: Built):
    event = "2024-01-10T00:00:00+00:00"
    db.execute("INSERT INTO events (id, name, happened_at, kind, markets) VALUES "
               "('window', 'Window test seizure', ?, 'takedown', '[\"Zeta Fallen\"]')", [event])
    for n, at in enumerate(("2024-01-10T00:00:00+00:00",    # day 0
                            "2024-04-08T23:59:00+00:00",    # day 89.99: counts
                            "2024-04-09T00:00:00+00:00",    # day 90: too late
                            "2027-01-01T00:00:00+00:00")):  # a retrospective years later
        item = {"id": f"feed:window-{n}", "source": "news", "kind": "news",
                "title": f"window {n}", "body": "Zeta Fallen gone, Zeta Next is the new one",
                "published_at": at, "collected_at": at, "content_hash": f"window-{n}"}
        store.save_items(db, [item])
        store.add_mentions(db, [
            {"item_id": item["id"], "market": "Zeta Fallen", "surface": "x", "role": "predecessor"},
            {"item_id": item["id"], "market": "Zeta Next", "surface": "x", "role": "successor"}])
    (row,) = db.query("SELECT * FROM takedown_response WHERE event_id = 'window'")
    assert row["successor"] == "Zeta Next"
    assert row["first_mention_at"] == "2024-01-10T00:00:00+00:00"
    assert (row["mentions_7d"], row["mentions_30d"], row["mentions_total"]) == (1, 1, 2)
    assert row["days_to_first_mention"] == 0
    # Only a retrospective: no row at all.
    db.execute("DELETE FROM mentions WHERE item_id IN ('feed:window-0', 'feed:window-1')")
    assert list(db.query("SELECT * FROM takedown_response WHERE event_id = 'window'")) == []


def test_rescoring_writes_only_the_mentions_that_changed(db):
    """A rescore whose mentions differ (one gone, one new, one role changed, one the same)
    leaves exactly the new mentions, rewrites nothing else, and keeps the summaries right."""
    kraken = item_id("kraken")
    version = store.current_model_version(db)

    def score(flagged: int) -> list[dict]:
        return [{"item_id": kraken, "model_version": version, "score": 0.9 if flagged else 0.1,
                 "flagged": flagged, "classified_at": "2026-01-05T00:00:00+00:00"}]

    def mention(market: str, role: str, surface: str | None = None) -> dict:
        return {"item_id": kraken, "market": market, "surface": surface or market,
                "role": role}

    def stored() -> dict[tuple[str, str], tuple[int, str]]:
        return {(r[1], r[2]): (r[0], r[3]) for r in db.execute(
            "SELECT rowid, market, role, surface FROM mentions WHERE item_id = ?", [kraken])}

    store.add_mentions(db, [mention("AlphaBay", "warning")])  # not the classifier's: stays
    store.save_classifications(db, score(1), [
        mention("Kraken", "successor"), mention("Hydra", "predecessor"),
        mention("AlphaBay", "mention"), mention("Empire", "mention")], [])
    # (a later row of another item, so that a rewritten row could not get its rowid back)
    store.add_mentions(db, [{"item_id": item_id("sentenced"), "market": "Hydra",
                             "surface": "Hydra", "role": "warning"}])
    assert_summaries_right(db)
    before = stored()

    store.save_classifications(db, score(0), [
        mention("Kraken", "successor"),           # the same
        mention("Hydra", "mention"),              # its role changed
        mention("Dream", "successor"),            # new
        mention("Empire", "mention", "EMPIRE"),   # the same, written differently
        mention("Dream", "successor", "dream"),   # repeated: the first row counts
    ], [])                                        # AlphaBay as a mention is gone

    after = stored()
    assert set(after) == {("Kraken", "successor"), ("Hydra", "mention"),
                          ("Dream", "successor"), ("Empire", "mention"),
                          ("AlphaBay", "warning")}
    assert after[("Dream", "successor")][1] == "Dream"
    assert after[("Empire", "mention")][1] == "EMPIRE"
    # Unchanged rows are not deleted and inserted again (their rowids stay).
    for key in (("Kraken", "successor"), ("Empire", "mention"), ("AlphaBay", "warning")):
        assert after[key][0] == before[key][0]
    assert_summaries_right(db)
    assert db.execute("SELECT successor, warning FROM market_items WHERE market = 'Hydra' "
                      "AND item_id = ?", [kraken]).fetchone() == (0, 0)
    assert db.execute("SELECT warning FROM market_items WHERE market = 'AlphaBay' "
                      "AND item_id = ?", [kraken]).fetchone() == (1,)
    assert db.execute("SELECT 1 FROM flagged_current WHERE item_id = ?", [kraken]
                      ).fetchone() is None

    # Scored with no mentions at all: the classifier's rows go, the warning stays.
    store.save_classifications(db, score(1), [], [])
    assert set(stored()) == {("AlphaBay", "warning")}
    assert_summaries_right(db)
