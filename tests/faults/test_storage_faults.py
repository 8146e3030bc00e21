"""Storage under faults: readers beside the writer, a second process holding the write lock, a
full or read-only database, and kill -9 inside the write transaction.

Each case collects a real feed from a local server through the real pipeline, checks
SQLite's integrity afterwards, and counts what was lost and what was stored twice.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug import Request, Response

from monitor import pipeline, store
from monitor.config import Config, load_config

from ..daemon_helpers import query, wait_for
from .test_feed_faults import LIMITS, rss

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO meta (key, value) VALUES ('fault.holder', 'wrote while holding')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""

# `monitor run --once` (the daemon's collection path) paused inside the write transaction of
# record_fetch, after its rows are written and before COMMIT, until the test kills it.
PAUSED_DAEMON = """
import sys
from monitor import daemon, store
from monitor.config import load_config

real = store._insert_new_items

def paused(*args, **kwargs):
    ids = real(*args, **kwargs)
    print(f"inside {len(ids)}", flush=True)
    sys.stdin.readline()
    return ids

store._insert_new_items = paused
daemon.Daemon(load_config(sys.argv[1]), make_hook=lambda config: None,
              signals=False).run_once()
"""

RESUME = """
import sys
from monitor import daemon
from monitor.config import load_config

print(daemon.Daemon(load_config(sys.argv[1]), make_hook=lambda config: None,
                    signals=False).run_once().text())
