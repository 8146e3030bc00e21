"""SMTP under faults: connection refused, 4xx, 5xx on RCPT, TLS failures. Each time the
digest stays in the outbox, the next attempt after its backoff sends it, and it goes out once.

The digest is the realistic week of tests/digest_helpers.py (2025-W25, with W24 due as a
catch-up), sent by `digest.send_due`, what the daemon's weekly job calls, to aiosmtpd on
127.0.0.1.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
import trustme

from monitor import digest, store

from .. import digest_helpers as h

WEEKS = ("2025-W24", "2025-W25")


@pytest.fixture
def setup(write_config):
    """A config pointing at `port` (with optional [smtp] lines) and the realistic week."""
    opened = []

    def make(port: int, security: str = "none", extra: str = ""):
        config = write_config(
            '[digest]\nrecipients = ["analysts@example.org", "lead@example.org"]\n'
            'sender = "monitor@example.org"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
            f'timeout = "5s"\n{extra}\n')
        db = store.open_db(config.db_path)
        opened.append(db)
        if not store.count_items(db):
            h.realistic_week(db)
        return config, db

    yield make
    for db in opened:
        db.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_ctx)
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return server_ctx, pem


def delivered(inbox: h.Inbox) -> Counter:
    return Counter(h.parse(raw)["X-Monitor-Week"] for _, raw, _ in inbox.messages)


def assert_pending(db, error: str) -> dict:
    """The first due week failed, is kept with its error and a retry time, and nothing is
    marked sent."""
    rows = store.digest_rows(db)
    assert rows, "no outbox row"
    assert all(r["status"] in ("pending", "failed") and r["sent_at"] is None for r in rows)
    failed = rows[0]
    assert failed["week"] == WEEKS[0] and failed["status"] == "failed"
    assert error in failed["last_error"], failed["last_error"]
    assert failed["next_attempt_at"] > h.NOW.isoformat()
    return failed


def recover(ledger, name: str, db, config, inbox: h.Inbox, first: dict) -> None:
    """After the backoff the daemon's job sends both weeks; later runs send nothing more."""
    retry = h.NOW + timedelta(minutes=10)
    assert digest.send_due(db, config, retry) == 2
    for later in (retry + timedelta(minutes=5), retry + timedelta(days=1)):
        assert digest.send_due(db, config, later) == 0
    counts = delivered(inbox)
    lost = sum(1 for week in WEEKS if counts[week] == 0)
    duplicates = sum(max(0, counts[week] - 1) for week in WEEKS)
    rows = {r["week"]: r for r in store.digest_rows(db)}
    survived = all(rows[w]["status"] == "sent" for w in WEEKS)
    ledger.record(name, survived=survived and not lost and not duplicates, lost=lost,
                  duplicates=duplicates)
    assert lost == 0 and duplicates == 0, counts
    assert survived
    # The retried week kept its Message-ID: a copy delivered twice would fold into one.
    sent = {h.parse(raw)["X-Monitor-Week"]: h.parse(raw)["Message-ID"]
            for _, raw, _ in inbox.messages}
    assert sent[WEEKS[0]] == first["message_id"] == rows[WEEKS[0]]["message_id"]
    assert rows[WEEKS[0]]["attempts"] == 2 and rows[WEEKS[1]]["attempts"] == 1


def test_connection_refused(setup, ledger):
    port = h.free_port()  # nothing listens yet
    config, db = setup(port)
    assert digest.send_due(db, config, h.NOW) == 0
    first = assert_pending(db, "Connection refused")
    with h.smtp_server(port) as (inbox, _):
        recover(ledger, "SMTP connection refused", db, config, inbox, first)


@pytest.mark.parametrize("stage", ["RCPT", "DATA"])
def test_a_4xx_answer(setup, ledger, stage):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        if stage == "DATA":
            inbox.fail_with = "451 4.3.0 Temporary local problem, try later"
        else:
            inbox.handle_RCPT = refuse_rcpt("450 4.2.1 Mailbox busy, try later")
        assert digest.send_due(db, config, h.NOW) == 0
        first = assert_pending(db, "45")
        assert inbox.messages == []
        inbox.fail_with = None
        if stage == "RCPT":
            del inbox.handle_RCPT
        recover(ledger, f"SMTP 4xx on {stage}", db, config, inbox, first)


