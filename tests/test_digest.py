"""The weekly digest: the week's figures, safe rendering, delivery through a real SMTP server
on 127.0.0.1 (plain, STARTTLS, SMTPS), and the outbox's exactly-once behaviour."""

from __future__ import annotations

import dataclasses
import re
import ssl
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import trustme
from click.testing import CliRunner

from monitor import digest, mail, store
from monitor.cli import cli
from monitor.digest_data import Week, gather
from monitor.digest_render import chart_png, clean, link
from tests import digest_helpers as h

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
PASSWORD_ENV = {"MONITOR_SMTP_PASSWORD": "s3cret pass"}


@pytest.fixture
def setup(write_config, tmp_path):
    """A config pointing at `port`, and the realistic week in its database."""
    opened = []

    def make(port: int = 25, security: str = "none", extra: str = "", env: dict | None = None,
             digest_extra: str = "", populate: bool = True):
        config = write_config(
            f'[digest]\nrecipients = ["analysts@example.org", "lead@example.org"]\n'
            f'sender = "monitor@example.org"\n{digest_extra}\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
            f'timeout = "10s"\n{extra}\n', env=env)
        db = store.open_db(config.db_path)
        opened.append(db)
        if populate and not store.count_items(db):
            h.realistic_week(db)
        return config, db

    yield make
    for db in opened:
        db.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> tuple[trustme.CA, ssl.SSLContext, Path]:
    """A throwaway CA, a server context with a certificate for 127.0.0.1, and the CA's PEM."""
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return authority, server_ctx, pem


def outbox(db, week: str = h.WEEK) -> dict:
    rows = store.digest_rows(db, week)
    assert len(rows) == 1
    return rows[0]


def assert_inert(html: str) -> None:
    """Nothing in the HTML that a mail client would run, fetch or follow unsafely."""
    tags = h.Tags(html)
    assert not re.search(r"<\s*script", html, re.I)
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in html
    hrefs = tags.attr("a", "href")
    assert hrefs and all(re.match(r"https?://", href) for href in hrefs)
    assert not any(".onion" in href for href in hrefs)
    assert "javascript:" not in " ".join(hrefs + tags.attr("img", "src")).lower()
    assert all(src.startswith(("cid:", "data:image/png;base64,"))
               for src in tags.attr("img", "src"))
    assert "tracker.example.net" not in html
    assert not [t for t, a in tags.tags if any(k.startswith("on") for k in a)]


# --- weeks -----------------------------------------------------------------------------------

def test_week_bounds_parsing_and_time_zones():
    week = Week.parse("2025-W25", UTC_ZONE)
    assert (week.start_iso, week.end_iso) == ("2025-06-16T00:00:00+00:00",
                                              "2025-06-23T00:00:00+00:00")
    assert Week.parse("2025w25", UTC_ZONE) == week
    assert Week.parse("2025-W25", BERLIN).start_iso == "2025-06-15T22:00:00+00:00"
    assert week.shift(-25).label == "2024-W52" and week.shift(28).label == "2026-W01"
    assert Week.parse("2026-W53", UTC_ZONE).label == "2026-W53"
    for bad in ("2025-W53", "2025-W00", "W25", "2025-25", ""):
        with pytest.raises(ValueError):
            Week.parse(bad, UTC_ZONE)
    # Sunday 23:30 UTC is already Monday in Berlin: the week before is complete there only.
    late_sunday = datetime(2025, 6, 22, 23, 30, tzinfo=UTC)
    assert Week.last_complete(late_sunday, UTC_ZONE).label == "2025-W24"
    assert Week.last_complete(late_sunday, BERLIN).label == "2025-W25"


