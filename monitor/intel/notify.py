"""Mail new alerts at once, through the same SMTP code as the digest (monitor/mail.py).

An alert is mailed once: a delivery sets its notified_at. A failed attempt leaves it unset
(with the error in notify_error), so the next batch of new items tries again; alerts older
than a day are not mailed any more, the digest reports them.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlite_utils import Database

from .. import mail, store
from ..config import Config
from ..timeutil import iso
from .alerts import describe

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(days=1)


def send_alerts(db: Database, config: Config, now: datetime) -> int:
    """Mail the alerts raised in the last day that were not mailed yet; return how many
    were. Never raises for a mail problem: collecting must go on."""
    pending = store.unnotified_alerts(db, iso(now - STALE_AFTER))
    if not pending:
        return 0
    ids = [a["id"] for a in pending]
    recipients = list(config.alerts.recipients or config.digest.recipients)
    if not recipients:
        store.mark_alerts_notified(db, ids, now, error="no recipients configured")
        return 0
    message = build_message(db, pending, sender=config.digest.sender, recipients=recipients,
                            now=now)
    try:
        mail.send(message, config.smtp, sender=config.digest.sender, recipients=recipients)
    except mail.MailError as exc:
        log.warning("could not mail %d alerts: %s", len(ids), exc)
        store.mark_alerts_notified(db, ids, now, error=str(exc))
        return 0
    store.mark_alerts_notified(db, ids, now)
    log.info("mailed %d alerts to %d recipients", len(ids), len(recipients))
    return len(ids)


def build_message(db: Database, pending: list[dict], *, sender: str, recipients: list[str],
                  now: datetime) -> EmailMessage:
    message = EmailMessage()
    if len(pending) == 1:
        subject = f"monitor alert: {describe(pending[0]).split(',')[0]}"
    else:
        names = ", ".join(sorted({a["market"] for a in pending}))
        subject = f"monitor alerts: {len(pending)} rising names ({names})"
    # Market names come from collected text: one line in the header, whatever they hold
    # (EmailMessage refuses a CR or LF outright, which would stop every alert mail).
    message["Subject"] = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", subject).split())[:200]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    lines = ["Markets mentioned far more often than usual:", ""]
    for alert in pending:
        lines.append(f"- {describe(alert)} (raised {alert['raised_at'][:16].replace('T', ' ')}"
                     " UTC)")
        for item in _sample(db, alert):
            title = item["title"] or (item["body"] or "")[:80]
            lines.append(f"    {item['published_at'][:16].replace('T', ' ')}  {title}")
            if item["url"]:
                lines.append(f"      {item['url']}")
    lines += ["", "The rule and its thresholds are in the [alerts] section of the config.",
              "Sent by monitor."]
    message.set_content("\n".join(lines))
    return message


def _sample(db: Database, alert: dict) -> list[dict]:
    try:
        ids = json.loads(alert.get("detail") or "{}").get("items", [])
    except ValueError:
        return []
    return store.intel_items(db, ids)[-3:]
