"""Successor intelligence: what the classified chatter says about succession.

After the classifier has stored its scores and market mentions for new items,
`after_classify(db, item_ids, now)` runs, in order:
1. warnings: items that call a market a scam, phishing clone or honeypot get a `warning`
   mention for it (warnings.py);
2. lineage: the predecessor -> successor edges these items show (lineage.py);
3. corroboration: markets now named both on Reddit and in the news (corroboration.py);
4. rising names: the spike rule for every market the items name (alerts.py).
The takedown response (takedown.py) is read on demand from the `takedown_response` view.

`make_hook(config)` wraps it as the pipeline's hook and mails new alerts at once when
`[alerts] email = true`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlite_utils import Database

from .. import store
from ..config import AlertsConfig, Config
from . import alerts, corroboration, lineage, warnings

log = logging.getLogger(__name__)

Hook = Callable[[Database, list[str], datetime], None]


@dataclass
class IntelResult:
    warnings: int = 0
    edges: int = 0
    corroborations: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)


def after_classify(db: Database, item_ids: Sequence[str], now: datetime,
                   settings: AlertsConfig | None = None) -> IntelResult:
    """Everything this package derives from newly classified items, recorded at `now`."""
    settings = settings or AlertsConfig()
    result = IntelResult()
    if not item_ids:
        return result
    # The items are read once (the steps change mentions, never items).
    items = store.intel_items(db, item_ids)
    result.warnings = warnings.mark(db, item_ids, items)
    result.edges = lineage.update(db, item_ids, items)
    window = timedelta(seconds=settings.corroboration_window)
    result.corroborations = corroboration.update(db, item_ids, window, items)
    named = {m["market"] for rows in store.item_mentions(
        db, [i["id"] for i in items]).values() for m in rows}
    result.alerts = alerts.check(db, named, now, settings)
    for alert in store.alerts_by_id(db, result.alerts):
        log.warning("alert: %s", alerts.describe(alert))
    return result


def make_hook(config: Config, *, mail: bool = True) -> Hook:
    """The hook to run after classification: `after_classify`, then mail the new alerts
    when `[alerts] email` is on (and `mail` is true: a replay passes False)."""
    from .notify import send_alerts

    def hook(db: Database, item_ids: list[str], now: datetime) -> None:
        result = after_classify(db, item_ids, now, config.alerts)
        if mail and config.alerts.email and config.alerts.enabled:
            send_alerts(db, config, now)
        elif result.alerts:
            log.info("%d new alerts (not mailed: [alerts] email is off)", len(result.alerts))

    return hook


__all__ = ["IntelResult", "after_classify", "alerts", "corroboration", "lineage",
           "make_hook", "warnings"]