def test_a_week_holds_what_was_published_in_it_in_the_digest_time_zone(setup):
    config, db = setup(populate=False)
    row = h.Row("late", "darknetlive", "news", "2025-06-15T22:30", "Late news", "Body.", 0.9)
    h.add_rows(db, [row])
    store.set_meta(db, "model_version", h.MODEL)

    def flagged(tz: ZoneInfo, label: str) -> int:
        return gather(db, config, Week.parse(label, tz), h.NOW).flagged

    assert (flagged(UTC_ZONE, "2025-W24"), flagged(UTC_ZONE, "2025-W25")) == (1, 0)
    assert (flagged(BERLIN, "2025-W24"), flagged(BERLIN, "2025-W25")) == (0, 1)


# --- what the week holds -----------------------------------------------------------------------

def test_gather_a_realistic_week(setup):
    config, db = setup()
    d = gather(db, config, Week.parse(h.WEEK, UTC_ZONE), h.NOW)
    totals = {t.kind: (t.items, t.items_before, t.flagged, t.flagged_before, t.unclassified)
              for t in d.totals}
    # The syndicated copy and the old model's verdict are not counted.
    assert totals == {"news": (8, 3, 1, 1, 1), "reddit_post": (7, 2, 6, 2, 1),
                      "reddit_comment": (4, 1, 3, 1, 0)}
    assert (d.items, d.flagged, d.unclassified) == (19, 10, 2)

    assert [(m.name, m.origin, m.predecessor) for m in d.new_markets] == [
        ("Archetyp Reborn", "discovered", "Archetyp Market"),
        ("Tor2Door", "gazetteer", "Archetyp Market")]
    reborn = d.new_markets[0]
    assert reborn.first.id == h.item_id(h.W25[3])
    assert reborn.first.published_at == "2025-06-17T09:12:00+00:00"

    assert [(r.name, r.mentions, r.change, r.as_successor, r.daily) for r in d.ranking] == [
        ("Archetyp Market", 9, 9, 0, [2, 2, 2, 2, 1, 0, 0]),
        ("Archetyp Reborn", 3, 3, 2, [0, 2, 1, 0, 0, 0, 0]),
        ("DrugHub", 3, 1, 2, [1, 0, 1, 0, 0, 1, 0]),
        ("Vice City", 2, 1, 1, [0, 0, 1, 0, 1, 0, 0]),
        ("Tor2Door", 1, 1, 1, [0, 0, 0, 1, 0, 0, 0])]
    assert d.dropped == [("Abacus Market", 3)]
    assert [a["market"] for a in d.alerts] == ["Archetyp Reborn"]

    assert [g.market for g in d.groups] == ["Archetyp Market", "Archetyp Reborn", "DrugHub",
                                            "Tor2Door"]
    assert d.shown_items == 10
    assert [i.score for i in d.groups[1].items] == [0.88, 0.81, 0.77]

    (event,) = d.events
    assert (event.id, event.chatter, event.date_only) == ("archetyp-deep-sentinel-2025", 10,
                                                          True)
    # As `monitor events` counts them: successor mentions in the 7 days after it.
    assert event.successors == [("DrugHub", 2), ("Archetyp Reborn", 2), ("Vice City", 2),
                                ("Tor2Door", 1)]
    assert event.warned == [("Archetyp Reborn", 1)]
    assert event.first_at == datetime(2025, 6, 16, 15, 2, tzinfo=UTC)
    assert [i.score for i in event.items] == [0.93, 0.91, 0.88, 0.84, 0.81]

    # Unsure: unlabeled, within 0.1 of the threshold, closest first.
    assert [i.id for i in d.unsure] == [h.item_id(h.W25[k]) for k in (9, 10, 8)]

    assert (d.health.sources, d.health.sources_ok) == (8, 4)
    assert [(p.name, p.state) for p in d.health.problems] == [
        ("reddit:r/DarkNetMarkets", "gap"), ("reddit:r/onionsellers", "gap"),
        ("bleepingcomputer", "backoff"), ("gnews-darknet-market", "failing")]
    assert (d.health.runs, d.health.runs_failed) == (84, 3)


