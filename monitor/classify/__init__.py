"""The successor-chatter classifier and market-name extraction.

    markets.py   the gazetteer and market-name extraction (roles, discovery)
    cues.py      the cue vocabulary (relaunch, migration, takedown, ...)
    features.py  texts -> masked text and cue features
    model.py     the scikit-learn pipeline: train, save, load, score, version
    dataset.py   training examples (project files + analyst labels) and their checks
    evaluate.py  precision/recall/F1 beside a keyword baseline; market-name recall
    apply.py     classify stored items; the pipeline hook

scikit-learn is imported only when a model is needed, so importing this package is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

    from ..config import Config


def make_hook(config: Config) -> Callable[[Database, list[str], datetime], None]:
    """The hook `pipeline.collect` calls with new item ids: classify them (training the
    model first if it is missing or stale), store scores and mentions, then run the
    successor intelligence on them."""
    from .apply import make_hook as build

    return build(config)


__all__ = ["make_hook"]
