"""Every real-world feed in ../shared/fixtures/feeds through the collector from a local server."""

from __future__ import annotations

import feedparser
from werkzeug import Request, Response

from monitor import pipeline, store
from monitor.collect.feeds import entry_key, item_id
from monitor.text import html_to_text

from .conftest import shared_path


def test_every_fixture_feed_is_collected_without_a_crash(local_server, write_config):
    folder = shared_path("fixtures", "feeds")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert len(files) > 50

    def serve(request: Request) -> Response:
        path = folder / request.path.lstrip("/")
        return Response(path.read_bytes(), content_type="application/xml")

    local_server.expect_request("/", method="GET").respond_with_handler(serve)
    for p in files:
        local_server.expect_request(f"/{p.name}").respond_with_handler(serve)
    feeds = "".join(
        f'[[feeds]]\nname = "{p.name}"\nurl = "{local_server.url_for("/" + p.name)}"\n'
        for p in files)
    config = write_config('[http]\nper_host_delay = "0.01s"\nmax_bytes = 5000000\n' + feeds)
    db = store.open_db(config.db_path)
    sources = pipeline.build_sources(config)
    results = {r.name: r for r in pipeline.collect(db, sources, concurrency=4)}
    assert len(results) == len(files)

    stored = {r["id"] for r in db.query("SELECT id FROM items")}
    missing: dict[str, int] = {}
    for p in files:
        parsed = feedparser.parse(p.read_bytes())
        expected = set()
        for entry in parsed.entries:
            has_title = html_to_text(entry.get("title") or "")
            if (has_title or (entry.get("link") or "").strip()) and entry_key(entry):
                expected.add(item_id(p.name, entry_key(entry)))
        result = results[p.name]
        if result.status == "error":
            # Only documents that are not feeds at all may fail.
            assert "not a feed" in result.error, (p.name, result.error)
            assert not expected, p.name
            continue
        lost = expected - stored
        if lost:
            missing[p.name] = len(lost)
    assert not missing, missing
    problems = list(db.query("SELECT id FROM items WHERE published_at NOT LIKE '____-__-__T__:__:__+00:00'"))
    assert problems == []
    errors = [n for n, r in results.items() if r.status == "error"]
    assert len(errors) <= 3, errors
