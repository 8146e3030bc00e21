"""The weekly digest: which weeks are due, build one, send it exactly once via the outbox.

The outbox is the `digests` table. A row (with its Message-ID) is created before the first
attempt and claimed atomically before each one, so two processes never send the same week at
once and a week that was sent is never sent again. A failed attempt is recorded and retried
with backoff. If the process dies mid-send the row stays "sending"; once that is older than a
lease it is taken over and sent again under the same Message-ID, so the one case SMTP cannot
rule out (the server accepted it just before the crash) reaches readers as a duplicate their
mail client can fold, not as a second digest.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from . import mail, store
from .config import Config
from .digest_data import Digest, Week, gather
from .digest_render import Rendered, chart_cid, compose, message_id, render
from .errors import MonitorError
from .pipeline import backoff_delay
from .timeutil import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

RETRY_BASE = 300.0
RETRY_CAP = 6 * 3600.0
MIN_LEASE = 600.0
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class DigestError(MonitorError):
    """A digest cannot be built or sent as asked (not a delivery failure)."""


@dataclass(frozen=True)
class SendResult:
    week: str
    status: str  # "sent", "already_sent", "failed", "waiting" (backoff), "busy" (in flight)
    message_id: str | None = None
    recipients: tuple[str, ...] = ()
    error: str | None = None
    sent_at: str | None = None
    next_attempt_at: str | None = None


def timezone(config: Config) -> ZoneInfo:
    return ZoneInfo(config.digest.timezone)


def parse_week(text: str | None, config: Config, now: datetime) -> Week:
    """`--week 2026-W48`, or the last complete week when not given."""
    tz = timezone(config)
    if not text:
        return Week.last_complete(now, tz)
    try:
        return Week.parse(text, tz)
    except ValueError as exc:
        raise DigestError(f"--week: {exc}") from None


def build(db: Database, config: Config, week: Week, now: datetime | None = None) -> Digest:
    return gather(db, config, week, now or utcnow())


def preview(db: Database, config: Config, week: Week, now: datetime | None = None
            ) -> Rendered:
    """The digest as it would be mailed, with the chart embedded as a data: URI."""
    return render(build(db, config, week, now), subject_template=config.digest.subject)


def build_message(db: Database, config: Config, week: Week, now: datetime, *,
                  recipients: Sequence[str], msg_id: str) -> EmailMessage:
    cid = chart_cid(msg_id)
    rendered = render(build(db, config, week, now), subject_template=config.digest.subject,
                      image_src="cid:" + cid.strip("<>"))
    return compose(rendered, sender=config.digest.sender, recipients=list(recipients),
                   msg_id=msg_id, now=now, week_label=week.label, cid=cid)


def due_at(week: Week, config: Config) -> datetime:
    """When the digest of `week` is due: the first configured weekday and time after it."""
    weekday = _WEEKDAYS.index(config.digest.weekday.lower()[:3])
    hour, minute = (int(p) for p in config.digest.time.split(":"))
    day = week.first_day + timedelta(days=7 + weekday)
    return datetime.combine(day, time(hour, minute), tzinfo=week.tz)


def due_weeks(db: Database, config: Config, now: datetime) -> list[Week]:
    """Weeks whose digest is due and not sent, oldest first: the last complete week and the
    ones missed while monitor was down, back to when it started collecting and at most
    digest.catch_up_weeks."""
    first = store.first_activity_at(db)
    if not first:
        return []
    started = parse_iso(first)
    latest = Week.last_complete(now, timezone(config))
    weeks = []
    for back in range(config.digest.catch_up_weeks):
        week = latest.shift(-back)
        if week.end <= started:
            break
        if due_at(week, config) > now or _was_sent(db, week):
            continue
        weeks.append(week)
    return weeks[::-1]


def _was_sent(db: Database, week: Week) -> bool:
    # By week label, not period: a changed time zone must not send a week a second time.
    return any(r["status"] == "sent" for r in store.digest_rows(db, week.label))


def send_week(db: Database, config: Config, week: Week, *, now: datetime | None = None,
              recipients: Sequence[str] | None = None, force: bool = False,
              resend: bool = False, context: ssl.SSLContext | None = None) -> SendResult:
    """Send the digest of a complete week unless it was sent already.

    `force` ignores the retry backoff (a person asked for it now); `resend` sends a week that
    was sent before, under a new Message-ID. Delivery failures are recorded and returned,
    not raised.
    """
    now = now or utcnow()
    recipients = tuple(recipients or config.digest.recipients)
    if not recipients:
        raise DigestError(f"no recipients: set digest.recipients in {config.path} or pass --to")
    if week.end > now:
        raise DigestError(f"week {week.label} is not over until {iso(week.end)}; "
                          "--preview shows it so far")
    previous = [r for r in store.digest_rows(db, week.label) if r["status"] == "sent"]
    if previous and not resend:
        last = previous[-1]
        return SendResult(week.label, "already_sent", last["message_id"],
                          tuple(filter(None, (last["recipients"] or "").split(", "))),
                          sent_at=last["sent_at"])
    start, end = week.start_iso, week.end_iso
    row = store.create_digest(db, week=week.label, period_start=start, period_end=end,
                              message_id=message_id(config.digest.sender, week.label), now=now)
    if resend and row["status"] == "sent":
        store.reopen_digest(db, start, end, message_id(config.digest.sender, week.label))
    lease = max(MIN_LEASE, 4 * float(config.smtp.timeout))
    if not store.claim_digest(db, start, end, now, stale_before=now - timedelta(seconds=lease),
                              force=force or resend):
        row = store.digest_row(db, start, end) or row
        status = "busy" if row["status"] == "sending" else "waiting"
        return SendResult(week.label, status, row["message_id"], error=row["last_error"],
                          next_attempt_at=row["next_attempt_at"])
    row = store.digest_row(db, start, end) or row
    run_id = store.start_run(db, f"digest:{week.label}", now)
    try:
        msg = build_message(db, config, week, now, recipients=recipients,
                            msg_id=row["message_id"])
        refused = mail.send(msg, config.smtp, sender=config.digest.sender,
                            recipients=recipients, context=context)
    except mail.MailError as exc:
        return _failed(db, week, row, now, run_id, str(exc))
    except Exception as exc:
        # A bug while building: do not leave the row "sending" until the lease runs out.
        _failed(db, week, row, now, run_id, f"internal error: {type(exc).__name__}: {exc}")
        raise
    # Recorded at once: from here on a crash could only cause a duplicate, never a loss.
    accepted = tuple(r for r in recipients if r not in refused)
    store.digest_sent(db, start, end, now, recipients=accepted,
                      note=mail.describe_refused(refused) if refused else None)
    store.finish_run(db, run_id, max(utcnow(), now), ok=True)
    log.info("digest %s sent to %d recipients (%s)", week.label, len(accepted),
             row["message_id"])
    return SendResult(week.label, "sent", row["message_id"], accepted,
                      error=mail.describe_refused(refused) if refused else None,
                      sent_at=iso(now))


def _failed(db: Database, week: Week, row: dict, now: datetime, run_id: int,
            error: str) -> SendResult:
    attempts = int(row["attempts"] or 1)
    next_at = now + timedelta(seconds=backoff_delay(attempts, base=RETRY_BASE, cap=RETRY_CAP))
    store.digest_failed(db, row["period_start"], row["period_end"], error=error,
                        next_attempt_at=next_at)
    store.finish_run(db, run_id, max(utcnow(), now), ok=False, error=error)
    log.info("digest %s not sent (attempt %d): %s; next attempt after %s", week.label,
             attempts, error, iso(next_at))
    return SendResult(week.label, "failed", row["message_id"], error=error,
                      next_attempt_at=iso(next_at))


def send_due(db: Database, config: Config, now: datetime | None = None, *,
             context: ssl.SSLContext | None = None) -> int:
    """Send every digest that is due, each exactly once; return how many were sent.

    The daemon's weekly job (and its start-up catch-up) calls this; it never raises for a
    delivery problem, which is recorded in the outbox and retried on a later call.
    """
    now = now or utcnow()
    if not config.digest.recipients:
        log.warning("digest: no recipients configured (digest.recipients); nothing sent")
        return 0
    sent = 0
    for week in due_weeks(db, config, now):
        try:
            result = send_week(db, config, week, now=now, context=context)
        except Exception:
            log.exception("digest %s: could not be built", week.label)
            break
        if result.status == "sent":
            sent += 1
        elif result.status == "failed":
            log.warning("digest %s not sent: %s; next attempt after %s", week.label,
                        result.error, result.next_attempt_at)
            break  # the server is likely down for the other weeks too; retried later
    return sent
