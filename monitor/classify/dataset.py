"""Labeled examples: the project's own (data/training/*.jsonl) plus analysts' labels from the
database, and the checks that keep the set honest (variety, near-duplicates, overlap with the
evaluation texts).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from sqlite_utils import Database

from .. import store
from ..errors import MonitorError
from ..resources import data_dir

_WORD = re.compile(r"[^\W_]+")


def text_rows(lines: Iterable[str], name: str) -> Iterator[tuple[int, str, dict]]:
    """(line number, "file:line", row) for each non-blank JSON Lines row with a "text"."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MonitorError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise MonitorError(f"{where}: each line needs a \"text\" string")
        yield number, where, row


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    markets: tuple[str, ...] = ()
    kind: str = ""
    source: str = ""  # "file.jsonl:line" or "label:<item id>"
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def training_dir() -> Path:
    return data_dir() / "training"


def read_jsonl(path: Path, *, require_label: bool = True) -> list[Example]:
    """Read one JSON Lines file of {"text", "label", "markets", "kind"} (label optional when
    `require_label` is false); errors name the file and line."""
    examples = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MonitorError(f"{path}: not UTF-8 text") from None
    for number, where, row in text_rows(lines, str(path)):
        label = row.get("label")
        if require_label and label not in (0, 1, True, False):
            raise MonitorError(f"{where}: \"label\" must be 0 or 1")
        markets = row.get("markets") or []
        if not isinstance(markets, list) or not all(isinstance(m, str) for m in markets):
            raise MonitorError(f"{where}: \"markets\" must be a list of names")
        examples.append(Example(row["text"], int(label) if label is not None else -1,
                                tuple(markets), str(row.get("kind") or ""),
                                f"{path.name}:{number}",
                                {k: v for k, v in row.items()
                                 if k not in ("text", "label", "markets", "kind")}))
    return examples


def project_examples(directory: Path | None = None) -> list[Example]:
    directory = directory or training_dir()
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise MonitorError(f"{directory}: no training data (*.jsonl) found")
    return [e for path in files for e in read_jsonl(path)]


def analyst_examples(db: Database) -> list[Example]:
    """Items an analyst labeled, as examples: title and body, the analyst's label."""
    return [Example(_item_text(row), int(row["label"]), (), row["kind"] or "",
                    f"label:{row['item_id']}")
            for row in store.labeled_items(db) if _item_text(row)]


def _item_text(row: dict) -> str:
    title = (row.get("title") or "").strip()
    body = (row.get("body") or "").strip()
    return f"{title}\n{body}".strip() if body and body != title else title or body


def item_text(row: dict) -> str:
    """The text the classifier reads for a stored item: title and body."""
    return _item_text(row)


def training_set(db: Database | None = None, directory: Path | None = None) -> list[Example]:
    """The project's examples plus analysts' labels; where both hold the same text, the
    analyst's label wins."""
    merged: dict[str, Example] = {}
    for example in project_examples(directory):
        merged.setdefault(_norm(example.text), example)
    if db is not None:
        for example in analyst_examples(db):
            merged[_norm(example.text)] = example
    return list(merged.values())


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def digest(examples: Iterable[Example]) -> str:
    """A hash of the texts and labels, in a stable order (part of the model version)."""
    h = hashlib.sha256()
    for text, label in sorted((e.text, e.label) for e in examples):
        h.update(json.dumps([text, label], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


# --- variety and leakage -------------------------------------------------------------------

def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def distinct_ngrams(texts: Iterable[str], n: int = 3) -> int:
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        seen |= ngrams(words(text), n)
    return len(seen)


def near_duplicates(texts: Sequence[str], threshold: float = 0.5, n: int = 3,
                    mask: object = None) -> list[tuple[int, int, float]]:
    """Pairs of texts whose word n-gram sets overlap by Jaccard >= threshold.

    `mask` (a callable text -> text) can first replace market names with a placeholder, so
    two texts that differ only in the market they name count as near-duplicates.
    """
    shingles = []
    for text in texts:
        if callable(mask):
            text = mask(text)
        shingles.append(ngrams(words(text), n) or {tuple(words(text))})
    postings: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, grams in enumerate(shingles):
        for gram in grams:
            postings[gram].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for ids in postings.values():
        if len(ids) > 200:  # a phrase in hundreds of texts says nothing about any pair
            continue
        for a, b in combinations(ids, 2):
            shared[(a, b)] += 1
    pairs = []
    for (a, b), common in shared.items():
        union = len(shingles[a]) + len(shingles[b]) - common
        score = common / union if union else 0.0
        if score >= threshold:
            pairs.append((a, b, round(score, 3)))
    return sorted(pairs)


def shared_runs(texts: Sequence[str], others: Sequence[str], n: int = 8
                ) -> list[tuple[int, int, str]]:
    """(i, j, run) for every text i that shares a run of n or more words with others[j]."""
    index: dict[tuple[str, ...], int] = {}
    for j, other in enumerate(others):
        for gram in ngrams(words(other), n):
            index.setdefault(gram, j)
    found = []
    for i, text in enumerate(texts):
        for gram in ngrams(words(text), n):
            if gram in index:
                found.append((i, index[gram], " ".join(gram)))
                break
    return found


@dataclass
class SetReport:
    examples: int
    positives: int
    negatives: int
    by_kind: dict[str, int]
    hard_negatives: int
    distinct_trigrams: int
    near_duplicate_pairs: list[tuple[int, int, float]]


def describe(examples: Sequence[Example], mask: object = None) -> SetReport:
    """Counts, variety (distinct word 3-grams) and near-duplicate pairs of a training set.

    Near-duplicates are pairs whose word 3-grams overlap by Jaccard 0.5 or more once market
    names are masked (so two texts that differ only in the market they name count).
    A hard negative is a label-0 example that a keyword search would pick up: it contains a
    market name or alias in any sense ("the Roman Empire", "Hansa Pilsner"), succession words
    ("relaunch", "moving to") or darknet vocabulary (takedowns, arrests, Tor, crypto).
    """
    from . import cues
    from .evaluate import names_any_market
    from .markets import default_extractor

    extractor = default_extractor()
    by_kind: dict[str, int] = defaultdict(int)
    hard = 0
    for e in examples:
        by_kind[e.kind or "?"] += 1
        if e.label == 0:
            scan = cues.scan(e.text.lower())
            if e.markets or names_any_market(e.text) or scan.succession() or \
                    scan.has(cues.DARKNET):
                hard += 1
    texts = [e.text for e in examples]
    if mask is None:
        def mask(text: str) -> str:
            return extractor.analyse(text).masked
    return SetReport(
        examples=len(examples), positives=sum(e.label == 1 for e in examples),
        negatives=sum(e.label == 0 for e in examples), by_kind=dict(sorted(by_kind.items())),
        hard_negatives=hard, distinct_trigrams=distinct_ngrams(texts),
        near_duplicate_pairs=near_duplicates(texts, mask=mask))
