"""Measuring the classifier: precision, recall, F1 and the confusion matrix, beside a plain
keyword rule (a market name plus a relaunch word), and how many of the labeled market names
the extractor finds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import dataset
from .markets import Extractor, Gazetteer, default_extractor, joined_key, load_gazetteer
from .model import Classifier

# The baseline's relaunch words: what someone would type into a search box.
_RELAUNCH_WORDS = re.compile(
    r"\b(?:back|relaunch\w*|re-launch\w*|return\w*|new|successor\w*|replac\w*|reloaded|reborn"
    r"|moving|moved|migrat\w*|alternatives?|clones?|copycats?|reopen\w*|next)\b|\b\d\.0\b")


@dataclass
class Metrics:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def metrics(truth: Sequence[int] | np.ndarray, predicted: Sequence[bool] | np.ndarray
            ) -> Metrics:
    t = np.asarray(truth).astype(bool)
    p = np.asarray(predicted).astype(bool)
    return Metrics(tp=int((t & p).sum()), fp=int((~t & p).sum()), fn=int((t & ~p).sum()),
                   tn=int((~t & ~p).sum()))


@functools.lru_cache(maxsize=2)
def _surface_pattern(gazetteer: Gazetteer) -> re.Pattern[str]:
    surfaces = {s.lower() for m in gazetteer.markets for s in (m.name, *m.aliases)
                if len(s) >= 3}
    alternation = "|".join(re.escape(s) for s in sorted(surfaces, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)")


def names_any_market(text: str, gazetteer: Gazetteer | None = None) -> bool:
    """Whether any market name or alias occurs in the text, in any sense or case."""
    return bool(_surface_pattern(gazetteer or load_gazetteer()).search(text.lower()))


def keyword_rule(texts: Sequence[str], gazetteer: Gazetteer | None = None) -> np.ndarray:
    """The baseline: flag a text that names any gazetteer market (case-insensitive, no context
    rules) and contains a relaunch word."""
    pattern = _surface_pattern(gazetteer or load_gazetteer())
    return np.array([bool(pattern.search(t.lower()) and _RELAUNCH_WORDS.search(t.lower()))
                     for t in texts])


def canonical(name: str, gazetteer: Gazetteer) -> str:
    """A labeled market name as the gazetteer spells it ("BMR" -> "Black Market Reloaded")."""
    return gazetteer.resolve(name) or name


def market_recall(examples: Sequence[dataset.Example], extractor: Extractor | None = None
                  ) -> tuple[int, int, list[tuple[int, str]]]:
    """(found, labeled, missed) over the labeled markets of the given examples."""
    extractor = extractor or default_extractor()
    gazetteer = extractor.gazetteer
    found = total = 0
    missed = []
    for i, example in enumerate(examples):
        got = {joined_key(n) for n in extractor.names(example.text)}
        for name in dict.fromkeys(canonical(n, gazetteer) for n in example.markets):
            total += 1
            if joined_key(name) in got:
                found += 1
            else:
                missed.append((i, name))
    return found, total, missed


@dataclass
class Report:
    examples: int
    threshold: float
    model: Metrics
    baseline: Metrics
    markets_found: int
    markets_total: int
    scores: np.ndarray
    errors: list[tuple[dataset.Example, float]] = field(default_factory=list)
    missed_markets: list[tuple[int, str]] = field(default_factory=list)

    @property
    def market_recall(self) -> float:
        return self.markets_found / self.markets_total if self.markets_total else 0.0


def evaluate(classifier: Classifier, examples: Sequence[dataset.Example],
             threshold: float = 0.5) -> Report:
    labeled = [e for e in examples if e.label in (0, 1)]
    if not labeled:
        raise ValueError("no labeled examples to evaluate on")
    truth = np.array([e.label for e in labeled])
    texts = [e.text for e in labeled]
    scores = classifier.score(texts)
    flagged = scores >= threshold
    positives = [e for e in labeled if e.label == 1]
    found, total, missed = market_recall(positives)
    errors = [(e, float(s)) for e, s, f in zip(labeled, scores, flagged, strict=True)
              if bool(f) != bool(e.label)]
    return Report(len(labeled), threshold, metrics(truth, flagged),
                  metrics(truth, keyword_rule(texts)), found, total, scores, errors,
                  missed)


# --- text for the terminal ---------------------------------------------------------------

def render(report: Report, *, errors: bool = False, width: int = 100) -> str:
    """The eval report: model and keyword rule side by side, confusion matrices, market
    recall, and (optionally) the misclassified texts."""
    from ..tables import render_table

    m, b = report.model, report.baseline
    lines = [f"{report.examples} labeled texts, {m.tp + m.fn} positive; threshold "
             f"{report.threshold:g}", ""]
    rows = [["precision", f"{m.precision:.3f}", f"{b.precision:.3f}"],
            ["recall", f"{m.recall:.3f}", f"{b.recall:.3f}"],
            ["F1", f"{m.f1:.3f}", f"{b.f1:.3f}"],
            ["true positives", m.tp, b.tp], ["false positives", m.fp, b.fp],
            ["false negatives", m.fn, b.fn], ["true negatives", m.tn, b.tn]]
    lines.append(render_table(["", "model", "keyword rule"], rows))
    lines += ["", "Confusion matrices (rows: labeled, columns: predicted):",
              render_table(["", "model: no", "model: yes", "keyword: no", "keyword: yes"],
                           [["labeled no", m.tn, m.fp, b.tn, b.fp],
                            ["labeled yes", m.fn, m.tp, b.fn, b.tp]]),
              "", f"F1 gain over the keyword rule: {m.f1 - b.f1:+.3f}",
              f"Market-name recall on the positives: {report.market_recall:.3f} "
              f"({report.markets_found} of {report.markets_total} labeled names found)"]
    if errors:
        lines += ["", "Misclassified (label, score, text):"]
        for example, score in sorted(report.errors, key=lambda pair: pair[1]):
            text = " ".join(example.text.split())
            cut = text if len(text) <= width else text[: width - 1] + "…"
            lines.append(f"  {example.label} {score:.2f} {cut}")
    return "\n".join(lines)
