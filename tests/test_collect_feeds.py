"""The real `monitor collect` path against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from werkzeug import Request, Response

from monitor import pipeline, store
from monitor.cli import cli

FAST = """
[http]
connect_timeout = "2s"
read_timeout = "1s"
deadline = "3s"
retries = 1
max_bytes = 20000
per_host_delay = "0.01s"
"""


def rss(*entries: tuple[str, str]) -> bytes:
    items = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
        f"<link>https://news.example/{guid}</link><description>About {title}.</description>"
        f"<pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>" for guid, title in entries)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>"
            f"<link>https://news.example/</link>{items}</channel></rss>").encode()


class ConditionalFeed:
    """Serves a feed with an ETag and Last-Modified, answering 304 when they match."""

    def __init__(self, body: bytes) -> None:
        self.set(body)
        self.requests: list[dict[str, str]] = []

    def set(self, body: bytes) -> None:
        self.body = body
        self.etag = f'"v{abs(hash(body))}"'

    def __call__(self, request: Request) -> Response:
        self.requests.append(dict(request.headers))
        headers = {"ETag": self.etag, "Last-Modified": "Fri, 27 Nov 2026 10:00:00 GMT",
                   "Content-Type": "application/rss+xml"}
        if request.headers.get("If-None-Match") == self.etag:
            return Response(status=304, headers=headers)
        return Response(self.body, headers=headers)


def feeds_toml(server, *names: str) -> str:
    return FAST + "".join(
        f'[[feeds]]\nname = "{n}"\nurl = "{server.url_for("/" + n)}"\ninterval = "5m"\n'
        for n in names)


def run(config, **kwargs):
    db = store.open_db(config.db_path)
    sources = pipeline.build_sources(config)
    pipeline.register(db, sources)
    results = {r.name: r for r in pipeline.collect(db, sources, **kwargs)}
    return db, results


def test_first_run_stores_then_304_stores_nothing_then_only_new_entries(local_server,
                                                                        write_config):
    feed = ConditionalFeed(rss(("1", "Silk Road 3.0 is up"), ("2", "Hydra seized")))
    local_server.expect_request("/news").respond_with_handler(feed)
    config = write_config(feeds_toml(local_server, "news"))

    db, results = run(config)
    assert (results["news"].status, results["news"].new) == ("new", 2)
    assert store.count_items(db) == 2
    state = store.source_state(db, "news")
    assert state["etag"] == feed.etag and state["last_success_at"]

    db, results = run(config)
    assert results["news"].status == "not_modified" and results["news"].new == 0
    assert feed.requests[-1]["If-None-Match"] == feed.etag
    assert feed.requests[-1]["If-Modified-Since"] == "Fri, 27 Nov 2026 10:00:00 GMT"
    assert store.count_items(db) == 2

    feed.set(rss(("3", "Everyone is moving to Abacus"), ("1", "Silk Road 3.0 is up"),
                 ("2", "Hydra seized")))
    db, results = run(config)
    assert (results["news"].seen, results["news"].new) == (3, 1)
    assert [r["title"] for r in db.query("SELECT title FROM items ORDER BY title")] == [
        "Everyone is moving to Abacus", "Hydra seized", "Silk Road 3.0 is up"]
    runs = list(db.query("SELECT job, ok, items_seen, items_new FROM runs ORDER BY id"))
    assert runs == [
        {"job": "collect:news", "ok": 1, "items_seen": 2, "items_new": 2},
        {"job": "collect:news", "ok": 1, "items_seen": 0, "items_new": 0},
        {"job": "collect:news", "ok": 1, "items_seen": 3, "items_new": 1},
    ]
    assert list(db.query("SELECT rowid FROM items_fts WHERE items_fts MATCH 'abacus'"))


def test_each_failure_is_recorded_and_the_other_feeds_finish(local_server, write_config):
    local_server.expect_request("/good").respond_with_data(rss(("g", "fine")))
    local_server.expect_request("/error").respond_with_data("boom", status=500)

    def slow(_request: Request) -> Response:
        def drip():
            for _ in range(30):
                yield b" "
                time.sleep(0.5)
        return Response(drip(), content_type="application/rss+xml")

    local_server.expect_request("/slow").respond_with_handler(slow)
    local_server.expect_request("/huge").respond_with_data(
        rss(*[(str(i), "x" * 100) for i in range(400)]))
    local_server.expect_request("/garbage").respond_with_data(b"\x00\x01\xfe\xff" * 100)
    local_server.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": local_server.url_for("/loop")})
    names = ["good", "error", "slow", "huge", "garbage", "loop"]
    config = write_config(feeds_toml(local_server, *names))

    started = time.monotonic()
    db, results = run(config)
    assert time.monotonic() - started < 20
    assert results["good"].status == "new" and results["good"].new == 1
    expected = {"error": "HTTP 500", "slow": "timed out", "huge": "too large",
                "garbage": "not a feed", "loop": "redirect loop"}
    for name, words in expected.items():
        assert results[name].status == "error"
        state = store.source_state(db, name)
        assert words in state["last_error"], (name, state["last_error"])
        assert state["consecutive_failures"] == 1
        assert state["next_attempt_at"] > state["last_attempt_at"]
    failed_runs = {r["job"]: r["error"] for r in db.query("SELECT job, error FROM runs WHERE ok = 0")}
    assert set(failed_runs) == {f"collect:{n}" for n in expected}


def test_backoff_skips_a_failing_source_until_due_and_force_overrides(local_server,
                                                                      write_config):
    local_server.expect_request("/bad").respond_with_data("nope", status=503)
    config = write_config(feeds_toml(local_server, "bad"))
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    db, results = run(config, now=now)
    assert results["bad"].status == "error"
    db, results = run(config, now=now + timedelta(seconds=10))
    assert results["bad"].status == "skipped"
    db, results = run(config, now=now + timedelta(seconds=10), force=True)
    assert results["bad"].status == "error"
    assert store.source_state(db, "bad")["consecutive_failures"] == 2
    local_server.clear()
    local_server.expect_request("/bad").respond_with_data(rss(("1", "back")))
    db, results = run(config, now=now + timedelta(hours=7))
    assert results["bad"].status == "new"
    state = store.source_state(db, "bad")
    assert state["consecutive_failures"] == 0 and state["last_error"] is None
    assert state["next_attempt_at"] is None


def test_backoff_grows_and_is_capped():
    delays = [pipeline.backoff_delay(n) for n in range(1, 20)]
    assert delays[0] < delays[3] < delays[6]
    assert max(delays) <= pipeline.BACKOFF_CAP
    assert pipeline.backoff_delay(0) == 0


def test_a_syndicated_copy_is_kept_and_marked(local_server, write_config):
    local_server.expect_request("/a").respond_with_data(rss(("x", "Dream Market closes")))
    local_server.expect_request("/b").respond_with_data(rss(("y", "Dream Market closes")))
    config = write_config(feeds_toml(local_server, "a"))
    db, _ = run(config)
    config = write_config(feeds_toml(local_server, "a", "b"))
    db, _ = run(config)
    rows = {r["source"]: r for r in db.query("SELECT * FROM items")}
    assert rows["a"]["duplicate_of"] is None
    assert rows["b"]["duplicate_of"] == rows["a"]["id"]


def test_a_permanent_redirect_is_followed_and_logged(local_server, write_config, caplog):
    local_server.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": local_server.url_for("/new")})
    local_server.expect_request("/new").respond_with_data(rss(("1", "moved")))
    config = write_config(feeds_toml(local_server, "old"))
    _db, results = run(config)
    assert results["old"].new == 1
    assert "moved permanently" in caplog.text


def test_cli_collect_and_status(local_server, write_config):
    local_server.expect_request("/ok").respond_with_data(rss(("1", "a"), ("2", "b")))
    local_server.expect_request("/down").respond_with_data("x", status=500)
    config = write_config(feeds_toml(local_server, "ok", "down"))
    runner = CliRunner()
    result = runner.invoke(cli, ["collect", "--config", str(config.path)])
    assert result.exit_code == 0, result.output
    assert "2 new items from 2 sources; 1 failed." in result.output
    assert "HTTP 500" in result.output

    only = runner.invoke(cli, ["collect", "--config", str(config.path), "--source", "ok"])
    assert only.exit_code == 0 and "down" not in only.output

    unknown = runner.invoke(cli, ["collect", "--config", str(config.path), "--source", "nah"])
    assert unknown.exit_code == 1 and "no source named 'nah'" in unknown.output

    status = runner.invoke(cli, ["status", "--config", str(config.path)])
    assert status.exit_code == 0, status.output
    lines = {line.split()[0]: line for line in status.output.splitlines() if line.strip()}
    assert "failing x1" in lines["down"] and "HTTP 500" in lines["down"]
    assert lines["ok"].split()[5] == "ok"


def test_removed_feeds_leave_status_but_keep_their_items(local_server, write_config):
    local_server.expect_request("/a").respond_with_data(rss(("1", "a")))
    local_server.expect_request("/b").respond_with_data(rss(("2", "b")))
    config = write_config(feeds_toml(local_server, "a", "b"))
    db, _ = run(config)
    config = write_config(feeds_toml(local_server, "a"))
    db, _ = run(config)
    assert [s["name"] for s in store.source_rows(db)] == ["a"]
    assert store.count_items(db) == 2
