"""Analysts' labels: recording them, the queue of items to label next, and the loop that
matters: labels change what `monitor train` learns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from monitor import store
from monitor.cli import cli
from monitor.errors import MonitorError
from monitor.labels import labeling_queue, record_label
from tests.analyst_helpers import Built, item_id


def invoke(built: Built, *args: str, env: dict | None = None):
    return CliRunner().invoke(cli, [*args, "--config", str(built.config_path)], env=env)


def test_record_replace_and_errors(built: Built):
    db = store.open_db(built.db_path)
    when = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    done = record_label(db, item_id("sentenced"), "Yes", analyst="alice", note=" odd one ",
                        now=when)
    assert (done.label, done.previous, done.agrees_with_model) == (1, None, False)
    assert list(db.query("SELECT * FROM labels")) == [{
        "item_id": item_id("sentenced"), "label": 1, "analyst": "alice",
        "labeled_at": "2026-11-28T09:30:00+00:00", "note": "odd one"}]
    again = record_label(db, item_id("sentenced"), "no", analyst="bob", now=when)
    assert (again.label, again.previous, again.agrees_with_model) == (0, 1, True)
    assert [(r["label"], r["analyst"], r["note"]) for r in db.query("SELECT * FROM labels")] == [
        (0, "bob", None)]
    with pytest.raises(MonitorError, match=r"^no item with id 'feed:nope'"):
        record_label(db, "feed:nope", "yes")
    with pytest.raises(MonitorError, match=r"^label must be yes or no, not 'maybe'$"):
        record_label(db, item_id("sentenced"), "maybe")
    db.close()


def test_cli_label_and_messages(built: Built):
    result = invoke(built, "label", item_id("bitcoin"), "yes", "--note", "test",
                    env={"MONITOR_ANALYST": "carol"})
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{item_id('bitcoin')}: labeled yes; model score 0.")
    assert "disagrees" in result.output
    result = invoke(built, "label", item_id("bitcoin"), "no")
    assert "labeled no (was yes)" in result.output and "agrees" in result.output
    db = store.open_db(built.db_path)
    assert [(r["label"], r["note"]) for r in db.query("SELECT * FROM labels")] == [(0, None)]
    db.close()

    result = invoke(built, "label", "feed:missing", "no")
    assert result.exit_code == 1
    assert result.output.startswith("Error: no item with id 'feed:missing'")
    assert len(result.output.strip().splitlines()) == 1
    result = invoke(built, "label", item_id("bitcoin"))
    assert result.exit_code == 1 and "give an item id and yes or no" in result.output
    result = invoke(built, "label", "--queue", item_id("bitcoin"))
    assert result.exit_code == 1 and "--queue takes no ITEM" in result.output


def test_queue_least_sure_first(built: Built):
    db = store.open_db(built.db_path)
    version = store.current_model_version(db)
    scored = list(db.query(
        "SELECT c.item_id, c.score FROM classifications c JOIN items i ON i.id = c.item_id "
        "WHERE c.model_version = ? AND i.duplicate_of IS NULL", [version]))
    expected = [r["item_id"] for r in sorted(scored, key=lambda r: abs(r["score"] - 0.5))]
    queue = labeling_queue(db, threshold=0.5, limit=50, now=built.now)
    assert [r["id"] for r in queue] == expected
    assert item_id("copy", "mirror") not in expected  # copies are not worth a label

    # A labeled item leaves the queue; --days keeps only recent items; limit caps it.
    record_label(db, expected[0], "yes", analyst="t")
    queue = labeling_queue(db, threshold=0.5, limit=50, days=30, now=built.now)
    old = {item_id(g) for g in ("mega-1", "mega-2", "mega-3")}  # published in 2022
    recent = [i for i in expected[1:] if i not in old]
    assert [r["id"] for r in queue] == recent
    assert len(labeling_queue(db, threshold=0.5, limit=2, now=built.now)) == 2
    # Another threshold, another order: nearest to 0.9 first.
    by_09 = [r["item_id"] for r in sorted(scored, key=lambda r: abs(r["score"] - 0.9))
             if r["item_id"] != expected[0]]
    assert [r["id"] for r in labeling_queue(db, threshold=0.9, limit=50)] == by_09
    db.close()

    result = invoke(built, "label", "--queue", "--limit", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["item", "score", "published", "title"]
    assert lines[2].startswith(expected[1])
    assert lines[-1] == f"Label one with: monitor label {expected[1]} yes|no"
    assert max(len(line) for line in lines) <= 80


def test_queue_without_a_model(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[database]\npath = "m.db"\n')
    result = CliRunner().invoke(cli, ["label", "--queue", "--config", str(config)])
    assert result.exit_code == 0
    assert result.output.startswith("Nothing to label")


# --- the loop: labels change what `monitor train` learns -----------------------------------

# Markets back after an outage: not succession (LABELING.md), yet they read like relaunches,
# so the model is unsure about them; analysts settle it.
OUTAGES = [
    ("archetyp", "Archetyp is back: the market returned after three days of maintenance and a "
                 "server move"),
    ("abacus", "Abacus Market back up after outage; vendors report orders are processing again"),
    ("tor2door", "Tor2Door is back online following a DDoS wave that took the market offline "
                 "for days"),
]


def outage_feed() -> bytes:
    items = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
        f"<link>https://forum.example/{guid}</link><description>{title}.</description>"
        f"<pubDate>Thu, 26 Nov 2026 09:00:00 GMT</pubDate></item>" for guid, title in OUTAGES)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Forum</title>"
            f"<link>https://forum.example/</link>{items}</channel></rss>").encode()


def current_scores(built: Built) -> tuple[str, dict[str, float], set[str]]:
    db = store.open_db(built.db_path)
    version = store.current_model_version(db)
    scores = {r["item_id"]: r["score"] for r in db.query(
        "SELECT item_id, score FROM classifications WHERE model_version = ?", [version])}
    flagged = {r["item_id"] for r in db.query("SELECT item_id FROM flagged_items")}
    db.close()
    return version, scores, flagged


def test_labels_change_what_train_learns(built: Built, local_server):
    from monitor import pipeline
    from monitor.classify import make_hook
    from monitor.config import load_config

    # The forum's posts arrive through the real path: HTTP, collect, the classifier's hook.
    local_server.expect_request("/forum").respond_with_data(
        outage_feed(), content_type="application/rss+xml")
    with built.config_path.open("a") as config_file:
        config_file.write(f'[[feeds]]\nname = "forum"\nurl = "{local_server.url_for("/forum")}"\n')
    config = load_config(built.config_path, env={})
    db = store.open_db(config.db_path)
    sources = [s for s in pipeline.build_sources(config) if s.name == "forum"]
    (result,) = pipeline.collect(db, sources, on_new=make_hook(config))
    assert (result.status, result.new) == ("new", len(OUTAGES)), result
    db.close()
    outages = [item_id(guid, "forum") for guid, _ in OUTAGES]

    before_version, before, _ = current_scores(built)
    assert set(outages) <= set(before)
    # The analysts disagree with the model in both directions: the outages are not
    # succession, and (for the sake of the test) the sentencing story is.
    for item in outages:
        result = invoke(built, "label", item, "no", "--note", "back after an outage")
        assert result.exit_code == 0, result.output
    result = invoke(built, "label", item_id("sentenced"), "yes")
    assert result.exit_code == 0, result.output

    result = invoke(built, "train", "--no-cv")
    assert result.exit_code == 0, result.output
    result = invoke(built, "classify", "--all")
    assert result.exit_code == 0, result.output
    after_version, after, flagged = current_scores(built)

    assert after_version != before_version  # the labels are part of what the model is
    for item in outages:
        assert after[item] < before[item] - 0.1, (item, before[item], after[item])
        assert item not in flagged
    assert after[item_id("sentenced")] > before[item_id("sentenced")] + 0.1
    # Items nobody labeled keep their verdicts.
    for guid in ("kraken", "zorblax", "mega-1"):
        assert item_id(guid) in flagged
        assert abs(after[item_id(guid)] - before[item_id(guid)]) < 0.05
    assert item_id("bitcoin") not in flagged

    # `monitor eval --labels` reports how the (new) model's verdicts meet the labels.
    result = invoke(built, "eval", "--labels", "--errors")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Model {after_version} against {len(outages) + 1} analyst labels"
    no_row = next(line for line in lines if line.startswith("labeled no"))
    assert no_row.split()[2:] == ["0", str(len(outages))]  # every outage now not flagged
    assert "0 of 4 labels were made after this model scored the item;" in lines


def test_labels_win_over_the_training_files(built: Built):
    from monitor.classify import dataset

    project = dataset.project_examples()
    negative = next(e for e in project if e.label == 0 and len(e.text) > 40)
    db = store.open_db(built.db_path)
    store.save_items(db, [{"id": "replay:same-text", "source": "replayed", "kind": "news",
                           "title": negative.text, "body": "",
                           "published_at": "2026-11-20T10:00:00+00:00",
                           "collected_at": "2026-11-20T10:00:00+00:00"}])
    record_label(db, "replay:same-text", "yes", analyst="t")
    merged = dataset.training_set(db)
    same = [e for e in merged if " ".join(e.text.lower().split()) ==
            " ".join(negative.text.lower().split())]
    assert [(e.label, e.source) for e in same] == [(1, "label:replay:same-text")]
    assert len(merged) == len(dataset.training_set())  # replaced, not added
    db.close()


def test_eval_labels_before_any_label_and_usage(built: Built):
    result = invoke(built, "eval", "--labels")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Model ") and "none of the 0 analyst labels" in result.output
    result = invoke(built, "eval")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: give --data FILE.jsonl (labeled texts) or --labels"
