"""Security: secrets stay out of every output, the database is private, hostile text is inert
in the digest and in email headers, and only http(s) URLs are ever fetched.

The secrets test runs the real command line in subprocesses, with the secrets in the
environment and debug logging on, along paths that fail because of those secrets (Reddit
refuses the client secret, the SMTP server refuses the password), then searches every
output, the whole database and every file monitor wrote.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from monitor import digest, pipeline, store
from monitor.config import ConfigError
from monitor.digest_data import Week
from monitor.intel import notify
from monitor.timeutil import iso

from .. import digest_helpers as h
from ..reddit_fake import FakeReddit
from .test_feed_faults import LIMITS

REDDIT_SECRET = "rs-8f3K2qZx7-not-the-right-one"
SMTP_SECRET = "smtp-Q9x7Lm-wrong password"
HOSTILE_TITLE = ("Evil\r\nBcc: victim@evil.example\r\nX-Injected: 1\r\n\r\n"
                 "<script>alert('x')</script> mirror list")
HOSTILE_MARKET = "Evil\r\nBcc: victim@evil.example <script>"


@contextmanager
def recorded(ledger, name: str) -> Iterator[None]:
    """Record the fault in the ledger: survived if the block's checks all pass."""
    try:
        yield
    except BaseException:
        ledger.record(name, survived=False)
        raise
    ledger.record(name, survived=True)


