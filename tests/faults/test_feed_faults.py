"""Hostile and broken feeds: each is recorded as an error (or survived), the good feed beside it
is collected in full, and a second pass stores nothing twice."""

from __future__ import annotations

import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug import Request, Response

from monitor import pipeline, store

LIMITS = """
[http]
connect_timeout = "2s"
read_timeout = "2s"
deadline = "4s"
retries = 1
max_bytes = 10485760
per_host_delay = "0.01s"
"""


def rss(entries: int, start: int = 0, *, ids: bool = True, dates: bool = True) -> bytes:
    parts = []
    for i in range(start, start + entries):
        guid = f"<guid isPermaLink='false'>g{i}</guid>" if ids else ""
        date = "<pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate>" if dates else ""
        parts.append(f"<item>{guid}<title>Story {i}</title><description>Body of story {i}"
                     f"</description>{date}</item>")
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>f"
            "</title>" + "".join(parts) + "</channel></rss>").encode()


GOOD = rss(5, 1000)


def collect_pass(config) -> dict:
    db = store.open_db(config.db_path)
    sources = pipeline.build_sources(config)
    pipeline.register(db, sources)
    results = {r.name: r for r in pipeline.collect(db, sources, force=True)}
    db.close()
    return results


def counts(config) -> tuple[int, int]:
    db = store.open_db(config.db_path)
    total = store.count_items(db)
    distinct = db.execute("SELECT count(DISTINCT id) FROM items").fetchone()[0]
    db.close()
    return total, distinct


def run_fault(name, server, write_config, ledger, url: str, *, expect_error: str | None,
              expect_items: int | None = None):
    """Collect the hostile feed beside a good one, twice; check and record the outcome."""
    server.expect_request("/good").respond_with_data(GOOD, content_type="application/rss+xml")
    config = write_config(LIMITS + f'[[feeds]]\nname = "good"\nurl = "{server.url_for("/good")}"\n'
                          f'[[feeds]]\nname = "hostile"\nurl = "{url}"\n')
    first = collect_pass(config)
    after_first = counts(config)
    second = collect_pass(config)
    total, distinct = counts(config)
    db = store.open_db(config.db_path)
    good_items = db.execute("SELECT count(*) FROM items WHERE source = 'good'").fetchone()[0]
    hostile_items = db.execute(
        "SELECT count(*) FROM items WHERE source = 'hostile'").fetchone()[0]
    state = store.source_state(db, "hostile")
    ok_check = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    lost = 5 - good_items
    duplicates = total - distinct + (total - after_first[0])
    survived = first["good"].status == "new" and second["good"].status in ("new", "not_modified")
    if expect_error:
        survived = survived and first["hostile"].status == "error" and \
            expect_error in (state["last_error"] or "")
    if expect_items is not None:
        survived = survived and hostile_items == expect_items
        lost += max(0, expect_items - hostile_items)
    survived = survived and ok_check == "ok"
    ledger.record(name, survived=survived, lost=lost, duplicates=duplicates)
    assert ok_check == "ok"
    assert lost == 0 and duplicates == 0
    if expect_error:
        assert first["hostile"].status == "error", first["hostile"]
        assert expect_error in state["last_error"], state["last_error"]
    if expect_items is not None:
        assert hostile_items == expect_items
    assert survived
    return config


def test_a_50_mb_body_is_cut_at_the_cap(local_server, write_config, ledger):
    sent = {"bytes": 0}

    def huge(_request: Request) -> Response:
        def body() -> Iterator[bytes]:
            chunk = b"<!-- " + b"x" * 65526 + b" -->"
            yield b"<?xml version='1.0'?><rss version='2.0'><channel>"
            for _ in range(800):  # ~50 MB, streamed without a Content-Length
                sent["bytes"] += len(chunk)
                yield chunk
        return Response(body(), content_type="application/rss+xml")

    local_server.expect_request("/huge").respond_with_handler(huge)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run_fault("50 MB body", local_server, write_config, ledger, local_server.url_for("/huge"),
              expect_error="too large")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 60


def test_a_declared_50_mb_body_is_refused_before_reading(local_server, write_config, ledger):
    raw = RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                    b"Content-Length: 52428800\r\n\r\n<rss>")
    try:
        run_fault("declared 50 MB", local_server, write_config, ledger, raw.url,
                  expect_error="too large")
    finally:
        raw.close()


