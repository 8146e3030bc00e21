"""What makes a steady-state cycle cheap must not change what it collects: entries already
stored are not normalised again, and the proxy settings are read once per site."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor import http, pipeline, store
from monitor.collect import feeds
from monitor.config import HttpConfig
from monitor.errors import SourceError
from tests.test_collect_feeds import ConditionalFeed, feeds_toml, rss, run

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                    "all_proxy", "NO_PROXY", "no_proxy")


def count_normalised(monkeypatch) -> list[str]:
    """Record the guid of each entry made into an item."""
    made: list[str] = []
    real = feeds.entry_to_item

    def counting(entry, **kwargs):
        made.append(entry.get("id"))
        return real(entry, **kwargs)

    monkeypatch.setattr(feeds, "entry_to_item", counting)
    return made


def test_a_changed_feed_normalises_only_its_new_entries(local_server, write_config,
                                                         monkeypatch):
    feed = ConditionalFeed(rss(("1", "Hydra seized"), ("2", "Silk Road 3.0 is up")))
    local_server.expect_request("/news").respond_with_handler(feed)
    config = write_config(feeds_toml(local_server, "news"))
    db, _ = run(config)
    made = count_normalised(monkeypatch)

    # Entry 1 changed its title: a stored item is never updated, so it need not be made.
    feed.set(rss(("1", "Hydra seized, says the BKA"), ("2", "Silk Road 3.0 is up"),
                 ("3", "Abacus exits")))
    db, results = run(config)
    assert (results["news"].status, results["news"].seen, results["news"].new) == ("new", 3, 1)
    assert made == ["3"]
    titles = {r["title"] for r in db.query("SELECT title FROM items")}
    assert titles == {"Hydra seized", "Silk Road 3.0 is up", "Abacus exits"}

    db, results = run(config)  # 304: nothing parsed, nothing made
    assert results["news"].status == "not_modified" and made == ["3"]


def awkward_feed() -> bytes:
    """Repeated guids (the first without anything to keep), copies with the same text
    under other guids, an entry without a guid."""
    items = [
        "<item><guid>a</guid></item>",
        "<item><guid>a</guid><title>Second a</title><description>kept</description></item>",
        "<item><guid>b</guid><title>Copy</title><description>same text</description></item>",
        "<item><guid>c</guid><title>Copy</title><description>same text</description></item>",
        "<item><guid>b</guid><title>Later b</title><description>dropped</description></item>",
        "<item><title>No guid</title><link>https://news.example/n</link></item>",
        "<item><guid>d</guid><title>Stored before</title></item>",
    ]
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>x</title>"
            f"{''.join(items)}</channel></rss>").encode()


def test_pending_entries_store_exactly_what_entries_to_items_makes(tmp_path):
    parsed = feeds.parse_feed(awkward_feed())
    base = "https://news.example/feed"
    eager, lazy = store.open_db(tmp_path / "eager.db"), store.open_db(tmp_path / "lazy.db")
    for db in (eager, lazy):
        for name in ("other", "s"):
            store.ensure_source(db, name, "feed")
        # "d" is stored already; "other" holds the first copy of the "same text" entries.
        store.save_items(db, [dict(i, source="other", id=i["id"].replace("feed:", "other:"))
                              for i in feeds.entries_to_items(parsed, source="x",
                                                              base_url=base, now=NOW)
                              if i["title"] == "Copy"][:1])
        store.record_fetch(db, "s", [i for i in feeds.entries_to_items(
            parsed, source="s", base_url=base, now=NOW) if i["title"] == "Stored before"], NOW)

    eager_new = store.record_fetch(eager, "s", feeds.entries_to_items(
        parsed, source="s", base_url=base, now=NOW), NOW)
    lazy_new = store.record_fetch(lazy, "s", [], NOW, pending=feeds.pending_items(
        parsed, source="s", base_url=base, now=NOW))
    assert lazy_new == eager_new and len(lazy_new) == 4

    def rows(db):
        return list(db.query("SELECT * FROM items ORDER BY rowid"))

    assert rows(lazy) == rows(eager)
    assert sum(1 for r in rows(lazy) if r["duplicate_of"]) == 2  # b and c copy "other"


def test_a_crash_making_an_item_fails_that_source_alone(local_server, write_config,
                                                        monkeypatch):
    local_server.expect_request("/good").respond_with_data(rss(("1", "fine")))
    local_server.expect_request("/bad").respond_with_data(rss(("2", "breaks"), ("3", "also")))
    config = write_config(feeds_toml(local_server, "good", "bad"))
    real = feeds.entry_to_item

    def breaking(entry, **kwargs):
        if kwargs["source"] == "bad" and entry.get("id") == "3":
            raise RuntimeError("boom")
        return real(entry, **kwargs)

    monkeypatch.setattr(feeds, "entry_to_item", breaking)
    db, results = run(config)
    assert results["good"].status == "new" and results["good"].new == 1
    assert results["bad"].status == "error" and "internal error: RuntimeError: boom" in (
        results["bad"].error)
    # Nothing of the failed source was kept, its validators neither: all fetched again.
    assert [r["source"] for r in db.query("SELECT source FROM items")] == ["good"]
    assert store.source_state(db, "bad")["etag"] is None
    runs = {r["job"]: r for r in db.query("SELECT * FROM runs")}
    assert runs["collect:bad"]["ok"] == 0 and runs["collect:good"]["ok"] == 1


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def limits() -> HttpConfig:
    return HttpConfig(connect_timeout=2.0, read_timeout=2.0, deadline=5.0, retries=0)


def test_the_environment_proxy_is_used_and_no_proxy_honoured(local_server, no_proxy_env):
    # The local server stands for the proxy: it is asked for the far URL.
    local_server.expect_request("/news").respond_with_data(rss(("1", "via the proxy")))
    far = "http://feeds.example.invalid/news"
    no_proxy_env.setenv("HTTP_PROXY", local_server.url_for("/"))
    session = http.make_session()
    resp = http.fetch(session, far, limits())
    assert resp.status == 200 and b"via the proxy" in resp.body
    assert local_server.log[-1][0].headers["Host"] == "feeds.example.invalid"
    assert http.fetch(session, far, limits()).status == 200  # the settings kept for the site

    no_proxy_env.setenv("NO_PROXY", "feeds.example.invalid")
    with pytest.raises(SourceError, match="DNS lookup failed"):  # direct: no such host
        http.fetch(http.make_session(), far, limits())
    # The local server itself is not proxied when NO_PROXY names it.
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1,localhost")
    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    assert http.fetch(http.make_session(), local_server.url_for("/news"), limits()).status == 200


def test_a_call_with_its_own_proxies_still_works(local_server, no_proxy_env):
    local_server.expect_request("/news").respond_with_data(rss(("1", "explicit")))
    session = http.make_session()
    resp = session.get("http://feeds.example.invalid/news", timeout=5,
                       proxies={"http": local_server.url_for("/")})
    assert resp.status_code == 200 and b"explicit" in resp.content


def test_the_session_keeps_a_pool_for_each_feed_host(write_config):
    # With fewer pools than hosts, urllib3 would drop a host's pool and open connection
    # before its next feed is fetched, and build both again.
    toml = "".join(f'[[feeds]]\nname = "f{i}"\nurl = "http://h{i // 2}.example.invalid/{i}"\n'
                   for i in range(100))
    sources = pipeline.build_sources(write_config(toml))
    session = sources[0].session
    assert all(s.session is session for s in sources)
    manager = session.get_adapter("http://h0.example.invalid/").poolmanager
    assert manager.pools._maxsize >= 50
    assert manager.connection_pool_kw["maxsize"] <= 4  # one request at a time per host


def test_source_states_reads_what_source_state_reads_for_each_name(tmp_path):
    db = store.open_db(tmp_path / "states.db")
    names = [f"feed-{n}" for n in range(1203)]  # more than one chunk of names
    with db.atomic():
        for n, name in enumerate(names):
            store.ensure_source(db, name, "feed", f"http://feeds.example/{n}")
    store.record_fetch(db, "feed-7", [], NOW, etag='"v7"')
    store.record_failure(db, "feed-1200", NOW, "HTTP 503", next_attempt_at=NOW)
    wanted = [*names, "never-stored", "feed-7"]  # an unknown name and a repeat

    states = store.source_states(db, iter(wanted))

    assert list(states) == [*names, "never-stored"]
    assert all(states[name] == store.source_state(db, name) for name in wanted)
    assert states["never-stored"] == {}
    assert states["feed-7"]["etag"] == '"v7"' and states["feed-1200"]["last_error"] == "HTTP 503"
