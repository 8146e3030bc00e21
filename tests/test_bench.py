"""Every benchmark, once, at a tiny size, through the same entry point as a full run
(`python -m bench --quick`), so that none of them rots. The figures themselves are not
judged here (a busy test machine says nothing about speed); what is checked is that each
benchmark measured what it claims: the right number of items through the real path, the
requests the server saw, queries whose plans use indexes, a daemon that ran its cycles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

bench_main = pytest.importorskip("bench.__main__", reason="bench/ is not beside the tests")


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("bench")
    out = work / "figures.json"
    assert bench_main.main(["--quick", "--dir", str(work), "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["machine"]["sqlite"]
    return {r["bench"]: r for r in payload["reports"]}


def figure(report: dict, start: str) -> dict:
    found = [f for f in report["figures"] if f["name"].startswith(start)]
    assert found, f"no figure {start!r} in {[f['name'] for f in report['figures']]}"
    return found[0]


def test_every_benchmark_ran_and_measured_a_baseline(figures):
    assert set(figures) == {"ingest", "steady", "classify", "queries", "memory"}
    for name, report in figures.items():
        assert report["figures"], name
        for f in report["figures"]:
            assert f["value"] >= 0, (name, f["name"])
            if f["baseline"] is not None:
                assert f["baseline"] > 0 and f["ratio"] is not None, (name, f["name"])


def test_ingest_takes_every_entry_through_the_real_path(figures):
    facts = figures["ingest"]["facts"]
    # Every generated entry is stored and scored (the warm-up feed's are scored too), and
    # the baseline inserted the same number of rows.
    assert facts["items_stored"] == facts["entries"] == facts["baseline_rows"]
    assert facts["items_scored"] > facts["entries"]
    assert figure(figures["ingest"], "pipeline")["ratio"] > 0


def test_steady_state_sends_one_conditional_request_per_source(figures):
    facts = figures["steady"]["facts"]
    assert facts["requests_per_cycle"] == [20]
    assert facts["answered_304_per_cycle"] == [18] and facts["answered_200_per_cycle"] == [2]
    assert facts["new_items_per_cycle"] == [6]  # two changed feeds, three new entries each


def test_classify_scores_against_a_plain_model(figures):
    rates = [f for f in figures["classify"]["figures"] if f["unit"] == "items per CPU-second"]
    assert len(rates) == 2 and all(f["value"] > 0 and f["baseline"] > 0 for f in rates)


def test_every_analyst_query_is_timed_and_none_scans_a_large_table(figures):
    report = figures["queries"]
    names = [f["name"] for f in report["figures"]]
    for view in ("flagged_items", "market_daily", "new_markets", "takedown_response",
                 "source_health"):
        assert any(n.startswith(f"view {view}:") for n in names), view
    assert any(n.startswith("full-text search") for n in names)
    assert any(n.startswith("digest data") for n in names)
    # No ANALYZE runs, so SQLite plans the tiny database as it plans a million items.
    assert report["facts"]["queries_with_full_scans"] == []
    assert report["facts"]["rows"]["items"] == 3000


def test_memory_runs_the_daemon_jobs_for_every_cycle(figures):
    facts = figures["memory"]["facts"]
    # 21 cycles (0 to 20) of 10 sources: one run each, plus the backlog job's (if any).
    assert facts["runs_recorded"] >= 21 * 10
    assert facts["items_stored"] == facts["items_scored"] > 0
    assert figure(figures["memory"], "peak RSS")["value"] > 0


def test_the_entry_point_rejects_unknown_benchmarks(capsys):
    assert bench_main.main(["nonesuch"]) == 2
    assert "no benchmark 'nonesuch'" in capsys.readouterr().err


def test_generated_feeds_parse_as_the_collector_reads_them():
    from bench._feeds import FeedSpec, render
    from monitor.collect.feeds import entries_to_items, parse_feed
    from monitor.timeutil import utcnow

    spec = FeedSpec(feeds=10, entries=30, new_per_change=3)
    for feed in (0, 4):  # RSS and Atom
        items = entries_to_items(parse_feed(render(spec, feed, 2)), source="s",
                                 base_url="http://127.0.0.1/", now=utcnow())
        assert len(items) == 30 and all(i["title"] and i["body"] for i in items)
    # A change adds new_per_change entries and drops as many old ones.
    before = {i["id"] for i in entries_to_items(parse_feed(render(spec, 0, 0)), source="s",
                                                  base_url="http://x/", now=utcnow())}
    after = {i["id"] for i in entries_to_items(parse_feed(render(spec, 0, 1)), source="s",
                                                 base_url="http://x/", now=utcnow())}
    assert len(after - before) == 3
    assert spec.version(3, 7) == 1 and spec.version(3, 17) == 2 and spec.version(3, 6) == 0
    assert Path(__file__).parent.parent.joinpath("bench", "README.md").is_file()