def test_a_server_that_drips_one_byte_a_second_times_out(local_server, write_config, ledger):
    def drip(_request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for _ in range(120):
                yield b" "
                time.sleep(1)
        return Response(body(), content_type="application/rss+xml")

    local_server.expect_request("/drip").respond_with_handler(drip)
    started = time.monotonic()
    run_fault("drip", local_server, write_config, ledger, local_server.url_for("/drip"),
              expect_error="timed out")
    assert time.monotonic() - started < 30


class RawServer:
    """Answers every connection with fixed bytes, then closes it; with reset=True it aborts
    the connection (RST) instead of closing it cleanly."""

    def __init__(self, payload: bytes, *, reset: bool = False) -> None:
        self.payload, self.reset = payload, reset
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.payload)
                if self.reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.sock.close()


def test_a_connection_reset_mid_body(local_server, write_config, ledger):
    body = rss(50)
    reset = RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                      + body[: len(body) // 2], reset=True)
    try:
        run_fault("connection reset", local_server, write_config, ledger, reset.url,
                  expect_error="connection")
    finally:
        reset.close()


def test_invalid_utf8_is_survived(local_server, write_config, ledger):
    body = rss(3).replace(b"Story 1", b"Story \xff\xfe 1 \xc3\x28")
    local_server.expect_request("/bad-utf8").respond_with_data(
        body, content_type="application/rss+xml; charset=utf-8")
    run_fault("invalid UTF-8", local_server, write_config, ledger,
              local_server.url_for("/bad-utf8"), expect_error=None, expect_items=3)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
<!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
<!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<rss version="2.0"><channel><title>t</title>
<item><guid>laughs</guid><title>Laughs &i;</title><description>&i;</description></item>
</channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title>
<item><guid>xxe</guid><title>Leak &secret; here</title><description>x</description></item>
</channel></rss>"""


@pytest.mark.parametrize("name,body", [("billion laughs", BILLION_LAUGHS), ("XXE", XXE)])
def test_entity_attacks_are_not_expanded(local_server, write_config, ledger, name, body):
    local_server.expect_request("/entities").respond_with_data(
        body, content_type="application/rss+xml")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = run_fault(name, local_server, write_config, ledger,
                       local_server.url_for("/entities"), expect_error=None)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 50
    db = store.open_db(config.db_path)
    for row in db.query("SELECT title, body FROM items WHERE source = 'hostile'"):
        text = (row["title"] or "") + (row["body"] or "")
        assert len(text) < 1000
        assert "root:" not in text


@pytest.mark.parametrize("name,body,content_type", [
    ("HTML page", b"<!doctype html><html><head><title>Welcome</title></head><body><p>Hi</p>"
                  b"</body></html>", "text/html"),
    ("empty 200", b"", "application/rss+xml"),
])
def test_documents_that_are_not_feeds(local_server, write_config, ledger, name, body,
                                      content_type):
    local_server.expect_request("/notfeed").respond_with_data(body, content_type=content_type)
    run_fault(name, local_server, write_config, ledger, local_server.url_for("/notfeed"),
              expect_error="not a feed")


def test_a_301_is_followed_and_logged(local_server, write_config, ledger, caplog):
    local_server.expect_request("/moved").respond_with_data(
        "", status=301, headers={"Location": local_server.url_for("/new-home")})
    local_server.expect_request("/new-home").respond_with_data(rss(4))
    run_fault("301", local_server, write_config, ledger, local_server.url_for("/moved"),
              expect_error=None, expect_items=4)
    assert "moved permanently" in caplog.text


def test_a_redirect_loop(local_server, write_config, ledger):
    local_server.expect_request("/a").respond_with_data(
        "", status=302, headers={"Location": local_server.url_for("/b")})
    local_server.expect_request("/b").respond_with_data(
        "", status=302, headers={"Location": local_server.url_for("/a")})
    run_fault("redirect loop", local_server, write_config, ledger, local_server.url_for("/a"),
              expect_error="redirect loop")


def test_entries_without_ids_or_dates(local_server, write_config, ledger):
    local_server.expect_request("/bare").respond_with_data(rss(20, ids=False, dates=False))
    run_fault("no ids or dates", local_server, write_config, ledger,
              local_server.url_for("/bare"), expect_error=None, expect_items=20)


def test_ten_thousand_entries_in_one_feed(local_server, write_config, ledger):
    local_server.expect_request("/big").respond_with_data(rss(10_000))
    run_fault("10,000 entries", local_server, write_config, ledger,
              local_server.url_for("/big"), expect_error=None, expect_items=10_000)