def test_without_a_model_version_the_latest_classification_counts(setup):
    config, db = setup()
    week = Week.parse(h.WEEK, UTC_ZONE)
    db.execute("DELETE FROM meta WHERE key = 'model_version'")
    assert gather(db, config, week, h.NOW).flagged == 10
    # Now the old model's verdict is the newer one for that item.
    db.execute("UPDATE classifications SET classified_at = '2025-06-22T00:00:00+00:00' "
               "WHERE model_version = ?", [h.OLD_MODEL])
    assert gather(db, config, week, h.NOW).flagged == 11
    store.set_meta(db, "model_version", h.MODEL)
    assert gather(db, config, week, h.NOW).flagged == 10


# --- rendering -------------------------------------------------------------------------------

def test_untrusted_text_and_links_are_made_safe():
    assert clean("a\u202eb\x00c\n\n d\u200b") == "abc d"
    assert clean("word " * 100, 30).endswith("…") and len(clean("word " * 100, 30)) <= 30
    assert link("javascript:alert(1)").href is None and link("javascript:alert(1)").text == ""
    assert link("data:text/html,hi").href is None
    onion = link(h.ONION_URL)
    assert (onion.href, onion.onion) == (None, True)
    assert onion.text.startswith("archetyp2") and "://" not in onion.text
    assert link("https://www.therecord.media/x").href == "https://www.therecord.media/x"


def test_preview_html_is_inert_and_self_contained(setup):
    config, db = setup()
    rendered = digest.preview(db, config, Week.parse(h.WEEK, UTC_ZONE), h.NOW)
    assert_inert(rendered.html)
    # Every section is there.
    for heading in ("New market names", "Markets by flagged mentions", "Top flagged items",
                    "Takedowns and what followed", "Unsure: please label", "Source health"):
        assert heading in rendered.html
    assert "monitor label reddit:t1_" in rendered.html
    assert "coverage gap: banned" in rendered.html
    assert "(onion address, not linked)" in rendered.html
    assert rendered.chart and rendered.chart.startswith(b"\x89PNG")
    assert "MARKETS BY FLAGGED MENTIONS" in rendered.text
    assert "Archetyp Market  2      2      2      2      1      0      0      9" \
        in rendered.text


def test_chart_survives_hostile_market_names():
    from monitor.digest_data import MarketRank

    ranking = [MarketRank("$\\frac{1}{0}$ market", 3, 0, 1, [1, 0, 2, 0, 0, 0, 0]),
               MarketRank("_hidden", 1, 0, 0, [0, 0, 0, 0, 0, 0, 1]),
               MarketRank("Гидра \u202e", 2, 1, 0, [0, 1, 1, 0, 0, 0, 0])]
    png = chart_png(ranking, Week.parse(h.WEEK, UTC_ZONE).days)
    assert png.startswith(b"\x89PNG") and len(png) < 60_000
    assert chart_png([], Week.parse(h.WEEK, UTC_ZONE).days) is None


def test_an_empty_week_has_no_chart_and_no_related_part(setup):
    config, db = setup(populate=False)
    msg = digest.build_message(db, config, Week.parse(h.WEEK, UTC_ZONE), h.NOW,
                               recipients=["a@example.org"], msg_id="<x@example.org>")
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative", "text/plain", "text/html"]
    assert "Nothing was flagged this week." in msg.get_body(("html",)).get_content()


# --- delivery --------------------------------------------------------------------------------

