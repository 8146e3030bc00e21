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
from sklearn.preprocessing import normalize

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
    words: list[str]  # the lower-cased words the cue scan saw (Extractor.adds_nothing)


def masked_text(analysis: Analysis) -> str:
    """The TF-IDF vectorizers' preprocessor (a module-level function, so models pickle)."""
    return analysis.masked.lower()


_TERM = re.compile(r"[^\W\d_]+|\d+|\?")


class TermVectorizer(TfidfVectorizer):
    """TF-IDF over `terms`. Once fitted, transform counts the known terms itself: the word,
    pair and prefix ids of a whole batch come from one dictionary lookup per word (run by
    `map`) and numpy arrays (_TermLookups), and scipy counts them, where scikit-learn would
    build every pair string and step through each term in Python. The weighting that
    follows is scikit-learn's, step for step, so the matrix is the same."""

    def __init__(self, *, min_df: int = 2, sublinear_tf: bool = True) -> None:
        super().__init__(analyzer=terms, min_df=min_df, sublinear_tf=sublinear_tf)

    def fit(self, raw_documents: object, y: object = None) -> TermVectorizer:
        self.fit_transform(raw_documents)
        return self

    def fit_transform(self, raw_documents: object, y: object = None) -> object:
        self.__dict__.pop("vocabulary_", None)  # a refit starts from all terms
        self.__dict__.pop("_lookups", None)
        return super().fit_transform(raw_documents, y)

    def build_analyzer(self) -> object:
        vocabulary = getattr(self, "vocabulary_", None)
        if vocabulary is None:
            return terms
        return functools.partial(known_terms, vocabulary)

    def transform(self, raw_documents: list[Analysis]) -> sparse.csr_matrix:
        vocabulary = getattr(self, "vocabulary_", None)
        if vocabulary is None:
            return super().transform(raw_documents)  # (raises: not fitted)
        lookups = self._term_lookups(vocabulary)
        # The whole batch at once: every text's words in one list, each text followed by ""
        # (in no term, so no pair spans two texts); one dictionary lookup per word, and the
        # rest in numpy.
        tokens: list[str] = []
        sizes: list[int] = []
        for analysis in raw_documents:
            words = term_words(analysis)
            tokens += words
            tokens.append("")
            sizes.append(len(words) + 1)
        rows = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        ids, id_rows = lookups.terms(tokens, rows)
        # coo -> csr sums the repeated (row, term) entries and sorts each row's terms.
        matrix = sparse.coo_matrix((np.ones(len(ids), dtype=np.float64), (id_rows, ids)),
                                   shape=(len(sizes), len(vocabulary))).tocsr()
        matrix.sort_indices()
        # As TfidfTransformer.transform does it, in the same order of operations.
        if self.sublinear_tf:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        if self.use_idf:
            matrix.data *= self.idf_[matrix.indices]
        return normalize(matrix, norm=self.norm, copy=False) if self.norm else matrix

    def _term_lookups(self, vocabulary: dict[str, int]) -> _TermLookups:
        """Built once per fitted vocabulary (not saved with the model)."""
        cached = self.__dict__.get("_lookups")
        if cached is not None and cached[0] is vocabulary:
            return cached[1]
        lookups = _TermLookups(vocabulary)
        self._lookups = (vocabulary, lookups)
        return lookups

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_lookups", None)
        return state


_SIX = 6  # words longer than this have a prefix term