def refuse_rcpt(reply: str, only: str | None = None) -> Callable:
    """An aiosmtpd RCPT hook refusing every recipient (or only `only`) with `reply`."""

    async def handle_RCPT(server, session, envelope, address, rcpt_options):
        if only is None or address == only:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    return handle_RCPT


def test_5xx_on_every_rcpt(setup, ledger):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        inbox.handle_RCPT = refuse_rcpt("550 5.1.1 Recipient address rejected: unknown user")
        assert digest.send_due(db, config, h.NOW) == 0
        first = assert_pending(db, "refused every recipient")
        assert "550" in first["last_error"] and inbox.messages == []
        # The relay's operator fixes the mailboxes; the next attempt goes through.
        del inbox.handle_RCPT
        recover(ledger, "SMTP 5xx on RCPT", db, config, inbox, first)


def test_5xx_on_one_rcpt_sends_to_the_others_once(setup, ledger):
    with h.smtp_server() as (inbox, port):
        config, db = setup(port)
        inbox.handle_RCPT = refuse_rcpt("550 5.1.1 unknown user", only="lead@example.org")
        assert digest.send_due(db, config, h.NOW) == 2
        assert digest.send_due(db, config, h.NOW + timedelta(hours=1)) == 0
    rows = {r["week"]: r for r in store.digest_rows(db)}
    counts = delivered(inbox)
    duplicates = sum(max(0, counts[w] - 1) for w in WEEKS)
    lost = sum(1 for w in WEEKS if counts[w] == 0)
    ledger.record("SMTP 5xx on one RCPT", survived=not lost and not duplicates,
                  lost=lost, duplicates=duplicates)
    assert lost == 0 and duplicates == 0
    assert [rcpts for rcpts, _, _ in inbox.messages] == [["analysts@example.org"]] * 2
    for week in WEEKS:
        assert rows[week]["status"] == "sent"
        assert rows[week]["recipients"] == "analysts@example.org"
        assert "lead@example.org: 550" in rows[week]["last_error"]


def test_an_untrusted_certificate(setup, ledger, ca):
    server_ctx, pem = ca
    with h.smtp_server(tls_context=server_ctx, require_starttls=True) as (inbox, port):
        config, db = setup(port, "starttls")
        assert digest.send_due(db, config, h.NOW) == 0
        first = assert_pending(db, "not trusted")
        assert inbox.messages == []
        # The operator names the relay's CA; the same outbox row goes out.
        config, db = setup(port, "starttls", f'ca_file = "{pem}"')
        recover(ledger, "SMTP TLS certificate not trusted", db, config, inbox, first)


class BrokenTls:
    """An SMTP server that offers STARTTLS, agrees to it, then answers the TLS handshake
    with plain text: the handshake fails on the client's side."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sessions = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                self.sessions += 1
                conn.sendall(b"220 mx.test ESMTP\r\n")
                for line in lines:
                    verb = line.split(b" ")[0].strip().upper()
                    if verb == b"EHLO":
                        conn.sendall(b"250-mx.test\r\n250 STARTTLS\r\n")
                    elif verb == b"STARTTLS":
                        conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                        conn.sendall(b"HTTP/1.1 400 this is not TLS\r\n\r\n")
                        break
                    else:
                        conn.sendall(b"503 5.5.1 bad sequence\r\n")

    def close(self) -> None:
        # shutdown() wakes the accept() blocked in the thread; close() alone would not.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_a_failed_tls_handshake(setup, ledger, ca):
    server_ctx, pem = ca
    broken = BrokenTls()
    try:
        config, db = setup(broken.port, "starttls", f'ca_file = "{pem}"')
        assert digest.send_due(db, config, h.NOW) == 0
        first = assert_pending(db, "TLS with 127.0.0.1")
        assert broken.sessions == 1
    finally:
        broken.close()
    # The relay is repaired on the same port.
    with h.smtp_server(broken.port, tls_context=server_ctx, require_starttls=True) as (
            inbox, _):
        recover(ledger, "SMTP TLS handshake failure", db, config, inbox, first)
    assert [tls for _, _, tls in inbox.messages] == [True, True]
