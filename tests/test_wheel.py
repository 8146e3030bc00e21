"""The package as a newcomer installs it: a wheel built from a clean checkout, installed with
pip in a fresh virtualenv (dependencies from the registry), runs `monitor demo` in an empty
directory with everything it needs inside the wheel.

Slow (a fresh install takes a minute or two): deselect with `-m "not slow"`; CI runs it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor import __version__

pytestmark = pytest.mark.slow

SHIPPED = [
    "monitor/_data/markets.toml",
    "monitor/_data/config.example.toml",
    "monitor/_data/sample/scenario.toml",
    "monitor/_data/sample/reddit.json",
    "monitor/_data/sample/feeds/darkwire.xml",
    "monitor/_data/sample/feeds/cyberdesk.xml",
    "monitor/_data/sample/feeds/courtwatch.xml",
    "monitor/_data/sample/feeds/chainbeat.xml",
    "monitor/templates/digest.html.j2",
    "monitor/templates/digest.txt.j2",
    "monitor/datasette_metadata.json",
]


def _rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_wheel_carries_the_data_and_nothing_local(wheel_run) -> None:
    names = set(wheel_run.wheel_names)
    for shipped in SHIPPED:
        assert shipped in names
    training = [n for n in names if n.startswith("monitor/_data/training/")]
    repo_training = sorted(p.name for p in (Path(__file__).parents[1] / "data" / "training")
                           .glob("*.jsonl"))
    assert sorted(Path(n).name for n in training) == repo_training
    assert not [n for n in names if n.endswith((".db", ".db-wal", ".joblib", ".pyc"))
                or "/models/" in n or n.startswith("tests/")]
    assert wheel_run.wheel.name == f"monitor-{__version__}-py3-none-any.whl"


def test_the_installed_package_finds_its_files_inside_the_venv(wheel_run) -> None:
    probe = wheel_run.probe
    site = str(wheel_run.venv)
    assert probe["module"].startswith(site), "monitor was imported from outside the venv"
    for key in ("data_dir", "example_config", "gazetteer", "sample"):
        assert probe[key].startswith(site) and "/monitor/_data" in probe[key], (key, probe[key])
    assert probe["templates_dir"].startswith(site)
    assert probe["markets"] > 50 and probe["examples"] > 1000
    assert probe["training"] and probe["sample_feeds"] == ["darkwire", "cyberdesk",
                                                           "courtwatch", "chainbeat"]
    assert probe["templates"] == ["digest.html.j2", "digest.txt.j2"]
    assert {"flagged_items", "takedown_response", "source_health"} <= set(
        probe["datasette_tables"])
    assert wheel_run.version == f"monitor, version {__version__}"


def test_monitor_demo_from_the_wheel(wheel_run) -> None:
    run_dir = wheel_run.run_dir
    db = run_dir / "demo.db"
    assert db.is_file() and (run_dir / "demo.toml").is_file()
    assert wheel_run.demo_seconds < 90, f"monitor demo took {wheel_run.demo_seconds:.0f}s"
    assert _rows(db, "SELECT count(*) FROM items")[0][0] > 100
    assert _rows(db, "SELECT count(*) FROM classifications WHERE flagged = 1")[0][0] > 10
    assert _rows(db, "SELECT count(*) FROM mentions")[0][0] > 30
    successors = _rows(db, "SELECT l.predecessor, l.successor FROM lineage l JOIN markets m "
                           "ON m.name = l.successor AND m.origin = 'discovered' "
                           "WHERE l.origin = 'discovered'")
    assert ("Larkspur", "Cormorant") in successors
    assert _rows(db, "SELECT kind FROM alerts WHERE market = 'Cormorant'") == [("new-rising",)]
    page = (run_dir / "demo-digest.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") or "<html" in page[:500]
    assert "Cormorant" in page and "Operation Hedgerow" in page
    out = wheel_run.demo_out
    assert "trained the model" in out  # a fresh install has no model cached
    assert "monitor report:" in out and "monitor serve --config demo.toml" in out
    assert "Traceback" not in wheel_run.demo_err


def test_monitor_serve_from_the_wheel_answers_with_the_shipped_metadata(wheel_run) -> None:
    served = wheel_run.served
    assert served["flagged"] and all("score" in row for row in served["flagged"])
    assert any(row.get("flagged") for row in served["over_time"])
    assert "flagged_items" in served["metadata"]["databases"]["demo"]["tables"]