class _TermLookups:
    """A fitted vocabulary as arrays: each word that is a term or part of a pair term has a
    code; by code, its word term and its prefix term; a pair by the two codes, in a sorted
    array. A text's terms then take one dictionary lookup per word (and one more for an
    unknown long word's prefix) instead of three."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        pairs = [(t.split(" "), i) for t, i in vocabulary.items() if " " in t]
        self.prefixes = {t[1:]: i for t, i in vocabulary.items() if t.startswith("~")}
        known = list(dict.fromkeys(itertools.chain(
            (t for t in vocabulary if " " not in t and not t.startswith("~")),
            (w for words, _ in pairs for w in words))))
        self.codes = {w: k for k, w in enumerate(known)}
        # (index -1, an unknown word: no term)
        self.word_ids = np.array([*(vocabulary.get(w, -1) for w in known), -1], dtype=np.int64)
        self.prefix_ids = np.array(
            [*(self.prefixes.get(w[:5], -1) if len(w) > _SIX else -1 for w in known), -1],
            dtype=np.int64)
        self.size = len(known)
        keys = np.array([self.codes[a] * self.size + self.codes[b] for (a, b), _ in pairs],
                        dtype=np.int64)
        order = np.argsort(keys)
        self.pair_keys = keys[order]
        self.pair_ids = np.array([i for _, i in pairs], dtype=np.int64)[order]

    def terms(self, tokens: list[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The term id of every word, pair and prefix term in `tokens`, and its row."""
        codes = np.fromiter(map(self.codes.get, tokens, _MISSING), dtype=np.int64,
                            count=len(tokens))
        words = self.word_ids[codes]
        prefixes = self.prefix_ids[codes]
        unknown = np.flatnonzero(codes < 0)
        if len(unknown):
            prefixes[unknown] = [self.prefixes.get(w[:5], -1) if len(w) > _SIX else -1
                                 for w in map(tokens.__getitem__, unknown.tolist())]
        first, second = codes[:-1], codes[1:]
        keys = first * self.size + second
        at = np.minimum(np.searchsorted(self.pair_keys, keys), max(len(self.pair_keys) - 1, 0))
        found = (first >= 0) & (second >= 0)
        if len(self.pair_keys):
            found &= self.pair_keys[at] == keys
        else:
            found[:] = False
        pairs = self.pair_ids[at[found]] if len(self.pair_keys) else np.zeros(0, np.int64)
        ids = np.concatenate([words, pairs, prefixes])
        id_rows = np.concatenate([rows, rows[:-1][found], rows])
        known = ids >= 0
        return ids[known], id_rows[known]


_MISSING = itertools.repeat(-1)  # the default of each lookup (map(d.get, keys, _MISSING))


def known_terms(vocabulary: dict[str, int], analysis: Analysis) -> list[str]:
    return list(filter(vocabulary.__contains__, terms(analysis)))


def terms(analysis: Analysis) -> list[str]:
    """The word vectorizer's analyzer: words, word pairs, and the first five letters of longer
    words ("migrat", "relaun"), which catch inflections and typos at a fraction of the cost
    of character n-grams."""
    words = term_words(analysis)
    out = list(words)
    out.extend(map(" ".join, itertools.pairwise(words)))  # no Python step per pair
    out.extend(["~" + w[:5] for w in words if len(w) > 6])
    return out


def term_words(analysis: Analysis) -> list[str]:
    """The words of the masked text, lower-cased: runs of letters, runs of digits, and
    question marks. Usually these are the cue scan's words, which need no second pass over
    the text: when no name was masked (the mask writes "mkt"), there is no "?" and no word
    mixes letters and digits (checked for ASCII words; others are tokenised again)."""
    words, masked = analysis.words, analysis.masked
    if "mkt" in masked or "?" in masked:
        return _TERM.findall(masked.lower())
    joined = " ".join(words)
    if not joined.isascii():
        return _TERM.findall(masked.lower())
    # ASCII words are lower-case letters and digits: one mixes them where a letter touches a
    # digit. Checked on the words as bytes, each letter made "a" and each digit "0".
    kinds = joined.encode("ascii").translate(_LETTER_OR_DIGIT)
    if b"a0" in kinds or b"0a" in kinds:
        return _TERM.findall(masked.lower())
    return words


_LETTER_OR_DIGIT = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz0123456789", b"a" * 26 + b"0" * 10)


