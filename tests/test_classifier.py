"""The successor-chatter classifier: training data, model versioning and files, scoring,
classifying stored items (and through the collection hook), and the CLI commands."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pytest
from click.testing import CliRunner

from monitor import pipeline, store
from monitor.classify import apply, dataset, evaluate, make_hook, model
from monitor.classify.dataset import Example
from monitor.cli import cli
from monitor.collect.base import Fetched

from .conftest import shared_path

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

POSITIVE = [
    "Archetyp is gone. Where is everyone moving now, any Monero-only markets left?",
    "Vendors from the seized Nemesis Market have reopened their shops on a newer site.",
    "Empire 2.0 is up, same admins as the original apparently",
]
NEGATIVE = [
    "A vendor who sold fentanyl on AlphaBay was sentenced to twelve years in prison.",
    "The Silk Road trade route carried silk, spices and ideas between China and Rome.",
    "Bitcoin rallied after the holiday weekend as traders returned to the market.",
]


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return dataset.training_set()


@pytest.fixture(scope="module")
def trained(examples, tmp_path_factory) -> tuple[model.Classifier, Path]:
    """One model for the module, saved once; tests copy the file where they need it."""
    directory = tmp_path_factory.mktemp("models")
    classifier = model.train(examples)
    return classifier, model.save(classifier, directory)


def install(trained, db_path: Path) -> None:
    """Put the module's model where the database's models live (no retraining)."""
    directory = model.models_dir(db_path)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(trained[1], directory / trained[1].name)


# --- the training set ----------------------------------------------------------------------

def test_training_set_size_balance_and_variety(examples):
    summary = dataset.describe(examples)
    assert summary.examples >= 1000
    assert summary.positives >= 300 and summary.negatives >= 300
    assert summary.hard_negatives >= summary.examples / 3
    assert {"news", "reddit_post", "reddit_comment"} <= set(summary.by_kind)
    assert summary.distinct_trigrams >= 20_000
    assert summary.near_duplicate_pairs == [], [
        (examples[a].source, examples[b].source) for a, b, _ in summary.near_duplicate_pairs]


def test_training_files_are_well_formed():
    for path in sorted(dataset.training_dir().glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert set(row) == {"text", "label", "markets", "kind"}, (path.name, row)
            assert row["label"] in (0, 1) and row["text"].strip()
            assert isinstance(row["markets"], list)


def test_no_training_text_shares_eight_words_with_the_dev_set(examples):
    dev = dataset.read_jsonl(shared_path("eval", "dev.jsonl"))
    runs = dataset.shared_runs([e.text for e in examples], [d.text for d in dev], n=8)
    assert runs == [], [(examples[i].source, dev[j].extra.get("id"), run) for i, j, run in runs]


def test_the_overlap_and_duplicate_checks_can_fail():
    a = ["one two three four five six seven eight nine"]
    assert dataset.shared_runs(a, ["zero one two three four five six seven eight"]) != []
    assert dataset.shared_runs(a, ["one two three four five six seven nope"]) == []
    pairs = dataset.near_duplicates(["Empire is back and everyone is moving there now",
                                     "Empire is back and everyone is moving there today",
                                     "A completely different sentence about the weather"])
    assert [(a, b) for a, b, _ in pairs] == [(0, 1)]
    assert dataset.distinct_ngrams(["a b c d", "b c d e"]) == 3


def test_analyst_labels_join_the_training_set_and_win(fresh_db, examples):
    duplicate = examples[0]
    store.save_items(fresh_db, [
        {"id": "feed:1", "source": "s", "kind": "news", "title": duplicate.text, "body": "",
         "published_at": "2026-11-01T00:00:00+00:00", "collected_at": "2026-11-01T00:00:00+00:00"},
        {"id": "feed:2", "source": "s", "kind": "news", "title": "Zorblax is back",
         "body": "Same admins.", "published_at": "2026-11-01T00:00:00+00:00",
         "collected_at": "2026-11-01T00:00:00+00:00"}])
    store.save_label(fresh_db, "feed:1", 1 - duplicate.label, analyst="a", note=None, now=NOW)
    store.save_label(fresh_db, "feed:2", 1, analyst="a", note=None, now=NOW)
    merged = dataset.training_set(fresh_db)
    assert len(merged) == len(examples) + 1
    by_text = {e.text: e for e in merged}
    assert by_text[duplicate.text].label == 1 - duplicate.label
    assert by_text["Zorblax is back\nSame admins."].source == "label:feed:2"
    assert model.model_version(merged) != model.model_version(examples)


# --- versions and files --------------------------------------------------------------------

def test_the_version_follows_the_training_data(examples):
    version = model.model_version(examples)
    assert len(version) == 12
    assert model.model_version(list(reversed(examples))) == version  # order does not matter
    flipped = [replace(examples[0], label=1 - examples[0].label), *examples[1:]]
    assert model.model_version(flipped) != version
    assert model.model_version([*examples, Example("a new text", 0)]) != version


def test_save_and_load(trained, tmp_path, caplog):
    classifier, path = trained
    loaded = model.load(path, classifier.version)
    assert loaded is not None
    np.testing.assert_allclose(loaded.score(POSITIVE + NEGATIVE),
                               classifier.score(POSITIVE + NEGATIVE))
    assert model.load(path, "000000000000") is None  # another version: stale
    payload = joblib.load(path)
    payload["sklearn"] = "0.0"
    joblib.dump(payload, tmp_path / "old.joblib")
    assert model.load(tmp_path / "old.joblib") is None  # another scikit-learn
    (tmp_path / "broken.joblib").write_bytes(b"not a model")
    assert model.load(tmp_path / "broken.joblib") is None
    assert "cannot load the model" in caplog.text
    assert model.load(tmp_path / "missing.joblib") is None


def test_load_or_train_trains_only_when_missing_or_stale(examples, tmp_path):
    small = examples[:300]
    first, trained_now = model.load_or_train(tmp_path, small)
    assert trained_now and model.model_path(tmp_path, first.version).is_file()
    again, trained_now = model.load_or_train(tmp_path, small)
    assert not trained_now and again.version == first.version
    model._cache.clear()  # a new process: from the file, not trained again
    again, trained_now = model.load_or_train(tmp_path, small)
    assert not trained_now and again.version == first.version
    changed = [*small, Example("Quillfeather is the new Archetyp, everyone moved", 1)]
    second, trained_now = model.load_or_train(tmp_path, changed)
    assert trained_now and second.version != first.version


def test_training_is_fast_and_scores_are_probabilities(trained):
    classifier, _ = trained
    assert classifier.seconds < 60
    scores = classifier.score(POSITIVE + NEGATIVE)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (scores[:3] > 0.5).all(), scores
    assert (scores[3:] < 0.5).all(), scores



def test_the_term_counts_are_scikit_learns(trained, examples):
    """TermVectorizer.transform (its own counting, the cue scan's words reused) gives the
    matrix scikit-learn's own transform gives over the analyser's terms, to the last bit."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from monitor.classify import features

    classifier, _ = trained
    texts = [e.text for e in examples[:300]] + POSITIVE + NEGATIVE + [
        "", "?", "Moved to Hydra v2?? 3rd time — “again”", "Гидра 2.0 вернулась", "a1b2 c3",
        "x² and ٣٤ and İstanbul", "MKT mkt Mkt", "relaunching relaunched 2024 2.0 v3",
        "under_score9 and—dash’s\u00a0nbsp…", "Empire Market, AlphaBay and Dream",
    ]
    analyses = classifier.pipeline.steps[0][1].transform(texts)
    for analysis in analyses:
        assert features.term_words(analysis) == features._TERM.findall(
            analysis.masked.lower())
    reused = [a for a in analyses if features.term_words(a) is a.words]
    assert len(reused) > 100  # the shortcut is taken, and checked above where it is
    vectorizer = classifier.pipeline.steps[1][1].transformer_list[0][1]
    ours, theirs = vectorizer.transform(analyses), TfidfVectorizer.transform(vectorizer,
                                                                             analyses)
    assert ours.shape == theirs.shape
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name


def test_a_batch_is_analysed_as_each_text_alone(examples):
    """The Analyzer scales a batch's cue features at once and reuses the scan's lower-cased
    text: each text's vector is still the one it gets alone, and an empty batch is empty."""
    from monitor.classify import features
    from monitor.classify.markets import default_extractor

    extractor = default_extractor()
    texts = [e.text for e in examples[:200]] + POSITIVE + NEGATIVE + [
        "", "Empire Market was seized — “again”", "https://alphabay.example/x moved to Hydra"]
    analyses = features.Analyzer().transform(texts)
    for text, analysis in zip(texts, analyses, strict=True):
        alone = extractor.analyse(text)
        assert np.array_equal(analysis.cues, features.cue_vector(alone, extractor.gazetteer))
        assert alone.masked_lower in (None, alone.masked.lower())
    assert sum(extractor.analyse(t).masked_lower is None for t in texts) > 10  # both kinds
    assert features.Analyzer().transform([]) == []
    assert features.CueVectorizer().transform([]).shape == (0, len(features.FEATURES))


def test_cross_validation(examples):
    cv = model.cross_validate(examples, folds=3)
    assert cv["f1"] >= 0.8 and cv["precision"] >= 0.8 and cv["recall"] >= 0.75


# --- metrics and the keyword rule ----------------------------------------------------------

def test_metrics():
    m = evaluate.metrics([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 1, 1)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)
    assert evaluate.metrics([0, 0], [0, 0]).f1 == 0.0


def test_keyword_rule():
    flags = evaluate.keyword_rule(["Empire is back!", "Empire is an old market",
                                   "Everything is back to normal"])
    assert flags.tolist() == [True, False, False]


# --- classifying stored items --------------------------------------------------------------

def items(*texts: tuple[str, str], source: str = "s") -> list[dict]:
    return [{"id": item_id, "source": source, "kind": "reddit_comment", "title": "",
             "body": text, "published_at": "2026-11-01T00:00:00+00:00",
             "collected_at": "2026-11-01T10:00:00+00:00"} for item_id, text in texts]


def test_classify_pending_stores_scores_mentions_and_new_names(fresh_db, trained, tmp_path):
    db_path = tmp_path / "fresh.db"
    install(trained, db_path)
    store.save_items(fresh_db, items(
        ("r:1", "After Archetyp was seized everyone moved to Zorblax market, it just launched."),
        ("r:2", "A vendor who sold on AlphaBay was sentenced to twelve years."),
        ("r:3", "The weather is lovely today.")))
    result = apply.classify_pending(fresh_db, db_path, threshold=0.5, now=NOW)
    assert result.items == 3 and not result.trained
    assert result.discovered == ["Zorblax"]
    rows = {r["item_id"]: r for r in fresh_db["classifications"].rows}
    assert set(rows) == {"r:1", "r:2", "r:3"}
    assert rows["r:1"]["flagged"] == 1 and rows["r:3"]["flagged"] == 0
    assert all(r["flagged"] == (r["score"] >= 0.5) for r in rows.values())
    assert {r["model_version"] for r in rows.values()} == {trained[0].version}
    assert rows["r:1"]["classified_at"] == "2026-11-02T12:00:00+00:00"
    assert store.get_meta(fresh_db, "model_version") == trained[0].version
    mentions = {(m["item_id"], m["market"], m["role"]) for m in fresh_db["mentions"].rows}
    assert mentions == {("r:1", "Archetyp Market", "predecessor"),
                        ("r:1", "Zorblax", "successor"), ("r:2", "AlphaBay", "mention")}
    zorblax = fresh_db["markets"].get("Zorblax")
    assert zorblax["origin"] == "discovered"
    assert zorblax["first_seen_at"] == "2026-11-01T10:00:00+00:00"  # the item's collection
    # Nothing is left to score; --all rescores and replaces the classifier's mentions, but
    # keeps the warning rows that the intelligence pass wrote.
    assert apply.classify_pending(fresh_db, db_path, threshold=0.5).items == 0
    store.add_mentions(fresh_db, [{"item_id": "r:1", "market": "Zorblax", "role": "warning",
                                   "surface": "Zorblax"}])
    fresh_db.execute("INSERT INTO mentions (item_id, market, role) VALUES ('r:2', 'Old', "
                     "'mention')")
    again = apply.classify_pending(fresh_db, db_path, threshold=0.9, rescore=True)
    assert again.items == 3
    after = {(m["item_id"], m["market"], m["role"]) for m in fresh_db["mentions"].rows}
    assert after == mentions | {("r:1", "Zorblax", "warning")}
    assert fresh_db["classifications"].count == 3


def test_stored_mentions_are_what_the_extractor_with_discovered_names_finds(fresh_db,
                                                                            trained):
    # classify_items takes each text's mentions from the model's own analysis unless the
    # database's discovered names could change them: the stored rows must not show it.
    classifier = trained[0]
    apply.ensure_gazetteer(fresh_db)
    store.save_classifications(fresh_db, [], [], [
        {"name": n, "predecessor": None, "first_seen_at": "2026-10-01T00:00:00+00:00"}
        for n in ("Zorblax", "Empire 2.0")])
    texts = [*POSITIVE, *NEGATIVE, "Everyone moved to Zorblax after Archetyp went down.",
             "Empire v2 is up, same admins.", "Zorblax vendors say the Empire is back.",
             "A new market called Quillon just launched — vendors are moving to Quillon."]
    store.save_items(fresh_db, items(*((f"t:{i}", t) for i, t in enumerate(texts))))
    extractor = apply.extractor_for(fresh_db)
    apply.classify_items(fresh_db, [f"t:{i}" for i in range(len(texts))], classifier,
                         threshold=0.5, now=NOW)
    stored = {(m["item_id"], m["market"], m["surface"], m["role"])
              for m in fresh_db["mentions"].rows}
    expected = {(f"t:{i}", m.name, m.surface, m.role)
                for i, t in enumerate(texts) for m in extractor.find(t)}
    assert stored == expected
    moved = texts.index("Everyone moved to Zorblax after Archetyp went down.")
    assert (f"t:{moved}", "Zorblax", "Zorblax", "successor") in stored
    scores, analyses = classifier.score_analysed(texts)
    np.testing.assert_allclose(scores, classifier.score(texts))
    assert [a.text for a in analyses] == texts


def test_the_collection_hook_classifies_new_items(trained, write_config):
    config = write_config()
    install(trained, config.db_path)
    db = store.open_db(config.db_path)

    class Source:
        name, kind, target, interval = "fake", "feed", "http://127.0.0.1/", 60.0

        def fetch(self, state, now):
            return Fetched(items=[dict(i, source="fake") for i in items(
                ("f:1", "Empire is gone, moving to Cryptonia now"),
                ("f:2", "Tor Browser 14 is out with a new circuit display"))])

    results = pipeline.collect(db, [Source()], now=NOW, on_new=make_hook(config))
    assert results[0].new == 2 and results[0].error is None
    scores = {r["item_id"]: r["flagged"] for r in db["classifications"].rows}
    assert scores == {"f:1": 1, "f:2": 0}
    assert store.get_meta(db, "model_version") == trained[0].version
    assert {m["market"] for m in db["mentions"].rows} >= {"Empire Market", "Cryptonia"}
    db.close()


# --- the command line ----------------------------------------------------------------------

@pytest.fixture
def cli_config(trained, write_config):
    config = write_config()
    install(trained, config.db_path)
    return str(config.path)


def test_cli_classify_texts_from_stdin_to_stdout(cli_config):
    lines = "\n".join(json.dumps({"id": f"t{i}", "text": t})
                      for i, t in enumerate(POSITIVE[:1] + NEGATIVE[:1]))
    result = CliRunner().invoke(cli, ["classify", "--config", cli_config, "--input", "-"],
                                input=lines + "\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["id"] for r in rows] == ["t0", "t1"]
    assert rows[0]["flagged"] is True and rows[1]["flagged"] is False
    assert {"name": "Archetyp Market", "role": "predecessor", "surface": "Archetyp",
            "known": True} in rows[0]["markets"]
    assert rows[1]["markets"] == [{"name": "AlphaBay", "role": "mention",
                                   "surface": "AlphaBay", "known": True}]


def test_cli_classify_file_to_file_and_bad_input(cli_config, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"text": NEGATIVE[1]}) + "\n\n")
    result = CliRunner().invoke(cli, ["classify", "--config", cli_config, "--input",
                                      str(source), "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text()) == {"id": 1, "score": pytest.approx(
        json.loads(target.read_text())["score"]), "flagged": False, "markets": []}
    source.write_text('{"text": "fine"}\n{not json}\n')
    result = CliRunner().invoke(cli, ["classify", "--config", cli_config, "--input",
                                      str(source), "--output", str(target)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {source}:2: not JSON")


def test_cli_classify_the_database(cli_config):
    db = store.open_db(Path(cli_config).parent / "monitor.db")
    store.save_items(db, items(("r:1", POSITIVE[0]), ("r:2", NEGATIVE[0])))
    db.close()
    result = CliRunner().invoke(cli, ["classify", "--config", cli_config])
    assert result.exit_code == 0, result.output
    assert "Classified 2 items" in result.output and "1 flagged" in result.output
    result = CliRunner().invoke(cli, ["classify", "--config", cli_config])
    assert "Classified 0 items" in result.output
    result = CliRunner().invoke(cli, ["classify", "--all", "--config", cli_config])
    assert "Classified 2 items" in result.output


def test_cli_eval_prints_both_columns(cli_config, tmp_path):
    data = tmp_path / "labeled.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": int(i < 3),
                                          "markets": ["Archetyp Market"] if i == 0 else []})
                              for i, t in enumerate(POSITIVE + NEGATIVE)))
    result = CliRunner().invoke(cli, ["eval", "--config", cli_config, "--data", str(data),
                                      "--errors"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "keyword rule" in out and "Confusion matrices" in out
    assert "Market-name recall on the positives: 1.000 (1 of 1" in out
    assert "F1               1.000" in out
    bad = tmp_path / "unlabeled.jsonl"
    bad.write_text(json.dumps({"text": "x"}) + "\n")
    result = CliRunner().invoke(cli, ["eval", "--config", cli_config, "--data", str(bad)])
    assert result.exit_code == 1
    assert result.output == f'Error: {bad}:1: "label" must be 0 or 1\n'
    bad.write_text("\n")
    result = CliRunner().invoke(cli, ["eval", "--config", cli_config, "--data", str(bad)])
    assert result.exit_code == 1 and "no labeled lines" in result.output


def test_cli_train_reports_the_set_and_cross_validation(cli_config):
    result = CliRunner().invoke(cli, ["train", "--config", cli_config, "--folds", "2"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "distinct word 3-grams" in out and "0 near-duplicate pairs" in out
    assert "Cross-validated (2 folds" in out and "F1 0." in out
    assert "Model " in out and "trained on" in out
