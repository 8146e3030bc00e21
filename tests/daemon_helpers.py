"""For tests/test_daemon.py: a local feed server, a daemon subprocess and database polling."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def rss(count: int, prefix: str, *, start: int = 0) -> bytes:
    """An RSS 2.0 feed of `count` distinct entries."""
    base = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    entries = []
    for i in range(start, start + count):
        when = format_datetime(base + timedelta(minutes=i))
        entries.append(
            f"<item><title>{prefix} story {i}</title>"
            f"<link>https://news.example.org/{prefix}/{i}</link>"
            f"<guid>https://news.example.org/{prefix}/{i}</guid><pubDate>{when}</pubDate>"
            f"<description>Report {i} from {prefix}: vendors discuss where the market moved "
            f"after the takedown and which mirror is a phishing clone.</description></item>")
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{prefix}</title><link>https://news.example.org/{prefix}</link>"
            f"<description>test feed</description>{''.join(entries)}</channel></rss>"
            ).encode()


@dataclass
class Feed:
    body: bytes
    etag: str | None = None
    hang: bool = False          # never answer (until the server stops)
    chunk_delay: float = 0.0    # pause between 16 KiB chunks: a slow download
    streaming: threading.Event = field(default_factory=threading.Event)


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 serving feeds by path; it records every request
    (path and If-None-Match) and honours ETags with 304."""

    def __init__(self) -> None:
        self.feeds: dict[str, Feed] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path}"

    def hits(self, path: str) -> list[str | None]:
        """The If-None-Match header of every request for `path`, in order."""
        with self._lock:
            return [inm for p, inm in self.requests if p == path]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.lstrip("/")
        inm = handler.headers.get("If-None-Match")
        with self._lock:
            self.requests.append((path, inm))
        feed = self.feeds.get(path)
        try:
            if feed is None:
                handler.send_error(404)
                return
            if feed.hang:
                self.release.wait(60)
                return
            if feed.etag and inm == feed.etag:
                handler.send_response(304)
                handler.send_header("ETag", feed.etag)
                handler.end_headers()
                return
            handler.send_response(200)
            handler.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            handler.send_header("Content-Length", str(len(feed.body)))
            if feed.etag:
                handler.send_header("ETag", feed.etag)
            handler.end_headers()
            for start in range(0, len(feed.body), 16384):
                handler.wfile.write(feed.body[start:start + 16384])
                handler.wfile.flush()
                feed.streaming.set()
                if feed.chunk_delay and self.release.wait(feed.chunk_delay):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon was killed mid-download: that is the point of some tests

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def write_config(path: Path, feeds: dict[str, tuple[str, str]], *, deadline: str = "2s",
                 heartbeat: str = "1s", extra: str = "") -> Path:
    """A config for a daemon under test: feeds as name -> (url, interval)."""
    text = [
        '[database]\npath = "monitor.db"\n',
        f'[http]\nconnect_timeout = "1s"\nread_timeout = "{deadline}"\ndeadline = "{deadline}"\n'
        'retries = 0\nper_host_delay = "0.01s"\n',
        f'[daemon]\nheartbeat = "{heartbeat}"\njitter = 0.1\nstop_timeout = "3s"\n',
        extra,
    ]
    for name, (url, interval) in feeds.items():
        text.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\ninterval = "{interval}"\n')
    path.write_text("\n".join(text))
    return path


def monitor_command(*args: str) -> list[str]:
    """`monitor ARGS` with this interpreter, whether or not the console script is on PATH."""
    return [sys.executable, "-c", "from monitor.cli import main; main()", *args]


class DaemonProcess:
    """`monitor run` as a real subprocess; stderr goes to a file the test can read."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.log_path = config.parent / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        self.proc = subprocess.Popen(monitor_command("run", "--config", str(config), *args),
                                     stdout=subprocess.DEVNULL, stderr=self._log,
                                     cwd=config.parent, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; return the exit status and how long the exit took."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@contextlib.contextmanager
def daemon(config: Path, *args: str) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(config, *args)
    try:
        yield proc
    finally:
        proc.close()


def query(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the daemon's database from outside, as an analyst would; [] before it exists."""
    if not db_path.exists():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0,
             proc: DaemonProcess | None = None, every: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy; fail naming `what` (and the daemon's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({proc.proc.returncode}) while waiting for "
                                 f"{what}:\n{proc.log()}")
        if time.monotonic() > deadline:
            log = proc.log() if proc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")
        time.sleep(every)