def cue_vector(analysed: Analysed, gazetteer: Gazetteer) -> np.ndarray:
    """The cue features of one analysed text. Cue words inside market names do not count,
    and the relations to names are read from the masked text."""
    return _scaled(np.array([cue_values(analysed, gazetteer)], dtype=np.float64))[0]


def _scaled(values: np.ndarray) -> np.ndarray:
    """Rows of cue_values as features: min(n, cap) / cap for the counted ones (the others
    pass unchanged), all at once."""
    np.minimum(values, _CAPS, out=values)
    values /= _DIVISORS
    return values


def cue_values(analysed: Analysed, gazetteer: Gazetteer) -> list:
    """The raw cue features of one analysed text (counts not yet capped), in FEATURES'
    order."""
    scan, spans, mentions = analysed.scan, analysed.spans, analysed.mentions

    totals = scan.counts(spans)

    def n(category: int) -> int:
        return totals[category]

    relaunch, replacement, migration = n(cues.RELAUNCH), n(cues.REPLACEMENT), n(cues.MIGRATION)
    question = 1 if scan.question else 0
    takedown, exit_, outage = n(cues.TAKEDOWN), n(cues.EXIT), n(cues.OUTAGE)
    darknet = 1 if n(cues.DARKNET) or scan.has(cues.DARKNET) else 0
    low = analysed.masked_lower
    if low is None:
        low = analysed.masked.lower()
    if "mkt" in low:
        to_market, from_market, on_market_now, fate, market_list, arrives = cues.relations(low)
        versioned = low.count("mkt ver")
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
    return [
        relaunch, replacement, migration, question, n(cues.WARNING), takedown, exit_, outage,
        n(cues.NEGATED), n(cues.ARCHIVE), n(cues.STATS) + scan.percent, n(cues.OTHER_SENSE),
        darknet, len(names), "successor" in roles, "predecessor" in roles, new_name,
        successor_entry, succession and context,
        succession and bool(names), succession and not context,
        (takedown > 0) and not succession, (exit_ + outage > 0) and not succession,
        bool(names) and not succession, math.log1p(words) / 6,
        "successor" in roles and "predecessor" in roles, question and context,
        to_market, from_market, on_market_now, fate,
        market_list, versioned, bool(fate) and not succession and not to_market,
        bool(fate) and bool(to_market or from_market), arrives,
    ]


# The cap of each feature in FEATURES' order (a count of n is min(n, cap) / cap, so
# 1.0 from the cap on); inf: not a count.
_CAPS = np.array([3, 3, 3, np.inf, 3, 3, 3, 3, 1, 2, 3, 3, np.inf, 4, *[np.inf] * 13,
                  2, 2, np.inf, 2, np.inf, 2, np.inf, np.inf, 1], dtype=np.float64)
_DIVISORS = np.where(np.isinf(_CAPS), 1.0, _CAPS)


class Analyzer(BaseEstimator, TransformerMixin):
    """Texts -> Analysis objects (the extractor is rebuilt from the gazetteer on load)."""

    def fit(self, texts: list[str], y: object = None) -> Analyzer:
        return self

    def transform(self, texts: list[str]) -> list[Analysis]:
        extractor = default_extractor()
        gazetteer = extractor.gazetteer
        out = []
        values = []
        for text in texts:
            analysed = extractor.analyse(text or "")
            values.append(cue_values(analysed, gazetteer))
            out.append(Analysis(text or "", analysed.masked, analysed.mentions, None,
                                analysed.scan.words))
        # The cue vectors of the batch scaled at once; each text's is a row of the matrix.
        if out:
            # (fromiter: np.array would first inspect every value to choose a type)
            matrix = np.fromiter(itertools.chain.from_iterable(values), dtype=np.float64,
                                 count=len(values) * len(FEATURES)).reshape(len(values), -1)
            for analysis, row in zip(out, _scaled(matrix), strict=True):
                analysis.cues = row
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
