"""Classify stored items: score them with the current model, find the markets they name, and
store scores, mentions and newly discovered market names.

This is what `monitor collect` (through the hook), `monitor classify` and the daemon call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from .. import store
from ..config import Config
from ..timeutil import iso, utcnow
from . import dataset, model
from .markets import Extractor, Gazetteer, Mention, iso_date, load_gazetteer

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class ClassifyResult:
    items: int = 0
    flagged: int = 0
    discovered: list[str] | None = None
    model_version: str = ""
    trained: bool = False


def ensure_gazetteer(db: Database, gazetteer: Gazetteer | None = None) -> Gazetteer:
    """Load data/markets.toml into the markets and events tables, once per file version."""
    gazetteer = gazetteer or load_gazetteer()
    if store.gazetteer_loaded(db, gazetteer.digest):
        return gazetteer
    markets = [{
        "name": m.name, "aliases": json.dumps(list(m.aliases), ensure_ascii=False),
        "status": m.status, "predecessor": m.predecessor,
        "launched_at": iso_date(m.launched), "down_at": iso_date(m.ended),
    } for m in gazetteer.markets]
    events = [{
        "id": e.id, "name": e.name, "happened_at": iso_date(e.date), "kind": e.kind,
        "markets": json.dumps(list(e.markets), ensure_ascii=False),
    } for e in gazetteer.events]
    store.load_gazetteer(db, markets, events)
    store.set_meta(db, "gazetteer_digest", gazetteer.digest)
    return gazetteer


def current_classifier(db: Database, db_path: Path, *, force: bool = False
                       ) -> tuple[model.Classifier, bool]:
    """The model for the current training data (project examples plus analyst labels),
    loaded from next to the database or trained now when missing or stale."""
    # Reading and hashing every example takes ~0.1 s: too much for each source's few new
    # items (bench/steady.py). Redo it only when a file or a label it depends on changed.
    key = str(model.models_dir(db_path))
    stamp = _training_stamp(db)
    cached = _current.get(key)
    if not force and cached is not None and cached[0] == stamp:
        return cached[1], False
    examples = dataset.training_set(db)
    classifier, trained = model.load_or_train(model.models_dir(db_path), examples, force=force)
    _current[key] = (stamp, classifier)
    return classifier, trained


_current: dict[str, tuple[tuple, model.Classifier]] = {}


def _training_stamp(db: Database) -> tuple:
    """What the model version is computed from, cheaply: the training files, the code and
    gazetteer behind the features (by size and modification time), and the labels."""
    from .markets import gazetteer_path

    here = Path(model.__file__).resolve().parent
    paths = [*sorted(dataset.training_dir().glob("*.jsonl")), gazetteer_path(),
             *(here / name for name in model._CODE_FILES)]
    files = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        files.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(files), store.labels_stamp(db)


def classify_items(db: Database, item_ids: Sequence[str], classifier: model.Classifier, *,
                   threshold: float, now: datetime | None = None,
                   progress: Callable[[int], None] | None = None) -> ClassifyResult:
    """Score the items, store scores and mentions, and record discovered market names.

    A discovered name's first-seen time is the collection time of the item that named it
    (in a replay, the replayed item's time).
    """
    now = now or utcnow()
    result = ClassifyResult(model_version=classifier.version, discovered=[])
    ensure_gazetteer(db)
    store.set_meta(db, "model_version", classifier.version)
    extractor = extractor_for(db)
    for start in range(0, len(item_ids), BATCH):
        rows = store.items_for_classification(db, item_ids[start:start + BATCH])
        texts = [dataset.item_text(r) for r in rows]
        scores, analyses = _score(classifier, texts)
        # The model's features hold the gazetteer markets of each text; the database's
        # discovered names matter only for the few texts that contain one.
        reuse = _same_gazetteer(extractor, analyses)
        score_rows, mention_rows, found = [], [], {}
        for row, text, score, analysis in zip(rows, texts, scores, analyses, strict=True):
            flagged = bool(score >= threshold)
            result.flagged += flagged
            score_rows.append({"item_id": row["id"], "model_version": classifier.version,
                               "score": round(float(score), 6), "flagged": int(flagged),
                               "classified_at": iso(now)})
            if reuse and extractor.adds_nothing(text, analysis.words):
                mentions = analysis.mentions
            else:
                mentions = extractor.find(text)
            mention_rows.extend({"item_id": row["id"], "market": m.name, "surface": m.surface,
                                 "role": m.role} for m in mentions)
            seen_at = row["collected_at"] or iso(now)
            for name, predecessor in _new_names(mentions):
                if name not in found or seen_at < found[name]["first_seen_at"]:
                    found[name] = {"name": name, "predecessor": predecessor,
                                   "first_seen_at": seen_at}
        store.save_classifications(db, score_rows, mention_rows, list(found.values()))
        result.items += len(rows)
        if found:
            result.discovered.extend(n for n in found if n not in result.discovered)
            extractor = extractor_for(db)
        if progress:
            progress(len(rows))
    if result.discovered:
        log.info("new market names: %s", ", ".join(result.discovered))
    return result


def _score(classifier: model.Classifier, texts: list[str]) -> tuple[Sequence[float], list]:
    """Scores and the model's analyses of the texts; no analyses ([None, ...]) from a
    scorer that only scores (replay's precomputed scores)."""
    score_analysed = getattr(classifier, "score_analysed", None)
    if score_analysed is not None:
        return score_analysed(texts)
    return classifier.score(texts), [None] * len(texts)


def _same_gazetteer(extractor: Extractor, analyses: Sequence[object]) -> bool:
    """Whether the model's analyses came from the extractor's gazetteer (the model reads
    default_extractor(); a gazetteer edited since that was built is not the same)."""
    from .markets import default_extractor

    return bool(analyses) and analyses[0] is not None and \
        default_extractor().gazetteer.digest == extractor.gazetteer.digest


def _new_names(mentions: Iterable[Mention]) -> list[tuple[str, str | None]]:
    """(name, predecessor) for each mention of a market not known before."""
    names = [m for m in mentions if not m.known]
    predecessors = [m.name for m in mentions if m.role == "predecessor" and m.known]
    out = []
    for m in names:
        # "Empire Market 2.0" names its predecessor; a discovered plain name may not.
        base = next((p for p in predecessors if m.name.startswith(p + " ")), None)
        out.append((m.name, base))
    return out


def extractor_for(db: Database) -> Extractor:
    """The extractor with the market names this database has discovered so far."""
    from .markets import default_extractor

    return default_extractor(tuple(store.discovered_market_names(db)))


def classify_pending(db: Database, db_path: Path, *, threshold: float, rescore: bool = False,
                     limit: int | None = None, now: datetime | None = None,
                     progress: Callable[[int], None] | None = None,
                     on_total: Callable[[int], None] | None = None) -> ClassifyResult:
    """`monitor classify`: score every item the current model has not scored (or all)."""
    classifier, trained = current_classifier(db, db_path)
    ids = store.unscored_item_ids(db, classifier.version, rescore=rescore, limit=limit)
    if on_total:
        on_total(len(ids))
    result = classify_items(db, ids, classifier, threshold=threshold, now=now,
                            progress=progress)
    result.trained = trained
    return result


def make_hook(config: Config) -> Callable[[Database, list[str], datetime], None]:
    """The pipeline's hook for new items: classify them, then run the successor intelligence
    (warnings, lineage, corroboration, alerts; see monitor.intel) on them."""
    try:
        from .. import intel
    except ImportError:  # a checkout without the intelligence package
        intel = None
    after = intel.make_hook(config) if intel is not None else None

    def hook(db: Database, item_ids: list[str], now: datetime) -> None:
        if not item_ids:
            return
        classifier, trained = current_classifier(db, config.db_path)
        if trained:
            log.info("trained classifier %s", classifier.version)
        result = classify_items(db, item_ids, classifier,
                                threshold=config.classifier.threshold, now=now)
        log.info("classified %d items, %d flagged", result.items, result.flagged)
        if after is not None:
            after(db, item_ids, now)

    return hook
