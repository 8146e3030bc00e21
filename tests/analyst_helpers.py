"""A fixture database for the analysts' surface (views, serve, report, labels, export),
built through the real path: feeds served over HTTP on 127.0.0.1, `pipeline.collect`, and the
classifier's hook on the new items.

The content is fixed and its times are relative to the wall clock, because the views that
speak of "the last 30 days" use SQLite's 'now'.
"""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from monitor import pipeline, store
from monitor.config import Config, load_config
from monitor.timeutil import iso, utcnow


@dataclass(frozen=True)
class Entry:
    guid: str
    title: str
    body: str
    age: timedelta | None = None  # before the build time
    at: str | None = None  # or a fixed publication time (ISO 8601)

    def published(self, now: datetime) -> datetime:
        if self.at:
            return datetime.fromisoformat(self.at)
        return now - (self.age or timedelta())


DAY = timedelta(days=1)

NEWS = [
    Entry("kraken", "Kraken takes over as the new Hydra",
          "After Hydra Market was seized by German police, Russian-speaking darknet buyers "
          "moved to Kraken, which launched as its replacement and now has most of Hydra's "
          "vendors.", age=2 * DAY),
    Entry("alphabay", "AlphaBay is back: the original admin relaunched the darknet market",
          "AlphaBay is back online. DeSnake, the original AlphaBay admin, relaunched the "
          "darknet market on Tor and I2P and says former vendors are returning.",
          age=3 * DAY),
    Entry("zorblax", "Vendors move to Zorblax Market after the Nemesis takedown",
          "After Nemesis Market was seized, many vendors moved to Zorblax Market, a new "
          "darknet market that launched last week as its replacement.", age=4 * DAY),
    Entry("sentenced", "Darknet vendor sentenced to ten years for fentanyl sales",
          "A darknet vendor who sold fentanyl pills on AlphaBay was sentenced to ten years in "
          "federal prison on Tuesday, prosecutors said.", age=1 * DAY),
    Entry("bitcoin", "Bitcoin climbs as ETF inflows continue",
          "The price of bitcoin rose for a fifth day as exchange-traded funds bought more "
          "coins, analysts said.", age=1 * DAY),
    # After the Hydra seizure (2022-04-05 in the gazetteer's events).
    Entry("mega-1", "With Hydra gone, Russian buyers flock to Mega",
          "With Hydra Market seized, Russian darknet buyers moved to Mega, which is now the "
          "new Hydra replacement.", at="2022-04-07T10:00:00+00:00"),
    Entry("mega-2", "Mega grows fast as Hydra's successor",
          "After the Hydra takedown, former Hydra vendors moved to Mega, the darknet market "
          "that replaced Hydra.", at="2022-04-20T10:00:00+00:00"),
    Entry("mega-3", "Mega is now the biggest market to replace Hydra",
          "Two months after Hydra was seized, Mega has replaced Hydra as the largest "
          "Russian darknet market, buyers moving there say.", at="2022-06-01T10:00:00+00:00"),
]
# A second feed that syndicates the first story word for word.
MIRROR = [Entry("copy", NEWS[0].title, NEWS[0].body, age=2 * DAY)]


def rss(entries: list[Entry], now: datetime) -> bytes:
    items = "".join(
        f"<item><guid isPermaLink='false'>{e.guid}</guid><title>{escape(e.title)}</title>"
        f"<link>https://news.example/{e.guid}</link>"
        f"<description>{escape(e.body)}</description>"
        f"<pubDate>{format_datetime(e.published(now))}</pubDate></item>" for e in entries)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>"
            f"<link>https://news.example/</link>{items}</channel></rss>").encode()


@dataclass
class FeedServer:
    """Serves /news, /mirror and /broken. In the second cycle /broken answers 500 and
    /mirror carries its copy (so the copy is stored after the original, deterministically)."""

    now: datetime
    second_cycle: bool = False
    hits: list[str] = field(default_factory=list)

    @contextmanager
    def running(self) -> Iterator[str]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                name = self.path.strip("/")
                if name == "broken" and owner.second_cycle:
                    self.send_error(500, "upstream on fire")
                    return
                mirror = MIRROR if owner.second_cycle else []
                entries = {"news": NEWS, "mirror": mirror, "broken": []}.get(name)
                if entries is None:
                    self.send_error(404)
                    return
                body = rss(entries, owner.now)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


CONFIG = """[database]
path = "{db}"

[http]
connect_timeout = "2s"
read_timeout = "2s"
deadline = "4s"
retries = 0
per_host_delay = "0.01s"

[classifier]
threshold = 0.5

{feeds}"""


def write_config(directory: Path, base_url: str, db_name: str = "monitor.db") -> Config:
    feeds = "".join(f'[[feeds]]\nname = "{n}"\nurl = "{base_url}/{n}"\ninterval = "5m"\n\n'
                    for n in ("news", "mirror", "broken"))
    path = directory / "config.toml"
    path.write_text(CONFIG.format(db=db_name, feeds=feeds))
    return load_config(path, env={})


@dataclass(frozen=True)
class Built:
    config_path: Path
    db_path: Path
    now: datetime  # when the last collection ran
    first_run: datetime  # when the first ran (the broken feed's last success)


def build(directory: Path, db_name: str = "monitor.db") -> Built:
    """Two collection cycles, two hours apart; in the second the `broken` feed fails and
    the mirror syndicates the Kraken story."""
    from monitor.classify import make_hook

    directory.mkdir(parents=True, exist_ok=True)
    now = utcnow()
    first = now - timedelta(hours=2)
    feeds = FeedServer(now=now)
    with feeds.running() as base_url:
        config = write_config(directory, base_url, db_name)
        db = store.open_db(config.db_path)
        hook = make_hook(config)
        sources = pipeline.build_sources(config)
        pipeline.register(db, sources)
        results = pipeline.collect(db, sources, now=first, on_new=hook)
        assert all(r.status == "new" for r in results), results
        feeds.second_cycle = True
        pipeline.collect(db, sources, now=now, on_new=hook)
        db.close()
    return Built(config.path, config.db_path, now, first)


_BUILT: dict[str, Built] = {}


def analyst_fixture(tmp_path_factory, tmp_path: Path) -> Built:
    """A private copy (config and database) of the fixture, built once per test session."""
    if "main" not in _BUILT:
        _BUILT["main"] = build(tmp_path_factory.mktemp("analyst-fixture"))
    built = _BUILT["main"]
    target = tmp_path / "analyst"
    target.mkdir()
    for path in built.config_path.parent.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
        elif path.is_dir():
            shutil.copytree(path, target / path.name)
    return Built(target / built.config_path.name, target / built.db_path.name, built.now,
                 built.first_run)


def item_id(guid: str, source: str = "news") -> str:
    from monitor.collect.feeds import item_id as feed_item_id

    return feed_item_id(source, guid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def monitor_command(*args: str) -> list[str]:
    """`monitor ...` run by this Python, whatever the venv's scripts are called."""
    return [sys.executable, "-c", "from monitor.cli import main; main()", *args]


def wait_for_http(url: str, process, timeout: float = 30.0) -> None:
    """Poll until `url` answers 200; fail early if the server process died."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}: {out}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)  # polling interval, not a wait for readiness
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


__all__ = ["DAY", "MIRROR", "NEWS", "Built", "analyst_fixture", "build", "free_port", "iso",
           "item_id", "monitor_command", "wait_for_http"]
