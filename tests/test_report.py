"""`monitor report`: the numbers on the fixture database, and a layout that fits 80 columns."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from monitor import store
from monitor.cli import cli
from monitor.report import Report, build_report, render_report, window
from tests.analyst_helpers import NEWS, Built

RECENT = [e for e in NEWS if e.age is not None]  # the items of the last days
FLAGGED_RECENT = {"kraken", "alphabay", "zorblax"}


def test_window_is_local_days_today_included():
    now = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
    start, end = window(now, 7, ZoneInfo("UTC"))
    assert (start, end) == (datetime(2026, 11, 22, tzinfo=UTC), now)
    # 14:00 UTC is already the 29th in Kiritimati (UTC+14).
    start, _ = window(now, 1, ZoneInfo("Pacific/Kiritimati"))
    assert start.isoformat() == "2026-11-29T00:00:00+14:00"


def test_report_numbers(built: Built):
    db = store.open_db(built.db_path)
    report = build_report(db, days=7, timezone="UTC", now=built.now)
    assert [d for d, _, _ in report.days] == [
        built.now.date() - timedelta(days=i) for i in range(6, -1, -1)]
    per_day: dict[date, list[int]] = {d: [0, 0] for d, _, _ in report.days}
    for entry in RECENT:
        day = entry.published(built.now).date()
        per_day[day][0] += 1
        per_day[day][1] += entry.guid in FLAGGED_RECENT
    assert [(d, n, f) for d, n, f in report.days] == [(d, n, f) for d, (n, f) in
                                                      sorted(per_day.items())]
    assert (report.items, report.flagged) == (5, 3)  # the syndicated copy counts once

    markets = {m["market"]: m for m in report.markets}
    assert (markets["AlphaBay"]["flagged"], markets["AlphaBay"]["mentions"]) == (1, 2)
    assert (markets["Kraken"]["flagged"], markets["Kraken"]["mentions"]) == (1, 1)
    assert all(m["previous"] == 0 for m in report.markets)
    ranks = [(m["flagged"], m["mentions"]) for m in report.markets]
    assert ranks == sorted(ranks, reverse=True)
    assert "Mega" not in markets  # mentioned only in 2022

    new = {n["market"] for n in report.new_names}
    assert "Kraken" in new and any(n.startswith("Zorblax") for n in new)
    assert [s["source"] for s in report.failing] == ["broken"]
    db.close()


def test_render_fits_80_columns_and_cli(built: Built):
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "--days", "7", "--config", str(built.config_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("monitor report: ") and lines[0].endswith("(7 days, UTC)")
    assert lines[1].startswith("5 items, 3 flagged; model ")
    for title in ("Flagged by day", "Top markets", "New market names", "Failing sources"):
        assert any(line.startswith(title) for line in lines), title
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    failing = lines[lines.index("Failing sources") + 3]
    assert failing.split()[:2] == ["broken", "1"] and "HTTP 500" in failing


def test_render_cuts_long_values_to_80_columns():
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    report = Report(
        start=now - timedelta(days=2), end=now, timezone="Europe/Berlin", model_version="abc",
        days=[(date(2026, 11, 26), 1200, 999), (date(2026, 11, 27), 5, 0),
              (date(2026, 11, 28), 40, 12)],
        markets=[{"market": "An Extremely Long Market Name That Goes On And On", "flagged": 9,
                  "mentions": 12, "previous": 3}],
        new_names=[{"market": "Another Very Long Discovered Market Name", "origin": None,
                    "first_seen_at": "2026-11-27T10:00:00+00:00",
                    "predecessor": "Some Predecessor With A Long Name", "mentions": 4}],
        failing=[{"source": "a-source-with-a-very-long-name-indeed", "consecutive_failures": 12,
                  "last_success_at": None, "gap_reason": None,
                  "last_error": "HTTP 503 Service Unavailable " * 5}])
    text = render_report(report)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "+300%" in text  # 12 mentions against 3 the days before
    assert "#" * 30 in text  # the busiest day has the full bar
    assert "never" in text and "unlisted" in text