def test_the_digest_arrives_complete_and_inert(setup):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        assert digest.send_week(db, config, Week.parse(h.WEEK, UTC_ZONE),
                                now=h.NOW).status == "sent"
    (rcpts, raw, _tls), = inbox.messages
    assert rcpts == ["analysts@example.org", "lead@example.org"]
    msg = h.parse(raw)
    row = outbox(db)
    assert msg["Message-ID"] == row["message_id"] and msg["Message-ID"].endswith(
        "@example.org>")
    assert msg["Subject"] == "monitor digest 2025-W25"
    assert msg["From"] == "monitor@example.org"
    assert msg["To"] == "analysts@example.org, lead@example.org"
    assert parsedate_to_datetime(msg["Date"]) == h.NOW
    assert msg["Auto-Submitted"] == "auto-generated"

    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    png = image.get_content()
    assert png.startswith(b"\x89PNG") and len(png) < 60_000
    cid = image["Content-ID"].strip("<>")
    assert h.Tags(html).attr("img", "src") == [f"cid:{cid}"]
    assert_inert(html)
    # The plain part carries the same facts: the table instead of the chart, no dead link.
    assert "Flagged items per day:" in text and "Archetyp Reborn" in text
    assert "<script>alert('owned')</script> Archetyp 2.0 mirror list" in text
    assert "javascript:" not in text
    assert "http://archetyp2" not in text and "onion address (not a link)" in text

    assert (row["status"], row["attempts"], row["sent_at"], row["last_error"]) == (
        "sent", 1, "2025-06-23T07:00:00+00:00", None)
    assert row["recipients"] == "analysts@example.org, lead@example.org"
    run = store.recent_runs(db, 1)[0]
    assert (run["job"], run["ok"]) == ("digest:2025-W25", 1)


def test_sending_twice_sends_once(setup):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        assert digest.send_due(db, config, h.NOW) == 2  # W24 (catch-up) and W25
        assert digest.send_due(db, config, h.NOW) == 0
        assert digest.send_due(db, config, h.NOW + timedelta(days=2)) == 0
        again = digest.send_week(db, config, Week.parse(h.WEEK, UTC_ZONE), now=h.NOW,
                                 force=True)
    assert again.status == "already_sent" and again.sent_at == "2025-06-23T07:00:00+00:00"
    weeks = [h.parse(raw)["X-Monitor-Week"] for _, raw, _ in inbox.messages]
    assert weeks == ["2025-W24", "2025-W25"]
    assert outbox(db)["attempts"] == 1


def test_a_claimed_digest_cannot_be_claimed_twice(setup):
    _, db = setup(populate=False)
    args = ("2025-06-16T00:00:00+00:00", "2025-06-23T00:00:00+00:00")
    store.create_digest(db, week=h.WEEK, period_start=args[0], period_end=args[1],
                        message_id="<a@b>", now=h.NOW)
    stale = h.NOW - timedelta(minutes=10)
    assert store.claim_digest(db, *args, h.NOW, stale_before=stale)
    assert not store.claim_digest(db, *args, h.NOW, stale_before=stale)
    store.digest_failed(db, *args, error="x", next_attempt_at=h.NOW + timedelta(minutes=5))
    assert not store.claim_digest(db, *args, h.NOW, stale_before=stale)
    assert store.claim_digest(db, *args, h.NOW, stale_before=stale, force=True)


def test_a_refused_connection_is_recorded_and_retried_with_backoff(setup):
    port = h.free_port()  # nothing listens here yet
    config, db = setup(port)
    week = Week.parse(h.WEEK, UTC_ZONE)
    result = digest.send_week(db, config, week, now=h.NOW)
    assert result.status == "failed" and "cannot reach SMTP server 127.0.0.1" in result.error
    row = outbox(db)
    first_id = row["message_id"]
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "Connection refused" in row["last_error"]
    retry_at = datetime.fromisoformat(row["next_attempt_at"])
    assert timedelta(minutes=4) < retry_at - h.NOW < timedelta(minutes=6)
    # Not before the backoff is over.
    assert digest.send_week(db, config, week, now=h.NOW + timedelta(minutes=1)).status \
        == "waiting"
    assert outbox(db)["attempts"] == 1
    with h.smtp_server(port) as (inbox, _):
        later = h.NOW + timedelta(minutes=10)
        assert digest.send_due(db, config, later) == 2
    row = outbox(db)
    assert (row["status"], row["attempts"], row["message_id"]) == ("sent", 2, first_id)
    assert len(inbox.messages) == 2
    assert {h.parse(raw)["Message-ID"] for _, raw, _ in inbox.messages} >= {first_id}


