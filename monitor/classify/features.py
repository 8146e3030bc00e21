"""Turn texts into what the model reads: each text once through the market extractor (for the
masked text and the market roles), then a small vector of cue features.

The cue features carry what a bag of n-grams cannot: whether the succession words and the
darknet context occur *together* ("fill the gap" about a market, not about a retail chain),
and what the extractor found (a successor, a predecessor, a version suffix).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

from . import cues
from .markets import Analysed, Gazetteer, Mention, default_extractor

FEATURES = (
    "relaunch", "replacement", "migration", "question", "warning", "takedown", "exit",
    "outage", "negated", "archive", "stats", "other_sense", "darknet", "markets",
    "role_successor", "role_predecessor", "new_name", "successor_entry",
    "succession_in_context", "succession_with_market", "succession_out_of_context",
    "takedown_only", "exit_or_outage_only", "market_without_succession", "length",
    "successor_and_predecessor", "question_in_context", "to_market", "from_market",
    "on_market_now", "market_fate", "market_list", "versioned", "fate_without_succession",
    "fate_and_move", "market_arrives",
)


@dataclass
class Analysis:
    """One text as the model sees it."""

    text: str
    masked: str
    mentions: list[Mention]
    cues: np.ndarray


def masked_text(analysis: Analysis) -> str:
    """The TF-IDF vectorizers' preprocessor (a module-level function, so models pickle)."""
    return analysis.masked.lower()


_TERM = re.compile(r"[^\W\d_]+|\d+|\?")


class TermVectorizer(TfidfVectorizer):
    """TF-IDF over `terms`. Once fitted, the analyzer drops terms outside the vocabulary
    before counting: scikit-learn would look each one up and catch a KeyError, which for
    the many unseen word pairs costs more than the rest of the transform."""

    def __init__(self, *, min_df: int = 2, sublinear_tf: bool = True) -> None:
        super().__init__(analyzer=terms, min_df=min_df, sublinear_tf=sublinear_tf)

    def fit(self, raw_documents: object, y: object = None) -> TermVectorizer:
        self.fit_transform(raw_documents)
        return self

    def fit_transform(self, raw_documents: object, y: object = None) -> object:
        self.__dict__.pop("vocabulary_", None)  # a refit starts from all terms
        return super().fit_transform(raw_documents, y)

    def build_analyzer(self) -> object:
        vocabulary = getattr(self, "vocabulary_", None)
        if vocabulary is None:
            return terms
        return functools.partial(known_terms, vocabulary)


def known_terms(vocabulary: dict[str, int], analysis: Analysis) -> list[str]:
    return [t for t in terms(analysis) if t in vocabulary]


def terms(analysis: Analysis) -> list[str]:
    """The word vectorizer's analyzer: words, word pairs, and the first five letters of longer
    words ("migrat", "relaun"), which catch inflections and typos at a fraction of the cost
    of character n-grams."""
    words = _TERM.findall(analysis.masked.lower())
    out = list(words)
    out.extend(f"{a} {b}" for a, b in itertools.pairwise(words))
    out.extend("~" + w[:5] for w in words if len(w) > 6)
    return out


def _capped(n: int, cap: int = 3) -> float:
    return min(n, cap) / cap


def cue_vector(analysed: Analysed, gazetteer: Gazetteer) -> np.ndarray:
    """The cue features of one analysed text. Cue words inside market names do not count,
    and the relations to names are read from the masked text."""
    scan, spans, mentions = analysed.scan, analysed.spans, analysed.mentions

    totals = scan.counts(spans)

    def n(category: int) -> int:
        return totals[category]

    relaunch, replacement, migration = n(cues.RELAUNCH), n(cues.REPLACEMENT), n(cues.MIGRATION)
    question = 1 if scan.question else 0
    takedown, exit_, outage = n(cues.TAKEDOWN), n(cues.EXIT), n(cues.OUTAGE)
    darknet = 1 if n(cues.DARKNET) or scan.has(cues.DARKNET) else 0
    low = analysed.masked.lower()
    if "mkt" in low:
        to_market = cues.count(cues.TO_MARKET, low)
        from_market = cues.count(cues.FROM_MARKET, low)
        on_market_now = 1 if cues.ON_MARKET_NOW.search(low) else 0
        fate = cues.count(cues.MARKET_FATE, low)
        market_list = 1 if cues.MARKET_LIST.search(low) else 0
        versioned = low.count("mkt ver")
        arrives = cues.count(cues.MARKET_ARRIVES, low)
    else:
        to_market = from_market = on_market_now = fate = market_list = versioned = arrives = 0
    names = {m.name for m in mentions}
    roles = {m.role for m in mentions}
    by_name = gazetteer.by_name
    new_name = any(not m.known for m in mentions)
    successor_entry = any(by_name[m.name].predecessor for m in mentions
                          if m.known and m.name in by_name)
    succession = relaunch + replacement + migration + question > 0
    context = darknet or bool(names)
    words = low.count(" ") + 1
    return np.array([
        _capped(relaunch), _capped(replacement), _capped(migration), question,
        _capped(n(cues.WARNING)), _capped(takedown), _capped(exit_), _capped(outage),
        _capped(n(cues.NEGATED), 1), _capped(n(cues.ARCHIVE), 2),
        _capped(n(cues.STATS) + scan.percent), _capped(n(cues.OTHER_SENSE)), darknet,
        _capped(len(names), 4), "successor" in roles, "predecessor" in roles, new_name,
        successor_entry, succession and context,
        succession and bool(names), succession and not context,
        (takedown > 0) and not succession, (exit_ + outage > 0) and not succession,
        bool(names) and not succession, math.log1p(words) / 6,
        "successor" in roles and "predecessor" in roles, question and context,
        _capped(to_market, 2), _capped(from_market, 2), on_market_now, _capped(fate, 2),
        market_list, _capped(versioned, 2), bool(fate) and not succession and not to_market,
        bool(fate) and bool(to_market or from_market), _capped(arrives, 1),
    ], dtype=np.float64)


class Analyzer(BaseEstimator, TransformerMixin):
    """Texts -> Analysis objects (the extractor is rebuilt from the gazetteer on load)."""

    def fit(self, texts: list[str], y: object = None) -> Analyzer:
        return self

    def transform(self, texts: list[str]) -> list[Analysis]:
        extractor = default_extractor()
        gazetteer = extractor.gazetteer
        out = []
        for text in texts:
            analysed = extractor.analyse(text or "")
            out.append(Analysis(text or "", analysed.masked, analysed.mentions,
                                cue_vector(analysed, gazetteer)))
        return out


class CueVectorizer(BaseEstimator, TransformerMixin):
    """Analysis objects -> the cue features as a sparse block, scaled by `weight`."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def fit(self, analyses: list[Analysis], y: object = None) -> CueVectorizer:
        return self

    def transform(self, analyses: list[Analysis]) -> sparse.csr_matrix:
        matrix = np.vstack([a.cues for a in analyses]) if analyses else np.zeros(
            (0, len(FEATURES)))
        return sparse.csr_matrix(matrix * self.weight)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.array([f"cue_{name}" for name in FEATURES], dtype=object)
