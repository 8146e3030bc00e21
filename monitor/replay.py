"""Backtests: ingest timestamped items in time order, as if they were being collected live.

Input is JSON Lines, one item a line:
    {"id", "source", "kind", "title", "body", "url", "published_at"}
(`author` and `parent_id` are kept when present). Items are stored in order of
`published_at`, one batch per distinct time, and every batch goes through the same hook as a
live collection (classify, then successor intelligence) with `now` = that time, so every time
recorded on the way (collected, classified, first seen, raised) is the replayed item's time.
Items already in the database are skipped; unknown sources are registered with kind `replay`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from . import store
from .collect.feeds import content_hash
from .config import Config
from .errors import MonitorError
from .text import html_to_text, safe_url
from .timeutil import iso, parse_iso

log = logging.getLogger(__name__)

REQUIRED = ("id", "source", "kind", "published_at")
OPTIONAL_TEXT = ("title", "body", "url", "author", "parent_id")
MAX_TEXT = 20_000

Hook = Callable[[Database, list[str], datetime], None]


class ReplayError(MonitorError):
    """The input cannot be replayed (unreadable file, bad line)."""


@dataclass
class ReplayResult:
    read: int = 0
    new: int = 0
    skipped: int = 0
    batches: int = 0
    first_at: str | None = None
    last_at: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)


def read_items(path: Path | str) -> list[dict[str, Any]]:
    """Every item of a JSON Lines file, validated and normalised, in time order.

    Raises ReplayError naming the file and line for the first bad line.
    """
    path = Path(path)
    items = []
    for number, line in _lines(path):
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise ReplayError(f"{where}: not JSON: {exc}") from None
        items.append(to_item(raw, where))
    # Stable: items with the same time keep the order of the file.
    items.sort(key=lambda item: parse_iso(item["published_at"]))
    return items


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
    except FileNotFoundError:
        raise ReplayError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ReplayError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from None


def to_item(raw: Any, where: str = "item") -> dict[str, Any]:
    """One input object -> one item row (pure)."""
    if not isinstance(raw, dict):
        raise ReplayError(f"{where}: each line must be a JSON object")
    for key in REQUIRED:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ReplayError(f"{where}: {key!r} is missing or not a non-empty string")
    for key in OPTIONAL_TEXT:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ReplayError(f"{where}: {key!r} must be a string")
    try:
        published = iso(parse_iso(raw["published_at"].strip()))
    except ValueError:
        raise ReplayError(f"{where}: published_at {raw['published_at']!r} is not an ISO 8601 "
                          "time (e.g. 2025-06-16T09:30:00+00:00)") from None
    title = html_to_text(raw.get("title") or "")[:MAX_TEXT]
    body = html_to_text(raw.get("body") or "")[:MAX_TEXT]
    if not title and not body:
        raise ReplayError(f"{where}: the item has neither a title nor a body")
    return {
        "id": raw["id"].strip(), "source": raw["source"].strip(), "kind": raw["kind"].strip(),
        "url": safe_url(raw.get("url") or ""), "title": title, "body": body,
        "author": raw.get("author"), "published_at": published, "collected_at": published,
        "content_hash": content_hash(title, body), "parent_id": raw.get("parent_id"),
    }


def make_hook(config: Config, db: Database, items: Sequence[dict[str, Any]] = ()) -> Hook:
    """The live hook (classify, then successor intelligence) for a replay of `items`.

    The model is loaded (or trained) once up front, since nothing in a replay can make it
    stale, and scores every replayed text in one call (one call into scikit-learn per item
    costs far more than the scoring). No alert is mailed.
    """
    from . import intel
    from .classify.apply import classify_items, current_classifier
    from .classify.dataset import item_text

    classifier, _trained = current_classifier(db, config.db_path)
    scorer = _Prescored(classifier, [item_text(item) for item in items])
    quiet = dataclasses.replace(config, alerts=dataclasses.replace(config.alerts, email=False))
    after = intel.make_hook(quiet, mail=False)

    def hook(db: Database, item_ids: list[str], now: datetime) -> None:
        classify_items(db, item_ids, scorer, threshold=config.classifier.threshold, now=now)
        after(db, item_ids, now)

    return hook


class _Prescored:
    """A classifier whose scores and gazetteer mentions for known texts were computed in
    advance, in one pass of the model per thousand texts: classify_items takes both from
    score_analysed, so a replayed item's text goes through the market extractor once, as in
    live collection (a second time only when the names discovered so far could change it)."""

    CHUNK = 1000

    def __init__(self, classifier: Any, texts: Sequence[str]) -> None:
        self.classifier = classifier
        self.version = classifier.version
        self.known: dict[str, tuple[float, _Found]] = {}
        self._add(list(dict.fromkeys(texts)))

    def _add(self, texts: list[str]) -> None:
        for start in range(0, len(texts), self.CHUNK):
            chunk = texts[start:start + self.CHUNK]
            scores, analyses = self.classifier.score_analysed(chunk)
            for text, score, analysis in zip(chunk, scores, analyses, strict=True):
                # Only what classify_items reads: every analysis whole (its words, its cue
                # vector) would hold a long replay's texts in memory several times over.
                self.known[text] = (float(score), _Found(analysis.mentions))

    def score_analysed(self, texts: Sequence[str]) -> tuple[list[float], list[_Found]]:
        self._add([t for t in dict.fromkeys(texts) if t not in self.known])
        found = [self.known[t] for t in texts]
        return [score for score, _ in found], [analysis for _, analysis in found]

    def score(self, texts: Sequence[str]) -> list[float]:
        return self.score_analysed(texts)[0]


@dataclass(frozen=True)
class _Found:
    """The part of a text's analysis that classify_items uses (the extractor's
    adds_nothing tokenises the text again when it needs the words)."""

    mentions: list[Any]
    words: None = None


def batches(items: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive items with the same published_at, in order."""
    batch: list[dict[str, Any]] = []
    for item in items:
        if batch and item["published_at"] != batch[0]["published_at"]:
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def replay(db: Database, items: Sequence[dict[str, Any]], hook: Hook | None, *,
           job: str = "replay", progress: Callable[[int], None] | None = None
           ) -> ReplayResult:
    """Store `items` (already in time order) batch by batch, calling `hook` after each."""
    result = ReplayResult(read=len(items))
    if not items:
        return result
    result.first_at, result.last_at = items[0]["published_at"], items[-1]["published_at"]
    last_alert = store.last_alert_id(db)
    run_id = store.start_run(db, job, parse_iso(result.first_at))
    try:
        for batch in batches(items):
            now = parse_iso(batch[0]["published_at"])
            new_ids = store.save_items(db, batch)
            result.new += len(new_ids)
            result.skipped += len(batch) - len(new_ids)
            result.batches += 1
            if new_ids and hook is not None:
                hook(db, new_ids, now)
            if progress:
                progress(len(batch))
    except BaseException as exc:
        store.finish_run(db, run_id, parse_iso(result.last_at), ok=False,
                         items_seen=result.read, items_new=result.new,
                         error=f"{type(exc).__name__}: {exc}")
        raise
    store.finish_run(db, run_id, parse_iso(result.last_at), ok=True, items_seen=result.read,
                     items_new=result.new)
    result.alerts = store.alerts_after(db, last_alert)
    log.info("replayed %d items (%d new) from %s to %s", result.read, result.new,
             result.first_at, result.last_at)
    return result
