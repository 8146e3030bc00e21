"""The search_items query (Datasette's ready-made search over every item, newest first) gives
exactly the rows, in the same order, that sorting every match by time gives, whatever the
word's frequency and however far the collection order strays from the publication order.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from datasette.utils import escape_fts

from monitor import serve, store

ITEMS = 30_000
# Word -> share of the items containing it: about 30% (the bounded path), 2% (more than
# 20,000 items published since the cutoff: the unbounded path), 0.5% (fewer than the 500
# rows the query returns), and one word only in the items stored out of order.
SHARES = {"escrow": 0.3, "mirror": 0.02, "clone": 0.005}
PLAIN = ("SELECT published_at, source, kind, title, url, substr(body, 1, 300), id FROM items "
         "WHERE rowid IN (SELECT rowid FROM items_fts WHERE items_fts MATCH escape_fts(:q)) "
         "ORDER BY published_at DESC, rowid DESC LIMIT 500")


def search_items_sql() -> str:
    return serve.load_metadata()["databases"]["monitor"]["queries"]["search_items"]["sql"]


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Items stored mostly in publication order, to the minute (so times tie), with 3% stored
    late (published up to a year before) and 0.5% stored early (published later than
    thousands of items stored after them, as an item dated ahead by its feed is)."""
    path = tmp_path_factory.mktemp("search") / "monitor.db"
    rng = random.Random(9)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(ITEMS):
        minute = n // 3
        draw = rng.random()
        if draw < 0.03:
            minute -= rng.randrange(1, 500_000)
        elif draw < 0.035:
            minute += rng.randrange(1, 9_000)
        words = [w for w, share in SHARES.items() if rng.random() < share]
        if draw >= 0.03 and draw < 0.035 and rng.random() < 0.5:
            words.append("early")
        rows.append({
            "id": f"feed:{n}", "source": "s", "kind": "news", "url": f"http://x/{n}",
            "title": f"item {n}", "body": " ".join(["market news", *words]),
            "published_at": (start + timedelta(minutes=minute)).strftime(
                "%Y-%m-%dT%H:%M:%S+00:00"),
            "collected_at": "2026-01-01T00:00:00+00:00",
        })
    db = store.open_db(path)
    db["sources"].insert({"name": "s", "kind": "feed", "target": "http://x/"})
    db["items"].insert_all(rows, batch_size=1000)
    db.close()
    return path


@pytest.mark.parametrize("words", [
    "escrow", "mirror", "clone", "early", "escrow mirror", "market", "escrow early",
    "nowhere", 'escrow" OR (', ""])
def test_search_items_gives_the_newest_matches_exactly(db_path: Path, words: str):
    db = store.open_db(db_path)
    db.conn.create_function("escape_fts", 1, escape_fts)
    try:
        found = db.execute(search_items_sql(), {"q": words}).fetchall()
        expected = (db.execute(PLAIN, {"q": words}).fetchall()
                    if escape_fts(words) else [])  # no words: no rows
    finally:
        db.close()
    assert found == expected
    if words in ("escrow", "market", "mirror"):
        assert len(found) == 500


def test_the_fixture_exercises_both_paths_and_ties(db_path: Path):
    """The common word is answered with a rowid bound although items stored late (long
    after their publication) are among its last-stored matches; the 2% word without one
    (more than 20,000 items since its cutoff); and times tie inside a common word's 500."""
    db = store.open_db(db_path)
    try:
        def since_cutoff(word: str) -> int:
            cutoff = db.execute(
                "SELECT published_at FROM items WHERE rowid IN (SELECT rowid FROM items_fts "
                "WHERE items_fts MATCH ? ORDER BY rowid DESC LIMIT 2000) "
                "ORDER BY published_at DESC LIMIT 1 OFFSET 499", [word]).fetchone()[0]
            return db.execute("SELECT count(*) FROM items WHERE published_at >= ?",
                              [cutoff]).fetchone()[0]

        assert since_cutoff("escrow") < 20_000 <= since_cutoff("mirror")
        times = [r[0] for r in db.execute(
            "SELECT published_at FROM items WHERE rowid IN (SELECT rowid FROM items_fts "
            "WHERE items_fts MATCH 'market') ORDER BY published_at DESC LIMIT 500")]
        assert len(set(times)) < len(times)
    finally:
        db.close()


def test_datasette_serves_search_items(db_path: Path):
    """The ready-made query as Datasette runs it (its own escape_fts), in-process."""
    datasette = serve.make_datasette(db_path)
    name = serve.database_name(db_path)

    async def rows(words: str) -> list[dict]:
        response = await datasette.client.get(
            f"/{name}/search_items.json", params={"q": words, "_shape": "array"})
        assert response.status_code == 200, response.text
        return response.json()

    found = asyncio.run(rows("escrow clone"))
    db = store.open_db(db_path)
    db.conn.create_function("escape_fts", 1, escape_fts)
    try:
        expected = [r[6] for r in db.execute(PLAIN, {"q": "escrow clone"})]
    finally:
        db.close()
    assert [r["item_id"] for r in found] == expected and expected
