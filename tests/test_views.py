"""The analysts' views on a fixture database built through the real collect and classify path
(tests/analyst_helpers.py): feeds over HTTP, `pipeline.collect`, the classifier's hook."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest

from monitor import store
from monitor.timeutil import iso
from tests.analyst_helpers import NEWS, Built, item_id

VIEWS = ("flagged_items", "market_daily", "new_markets", "takedown_response", "source_health")
PUBLISHED = {e.guid: e for e in NEWS}


@pytest.fixture
def db(built: Built):
    database = store.open_db(built.db_path)
    yield database
    database.close()


def published(built: Built, guid: str) -> str:
    return iso(PUBLISHED[guid].published(built.now))


def test_views_exist_and_are_recreated_safely(db):
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    assert set(VIEWS) <= names
    store.create_analyst_views(db)
    store.ensure_schema(db)
    for view in VIEWS:
        db.execute(f"SELECT * FROM {view}").fetchall()


def test_flagged_items_current_model_newest_first(db, built: Built):
    rows = list(db.query("SELECT * FROM flagged_items"))
    flagged = {item_id(g) for g in ("kraken", "alphabay", "zorblax", "mega-1", "mega-2",
                                    "mega-3")} | {item_id("copy", "mirror")}
    assert {r["item_id"] for r in rows} == flagged
    assert [r["published_at"] for r in rows] == sorted((r["published_at"] for r in rows),
                                                       reverse=True)
    version = store.current_model_version(db)
    scores = {r["item_id"]: r["score"] for r in db.query(
        "SELECT item_id, score FROM classifications WHERE model_version = ?", [version])}
    for row in rows:
        assert row["model_version"] == version
        assert row["score"] == scores[row["item_id"]] >= 0.5
    by_id = {r["item_id"]: r for r in rows}
    kraken = by_id[item_id("kraken")]
    assert (kraken["source"], kraken["title"]) == ("news", "Kraken takes over as the new Hydra")
    assert {"Hydra Market", "Kraken"} <= set(kraken["markets"].split(", "))
    assert "Kraken" in kraken["successors"].split(", ")
    assert kraken["duplicate_of"] is None and kraken["label"] is None
    assert by_id[item_id("copy", "mirror")]["duplicate_of"] == item_id("kraken")
    assert by_id[item_id("zorblax")]["item_rowid"] == db.execute(
        "SELECT rowid FROM items WHERE id = ?", [item_id("zorblax")]).fetchone()[0]


def test_flagged_items_follows_the_current_model_version(db):
    # Another model becomes current: only its verdicts count.
    store.set_meta(db, "model_version", "other-model")
    assert list(db.query("SELECT * FROM flagged_items")) == []
    db.execute("INSERT INTO classifications VALUES (?, 'other-model', 0.9, 1, ?)",
               [item_id("sentenced"), "2026-01-01T00:00:00+00:00"])
    assert [r["item_id"] for r in db.query("SELECT * FROM flagged_items")] == [
        item_id("sentenced")]


def test_market_daily_counts_match_the_base_tables(db, built: Built):
    version = store.current_model_version(db)
    expected: dict[tuple[str, str], list[set]] = defaultdict(lambda: [set(), set()])
    for r in db.query(
            "SELECT m.market, m.item_id, i.published_at, c.flagged FROM mentions m "
            "JOIN items i ON i.id = m.item_id LEFT JOIN classifications c "
            "ON c.item_id = i.id AND c.model_version = ? WHERE i.duplicate_of IS NULL",
            [version]):
        counts = expected[(r["market"], r["published_at"][:10])]
        counts[1].add(r["item_id"])
        if r["flagged"] == 1:
            counts[0].add(r["item_id"])
    rows = list(db.query("SELECT * FROM market_daily"))
    assert {(r["market"], r["day"]): (r["flagged"], r["mentions"]) for r in rows} == {
        key: (len(f), len(a)) for key, (f, a) in expected.items()}
    assert len(rows) == len(expected)
    days = {(r["market"], r["day"]): (r["flagged"], r["mentions"]) for r in rows}
    # The syndicated copy of the Kraken story counts once.
    assert days[("Kraken", published(built, "kraken")[:10])] == (1, 1)
    assert days[("AlphaBay", published(built, "alphabay")[:10])] == (1, 1)
    assert days[("AlphaBay", published(built, "sentenced")[:10])] == (0, 1)
    assert days[("Mega", "2022-04-07")] == (1, 1)


def _discovered_name(db) -> str:
    (name,) = [r[0] for r in db.execute(
        "SELECT m.market FROM mentions m JOIN markets k ON k.name = m.market "
        "WHERE m.item_id = ? AND k.origin = 'discovered'", [item_id("zorblax")])]
    return name


def test_new_markets_last_30_days(db, built: Built):
    rows = {r["market"]: r for r in db.query("SELECT * FROM new_markets")}
    zorblax = _discovered_name(db)
    assert zorblax.startswith("Zorblax")
    # Not new: Mega was first mentioned in 2022; AlphaBay, Hydra and Nemesis are gazetteer
    # markets that were down long before the window.
    assert set(rows) == {"Kraken", zorblax}
    kraken = rows["Kraken"]
    assert (kraken["discovered"], kraken["origin"], kraken["predecessor"]) == (
        0, "gazetteer", "Hydra Market")
    assert kraken["first_seen_at"] == published(built, "kraken")
    assert kraken["first_item_id"] == item_id("kraken")  # the original, not the copy
    assert kraken["mentions"] == 1
    found = rows[zorblax]
    assert (found["discovered"], found["origin"]) == (1, "discovered")
    assert found["predecessor"] == "Nemesis Market"  # named beside it as the one replaced
    assert found["first_item_id"] == item_id("zorblax")
    assert found["first_title"] == "Vendors move to Zorblax Market after the Nemesis takedown"


def test_new_markets_any_window(db):
    rows = store.new_market_rows(db, "2022-04-06T00:00:00+00:00", "2022-05-01T00:00:00+00:00")
    # Hydra Market went down on 2022-04-05, before this window: an old name, not a new one.
    assert [(r["market"], r["first_seen_at"], r["first_item_id"]) for r in rows] == [
        ("Mega", "2022-04-07T10:00:00+00:00", item_id("mega-1"))]
    assert rows[0]["predecessor"] == "Hydra Market"


def test_takedown_response(db, built: Built):
    rows = list(db.query("SELECT * FROM takedown_response WHERE event_id = 'hydra-seizure-2022'"))
    by_name = {r["successor"]: r for r in rows}
    assert len(by_name) == len(rows)  # one row per successor
    mega = by_name["Mega"]
    assert mega["event"] == "Hydra Market seizure"
    assert mega["happened_at"].startswith("2022-04-05")
    assert mega["first_mention_at"] == "2022-04-07T10:00:00+00:00"
    assert mega["days_to_first_mention"] == pytest.approx(2 + 10 / 24, abs=0.01)
    # 2022-04-07 within 7 days; 2022-04-20 within 30; 2022-06-01 after that.
    assert (mega["mentions_7d"], mega["mentions_30d"], mega["mentions_total"]) == (1, 2, 3)
    # The Kraken story names Hydra Market too, but years after the seizure: only the 90 days
    # after an event count (tests/test_summaries.py tests the window's edges).
    assert "Kraken" not in by_name
    # Events nobody followed up have no rows; no successor is mentioned before its event.
    assert not list(db.query("SELECT * FROM takedown_response WHERE event_id = 'evolution-exit-2015'"))
    for row in db.query("SELECT * FROM takedown_response"):
        assert row["first_mention_at"] >= row["happened_at"][:10]
        assert row["days_to_first_mention"] >= 0


def test_source_health(db, built: Built):
    rows = {r["source"]: r for r in db.query("SELECT * FROM source_health")}
    assert set(rows) == {"news", "mirror", "broken"}
    broken = rows["broken"]
    assert broken["consecutive_failures"] == 1
    assert (broken["failed_runs"], broken["runs"]) == (1, 2)
    assert broken["last_success_at"] == iso(built.first_run)
    assert broken["last_attempt_at"] == iso(built.now)
    assert "500" in broken["last_error"]
    assert broken["gap_since"] == iso(built.first_run)
    assert broken["gap_hours"] == 2.0
    news = rows["news"]
    assert (news["consecutive_failures"], news["failed_runs"], news["runs"]) == (0, 0, 2)
    assert (news["gap_since"], news["gap_hours"], news["last_error"]) == (None, 0, None)
    assert news["items"] == len(NEWS)
    assert news["newest_item_at"] == iso(built.now - timedelta(days=1))
    # Worst first.
    assert next(iter(rows)) == "broken"


def test_readme_has_a_working_example_query_for_each_view(db):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    queries = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    for view in VIEWS:
        examples = [q for q in queries if re.search(rf"\bFROM {view}\b", q)]
        assert examples, f"README has no example query for {view}"
        for sql in examples:
            db.execute(sql).fetchall()