def monitor(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def encodings(secret: str, *, user: str, client_id: str) -> dict[str, str]:
    """The secret as it may leak: plain, URL-quoted, and as the protocols carry it."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return {"plain": secret, "quoted": quote(secret), "quoted+": quote(secret, safe=""),
            "base64": b64(secret), "AUTH PLAIN": b64(f"\0{user}\0{secret}"),
            "Basic": b64(f"{client_id}:{secret}")}


def test_secrets_never_appear_in_logs_runs_errors_or_status(tmp_path, ledger, monkeypatch,
                                                           local_server):
    attempts: list[tuple[str, str]] = []

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        attempts.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=False, handled=False)

    monkeypatch.setattr(h.Inbox, "authenticate", authenticate)
    local_server.expect_request("/feed").respond_with_data("<html>down</html>", status=503)
    with FakeReddit() as fake, h.smtp_server(auth_require_tls=False) as (_, port):
        fake.add_subreddit("darknet")
        fake.add_posts("darknet", 3)
        config = tmp_path / "config.toml"
        config.write_text(
            '[database]\npath = "data/monitor.db"\n' + LIMITS
            + f'[[feeds]]\nname = "news"\nurl = "{local_server.url_for("/feed")}"\n'
            f'[reddit]\nsubreddits = ["darknet"]\ncomments = false\n'
            f'oauth_url = "{fake.url}"\nreddit_url = "{fake.url}"\n'
            '[digest]\nrecipients = ["analysts@example.org"]\nsender = "monitor@example.org"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'username = "digest-bot"\ntimeout = "5s"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env.update(MONITOR_REDDIT_CLIENT_ID=fake.client_id,
                   MONITOR_REDDIT_CLIENT_SECRET=REDDIT_SECRET,
                   MONITOR_SMTP_PASSWORD=SMTP_SECRET, MONITOR_CONFIG=str(config))
        runs = {
            "collect": monitor(["collect", "-vv"], env, tmp_path),
            "run --once": monitor(["run", "--once", "-vv"], env, tmp_path),
            "digest --send": monitor(["digest", "--send", "--week", "2025-W25", "-vv"], env,
                                     tmp_path),
            "status": monitor(["status", "-vv"], env, tmp_path),
            "report": monitor(["report"], env, tmp_path),
        }
        token_requests = [r for r in fake.requests if r.method == "POST"]

    # The failing paths did run, with the secrets in use.
    assert "Reddit refused the credentials" in runs["collect"].stdout
    assert ("digest-bot", SMTP_SECRET) in attempts
    assert "refused the login as 'digest-bot': 535" in runs["digest --send"].stderr
    assert runs["digest --send"].returncode == 1 and runs["status"].returncode == 0
    basic = base64.b64encode(f"{fake.client_id}:{REDDIT_SECRET}".encode()).decode()
    assert token_requests and token_requests[0].headers["Authorization"] == f"Basic {basic}"

    # Everything monitor printed, stored or wrote.
    outputs = {f"{name} {stream}": getattr(done, stream) for name, done in runs.items()
               for stream in ("stdout", "stderr")}
    db_path = tmp_path / "data" / "monitor.db"
    conn = sqlite3.connect(db_path)
    outputs["database dump"] = "\n".join(conn.iterdump())
    conn.close()
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != config:
            outputs[f"file {path.relative_to(tmp_path)}"] = path.read_bytes().decode(
                "utf-8", "replace")
    assert "database dump" in outputs and len(outputs) > 10
    leaks = []
    for secret, user in ((REDDIT_SECRET, fake.client_id), (SMTP_SECRET, "digest-bot")):
        for how, form in encodings(secret, user=user, client_id=fake.client_id).items():
            leaks += [f"{how} {secret!r} in {where}" for where, text in outputs.items()
                      if form in text]
    ledger.record("secrets in outputs, runs, errors and files", survived=not leaks)
    assert not leaks, leaks
    # The errors are there, in words, without the secret.
    assert "refused the login as ''digest-bot''" in outputs["database dump"]  # SQL quoting
    assert "MONITOR_REDDIT_CLIENT_SECRET" in outputs["database dump"]


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_database_and_its_wal_and_shm_are_private(tmp_path, ledger, umask):
    old = os.umask(umask)
    try:
        db = store.open_db(tmp_path / "new" / "monitor.db")
        store.start_run(db, "probe", h.NOW)  # a write: the -wal and -shm files exist now
        modes = {p.name: stat.S_IMODE(p.stat().st_mode)
                 for p in (tmp_path / "new").iterdir() if p.name.startswith("monitor.db")}
        db.close()
    finally:
        os.umask(old)
    assert set(modes) == {"monitor.db", "monitor.db-wal", "monitor.db-shm"}
    private = all(mode in (0o600, 0o640) for mode in modes.values())
    ledger.record(f"database file modes (umask {umask:03o})", survived=private)
    assert private, {name: oct(mode) for name, mode in modes.items()}


def test_monitor_init_creates_a_private_database(tmp_path, ledger):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    done = monitor(["init", "--config", str(tmp_path / "config.toml")], env, tmp_path)
    assert done.returncode == 0, done.stderr
    mode = stat.S_IMODE((tmp_path / "data" / "monitor.db").stat().st_mode)
    ledger.record("monitor init database mode", survived=mode in (0o600, 0o640))
    assert mode in (0o600, 0o640), oct(mode)


# --- hostile text in the digest and in email headers ---------------------------------------

def header_block(raw: bytes) -> str:
    """The header section with folded lines joined: one line per header."""
    block = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii", "replace")
    return block.replace("\n ", " ").replace("\n\t", " ")


def assert_headers_clean(raw: bytes, rcpts: list[str], expected_rcpts: list[str]) -> None:
    headers = header_block(raw)
    lines = headers.split("\n")
    names = [line.split(":", 1)[0].lower() for line in lines if line and line[0] not in " \t"]
    assert "bcc" not in names and "x-injected" not in names, names
    assert names.count("subject") == 1 and names.count("to") == 1
    # The hostile text may only be words inside the one-line Subject.
    assert all("victim@evil.example" not in line or line.startswith("Subject: ")
               for line in lines), headers
    assert rcpts == expected_rcpts


def hostile_week(db) -> None:
    h.realistic_week(db)
    rows = [
        h.Row("hostile-1", "reddit:r/darknet", "reddit_post", "2025-06-18T09:00", HOSTILE_TITLE,
              "<img src=x onerror=alert(1)> <a href=\"javascript:alert(2)\">login</a> "
              "<iframe src=\"https://evil.example/\"></iframe>", 0.97,
              ((HOSTILE_MARKET, "successor"), ("Archetyp Market", "predecessor")),
              url="javascript:alert(document.cookie)"),
        h.Row("hostile-2", "darknetlive", "news", "2025-06-19T09:00",
              "Mirror\u202e list\u200b \x1b[31m", "body", 0.91, ((HOSTILE_MARKET, "mention"),),
              url="https://evil.example/\r\nX-Injected: 2"),
    ]
    h.add_rows(db, rows)
    db["markets"].upsert({"name": HOSTILE_MARKET, "aliases": "[]", "status": "active",
                          "predecessor": "Archetyp Market", "launched_at": None,
                          "down_at": None, "first_seen_at": "2025-06-18T09:00:00+00:00",
                          "origin": "discovered"}, pk="name")
    store.record_failure(db, "darknetlive", h.NOW - timedelta(hours=1),
                         "HTTP 500 <img src=x onerror=alert(3)>\r\nBcc: victim@evil.example",
                         next_attempt_at=h.NOW + timedelta(hours=1))


def test_hostile_titles_urls_and_names_are_inert_in_the_digest(write_config, ledger):
    with h.smtp_server() as (inbox, port):
        config = write_config(
            '[digest]\nrecipients = ["analysts@example.org"]\nsender = "monitor@example.org"\n'
            'subject = "monitor digest {week}\\r\\nBcc: victim@evil.example"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n')
        db = store.open_db(config.db_path)
        hostile_week(db)
        result = digest.send_week(db, config, Week.parse(h.WEEK, ZoneInfo("UTC")), now=h.NOW)
        db.close()
    with recorded(ledger, "hostile titles, links and names in the digest"):
        assert result.status == "sent", result.error
        (rcpts, raw, _), = inbox.messages
        assert_headers_clean(raw, rcpts, ["analysts@example.org"])
        msg = h.parse(raw)
        assert msg["Subject"] == "monitor digest 2025-W25 Bcc: victim@evil.example"
        page = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        tags = h.Tags(page)
        assert "<script" not in page.lower() and "<iframe" not in page.lower()
        assert "&lt;script&gt;" in page  # shown as text, not run
        assert "Evil Bcc: victim@evil.example X-Injected: 1" in text  # one line, as text
        hrefs = tags.attr("a", "href")
        assert hrefs and all(href.startswith(("https://", "http://")) for href in hrefs)
        assert not any("javascript:" in v.lower() for v in hrefs + tags.attr("img", "src"))
        assert not [t for t, attrs in tags.tags if any(k.startswith("on") for k in attrs)]
        assert not any("\r" in v or "\n" in v or "X-Injected" in v for v in hrefs)
        assert "\x1b" not in text and "\u202e" not in text and "\u202e" not in page


def test_a_hostile_market_name_in_an_alert_mail_injects_no_header(write_config, ledger):
    with h.smtp_server() as (inbox, port):
        config = write_config(
            '[digest]\nrecipients = ["analysts@example.org"]\nsender = "monitor@example.org"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            '[alerts]\nemail = true\n')
        db = store.open_db(config.db_path)
        hostile_week(db)
        now = h.NOW
        for market in (HOSTILE_MARKET, "Archetyp Reborn\nBcc: victim@evil.example"):
            store.save_alert(db, market, "new-rising", now - timedelta(minutes=5),
                             {"count": 9, "median": 0, "mad": 0, "z": 9.0, "items": []})
        with recorded(ledger, "hostile market name in an alert mail header"):
            sent = notify.send_alerts(db, config, now)
            pending = store.unnotified_alerts(db, iso(now - timedelta(days=1)))
            db.close()
            assert sent == 2 and pending == []
            (rcpts, raw, _), = inbox.messages
            assert_headers_clean(raw, rcpts, ["analysts@example.org"])
            assert "\n" not in h.parse(raw)["Subject"]


# --- only http(s) -------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://example.org/feed.xml", "javascript:alert(1)",
    "data:application/rss+xml,<rss/>", "gopher://example.org/", "sftp://example.org/f",
    "http:/missing-slash", "//example.org/feed", "example.org/feed", "mailto:a@example.org",
    "HTTP://", "https://exa mple.org/", "https://example.org/\r\nHost: evil",
])
def test_config_feed_urls_must_be_http_or_https(write_config, ledger, url):
    with pytest.raises(ConfigError, match=r"feeds\[0\]\.url"):
        write_config(f'[[feeds]]\nname = "a"\nurl = "{url.encode("unicode_escape").decode()}"\n')
    ledger.record(f"config feed URL {url[:20]!r}", survived=True)


def test_uppercase_http_is_still_http(write_config):
    assert write_config('[[feeds]]\nname = "a"\nurl = "HTTPS://Example.org/feed"\n').feeds


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/feed",
                                    "gopher://127.0.0.1:70/"])
def test_a_redirect_to_another_scheme_is_not_followed(local_server, write_config, ledger,
                                                      target):
    local_server.expect_request("/feed").respond_with_data(
        "", status=302, headers={"Location": target})
    config = write_config(LIMITS + f'[[feeds]]\nname = "a"\nurl = "{local_server.url_for("/feed")}"\n')
    db = store.open_db(config.db_path)
    sources = pipeline.build_sources(config)
    pipeline.register(db, sources)
    (result,) = pipeline.collect(db, sources, force=True)
    stored = store.count_items(db)
    dump = "\n".join(db.conn.iterdump())
    db.close()
    ok = result.status == "error" and stored == 0 and "root:x:0:0" not in dump
    ledger.record(f"redirect to {target.split(':')[0]}", survived=ok)
    assert result.status == "error", result
    assert stored == 0 and "root:x:0:0" not in dump
    assert "internal error" not in result.error
