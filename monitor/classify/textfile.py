"""`monitor classify --input F --output G`: score arbitrary texts, JSON Lines in and out.

In:  {"id": ..., "text": "..."}   (id optional: the line number is used)
Out: {"id": ..., "score": 0.93, "flagged": true,
      "markets": [{"name", "role", "surface", "known"}]}
"-" means stdin / stdout. Texts are read and written in batches, so a large file streams.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sqlite_utils import Database

from ..errors import MonitorError
from . import apply
from .dataset import text_rows

BATCH = 1000


@contextlib.contextmanager
def open_in(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        return
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        yield handle


@contextlib.contextmanager
def open_out(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise MonitorError(f"{path}: cannot write: {exc.strerror}") from None
    with handle:
        yield handle


def read_batches(source: IO[str], name: str) -> Iterator[list[tuple[object, str]]]:
    batch: list[tuple[object, str]] = []
    for number, _where, row in text_rows(source, name):
        batch.append((row.get("id", number), row["text"]))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def classify_stream(db: Database, db_path: Path, source: IO[str], sink: IO[str], *,
                    threshold: float, name: str = "input") -> int:
    """Score every text in `source` and write one result line each to `sink`."""
    classifier, _ = apply.current_classifier(db, db_path)
    extractor = apply.extractor_for(db)
    count = 0
    for batch in read_batches(source, name):
        scores = classifier.score([text for _, text in batch])
        for (item_id, text), score in zip(batch, scores, strict=True):
            row = {"id": item_id, "score": round(float(score), 4),
                   "flagged": bool(score >= threshold),
                   "markets": [m.as_json() for m in extractor.find(text)]}
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += len(batch)
    return count