"""


def feed_config(server, write_config, path: str = "/feed", entries: int = 200,
                start: int = 0, handler=None) -> Config:
    """A config with one feed, served by `server` (a fixed body, or `handler`)."""
    if handler is None:
        server.expect_request(path).respond_with_data(
            rss(entries, start), content_type="application/rss+xml")
    else:
        server.expect_request(path).respond_with_handler(handler)
    return write_config(LIMITS + f'[[feeds]]\nname = "news"\nurl = "{server.url_for(path)}"\n')


def collect_with(db, config: Config) -> pipeline.SourceResult:
    sources = pipeline.build_sources(config)
    pipeline.register(db, sources)
    (result,) = pipeline.collect(db, sources, force=True)
    return result


def collect_once(config: Config) -> pipeline.SourceResult:
    db = store.open_db(config.db_path)
    try:
        return collect_with(db, config)
    finally:
        db.close()


def tally(db_path: Path) -> tuple[int, int, str]:
    """(items, distinct ids, integrity_check) read from outside, as an analyst would."""
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM items"
                                       ).fetchone()
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        # FTS5's own consistency check raises if the index disagrees with the table.
        conn.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")
        return total, distinct, check
    finally:
        conn.close()


def settle(ledger, name: str, db_path: Path, expected: int, *, survived: bool = True) -> None:
    total, distinct, check = tally(db_path)
    lost = max(0, expected - distinct)
    duplicates = total - distinct
    ledger.record(name, survived=survived and check == "ok" and not lost and not duplicates,
                  lost=lost, duplicates=duplicates)
    assert check == "ok"
    assert lost == 0 and duplicates == 0, (total, distinct, expected)
    assert survived


@contextmanager
def lock_holder(db_path: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process holding SQLite's write lock (BEGIN IMMEDIATE) for `seconds`."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.wait(seconds + 30)


# --- readers beside the writer -------------------------------------------------------------

def test_a_long_read_transaction_and_the_writer_do_not_block_each_other(
        local_server, write_config, ledger, monkeypatch):
    config = feed_config(local_server, write_config, entries=50)
    assert collect_once(config).new == 50
    local_server.clear()
    config = feed_config(local_server, write_config, entries=150, start=50)

    # An analyst's session: a read transaction held open across the whole write.
    analyst = sqlite3.connect(config.db_path, timeout=0, isolation_level=None)
    analyst.execute("BEGIN")
    assert analyst.execute("SELECT count(*) FROM items").fetchone() == (50,)

    inside, release = threading.Event(), threading.Event()
    real = store._insert_new_items

    def paused(*args, **kwargs):
        ids = real(*args, **kwargs)
        inside.set()
        release.wait(30)
        return ids

    monkeypatch.setattr(store, "_insert_new_items", paused)
    result: list[pipeline.SourceResult] = []
    writer = threading.Thread(target=lambda: result.append(collect_once(config)))
    writer.start()
    assert inside.wait(30), "the writer never reached its transaction"

    # The write transaction is open with 150 rows in it: a new reader (busy timeout 0, so
    # any wait would be an error) reads at once and sees the last committed state.
    started = time.monotonic()
    fresh = sqlite3.connect(config.db_path, timeout=0)
    assert fresh.execute("SELECT count(*) FROM items").fetchone() == (50,)
    assert fresh.execute("SELECT count(*) FROM items_fts WHERE items_fts MATCH 'story'"
                         ).fetchone() == (50,)
    fresh.close()
    assert time.monotonic() - started < 1

    # The writer commits while the analyst's snapshot is still open.
    started = time.monotonic()
    release.set()
    writer.join(30)
    assert time.monotonic() - started < 5
    assert result and result[0].status == "new" and result[0].new == 150
    # The open transaction keeps its snapshot; a new one sees the write.
    assert analyst.execute("SELECT count(*) FROM items").fetchone() == (50,)
    analyst.execute("COMMIT")
    assert analyst.execute("SELECT count(*) FROM items").fetchone() == (200,)
    analyst.close()
    settle(ledger, "long read transaction beside the writer", config.db_path, 200)


# --- another process holds the write lock --------------------------------------------------

def hold_lock_while_fetching(db_path: Path, body: bytes, seconds: float, holders: list):
    """A feed handler that starts a lock holder and answers once it holds the lock, so the
    collector reaches its write transaction while the lock is taken."""

    def handler(_request: Request) -> Response:
        if not holders:
            proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path), str(seconds)],
                                    stdout=subprocess.PIPE, text=True)
            holders.append(proc)
            assert proc.stdout.readline().strip() == "locked"
        return Response(body, content_type="application/rss+xml")

    return handler


def test_the_collector_waits_for_a_write_lock_held_10_s(local_server, write_config, ledger):
    config = write_config(LIMITS)
    store.open_db(config.db_path).close()
    holders: list[subprocess.Popen] = []
    config = feed_config(local_server, write_config, handler=hold_lock_while_fetching(
        config.db_path, rss(300), 10, holders))

    started = time.monotonic()
    result = collect_once(config)
    took = time.monotonic() - started
    holders[0].wait(30)

    assert result.status == "new" and result.new == 300, result
    assert 8 < took < 30  # it waited for the other process, within the busy timeout
    # Both writes are there: the other process's and the collector's.
    assert query(config.db_path, "SELECT value FROM meta WHERE key = 'fault.holder'") == [
        ("wrote while holding",)]
    runs = query(config.db_path, "SELECT ok, items_new FROM runs WHERE job = 'collect:news'")
    assert runs == [(1, 300)]
    settle(ledger, "write lock held 10 s by another process", config.db_path, 300)


def test_a_lock_held_past_the_busy_timeout_is_an_error_and_nothing_is_lost(
        local_server, write_config, ledger, monkeypatch):
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 1000)
    config = write_config(LIMITS)
    store.open_db(config.db_path).close()
    holders: list[subprocess.Popen] = []
    config = feed_config(local_server, write_config, handler=hold_lock_while_fetching(
        config.db_path, rss(120), 6, holders))

    first = collect_once(config)
    holders[0].wait(30)
    assert first.status == "error" and first.error == "database: database is locked", first
    assert tally(config.db_path)[0] == 0
    # Nothing was committed, validators included: the next pass fetches and stores it all.
    second = collect_once(config)
    assert second.status == "new" and second.new == 120
    settle(ledger, "write lock held past the busy timeout", config.db_path, 120)


# --- a full disk ---------------------------------------------------------------------------

def test_a_full_database_is_a_clear_error_and_the_next_pass_catches_up(
        local_server, write_config, ledger):
    config = feed_config(local_server, write_config, entries=20)
    assert collect_once(config).new == 20
    local_server.clear()
    config = feed_config(local_server, write_config, entries=400, start=20)

    # SQLITE_FULL, as on a full disk: the file may not grow by a single page.
    db = store.open_db(config.db_path)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    full = collect_with(db, config)
    db.close()
    assert full.status == "error" and full.error == "database: database or disk is full"
    assert tally(config.db_path)[:2] == (20, 20)  # all or nothing
    state = query(config.db_path, "SELECT etag, last_success_at FROM sources WHERE "
                                  "name = 'news'")
    assert state[0][0] is None  # no validator kept for what was not stored

    # Space again: the next pass stores the whole feed.
    again = collect_once(config)
    assert again.status == "new" and again.new == 400
    settle(ledger, "database full", config.db_path, 420)


# --- a read-only database ------------------------------------------------------------------

def monitor_cli(config: Config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()",
                           *args, "--config", str(config.path)],
                          capture_output=True, text=True, timeout=60)


@contextmanager
def read_only(*paths: Path) -> Iterator[str]:
    """Make files and directories read-only for this process, whoever it runs as.

    root ignores permission bits, so as root the files are made immutable (chattr +i),
    which stops root too; otherwise they are chmod'ed. Yields the method used.
    """
    if os.geteuid() == 0:
        if not shutil.which("chattr"):
            pytest.skip("running as root without chattr: cannot make a file read-only")
        done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True)
        if done.returncode:
            pytest.skip(f"chattr +i is not permitted here: {done.stderr.decode().strip()}")
        try:
            yield "chattr +i"
        finally:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield "chmod"
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


def test_a_read_only_database_file_is_a_one_line_error(local_server, write_config, ledger):
    config = feed_config(local_server, write_config, entries=30)
    assert collect_once(config).new == 30
    local_server.clear()
    config = feed_config(local_server, write_config, entries=60, start=30)
    # The daemon left its -wal and -shm files behind (it was killed), so SQLite can open
    # the file read-only and only the first write fails.
    keeper = sqlite3.connect(config.db_path)
    keeper.execute("SELECT 1 FROM items LIMIT 1").fetchall()
    with read_only(config.db_path):
        collect = monitor_cli(config, "collect")
        status = monitor_cli(config, "status")
    keeper.close()

    assert collect.returncode == 1, collect.stderr
    assert "Traceback" not in collect.stderr
    lines = collect.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "read-only" in lines[-1], collect.stderr
    assert str(config.db_path) in lines[-1]
    # Reading still works: `monitor status` exits 0 and shows the sources.
    assert status.returncode == 0, status.stderr
    assert "news" in status.stdout and "(30 items)" in status.stdout
    assert tally(config.db_path)[:2] == (30, 30)

    again = monitor_cli(config, "collect")
    assert again.returncode == 0, again.stderr
    settle(ledger, "read-only database file", config.db_path, 60)


def test_a_read_only_directory_is_a_one_line_error(local_server, write_config, ledger):
    config = feed_config(local_server, write_config, entries=30)
    assert collect_once(config).new == 30
    folder = config.db_path.parent / "db"
    folder.mkdir()
    moved = folder / "monitor.db"
    config.db_path.rename(moved)
    config = write_config(f'[database]\npath = "{moved}"\n' + LIMITS +
                          f'[[feeds]]\nname = "news"\nurl = "{local_server.url_for("/feed")}"\n')
    with read_only(moved, folder):
        collect = monitor_cli(config, "collect")
    assert collect.returncode == 1
    assert "Traceback" not in collect.stderr
    line = collect.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: {moved}: cannot open the database") and "read-only" in line
    assert monitor_cli(config, "collect").returncode == 0
    settle(ledger, "read-only database directory", moved, 30)


def test_a_damaged_database_file_is_a_one_line_error(write_config, ledger):
    config = write_config(LIMITS)
    store.open_db(config.db_path).close()
    original = config.db_path.read_bytes()
    # The header overwritten (a bad disk, a stray copy): SQLite cannot recognise the file.
    config.db_path.write_bytes(b"\x00" * 100 + original[100:])
    done = monitor_cli(config, "status")
    line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    ok = (done.returncode == 1 and "Traceback" not in done.stderr
          and line.startswith(f"Error: {config.db_path}: cannot open the database")
          and "not a SQLite database" in line)
    ledger.record("damaged database file", survived=ok)
    assert ok, done.stderr
    assert config.db_path.read_bytes()[100:] == original[100:]  # left as it was


# --- kill -9 inside the write --------------------------------------------------------------

def test_kill_9_inside_the_write_transaction_then_resume(local_server, write_config, ledger):
    entries = 3000
    config = feed_config(local_server, write_config, entries=entries)
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_DAEMON, str(config.path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == f"inside {entries}", line
        # All rows are written (some already spilled to the WAL), none committed.
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -9
    assert Path(f"{config.db_path}-wal").stat().st_size > 0
    assert tally(config.db_path) == (0, 0, "ok")
    assert query(config.db_path, "SELECT count(*) FROM runs WHERE finished_at IS NULL") == [
        (1,)]

    # The restarted daemon closes the dead run and collects the feed, once.
    resumed = subprocess.run([sys.executable, "-c", RESUME, str(config.path)],
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{entries} new items, 0 failed" in resumed.stdout
    wait_for(lambda: query(config.db_path, "SELECT count(*) FROM runs WHERE "
                                           "finished_at IS NULL") == [(0,)], "runs closed")
    assert query(config.db_path, "SELECT ok, error IS NOT NULL FROM runs WHERE "
                                 "job = 'collect:news' ORDER BY id") == [(0, 1), (1, 0)]
    again = collect_once(load_config(config.path, env={}))
    assert again.status == "new" and again.new == 0
    settle(ledger, "kill -9 inside the write transaction", config.db_path, entries)
