"""The successor-chatter model: train, save, load, score.

A scikit-learn pipeline: every text goes once through the market extractor (market names are
masked, roles and cue words become features), then TF-IDF over words, word pairs and five-letter
word prefixes, together with the cue features, feeds a linear SVM whose margins are turned into
calibrated probabilities (Platt scaling, cross-validated).

The model's version is a hash of the training examples, the code and gazetteer that shape its
features, and the scikit-learn version; a model file whose version differs is stale and is
retrained on demand. Files live next to the database: <db dir>/models/model-<version>.joblib.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from ..errors import MonitorError
from . import dataset
from .features import Analysis, Analyzer, CueVectorizer, TermVectorizer
from .markets import gazetteer_path, load_gazetteer

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the saved file's layout changes
KEEP_MODELS = 3
_CODE_FILES = ("cues.py", "features.py", "markets.py", "model.py")
_lock = threading.Lock()
_cache: dict[tuple[str, str], Classifier] = {}


@dataclass
class Classifier:
    version: str
    pipeline: Pipeline
    trained_at: float
    examples: int
    seconds: float

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """The probability that each text is successor chatter."""
        if not texts:
            return np.zeros(0)
        return self.pipeline.predict_proba(list(texts))[:, 1]

    def score_analysed(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Analysis]]:
        """The scores and each text's analysis (its gazetteer market mentions among them):
        the caller that also stores mentions need not run the extractor a second time."""
        if not texts:
            return np.zeros(0), []
        first, rest = self.pipeline.steps[0][1], self.pipeline[1:]
        analyses = first.transform(list(texts))
        return rest.predict_proba(analyses)[:, 1], analyses


# Chosen by 5-fold cross-validation on the training set (C of the SVM, weight of the cue
# block); see `monitor train` for the figures.
PARAMS = {"c": 0.5, "cue_weight": 1.0, "min_df": 2}


def build_pipeline(*, folds: int = 5, **overrides: float) -> Pipeline:
    params = {**PARAMS, **overrides}
    words = TermVectorizer(min_df=int(params["min_df"]), sublinear_tf=True)
    linear = LinearSVC(C=params["c"], class_weight="balanced", random_state=0)
    return Pipeline([
        ("analyse", Analyzer()),
        ("features", FeatureUnion([("words", words),
                                   ("cues", CueVectorizer(params["cue_weight"]))])),
        # Platt scaling over cross-validated SVM margins: scores are probabilities.
        ("model", CalibratedClassifierCV(linear, method="sigmoid", cv=folds)),
    ])


def code_digest() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    h.update(load_gazetteer(gazetteer_path()).digest.encode())
    h.update(f"format={FORMAT} sklearn={sklearn.__version__}".encode())
    return h.hexdigest()


def model_version(examples: Sequence[dataset.Example]) -> str:
    """12 hex digits from the training data, the code, the gazetteer and scikit-learn."""
    h = hashlib.sha256()
    h.update(dataset.digest(examples).encode())
    h.update(code_digest().encode())
    return h.hexdigest()[:12]


def train(examples: Sequence[dataset.Example], version: str | None = None,
          **overrides: float) -> Classifier:
    texts, labels = _xy(examples)
    started = time.perf_counter()
    pipeline = build_pipeline(**overrides)
    pipeline.fit(texts, labels)
    seconds = time.perf_counter() - started
    return Classifier(version or model_version(examples), pipeline, time.time(), len(texts),
                      seconds)


def _xy(examples: Sequence[dataset.Example]) -> tuple[list[str], np.ndarray]:
    usable = [e for e in examples if e.label in (0, 1)]
    labels = np.array([e.label for e in usable])
    if len(usable) < 20 or labels.min() == labels.max() or min(np.bincount(labels)) < 5:
        raise MonitorError(f"not enough training data: {len(usable)} labeled examples, "
                           f"{int(labels.sum()) if len(usable) else 0} positive (need 20, "
                           "with at least 5 of each label)")
    return [e.text for e in usable], labels


def cross_validate(examples: Sequence[dataset.Example], *, folds: int = 5,
                   threshold: float = 0.5, seed: int = 0) -> dict[str, float]:
    """Precision, recall and F1 of out-of-fold predictions (stratified k-fold)."""
    from sklearn.model_selection import StratifiedKFold

    from .evaluate import metrics

    texts, labels = _xy(examples)
    scores = np.zeros(len(texts))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(texts, labels):
        pipeline = build_pipeline()
        pipeline.fit([texts[i] for i in train_idx], labels[train_idx])
        scores[test_idx] = pipeline.predict_proba([texts[i] for i in test_idx])[:, 1]
    result = metrics(labels, scores >= threshold)
    return {"precision": result.precision, "recall": result.recall, "f1": result.f1,
            "folds": folds, "examples": len(texts)}


# --- files ---------------------------------------------------------------------------------

def models_dir(db_path: Path) -> Path:
    return Path(db_path).resolve().parent / "models"


def model_path(directory: Path, version: str) -> Path:
    return directory / f"model-{version}.joblib"


def save(classifier: Classifier, directory: Path) -> Path:
    """Write atomically (temp file, then rename), so a reader never sees half a model."""
    directory.mkdir(parents=True, exist_ok=True)
    path = model_path(directory, classifier.version)
    payload = {"format": FORMAT, "sklearn": sklearn.__version__, "version": classifier.version,
               "trained_at": classifier.trained_at, "examples": classifier.examples,
               "seconds": classifier.seconds, "pipeline": classifier.pipeline}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model-", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(payload, tmp, compress=3)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _prune(directory, keep=path)
    return path


def _prune(directory: Path, keep: Path) -> None:
    old = sorted((p for p in directory.glob("model-*.joblib") if p != keep),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for path in old[KEEP_MODELS - 1:]:
        try:
            path.unlink()
        except OSError as exc:
            log.warning("could not remove old model %s: %s", path, exc)


def load(path: Path, version: str | None = None) -> Classifier | None:
    """The model in `path`, or None when it is missing, unreadable or of another version."""
    if not path.is_file():
        return None
    try:
        payload = joblib.load(path)
    except Exception as exc:  # a truncated or foreign file: retrain rather than fail
        log.warning("%s: cannot load the model (%s); it will be retrained", path, exc)
        return None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or \
            payload.get("sklearn") != sklearn.__version__ or \
            (version is not None and payload.get("version") != version):
        return None
    return Classifier(payload["version"], payload["pipeline"], payload["trained_at"],
                      payload["examples"], payload["seconds"])


def load_or_train(directory: Path, examples: Sequence[dataset.Example], *,
                  force: bool = False) -> tuple[Classifier, bool]:
    """The current model for these examples: from memory, from disk, or trained now.

    Returns (classifier, trained). A model is stale when the version computed from the
    examples, code, gazetteer and scikit-learn differs from the saved one.
    """
    version = model_version(examples)
    key = (str(directory), version)
    with _lock:
        if not force:
            cached = _cache.get(key)
            if cached is not None:
                return cached, False
            loaded = load(model_path(directory, version), version)
            if loaded is not None:
                _cache[key] = loaded
                return loaded, False
        log.info("training the classifier (model %s, %d examples)", version, len(examples))
        classifier = train(examples, version)
        save(classifier, directory)
        _cache.clear()
        _cache[key] = classifier
        log.info("trained model %s in %.1fs", version, classifier.seconds)
        return classifier, True