def test_a_4xx_leaves_it_pending_and_the_next_attempt_sends_it(setup):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        inbox.fail_with = "451 4.3.0 Mail server temporarily rejected message"
        week = Week.parse(h.WEEK, UTC_ZONE)
        result = digest.send_week(db, config, week, now=h.NOW)
        assert result.status == "failed"
        row = outbox(db)
        assert row["status"] == "failed" and "451" in row["last_error"]
        assert row["sent_at"] is None
        inbox.fail_with = None
        assert digest.send_week(db, config, week,
                                now=h.NOW + timedelta(minutes=6)).status == "sent"
    assert len(inbox.messages) == 1 and outbox(db)["attempts"] == 2


def test_a_crash_mid_send_is_taken_over_after_the_lease(setup, monkeypatch):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        week = Week.parse(h.WEEK, UTC_ZONE)
        real_send = mail.send

        def killed(*args, **kwargs):
            raise SystemExit("killed while talking to the server")

        monkeypatch.setattr(mail, "send", killed)
        with pytest.raises(SystemExit):
            digest.send_week(db, config, week, now=h.NOW)
        assert outbox(db)["status"] == "sending"
        monkeypatch.setattr(mail, "send", real_send)
        # Another process (the restarted daemon) leaves it alone while it may be in flight...
        assert digest.send_week(db, config, week,
                                now=h.NOW + timedelta(minutes=1)).status == "busy"
        # ...and takes it over once the lease is over.
        assert digest.send_week(db, config, week,
                                now=h.NOW + timedelta(minutes=11)).status == "sent"
    assert len(inbox.messages) == 1
    assert (outbox(db)["status"], outbox(db)["attempts"]) == ("sent", 2)


def test_a_crash_after_the_server_accepted_resends_under_the_same_message_id(setup,
                                                                           monkeypatch):
    # The one case SMTP cannot rule out: the copy that arrives twice carries one Message-ID,
    # so mail clients show it once.
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        week = Week.parse(h.WEEK, UTC_ZONE)

        def killed(*args, **kwargs):
            raise SystemExit("killed before recording")

        with monkeypatch.context() as patch:
            patch.setattr(store, "digest_sent", killed)
            with pytest.raises(SystemExit):
                digest.send_week(db, config, week, now=h.NOW)
        assert digest.send_week(db, config, week,
                                now=h.NOW + timedelta(minutes=11)).status == "sent"
    ids = [h.parse(raw)["Message-ID"] for _, raw, _ in inbox.messages]
    assert len(ids) == 2 and ids[0] == ids[1] == outbox(db)["message_id"]


def test_catch_up_sends_missed_weeks_oldest_first_and_respects_the_schedule(setup):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port, digest_extra="catch_up_weeks = 1")
        assert [w.label for w in digest.due_weeks(db, config, h.NOW)] == ["2025-W25"]
        config, db = setup(port, digest_extra='weekday = "fri"\ntime = "09:30"')
        # Monday: W25 is due on Friday; W24 was due last Friday; W23 predates the first item.
        assert [w.label for w in digest.due_weeks(db, config, h.NOW)] == ["2025-W24"]
        friday = datetime(2025, 6, 27, 9, 30, tzinfo=UTC)
        assert [w.label for w in digest.due_weeks(db, config, friday - timedelta(minutes=1))
                ] == ["2025-W24"]
        assert [w.label for w in digest.due_weeks(db, config, friday)] == ["2025-W24",
                                                                          "2025-W25"]
        assert digest.send_due(db, config, friday) == 2
        assert digest.due_weeks(db, config, friday + timedelta(days=1)) == []
    assert [h.parse(raw)["X-Monitor-Week"] for _, raw, _ in inbox.messages] == [
        "2025-W24", "2025-W25"]


