"""`monitor export`: the current model's flagged items with their mentions, CSV and JSONL."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from monitor import store
from monitor.cli import cli
from monitor.export import CSV_COLUMNS
from tests.analyst_helpers import Built, item_id


def run(built: Built, *args: str):
    result = CliRunner().invoke(cli, ["export", *args, "--config", str(built.config_path)])
    return result


def stored_mentions(built: Built) -> dict[str, set[tuple[str, str]]]:
    db = store.open_db(built.db_path)
    found: dict[str, set[tuple[str, str]]] = {}
    for r in db.query("SELECT item_id, market, role FROM mentions"):
        found.setdefault(r["item_id"], set()).add((r["market"], r["role"]))
    db.close()
    return found


def test_jsonl_since_and_until(built: Built):
    result = run(built, "--since", "2022-04-10", "--until", "2022-12-31", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    # mega-1 (2022-04-07) is before --since; the 2026 items after --until.
    assert [r["item_id"] for r in rows] == [item_id("mega-2"), item_id("mega-3")]
    mentions = stored_mentions(built)
    for row in rows:
        assert {(m["market"], m["role"]) for m in row["mentions"]} == mentions[row["item_id"]]
        assert all(m["surface"] for m in row["mentions"])
        assert row["score"] >= 0.5
        assert "item_rowid" not in row and "excerpt" not in row


def test_csv_everything_oldest_first(built: Built):
    result = run(built, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert tuple(rows[0]) == CSV_COLUMNS
    ids = [r["item_id"] for r in rows]
    assert ids[:3] == [item_id("mega-1"), item_id("mega-2"), item_id("mega-3")]
    assert set(ids) == {item_id(g) for g in ("kraken", "alphabay", "zorblax", "mega-1",
                                             "mega-2", "mega-3")} | {item_id("copy", "mirror")}
    assert [r["published_at"] for r in rows] == sorted(r["published_at"] for r in rows)
    kraken = next(r for r in rows if r["item_id"] == item_id("kraken"))
    pairs = {tuple(p.rsplit(" (", 1)) for p in kraken["mentions"].split("; ")}
    assert {(m, role + ")") for m, role in stored_mentions(built)[item_id("kraken")]} == pairs
    assert kraken["label"] == "" and kraken["url"] == "https://news.example/kraken"


def test_output_file_and_bad_dates(built: Built, tmp_path):
    target = tmp_path / "out.jsonl"
    result = run(built, "--since", "2026-01-01T00:00:00Z", "--format", "jsonl", "-o",
                 str(target))
    assert result.exit_code == 0, result.output
    lines = target.read_text().splitlines()
    assert result.output.strip() == f"Wrote {len(lines)} flagged items to {target}."
    assert len(lines) == 4  # kraken, its copy, alphabay, zorblax

    result = run(built, "--since", "last tuesday")
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --since: 'last tuesday' is not a date (write "
                                     "2026-11-01 or 2026-11-01T08:00:00+00:00)")
    result = run(built, "--format", "xml")
    assert result.exit_code == 2  # click's own usage error
