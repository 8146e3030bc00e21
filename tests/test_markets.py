"""`monitor markets`: lineage trees from the markets table, as text and JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from monitor import store
from monitor.cli import cli
from monitor.markets_tree import (
    build_forest,
    forest_json,
    lineage_of,
    render_forest,
    with_chatter_lineage,
)


def row(name, predecessor=None, launched=None, down=None, status="unknown", origin="gazetteer",
        first_seen=None, aliases=()):
    return {"name": name, "predecessor": predecessor, "launched_at": launched, "down_at": down,
            "status": status, "origin": origin, "first_seen_at": first_seen,
            "aliases": json.dumps(list(aliases))}


ROWS = [
    row("Silk Road 2.0", "Silk Road", "2013-11-06", "2014-11-06", "seized"),
    row("Silk Road", None, "2011-02", "2013-10-02", "seized", aliases=["SR", "SilkRoad"]),
    row("Silk Road 3.0", "Silk Road 2.0", "2014-11"),
    row("Silk Road Reloaded", "Silk Road 2.0", "2015-01"),
    row("Zorblax Market", "Hydra Market", origin="discovered",
        first_seen="2026-11-20T08:00:00+00:00"),
    row("Hydra Market", None, "2015", "2022-04-05", "seized"),
    row("Loner", None),
    # A predecessor that is not in the table, and a cycle: both must still be shown.
    row("Orphan", "Nowhere", "2020"),
    row("Ping", "Pong"),
    row("Pong", "Ping"),
]


def names(nodes):
    return [(n.name, names(n.successors)) for n in nodes]


def test_forest_roots_children_order_and_cycles():
    forest = build_forest(ROWS)
    assert names(forest) == [
        ("Silk Road", [("Silk Road 2.0", [("Silk Road 3.0", []), ("Silk Road Reloaded", [])])]),
        ("Hydra Market", [("Zorblax Market", [])]),
        ("Orphan", []),
        ("Loner", []),
        ("Ping", [("Pong", [])]),
    ]


def test_render_tree_shows_status_dates_and_discovered():
    text = render_forest(build_forest(ROWS))
    lines = text.splitlines()
    assert lines[0] == "Silk Road  [seized]  2011-02 – 2013-10-02"
    assert lines[1] == "└─ Silk Road 2.0  [seized]  2013-11-06 – 2014-11-06"
    assert lines[2] == "   ├─ Silk Road 3.0  [unknown]  2014-11 –"
    assert lines[3] == "   └─ Silk Road Reloaded  [unknown]  2015-01 –"
    assert "└─ Zorblax Market  [unknown]  (discovered, first seen 2026-11-20)" in lines
    assert "Loner  [unknown]" in lines


def test_lineage_by_alias_and_json():
    forest = build_forest(ROWS)
    only = lineage_of(forest, "silkroad")
    assert [n.name for n in only] == ["Silk Road"]
    assert lineage_of(forest, "silk road 3.0")[0].name == "Silk Road"
    assert lineage_of(forest, "no such market") == []
    data = forest_json(only)
    assert data[0]["aliases"] == ["SR", "SilkRoad"]
    assert data[0]["successors"][0]["name"] == "Silk Road 2.0"
    assert [s["name"] for s in data[0]["successors"][0]["successors"]] == [
        "Silk Road 3.0", "Silk Road Reloaded"]


def test_cli_shows_the_gazetteer_and_discovered_markets(write_config):
    config = write_config()
    runner = CliRunner()
    # Nothing classified yet: the bundled gazetteer is loaded and shown.
    result = runner.invoke(cli, ["markets", "hydra", "--config", str(config.path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Hydra Market  [seized]  2015-01-01 – 2022-04-05"
    assert "├─ Kraken  [unknown]  2022-01-01 –" in lines
    db = store.open_db(config.db_path)
    db["markets"].insert(row("Zorblax", "Nemesis Market", origin="discovered",
                             first_seen="2026-11-20T08:00:00+00:00"))
    result = runner.invoke(cli, ["markets", "nemesis", "--json", "--config", str(config.path)])
    assert result.exit_code == 0, result.output
    (tree,) = json.loads(result.output)
    assert tree["name"] == "Nemesis Market" and tree["origin"] == "gazetteer"
    assert [(s["name"], s["origin"], s["first_seen_at"]) for s in tree["successors"]] == [
        ("Zorblax", "discovered", "2026-11-20T08:00:00+00:00")]
    result = runner.invoke(cli, ["markets", "Nope", "--config", str(config.path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no market named 'Nope' (`monitor markets` lists them all)"


def edge(predecessor, successor, count, first_seen="2026-11-01T00:00:00+00:00"):
    return {"predecessor": predecessor, "successor": successor, "count": count,
            "first_seen_at": first_seen, "kind": "migration", "origin": "discovered"}


def test_chatter_places_a_discovered_market_under_its_strongest_predecessor():
    rows = [row("Larkspur", None, "2024-01", "2026-11-10", "seized"),
            row("Thistle", None, "2023-05"),
            row("Cormorant", None, origin="discovered", first_seen="2026-11-12T09:00:00+00:00"),
            row("Quill", None, origin="discovered"),
            row("Silk Road", None, "2011-02")]
    edges = [edge("Thistle", "Cormorant", 2), edge("Larkspur", "Cormorant", 7),
             edge("Cormorant", "Cormorant", 9),
             # A curated gazetteer market is never moved by the chatter.
             edge("Larkspur", "Silk Road", 30),
             # Equal counts: the earlier sighting wins.
             edge("Thistle", "Quill", 2, "2026-11-03T00:00:00+00:00"),
             edge("Larkspur", "Quill", 2, "2026-11-05T00:00:00+00:00")]
    placed = with_chatter_lineage(rows, edges)
    forest = build_forest(placed)
    assert names(forest) == [
        ("Silk Road", []), ("Thistle", [("Quill", [])]), ("Larkspur", [("Cormorant", [])])]
    lines = render_forest(forest).splitlines()
    assert "└─ Cormorant  [unknown]  (discovered, first seen 2026-11-12)  (after Larkspur in " \
           "the chatter: 7 items)" in lines
    data = {d["name"]: d for d in forest_json(forest)}
    cormorant = data["Larkspur"]["successors"][0]
    assert (cormorant["predecessor"], cormorant["predecessor_origin"],
            cormorant["evidence_items"]) == ("Larkspur", "chatter", 7)
    assert data["Silk Road"]["predecessor_origin"] is None
    stated = with_chatter_lineage([row("Silk Road 2.0", "Silk Road")], [])
    assert stated[0]["predecessor_origin"] == "stated"