def test_a_week_sent_is_not_sent_again_after_a_time_zone_change(setup):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        assert digest.send_due(db, config, h.NOW) == 2
        config, db = setup(port, digest_extra='timezone = "Europe/Berlin"')
        assert digest.send_due(db, config, h.NOW) == 0
    assert len(inbox.messages) == 2


def test_nothing_is_sent_before_monitor_collected_anything_or_without_recipients(setup):
    config, db = setup(populate=False)
    assert digest.due_weeks(db, config, h.NOW) == []
    config, db = setup(populate=True)
    bare = dataclasses.replace(config, digest=dataclasses.replace(config.digest, recipients=()))
    assert digest.send_due(db, bare, h.NOW) == 0
    assert store.digest_rows(db) == []


# --- TLS and login ---------------------------------------------------------------------------

def test_starttls_with_login_against_a_trusted_self_signed_certificate(setup, ca):
    _, server_ctx, pem = ca
    with h.smtp_server(tls_context=server_ctx, require_starttls=True) as (inbox, port):
        config, db = setup(port, "starttls", f'username = "digest-bot"\nca_file = "{pem}"',
                           env=PASSWORD_ENV)
        result = digest.send_week(db, config, Week.parse(h.WEEK, UTC_ZONE), now=h.NOW)
    assert result.status == "sent", result.error
    assert inbox.logins == ["digest-bot"]
    assert [tls for _, _, tls in inbox.messages] == [True]


def test_smtps_against_a_trusted_self_signed_certificate(setup, ca):
    _, server_ctx, pem = ca
    # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS from the start.
    with h.smtp_server(ssl_context=server_ctx, auth_require_tls=False) as (inbox, port):
        config, db = setup(port, "ssl", f'username = "digest-bot"\nca_file = "{pem}"',
                           env=PASSWORD_ENV)
        result = digest.send_week(db, config, Week.parse(h.WEEK, UTC_ZONE), now=h.NOW)
    assert result.status == "sent", result.error
    assert inbox.logins == ["digest-bot"]
    assert [tls for _, _, tls in inbox.messages] == [True]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_the_default_context_refuses_the_self_signed_certificate(setup, ca, security):
    _, server_ctx, _ = ca
    server = {"starttls": {"tls_context": server_ctx, "require_starttls": True},
              "ssl": {"ssl_context": server_ctx}}[security]
    with h.smtp_server(**server) as (inbox, port):
        config, db = setup(port, security)
        result = digest.send_week(db, config, Week.parse(h.WEEK, UTC_ZONE), now=h.NOW)
    assert result.status == "failed"
    assert "TLS certificate of 127.0.0.1" in result.error and "not trusted" in result.error
    assert inbox.messages == [] and outbox(db)["status"] == "failed"


def test_an_explicit_context_can_trust_the_test_ca(setup, ca):
    authority, server_ctx, _ = ca
    client_ctx = ssl.create_default_context()
    authority.configure_trust(client_ctx)
    with h.smtp_server(ssl_context=server_ctx) as (inbox, port):
        config, db = setup(port, "ssl")
        assert digest.send_due(db, config, h.NOW, context=client_ctx) == 2
    assert len(inbox.messages) == 2


def test_a_wrong_password_is_a_recorded_failure(setup, ca):
    _, server_ctx, pem = ca
    with h.smtp_server(tls_context=server_ctx, require_starttls=True) as (inbox, port):
        config, db = setup(port, "starttls", f'username = "digest-bot"\nca_file = "{pem}"',
                           env={"MONITOR_SMTP_PASSWORD": "wrong"})
        result = digest.send_week(db, config, Week.parse(h.WEEK, UTC_ZONE), now=h.NOW)
    assert result.status == "failed" and "refused the login as 'digest-bot': 535" in result.error
    assert "wrong" not in result.error and inbox.messages == []


