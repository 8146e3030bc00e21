"""Analysts' labels: record a judgement of one item, and pick the items worth judging next.

A label is the analyst's answer to LABELING.md's question (1 = successor chatter). The next
`monitor train` learns from the labels, which win over data/training where they disagree.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from . import store
from .errors import MonitorError
from .timeutil import iso, utcnow

VERDICTS = {"yes": 1, "no": 0}


@dataclass(frozen=True)
class Labeled:
    """What `record_label` did: the item, the label it had before, the model's view."""

    item: dict[str, Any]
    label: int
    previous: int | None

    @property
    def agrees_with_model(self) -> bool | None:
        flagged = self.item.get("flagged")
        return None if flagged is None else bool(flagged) == bool(self.label)


def default_analyst() -> str:
    """Who is labeling: $MONITOR_ANALYST, else the login name."""
    name = os.environ.get("MONITOR_ANALYST", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers), no login name
        return "analyst"


def record_label(db: Database, item_id: str, verdict: str, *, analyst: str | None = None,
                 note: str | None = None, now: datetime | None = None) -> Labeled:
    """Store the analyst's yes/no for an item; a second label replaces the first."""
    try:
        label = VERDICTS[verdict.strip().lower()]
    except KeyError:
        raise MonitorError(f"label must be yes or no, not {verdict!r}") from None
    item = store.item_brief(db, item_id)
    if item is None:
        raise MonitorError(f"no item with id {item_id!r} (`monitor label --queue` lists items "
                           "to label, with their ids)")
    store.save_label(db, item_id, label, analyst=analyst or default_analyst(),
                     note=(note or "").strip() or None, now=now or utcnow())
    return Labeled(item=item, label=label, previous=item["label"])


def labeling_queue(db: Database, *, threshold: float, limit: int = 20,
                   days: int | None = None, now: datetime | None = None
                   ) -> list[dict[str, Any]]:
    """Unlabeled items the current model is least sure about (score nearest the threshold).

    Empty when no model has scored anything yet.
    """
    version = store.current_model_version(db)
    if not version:
        return []
    since = iso((now or utcnow()) - timedelta(days=days)) if days else None
    return store.label_queue(db, version, threshold=threshold, limit=limit, since=since)


@dataclass
class LabelReport:
    """How the current model's stored verdicts agree with the analysts' labels."""

    model_version: str | None
    rows: list[dict[str, Any]]  # labeled items with a score from the current model
    unscored: int  # labels on items the current model has not scored

    def metrics(self, rows: list[dict[str, Any]] | None = None) -> Any:
        from .classify.evaluate import metrics

        rows = self.rows if rows is None else rows
        return metrics([r["label"] for r in rows], [r["flagged"] == 1 for r in rows])

    @property
    def independent(self) -> list[dict[str, Any]]:
        """Labels made after the model scored the item: a judgement of that very verdict,
        on an item the model cannot have learned from."""
        return [r for r in self.rows if r["labeled_at"] >= r["classified_at"]]

    @property
    def disagreements(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if bool(r["label"]) != (r["flagged"] == 1)]


def label_report(db: Database) -> LabelReport:
    version = store.current_model_version(db)
    rows = store.labels_with_verdicts(db, version) if version else []
    scored = [r for r in rows if r["score"] is not None]
    return LabelReport(version, scored, len(rows) - len(scored))


def render_label_report(report: LabelReport, *, errors: bool = False, width: int = 80) -> str:
    from .tables import render_table

    if not report.model_version:
        return "No model has scored any item yet (run `monitor classify`)."
    total = len(report.rows) + report.unscored
    if not report.rows:
        return (f"Model {report.model_version}: none of the {total} analyst labels is on an "
                "item it scored (run `monitor classify`).")
    m = report.metrics()
    lines = [f"Model {report.model_version} against {len(report.rows)} analyst labels"
             + (f" ({report.unscored} more on items it has not scored)"
                if report.unscored else ""), ""]
    lines.append(render_table(
        ["", "flagged", "not flagged"],
        [["labeled yes", m.tp, m.fn], ["labeled no", m.fp, m.tn]]))
    lines += ["", f"precision {m.precision:.3f}, recall {m.recall:.3f}, F1 {m.f1:.3f}"]
    fresh = report.independent
    if fresh and len(fresh) != len(report.rows):
        f = report.metrics(fresh)
        lines.append(f"on the {len(fresh)} labels made after the model scored the item: "
                     f"precision {f.precision:.3f}, recall {f.recall:.3f}, F1 {f.f1:.3f}")
    lines += [f"{len(fresh)} of {len(report.rows)} labels were made after this model scored "
              "the item;", "the others it may have learned from."]
    if errors and report.disagreements:
        lines += ["", "Disagreements (label, score, item, title):"]
        for r in sorted(report.disagreements, key=lambda r: r["score"]):
            text = f"  {'yes' if r['label'] else 'no ':3} {r['score']:.2f} {r['item_id']} " \
                   f"{' '.join((r['title'] or '').split())}"
            lines.append(text if len(text) <= width else text[: width - 1] + "…")
    return "\n".join(lines)
