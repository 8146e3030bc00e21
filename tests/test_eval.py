"""The classifier on real text it never saw: ../shared/eval/dev.jsonl (100 excerpts labeled by
the guide). The model must reach F1 0.85, beat the keyword rule by 0.15, and find 80% of the
market names labeled on the positives."""

from __future__ import annotations

import pytest

from monitor.classify import dataset, evaluate, model

from .conftest import shared_path


@pytest.fixture(scope="module")
def report() -> evaluate.Report:
    dev = dataset.read_jsonl(shared_path("eval", "dev.jsonl"))
    classifier = model.train(dataset.training_set())
    return evaluate.evaluate(classifier, dev, threshold=0.5)


def test_f1_on_the_dev_set(report):
    assert report.examples == 100
    assert report.model.f1 >= 0.85, evaluate.render(report, errors=True)


def test_gain_over_the_keyword_rule(report):
    assert report.model.f1 - report.baseline.f1 >= 0.15, evaluate.render(report)


def test_market_name_recall_on_the_positives(report):
    assert report.markets_total > 0
    assert report.market_recall >= 0.80, report.missed_markets