def test_starttls_required_but_not_offered(setup):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port, "starttls")
        result = digest.send_week(db, config, Week.parse(h.WEEK, UTC_ZONE), now=h.NOW)
    assert result.status == "failed" and "does not offer STARTTLS" in result.error
    assert inbox.messages == []


def test_no_password_in_clear_to_a_remote_server(setup):
    config, db = setup(25, "none", 'username = "digest-bot"', env=PASSWORD_ENV)
    remote = dataclasses.replace(config, smtp=dataclasses.replace(config.smtp,
                                                                  host="mail.example.org"))
    result = digest.send_week(db, remote, Week.parse(h.WEEK, UTC_ZONE), now=h.NOW)
    assert result.status == "failed" and "without TLS" in result.error


# --- the command -----------------------------------------------------------------------------

def test_cli_preview_writes_html_and_sends_nothing(setup, tmp_path):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        out = tmp_path / "preview.html"
        result = CliRunner().invoke(cli, ["digest", "--config", str(config.path), "--week",
                                          h.WEEK, "--preview", str(out)])
        assert result.exit_code == 0, result.output
        assert f"Wrote the digest of {h.WEEK} to {out}" in result.output
        html = out.read_text()
        assert "Week 2025-W25" in html and 'src="data:image/png;base64,' in html
        assert_inert(html)
        text = CliRunner().invoke(cli, ["digest", "--config", str(config.path), "--week",
                                        h.WEEK])
        assert text.exit_code == 0 and "TOP FLAGGED ITEMS" in text.output
    assert inbox.messages == [] and store.digest_rows(db) == []


def test_cli_send_then_send_again(setup):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        args = ["digest", "--send", "--week", h.WEEK, "--config", str(config.path)]
        first = CliRunner().invoke(cli, [*args, "--to", "me@example.org"])
        assert first.exit_code == 0, first.output
        assert "Sent the digest of 2025-W25 to me@example.org" in first.output
        second = CliRunner().invoke(cli, args)
        assert second.exit_code == 0 and "was sent at" in second.output
        third = CliRunner().invoke(cli, [*args, "--resend"])
        assert third.exit_code == 0 and "Sent the digest" in third.output
    assert [r for r, _, _ in inbox.messages] == [
        ["me@example.org"], ["analysts@example.org", "lead@example.org"]]
    ids = {h.parse(raw)["Message-ID"] for _, raw, _ in inbox.messages}
    assert len(ids) == 2 and outbox(db)["message_id"] in ids
    assert outbox(db)["recipients"] == "analysts@example.org, lead@example.org"


@pytest.mark.parametrize(("args", "message"), [
    (["--week", "2025-W60", "--send"], "--week: '2025-W60': 2025 has no week 60"),
    (["--week", "2099-W01", "--send"], "week 2099-W01 is not over until"),
    (["--send", "--to", "not an address"], "--to: 'not an address' is not an email address"),
    (["--to", "a@example.org"], "--to and --resend go with --send"),
    (["--send", "--preview", "x.html"], "use either --preview FILE or --send"),
])
def test_cli_mistakes_are_one_line(setup, args, message):
    config, _ = setup()
    result = CliRunner().invoke(cli, ["digest", "--config", str(config.path), *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_send_failure_is_one_line_and_recorded(setup):
    config, db = setup(h.free_port())
    result = CliRunner().invoke(cli, ["digest", "--send", "--week", h.WEEK,
                                      "--config", str(config.path)])
    assert result.exit_code == 1
    assert "was not sent: cannot reach SMTP server" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert outbox(db)["status"] == "failed"


def test_templates_ship_inside_the_package():
    from importlib.resources import files

    templates = files("monitor") / "templates"
    assert (templates / "digest.html.j2").is_file() and (templates / "digest.txt.j2").is_file()
