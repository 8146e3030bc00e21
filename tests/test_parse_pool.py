"""Parsing in worker processes: the same items as parsing in the fetch threads, workers only
when there is a backlog, stopped after the cycle or when idle, and a dying worker fails one
source, not the cycle."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor import pipeline, store
from monitor.collect.feeds import entries_to_items, parse_feed
from monitor.collect.parse_pool import ParsePool, parse_in_worker
from monitor.errors import ConfigError, SourceError

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def rss(feed: int, entries: int) -> bytes:
    items = "".join(
        f"<item><guid>g{feed}-{i}</guid><title>Market {feed}.{i} &amp; friends</title>"
        f"<link>/story/{feed}/{i}</link><description>&lt;p&gt;Vendors moved to "
        f"&lt;b&gt;Larkspur&lt;/b&gt; after the seizure.&lt;/p&gt; {i}</description>"
        f"<pubDate>Fri, 27 Nov 2026 {i % 24:02d}:00:00 GMT</pubDate></item>"
        for i in range(entries))
    # Entry 0 repeats at the end with another title: the first one wins in both paths.
    items += (f"<item><guid>g{feed}-0</guid><title>repeat</title><link>/r</link>"
              f"<description>r</description></item>")
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {feed}</title>"
            f"<link>https://news.example/</link>{items}</channel></rss>").encode()


def died_on_marker(body: bytes, *args: object) -> object:
    """A worker that dies on documents carrying a marker, as one the parser crashed would."""
    if b"<!-- crash -->" in body:
        os._exit(3)
    return parse_in_worker(body, *args)


@pytest.fixture
def pool():
    made: list[ParsePool] = []

    def make(processes: int = 2, **kwargs: object) -> ParsePool:
        made.append(ParsePool(processes, **kwargs))
        return made[-1]

    yield make
    for p in made:
        p.release()


def test_items_from_a_worker_equal_those_parsed_here(pool):
    body = rss(1, 40)
    seen, items = pool().items(body, {"Content-Type": "application/rss+xml"}, source="s",
                               base_url="https://news.example/feed", now=NOW, kind="news")
    expected = entries_to_items(parse_feed(body), source="s",
                                base_url="https://news.example/feed", now=NOW)
    assert seen == 41
    assert items == expected
    assert len(items) == 40 and items[0]["title"] == "Market 1.0 & friends"


def test_a_document_that_is_not_a_feed_fails_as_it_does_here(pool):
    with pytest.raises(SourceError, match="not a feed") as caught:
        pool().items(b"<html><body>gone</body></html>", {}, source="s",
                     base_url="https://x.example/", now=NOW, kind="news")
    assert caught.value.retryable is False


def test_workers_start_only_past_the_backlog_and_take_everything_after(pool):
    parser = pool(backlog_bytes=1000)
    with parser.claim(600) as first:
        assert first is False and not parser.running
        with parser.claim(300) as second:  # 900 bytes being parsed here: still under
            assert second is False and not parser.running
            with parser.claim(200) as third:  # 1,100: the workers start
                assert third is True and parser.running
    with parser.claim(10) as small:  # once running, even small documents go there
        assert small is True
    parser.release()
    assert not parser.running
    with parser.claim(10) as after:  # the backlog is counted afresh
        assert after is False


def test_no_workers_when_processes_is_zero(pool):
    parser = pool(0, backlog_bytes=1)
    with parser.claim(10**9) as away:
        assert away is False and not parser.running


def test_idle_workers_stop_by_themselves(pool):
    parser = pool(1, idle=0.3)
    parser.items(rss(1, 2), {}, source="s", base_url="https://x.example/", now=NOW,
                 kind="news")
    assert parser.running
    deadline = time.monotonic() + 10
    while parser.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not parser.running
    # And start again when needed.
    seen, _ = parser.items(rss(2, 3), {}, source="s", base_url="https://x.example/",
                           now=NOW, kind="news")
    assert seen == 4


def test_a_worker_that_dies_fails_its_document_and_the_next_one_parses(pool):
    parser = pool(1, work=died_on_marker)
    with pytest.raises(SourceError, match="worker process died") as caught:
        parser.items(rss(1, 3) + b"<!-- crash -->", {}, source="s",
                     base_url="https://x.example/", now=NOW, kind="news")
    assert caught.value.retryable is True
    seen, items = parser.items(rss(2, 3), {}, source="s", base_url="https://x.example/",
                               now=NOW, kind="news")
    assert (seen, len(items)) == (4, 3)


def collect_all(local_server, write_config, processes: int, feeds: int):
    for n in range(feeds):
        body = rss(n, 25) if n != 3 else b"<html>not a feed</html>"
        if n == 5:
            body = rss(n, 25) + b"<!-- crash -->"
        local_server.expect_request(f"/f{n}").respond_with_data(
            body, content_type="application/rss+xml")
    toml = f'[database]\npath = "p{processes}.db"\n[http]\nper_host_delay = "0.001s"\n'
    toml += "".join(f'[[feeds]]\nname = "f{n}"\nurl = "{local_server.url_for(f"/f{n}")}"\n'
                    for n in range(feeds))
    config = write_config(toml, name=f"p{processes}.toml")
    db = store.open_db(config.db_path)
    sources = pipeline.build_sources(config)
    parser = ParsePool(processes, backlog_bytes=1, work=died_on_marker) if processes else None
    for source in sources:
        source.parser = parser
    pipeline.register(db, sources)
    results = {r.name: r for r in pipeline.collect(db, sources, now=NOW, concurrency=4)}
    assert parser is None or not parser.running  # stopped with the cycle
    rows = [dict(r) for r in db.query("SELECT * FROM items ORDER BY id")]
    return results, rows


def test_a_cycle_stores_the_same_items_with_workers_as_without(local_server, write_config):
    with_workers, rows = collect_all(local_server, write_config, 2, feeds=8)
    local_server.clear()
    without, expected = collect_all(local_server, write_config, 0, feeds=8)
    # f3 is not a feed; the marker that kills a worker on f5 is only a comment here.
    assert len(rows) == 6 * 25 and len(expected) == 7 * 25
    assert rows == [r for r in expected if r["source"] != "f5"]
    assert with_workers["f3"].status == without["f3"].status == "error"
    # The dead worker failed only its own source, which the next cycle tries again.
    assert with_workers["f5"].status == "error" and "worker process died" in \
        with_workers["f5"].error
    assert without["f5"].status == "new"
    assert {n: r.new for n, r in with_workers.items() if n != "f5"} == \
        {n: r.new for n, r in without.items() if n != "f5"}


def test_parse_processes_in_the_config(write_config):
    assert write_config("").http.parse_processes == 2
    assert write_config("[http]\nparse_processes = 0\n").http.parse_processes == 0
    with pytest.raises(ConfigError, match="parse_processes"):
        write_config("[http]\nparse_processes = -1\n")


def test_monitor_collect_parses_a_backfill_in_workers(local_server, tmp_path):
    """The console script as installed: spawned workers re-import its main module. Each
    document is over the 1 MiB backlog by itself, so the workers start whatever the timing."""
    feeds = 2
    for n in range(feeds):
        local_server.expect_request(f"/big{n}").respond_with_data(
            rss(n, 4200), content_type="application/rss+xml")  # ~1.1 MB each
    (tmp_path / "config.toml").write_text(
        '[database]\npath = "m.db"\n[http]\nper_host_delay = "0.001s"\nconcurrency = 2\n'
        'parse_processes = 2\n'
        + "".join(f'[[feeds]]\nname = "big{n}"\nurl = "{local_server.url_for(f"/big{n}")}"\n'
                  for n in range(feeds)))
    monitor = Path(sys.executable).with_name("monitor")
    done = subprocess.run([str(monitor), "collect", "-v", "--config",
                           str(tmp_path / "config.toml")], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "parsing moves to 2 worker processes" in done.stderr
    db = store.open_db(tmp_path / "m.db")
    assert store.count_items(db) == feeds * 4200
