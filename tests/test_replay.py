"""`monitor replay`: reading and validating the input, replaying in time order at the items'
own times, and the backtest around a takedown on tests/data/replay_timeline.jsonl."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import replay, store
from monitor.cli import cli
from monitor.replay import ReplayError

from .data import make_timeline

DATA = Path(__file__).resolve().parent / "data"
TIMELINE = DATA / "replay_timeline.jsonl"


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def row(item_id: str, at: str, **extra) -> dict:
    return {"id": item_id, "source": "r/test", "kind": "reddit_post", "title": f"t {item_id}",
            "body": "b", "url": f"https://www.reddit.com/r/test/{item_id}/",
            "published_at": at, **extra}


# --- reading -------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "each line must be a JSON object"),
    (json.dumps({"source": "s", "kind": "news", "title": "x",
                 "published_at": "2025-06-16T00:00:00Z"}), "'id' is missing"),
    (json.dumps(row("a", "yesterday")), "published_at 'yesterday' is not an ISO 8601 time"),
    (json.dumps(row("a", "2025-06-16T00:00:00Z", title="", body="")),
     "neither a title nor a body"),
    (json.dumps(row("a", "2025-06-16T00:00:00Z", url=5)), "'url' must be a string"),
])
def test_a_bad_line_is_named(tmp_path, line, message):
    path = write_lines(tmp_path / "in.jsonl", [row("ok", "2025-06-16T00:00:00Z"), "", line])
    with pytest.raises(ReplayError) as err:
        replay.read_items(path)
    assert str(err.value).startswith(f"{path}:3: ")
    assert message in str(err.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(ReplayError, match="no such file"):
        replay.read_items(tmp_path / "nope.jsonl")


def test_read_items_normalises_and_orders(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [
        row("late", "2025-06-17T10:00:00+02:00"),
        row("b", "2025-06-16T12:00:00Z", title="<b>Bold</b> &amp; plain"),
        row("a", "2025-06-16T12:00:00+00:00", url="javascript:alert(1)"),
        row("early", "2025-06-15T23:59:59", author="u/someone"),
    ])
    items = replay.read_items(path)
    assert [i["id"] for i in items] == ["early", "b", "a", "late"]  # same time: file order
    early, b, a, late = items
    assert early["published_at"] == "2025-06-15T23:59:59+00:00"  # no offset: UTC
    assert late["published_at"] == "2025-06-17T08:00:00+00:00"
    assert all(i["collected_at"] == i["published_at"] for i in items)
    assert b["title"] == "Bold & plain" and a["url"] is None
    assert early["author"] == "u/someone" and early["content_hash"]


# --- replaying -----------------------------------------------------------------------------

def test_replay_runs_the_hook_at_each_items_time(tmp_path, fresh_db):
    db = fresh_db
    store.ensure_source(db, "known-feed", "news", "https://example.org/feed")
    items = replay.read_items(write_lines(tmp_path / "in.jsonl", [
        row("a", "2025-06-16T08:00:00Z"),
        row("b", "2025-06-16T08:00:00Z", source="known-feed", kind="news"),
        row("c", "2025-06-16T09:30:00Z"),
        row("a", "2025-06-16T10:00:00Z"),  # the same id again: stored once
    ]))
    calls = []

    def hook(db, ids, now):
        calls.append((ids, now))
        # what the pipeline records meanwhile carries the replayed time
        assert {r["collected_at"] for r in db.query(
            "SELECT collected_at FROM items WHERE id IN ({})".format(",".join("?" * len(ids))),
            ids)} == {now.isoformat()}

    result = replay.replay(db, items, hook, job="replay:in.jsonl")
    assert calls == [(["a", "b"], datetime(2025, 6, 16, 8, tzinfo=UTC)),
                     (["c"], datetime(2025, 6, 16, 9, 30, tzinfo=UTC))]
    assert (result.read, result.new, result.skipped, result.batches) == (4, 3, 1, 3)
    run = store.recent_runs(db, 1)[0]
    assert (run["job"], run["started_at"], run["finished_at"], run["ok"], run["items_new"]) == (
        "replay:in.jsonl", "2025-06-16T08:00:00+00:00", "2025-06-16T10:00:00+00:00", 1, 3)
    kinds = {s["name"]: s["kind"] for s in store.source_rows(db, active_only=False)}
    assert kinds == {"known-feed": "news", "r/test": "replay"}
    # again: everything is stored already, nothing is handed on
    calls.clear()
    again = replay.replay(db, items, hook)
    assert (again.new, again.skipped, calls) == (0, 4, [])


def test_a_failing_hook_fails_the_run(tmp_path, fresh_db):
    items = replay.read_items(write_lines(tmp_path / "in.jsonl", [row("a", "2025-06-16T08:00Z")]))

    def hook(db, ids, now):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError):
        replay.replay(fresh_db, items, hook)
    run = store.recent_runs(fresh_db, 1)[0]
    assert run["ok"] == 0 and "model exploded" in run["error"]


# --- the fixture timeline ------------------------------------------------------------------

def test_the_fixture_is_what_its_generator_writes():
    lines = TIMELINE.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == make_timeline.build()


def test_the_fixture_timeline_has_the_planned_shape():
    items = replay.read_items(TIMELINE)
    assert 300 <= len(items) <= 500
    first, last = items[0]["published_at"], items[-1]["published_at"]
    assert first.startswith("2025-05-19") and last.startswith("2025-06-29")
    assert {i["kind"] for i in items} == {"news", "reddit_post", "reddit_comment"}
    named = [i for i in items if make_timeline.SUCCESSOR in f"{i['title']} {i['body']}"]
    assert named[0]["published_at"] == make_timeline.FIRST_SUCCESSOR_AT.isoformat()
    per_day: dict[str, int] = {}
    for item in named:
        per_day[item["published_at"][:10]] = per_day.get(item["published_at"][:10], 0) + 1
    assert max(n for day, n in per_day.items() if day < "2025-06-19") <= 3
    assert min(n for day, n in per_day.items() if day >= "2025-06-19") >= 8
    texts = {(i["title"], i["body"]) for i in items}
    assert len(texts) >= 150  # varied, not one sentence repeated


def _replay_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "backtest.db"}"\n'
                      '[alerts]\nemail = false\n', encoding="utf-8")
    return config


def test_replay_command_reports_and_fails_cleanly(tmp_path):
    config = _replay_config(tmp_path)
    path = write_lines(tmp_path / "in.jsonl", [row("a", "2025-06-16T08:00:00Z"),
                                               row("b", "2025-06-17T08:00:00Z")])
    runner = CliRunner()
    result = runner.invoke(cli, ["replay", "--config", str(config), "--input", str(path)])
    assert result.exit_code == 0, result.output
    assert "Replayed 2 items from 2025-06-16 08:00 to 2025-06-17 08:00: 2 new, 0 already " \
           "stored." in result.output
    bad = write_lines(tmp_path / "bad.jsonl", ["{oops"])
    failed = runner.invoke(cli, ["replay", "--config", str(config), "--input", str(bad)])
    assert failed.exit_code == 1
    assert failed.output.startswith(f"Error: {bad}:1: not JSON")
    assert "Traceback" not in failed.output


# --- the backtest ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def backtest(tmp_path_factory):
    """The fixture timeline replayed once through the live hook (classifier + intel)."""
    tmp_path = tmp_path_factory.mktemp("backtest")
    config = _replay_config(tmp_path)
    result = CliRunner().invoke(cli, ["replay", "--config", str(config), "--input",
                                      str(TIMELINE)])
    assert result.exit_code == 0, result.output
    db = store.open_db(tmp_path / "backtest.db")
    yield db, config, result.output
    db.close()


def _named(names, stem: str) -> list[str]:
    return [n for n in names if stem.lower() in n.lower()]


def test_backtest_takedown_response_names_the_successor(backtest):
    from monitor.intel import takedown

    db, _, _ = backtest
    [response] = takedown.responses(db, ["archetyp-deep-sentinel-2025"])
    leader = response.leader
    assert leader is not None and _named([leader.market], make_timeline.SUCCESSOR)
    assert leader.first_mention_at == make_timeline.FIRST_SUCCESSOR_AT.isoformat()
    assert leader.share_30d >= 0.5
    assert sum(leader.daily_30d[3:]) > 5 * sum(leader.daily_30d[:3])  # the rise on day 3


def test_backtest_spike_fires_for_the_rising_name_only(backtest):
    db, _, output = backtest
    raised = list(db.query("SELECT * FROM alerts ORDER BY raised_at"))
    successor = [a for a in raised if _named([a["market"]], make_timeline.SUCCESSOR)]
    assert successor, output
    first = successor[0]
    assert first["kind"] == "new-rising"
    rise = make_timeline.RISE_STARTS
    assert rise.isoformat() <= first["raised_at"] <= (rise + timedelta(days=1)).isoformat()
    for noise in make_timeline.NOISE_MARKETS:
        assert not [a for a in raised if a["market"] == noise], noise
    # the dead market's name is busy after the seizure, but it does not "rise"
    assert not [a for a in raised if a["market"] == "Archetyp Market"]


def test_backtest_scam_clone_carries_warnings(backtest):
    db, _, _ = backtest
    counts = store.warning_counts(db)
    clone = _named(counts, "Reloaded")
    assert clone and counts[clone[0]] >= 6
    assert not _named(counts, make_timeline.SUCCESSOR)
    assert not [m for m in counts if m in make_timeline.NOISE_MARKETS]


def test_backtest_corroboration_and_lineage(backtest):
    db, _, _ = backtest
    corroborated = {r["market"] for r in store.corroborations_between(
        db, "2025-06-16T00:00:00+00:00", "2025-06-23T00:00:00+00:00")}
    assert _named(corroborated, make_timeline.SUCCESSOR)
    found = {(e["predecessor"], e["successor"]): e for e in store.lineage_edges(db)}
    to_successor = [e for (p, s), e in found.items()
                    if p == "Archetyp Market" and _named([s], make_timeline.SUCCESSOR)]
    assert to_successor and to_successor[0]["origin"] == "discovered"
    assert to_successor[0]["first_seen_at"] == make_timeline.FIRST_SUCCESSOR_AT.isoformat()


def test_backtest_digest_of_the_week_after_the_takedown(backtest):
    from monitor import digest
    from monitor.config import load_config

    db, config_path, _ = backtest
    config = load_config(config_path)
    week = digest.parse_week("2025-W25", config, datetime(2025, 7, 1, tzinfo=UTC))
    text = digest.preview(db, config, week, datetime(2025, 6, 23, 7, tzinfo=UTC)).text
    assert make_timeline.SUCCESSOR in text                    # the successor and its rise
    assert "new-rising" in text or "new name rising" in text  # the alert
    assert "Reloaded" in text and "warn" in text.lower()       # the scam clone's warnings
    warnings = text.split("Scam and clone warnings this week:", 1)[1].split("\n\n\n", 1)[0]
    assert "Archetyp Market Reloaded: 8 items" in warnings
    corroborated = text.split("Corroborated in Reddit and the news:", 1)[1][:400]
    assert make_timeline.SUCCESSOR in corroborated


def test_the_replay_extracts_each_text_once(tmp_path, monkeypatch):
    """The replay's scorer hands classify_items the model's analyses with the scores, so a
    text goes through the market extractor once (again only where names discovered during
    the replay could change its mentions), not once to score and once for the mentions."""
    from monitor.classify import dataset
    from monitor.classify.apply import current_classifier
    from monitor.classify.markets import Extractor

    config = _replay_config(tmp_path)
    db = store.open_db(tmp_path / "backtest.db")
    current_classifier(db, tmp_path / "backtest.db")  # trained first: training is not counted
    db.close()
    items = replay.read_items(TIMELINE)
    texts = {dataset.item_text(i) for i in items}
    analysed, found = [], []
    hits, find = Extractor._hits, Extractor.find
    monkeypatch.setattr(Extractor, "_hits", lambda self, text: analysed.append(text)
                        or hits(self, text))
    monkeypatch.setattr(Extractor, "find", lambda self, text: found.append(text)
                        or find(self, text))
    result = CliRunner().invoke(cli, ["replay", "--config", str(config), "--input",
                                      str(TIMELINE)])
    assert result.exit_code == 0, result.output
    # Each text once for the model, and again only for the finds (the names discovered in
    # this timeline are in most of its texts; the rest need no second extraction).
    assert sorted(t for t in analysed if t in texts) == sorted([*texts, *found])
    assert len(found) < len(texts)
