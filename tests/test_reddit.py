"""The Reddit collector against a fake Reddit on 127.0.0.1 (tests/reddit_fake.py), with the
real praw client pointed at it through oauth_url / reddit_url, and in keyless (Atom) mode."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import prawcore.sessions
import pytest
from click.testing import CliRunner

from monitor import pipeline, store
from monitor.cli import cli
from monitor.collect import reddit_rows
from monitor.collect.feeds import parse_feed
from monitor.collect.reddit import (
    MAX_PATH,
    BoundedSession,
    Cursor,
    batch_subreddits,
    make_reddit,
    reddit_sources,
)
from monitor.config import HttpConfig, Interval, RedditConfig, Secret
from monitor.timeutil import iso, parse_iso, utcnow

from .conftest import shared_path
from .reddit_fake import FakeReddit

LIMITS = HttpConfig(connect_timeout=Interval(2), read_timeout=Interval(2),
                    deadline=Interval(10), per_host_delay=Interval(0), retries=0)


@pytest.fixture(autouse=True)
def no_praw_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """prawcore waits 0-4 s before its retries; the tests need the retries, not the waits."""
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds",
                        lambda self: None)


@pytest.fixture
def fake():
    with FakeReddit() as server:
        yield server


@pytest.fixture
def db(tmp_path: Path):
    database = store.open_db(tmp_path / "reddit.db")
    yield database
    database.close()


def api_config(fake: FakeReddit, **kw) -> RedditConfig:
    kw.setdefault("client_id", Secret(fake.client_id))
    kw.setdefault("client_secret", Secret(fake.client_secret))
    return RedditConfig(oauth_url=fake.url, reddit_url=fake.url, **kw)


def keyless_config(fake: FakeReddit, **kw) -> RedditConfig:
    kw.setdefault("keyless_pause", Interval(0))
    return RedditConfig(oauth_url=fake.url, reddit_url=fake.url, **kw)


def cycle(db, config: RedditConfig, now=None, limits: HttpConfig = LIMITS, *,
          force: bool = False) -> dict:
    """One collection cycle over the Reddit sources; results by source name."""
    sources = reddit_sources(config, limits)
    pipeline.register(db, sources)
    results = pipeline.collect(db, sources, now=now or utcnow(), force=force)
    return {r.name: r for r in results}


def items(db, **where) -> list[dict]:
    clause = " AND ".join(f"{k} = ?" for k in where) or "1"
    return list(db.query(f"SELECT * FROM items WHERE {clause} ORDER BY id", list(where.values())))


def source(db, name: str) -> dict:
    return store.source_state(db, name)


def gets(fake: FakeReddit) -> list:
    return fake.listing_requests()


# --- API mode: collecting ------------------------------------------------------------------

def test_first_run_stores_posts_and_comments(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.add_subreddit("onions")
    post = fake.add_post("darknet", "Abacus is down, where now?",
                         "Everyone says **Archetyp** is next.\n\nIs it legit?", author="alice")
    gone = fake.add_post("onions", "A post whose author left", "still here", author="[deleted]")
    removed = fake.add_post("onions", "Removed by the mods", "[removed]", author="bob")
    reply = fake.add_comment(post, "Archetyp is run by the old Abacus team", author="carol")
    fake.add_comment(post, "[deleted]", author="[deleted]")
    now = utcnow()

    results = cycle(db, api_config(fake, subreddits=("darknet", "onions")), now)

    assert results["reddit/new/darknet+onions"].status == "new"
    assert results["reddit/new/darknet+onions"].new == 3
    assert results["reddit/comments/darknet+onions"].new == 1  # the deleted one has no text
    row = items(db, id=f"reddit:{post.fullname}")[0]
    assert row == {
        "id": f"reddit:{post.fullname}", "source": "reddit/r/darknet", "kind": "reddit_post",
        "url": f"https://www.reddit.com{post.permalink}",
        "title": "Abacus is down, where now?",
        "body": "Everyone says Archetyp is next. Is it legit?", "author": "alice",
        "published_at": iso(datetime.fromtimestamp(post.created, UTC)),
        "collected_at": iso(now), "content_hash": row["content_hash"], "parent_id": None,
        "duplicate_of": None,
    }
    assert row["content_hash"]
    comment = items(db, id=f"reddit:{reply.fullname}")[0]
    assert comment["kind"] == "reddit_comment"
    assert comment["parent_id"] == f"reddit:{post.fullname}"
    assert comment["body"] == "Archetyp is run by the old Abacus team"
    assert comment["url"] == f"https://www.reddit.com{reply.permalink}"
    assert items(db, id=f"reddit:{gone.fullname}")[0]["author"] is None
    assert items(db, id=f"reddit:{removed.fullname}")[0]["body"] == ""
    # Read-only application auth, with the configured user agent.
    token = [r for r in fake.requests if r.method == "POST"]
    assert token[0].query == {"grant_type": "client_credentials"}
    assert token[0].headers["User-Agent"].startswith("linux:monitor:0.1 (by /u/monitor-bot)")
    # Each subreddit has its own healthy row; the listing rows hold the cursors.
    assert source(db, "reddit/r/darknet")["last_success_at"] == iso(now)
    assert source(db, "reddit/r/onions")["gap"] is None
    cursor = json.loads(source(db, "reddit/new/darknet+onions")["cursor"])
    assert cursor["newest"] == removed.fullname


def test_second_run_asks_only_for_what_is_new(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    old = fake.add_posts("darknet", 120)
    fake.add_comment(old[-1], "first comment")
    config = api_config(fake, subreddits=("darknet",))
    now = utcnow()
    first = cycle(db, config, now)
    assert first["reddit/new/darknet"].new == 120
    fake.forget_requests()

    new = fake.add_posts("darknet", 3, prefix="fresh")
    fake.add_comment(new[0], "a new comment")
    second = cycle(db, config, now + timedelta(minutes=10))

    listing_gets = gets(fake)
    assert sorted(r.path for r in listing_gets) == ["/r/darknet/comments", "/r/darknet/new"]
    assert all("after" not in r.query for r in listing_gets)
    assert second["reddit/new/darknet"].new == 3
    assert second["reddit/comments/darknet"].new == 1
    assert store.count_items(db) == 120 + 1 + 3 + 1
    third = cycle(db, config, now + timedelta(minutes=20))
    assert third["reddit/new/darknet"].new == 0 and third["reddit/comments/darknet"].new == 0
    assert store.count_items(db) == 125


def test_burst_of_250_posts_is_paged_through(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.add_posts("darknet", 5)
    config = api_config(fake, subreddits=("darknet",), comments=False)
    now = utcnow()
    cycle(db, config, now)
    fake.forget_requests()

    burst = fake.add_posts("darknet", 250, prefix="burst")
    result = cycle(db, config, now + timedelta(minutes=10))["reddit/new/darknet"]

    assert result.new == 250
    stored = {r["id"] for r in items(db)}
    assert {f"reddit:{p.fullname}" for p in burst} <= stored
    pages = gets(fake)
    assert len(pages) == 3
    assert "after" not in pages[0].query
    # Each page continues after the last item of the one before.
    assert pages[1].query["after"] == burst[-100].fullname
    assert pages[2].query["after"] == burst[-200].fullname
    assert source(db, "reddit/new/darknet")["last_error"] is None


def test_burst_beyond_max_pages_is_reported(fake: FakeReddit, db, caplog) -> None:
    fake.add_subreddit("darknet")
    fake.add_posts("darknet", 5)
    config = api_config(fake, subreddits=("darknet",), comments=False, max_pages=2)
    now = utcnow()
    cycle(db, config, now)
    fake.add_posts("darknet", 250, prefix="burst")
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        result = cycle(db, config, now + timedelta(minutes=10))["reddit/new/darknet"]
    assert result.new == 200
    assert "more than 200 new items" in caplog.text and "reddit.max_pages" in caplog.text


def test_first_run_backfill_is_capped(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    posts = fake.add_posts("darknet", 400)
    config = api_config(fake, subreddits=("darknet",), comments=False, backfill=150)
    result = cycle(db, config)["reddit/new/darknet"]
    assert result.new == 150
    assert {r["id"] for r in items(db)} == {f"reddit:{p.fullname}" for p in posts[-150:]}
    assert [r.query["limit"] for r in gets(fake)] == ["100", "50"]


def test_backfill_zero_starts_from_now(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.add_posts("darknet", 30)
    config = api_config(fake, subreddits=("darknet",), comments=False, backfill=0)
    now = utcnow()
    assert cycle(db, config, now)["reddit/new/darknet"].new == 0
    fresh = fake.add_posts("darknet", 3, prefix="fresh")
    assert cycle(db, config, now + timedelta(minutes=10))["reddit/new/darknet"].new == 3
    assert {r["id"] for r in items(db)} == {f"reddit:{p.fullname}" for p in fresh}


def test_thirty_subreddits_cost_four_listing_requests(fake: FakeReddit, db) -> None:
    subs = [f"market_talk_{i:02d}" for i in range(30)]
    for sub in subs:
        fake.add_subreddit(sub)
        post = fake.add_posts(sub, 2)[0]
        fake.add_comment(post, f"a comment in {sub}")
    config = api_config(fake, subreddits=tuple(subs))
    now = utcnow()

    results = cycle(db, config, now)
    assert len(gets(fake)) == 4
    assert sum(r.new for r in results.values()) == 30 * 3
    assert all(len(r.path) < MAX_PATH for r in gets(fake))
    fake.forget_requests()
    for sub in subs[::3]:
        fake.add_post(sub, f"news in {sub}")
    results = cycle(db, config, now + timedelta(minutes=10))
    assert len(gets(fake)) == 4
    assert sum(r.new for r in results.values()) == 10
    # Every subreddit is on its own row, active and healthy.
    rows = {r["name"]: r for r in store.source_rows(db)}
    assert all(rows[f"reddit/r/{s}"]["gap"] is None for s in subs)
    assert rows[f"reddit/r/{subs[0]}"]["items"] == 4


def test_batching_groups_and_bounds_paths() -> None:
    assert batch_subreddits(["a1", "B2", "a1", "c3"], 2) == [("a1", "B2"), ("c3",)]
    assert batch_subreddits(["x1", "X1"], 5) == [("x1",)]
    long = [f"{i:02d}" + "x" * 19 for i in range(60)]  # 21 characters each
    batches = batch_subreddits(long, 50, max_chars=300)
    assert sum(len(b) for b in batches) == 60
    assert all(len("+".join(b)) < 300 for b in batches)


def test_search_site_wide_and_restricted(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.add_subreddit("elsewhere")
    hit = fake.add_post("darknet", "Silk Road relaunch rumours")
    far = fake.add_post("elsewhere", "a silk road relaunch, elsewhere")
    fake.add_post("darknet", "unrelated")
    wide = api_config(fake, subreddits=("darknet",), comments=False,
                      searches=("silk road relaunch",))
    results = cycle(db, wide)
    assert results["reddit/search/silk road relaunch"].seen == 2
    assert items(db, id=f"reddit:{hit.fullname}")
    # A hit in a subreddit outside the config gets a row (for the item), not shown as a source.
    assert source(db, "reddit/r/elsewhere")["active"] == 0
    assert items(db, id=f"reddit:{far.fullname}")[0]["source"] == "reddit/r/elsewhere"

    fake.forget_requests()
    narrow = api_config(fake, subreddits=("darknet",), comments=False,
                        searches=("silk road relaunch",), restrict_searches=True)
    results = cycle(db, narrow)
    search = [r for r in gets(fake) if r.path.endswith("/search")]
    assert search[0].path == "/r/darknet/search"
    assert search[0].query["restrict_sr"] == "on" and search[0].query["sort"] == "new"
    assert results["reddit/search/silk road relaunch in r/darknet"].seen == 1
    assert items(db, id=f"reddit:{hit.fullname}")


# --- API mode: errors ----------------------------------------------------------------------

def test_429_honours_retry_after_and_other_listings_arrive(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    post = fake.add_posts("darknet", 2)[0]
    fake.add_comment(post, "comment")
    fake.fail(r"/comments$", 429, headers={"Retry-After": "120", "Content-Type": "text/html"},
              body="<html><head><title>Too Many Requests</title></head></html>")
    now = utcnow()
    results = cycle(db, api_config(fake, subreddits=("darknet",)), now)

    failed = results["reddit/comments/darknet"]
    assert failed.status == "error"
    assert failed.error == "rate limited by Reddit (HTTP 429); retry after 120s"
    assert parse_iso(source(db, "reddit/comments/darknet")["next_attempt_at"]) >= \
        now + timedelta(seconds=120)
    assert results["reddit/new/darknet"].new == 2
    # 429 is not retried inside the cycle: Reddit asked us to wait.
    assert len([r for r in gets(fake) if r.path.endswith("/comments")]) == 1


def test_503_is_a_server_error_and_other_listings_arrive(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    post = fake.add_posts("darknet", 2)[0]
    fake.add_comment(post, "comment")
    fake.fail(r"/new$", 503)
    results = cycle(db, api_config(fake, subreddits=("darknet",)))
    assert results["reddit/new/darknet"].error == "Reddit server error (HTTP 503)"
    assert source(db, "reddit/new/darknet")["consecutive_failures"] == 1
    assert source(db, "reddit/new/darknet")["next_attempt_at"]
    assert results["reddit/comments/darknet"].new == 1
    # prawcore retried twice before giving up.
    assert len([r for r in gets(fake) if r.path.endswith("/new")]) == 3


@pytest.mark.parametrize(("status", "gap", "error"), [
    ("private", "private", "HTTP 403: private subreddit"),
    ("quarantined", "quarantined", "HTTP 403: quarantined subreddit (needs an opt-in)"),
    ("banned", "banned", "HTTP 404: banned subreddit"),
    (None, "not found", "no such subreddit (Reddit redirects to search)"),
])
def test_unreadable_subreddit_is_a_gap_and_the_batch_goes_on(
        fake: FakeReddit, db, status: str | None, gap: str, error: str) -> None:
    subs = ["darknet", "onions", "deepweb", "tor", "badsub", "osint"]
    for sub in subs:
        if sub != "badsub":
            fake.add_subreddit(sub)
            fake.add_comment(fake.add_post(sub, f"hello {sub}"), f"reply in {sub}")
    if status:
        fake.add_subreddit("badsub", status)
    now = utcnow()

    results = cycle(db, api_config(fake, subreddits=tuple(subs)), now)

    batch = "+".join(subs)
    assert results[f"reddit/new/{batch}"].status == "new"
    assert results[f"reddit/new/{batch}"].new == 5
    assert results[f"reddit/comments/{batch}"].new == 5
    bad = source(db, "reddit/r/badsub")
    assert bad["gap"] == gap and bad["active"] == 1
    assert bad["last_error"] == error
    assert parse_iso(bad["next_attempt_at"]) > now
    assert source(db, "reddit/r/osint")["gap"] is None
    assert source(db, f"reddit/new/{batch}")["last_error"] is None


def test_gap_is_rechecked_later_and_cleared(fake: FakeReddit, db) -> None:
    for sub in ("darknet", "onions"):
        fake.add_subreddit(sub)
        fake.add_post(sub, f"hello {sub}")
    config = api_config(fake, subreddits=("darknet", "onions"), comments=False)
    now = utcnow()
    cycle(db, config, now)
    assert source(db, "reddit/r/onions")["gap"] is None

    # r/onions is banned between two cycles: noticed on the next one.
    fake.set_status("onions", "banned")
    fake.add_post("darknet", "after the ban")
    result = cycle(db, config, now + timedelta(minutes=10))["reddit/new/darknet+onions"]
    assert result.new == 1
    assert source(db, "reddit/r/onions")["gap"] == "banned"

    # Until its recheck the batch leaves it out: no probing, one request.
    fake.forget_requests()
    cycle(db, config, now + timedelta(minutes=20))
    assert [r.path for r in gets(fake)] == ["/r/darknet/new"]
    assert source(db, "reddit/r/onions")["consecutive_failures"] == 1

    # Unbanned; after the recheck time it is read again and the gap is cleared.
    fake.set_status("onions", "public")
    back = fake.add_post("onions", "we are back")
    fake.forget_requests()
    cycle(db, config, now + timedelta(hours=7))
    assert [r.path for r in gets(fake)] == ["/r/darknet+onions/new"]
    assert source(db, "reddit/r/onions")["gap"] is None
    assert items(db, id=f"reddit:{back.fullname}")


def test_whole_batch_refused_is_a_listing_error(fake: FakeReddit, db) -> None:
    fake.add_subreddit("one", "private")
    fake.add_subreddit("two", "private")
    results = cycle(db, api_config(fake, subreddits=("one", "two"), comments=False))
    assert results["reddit/new/one+two"].error == \
        "Reddit refused every subreddit of this listing (HTTP 403: private subreddit)"
    assert source(db, "reddit/r/one")["gap"] is None


def test_bad_credentials(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    config = api_config(fake, subreddits=("darknet",), comments=False,
                        client_secret=Secret("wrong"))
    result = cycle(db, config)["reddit/new/darknet"]
    assert result.error.startswith("Reddit refused the credentials (HTTP 401): check "
                                   "MONITOR_REDDIT_CLIENT_ID")
    assert "wrong" not in result.error

    fake.token_mode = "oauth_error"
    result = cycle(db, api_config(fake, subreddits=("darknet",), comments=False), force=True)
    assert result["reddit/new/darknet"].error.startswith(
        "Reddit refused the credentials (invalid_grant): check")


def test_rejected_access_token(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.fail(r"/new$", 401, body='{"message": "Unauthorized", "error": 401}',
              headers={"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})
    result = cycle(db, api_config(fake, subreddits=("darknet",), comments=False))
    assert result["reddit/new/darknet"].error.startswith(
        "Reddit refused the access token (HTTP 401)")
    # prawcore fetched a fresh token and tried again before giving up.
    assert len([r for r in fake.requests if r.method == "POST"]) >= 2


def test_network_failure_is_recorded(fake: FakeReddit, db) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    fake.add_subreddit("darknet")
    config = RedditConfig(subreddits=("darknet",), comments=False, oauth_url=dead,
                          reddit_url=fake.url, client_id=Secret(fake.client_id),
                          client_secret=Secret(fake.client_secret))
    result = cycle(db, config)["reddit/new/darknet"]
    assert result.error.startswith("connection to Reddit failed")
    assert source(db, "reddit/new/darknet")["next_attempt_at"]


def test_a_server_that_never_answers_does_not_hang(fake: FakeReddit, db) -> None:
    """prawcore sends its own 16 s timeout with each API call; ours must win."""
    fake.add_subreddit("darknet")
    fake.hang(r"/new$")
    limits = HttpConfig(connect_timeout=Interval(1), read_timeout=Interval(0.3),
                        deadline=Interval(5), per_host_delay=Interval(0))
    started = time.monotonic()
    result = cycle(db, api_config(fake, subreddits=("darknet",), comments=False),
                   limits=limits)["reddit/new/darknet"]
    assert time.monotonic() - started < 5
    assert result.error == "timed out talking to Reddit"

    # Nor does one that accepts connections and never reads them (the token request).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = RedditConfig(subreddits=("darknet",), comments=False, oauth_url=url,
                              reddit_url=url, client_id=Secret("a"), client_secret=Secret("b"))
        started = time.monotonic()
        result = cycle(db, config, limits=limits)["reddit/new/darknet"]
        assert time.monotonic() - started < 5
    assert result.error == "timed out talking to Reddit"


def test_response_size_is_capped(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.add_posts("darknet", 50)
    limits = HttpConfig(per_host_delay=Interval(0), max_bytes=4096)
    result = cycle(db, api_config(fake, subreddits=("darknet",), comments=False),
                   limits=limits)["reddit/new/darknet"]
    assert result.error == "response too large: more than 4096 bytes"


def test_praw_gets_the_bounded_session(fake: FakeReddit) -> None:
    reddit = make_reddit(api_config(fake), LIMITS)
    requestor = reddit._core._authorizer._authenticator._requestor
    assert isinstance(requestor._http, BoundedSession)
    assert reddit.config.oauth_url == fake.url + "/"


# --- keyless mode --------------------------------------------------------------------------

def _content(fake: FakeReddit) -> None:
    for sub in ("darknet", "onions"):
        fake.add_subreddit(sub)
    post = fake.add_post("darknet", "Is Abacus 2.0 real? & <who> runs it",
                         "They say it's the **same** admin.\n\nSecond paragraph.")
    fake.add_post("onions", "A link post")
    fake.add_post("onions", "Removed", "[removed]")
    fake.add_comment(post, "It is a phishing clone, stay away", author="carol")
    fake.add_comment(post, "agreed", author="[deleted]")


def test_keyless_mode_reads_the_feeds(fake: FakeReddit, db, caplog) -> None:
    _content(fake)
    with caplog.at_level(logging.WARNING, logger="monitor.collect.reddit"):
        results = cycle(db, keyless_config(fake, subreddits=("darknet", "onions")))
    assert "no API keys" in caplog.text and "slower" in caplog.text
    assert results["reddit/new/darknet+onions"].new == 3
    assert results["reddit/comments/darknet+onions"].new == 2
    paths = sorted(r.path for r in gets(fake))
    assert paths == ["/r/darknet+onions/comments/.rss", "/r/darknet+onions/new/.rss"]
    assert not [r for r in fake.requests if r.method == "POST"]  # no token without keys


def test_keyless_and_api_modes_give_the_same_rows(fake: FakeReddit, tmp_path: Path) -> None:
    _content(fake)
    subs = ("darknet", "onions")
    now = utcnow()
    keyless_db = store.open_db(tmp_path / "keyless.db")
    api_db = store.open_db(tmp_path / "api.db")
    cycle(keyless_db, keyless_config(fake, subreddits=subs), now)
    cycle(api_db, api_config(fake, subreddits=subs), now)
    assert items(keyless_db) == items(api_db)
    assert len(items(api_db)) == 5
    comment = items(api_db, kind="reddit_comment", author="carol")[0]
    assert comment["parent_id"].startswith("reddit:t3_")
    assert comment["title"] == ""

    # Both modes share ids, so switching modes stores nothing twice.
    assert sum(r.new for r in cycle(keyless_db, api_config(fake, subreddits=subs),
                                    now + timedelta(minutes=10)).values()) == 0
    keyless_db.close()
    api_db.close()


def test_keyless_pages_through_a_burst(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.add_posts("darknet", 5)
    config = keyless_config(fake, subreddits=("darknet",), comments=False)
    now = utcnow()
    cycle(db, config, now)
    fake.forget_requests()
    burst = fake.add_posts("darknet", 230, prefix="burst")
    assert cycle(db, config, now + timedelta(minutes=10))["reddit/new/darknet"].new == 230
    assert [r.query.get("after") for r in gets(fake)] == \
        [None, burst[-100].fullname, burst[-200].fullname]


def test_keyless_gaps(fake: FakeReddit, db) -> None:
    for sub in ("darknet", "onions", "tor"):
        fake.add_subreddit(sub)
        fake.add_post(sub, f"hello {sub}")
    fake.add_subreddit("secret", "private")
    results = cycle(db, keyless_config(fake, subreddits=("darknet", "secret", "onions",
                                                         "missing", "tor"), comments=False))
    assert results["reddit/new/darknet+secret+onions+missing+tor"].new == 3
    assert source(db, "reddit/r/secret")["gap"] == "private"
    assert source(db, "reddit/r/missing")["gap"] == "not found"


def test_keyless_pause_spaces_requests(fake: FakeReddit, db) -> None:
    fake.add_subreddit("darknet")
    fake.add_posts("darknet", 3)
    config = keyless_config(fake, subreddits=("darknet",), searches=("post",),
                            keyless_pause=Interval(0.25))
    started = time.monotonic()
    cycle(db, config)
    assert len(gets(fake)) == 3
    assert time.monotonic() - started >= 0.5  # three requests, two pauses


# --- converters on recorded Reddit data ----------------------------------------------------

def _recorded_children(name: str) -> list[dict]:
    data = json.loads(shared_path("fixtures", "reddit", name).read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        body = interaction["response"]["body"]["string"]
        if interaction["request"]["method"] == "GET" and body.startswith(("{", "[")):
            parsed = json.loads(body)
            listing = parsed[0] if isinstance(parsed, list) else parsed
            return listing["data"]["children"]
    raise AssertionError(f"no listing in {name}")


def test_recorded_post_to_row() -> None:
    now = utcnow()
    child = _recorded_children("praw_TestSubredditListings.test_new.json")[0]
    row = reddit_rows.thing_to_row(child, now)
    assert row == {
        "id": "reddit:t3_48fbm9", "source": "reddit/r/askreddit", "kind": "reddit_post",
        "url": "https://www.reddit.com/r/AskReddit/comments/48fbm9/"
               "serious_parents_of_reddit_whats_the_biggest_lie/",
        "title": "[Serious] Parents of Reddit, what's the biggest lie about yourself you've "
                 "told your kids?",
        "body": "", "author": "RedHeadQc", "published_at": "2016-03-01T08:37:38+00:00",
        "collected_at": iso(now), "content_hash": row["content_hash"], "parent_id": None,
    }


def test_recorded_comment_to_row() -> None:
    now = utcnow()
    child = _recorded_children("praw_TestSubredditListings.test_comments.json")[0]
    row = reddit_rows.thing_to_row(child, now)
    # 2016 listings carried no comment permalink: the URL is built from the post's id.
    assert row["url"] == "https://www.reddit.com/r/AskReddit/comments/4r4inc/_/d4y8bdp/"
    assert row["id"] == "reddit:t1_d4y8bdp" and row["parent_id"] == "reddit:t3_4r4inc"
    assert row["body"] == ("great, life is so much better when you can do what you enjoy "
                           "for a living")
    assert row["title"] == "" and row["author"] == "preppypuppy"


def test_recorded_deleted_comment_and_search_post() -> None:
    now = utcnow()
    deleted = _recorded_children("praw_TestComment.test_refresh__deleted_comment.json")[0]
    assert deleted["data"]["author"] == "[deleted]"
    assert reddit_rows.thing_to_row(deleted, now) is None
    post = _recorded_children("praw_TestSubreddit.test_search.json")[0]
    row = reddit_rows.thing_to_row(post, now)
    assert row["url"].endswith("/r/redditdev/comments/3gpbiu/"
                               "prawoauth2util_problem_using_get_banned_raise/")
    assert row["body"].startswith("solved Problem solved with this:")
    assert "<" not in row["body"] and "&quot;" not in row["body"]


def test_recorded_reddit_atom_feed() -> None:
    path = shared_path("fixtures", "feeds", "rss-parser_reddit-home.rss")
    parsed = parse_feed(path.read_bytes())
    now = utcnow()
    rows = [reddit_rows.entry_to_row(e, now) for e in parsed.entries]
    assert len(rows) == 24 and all(rows)
    first = rows[0]
    assert first["id"] == "reddit:t3_42tizy" and first["source"] == "reddit/r/funny"
    assert first["author"] == "AngryRedditorsBelow"
    assert first["body"] == ""  # a link post: only the "submitted by" line
    assert first["url"] == ("https://www.reddit.com/r/funny/comments/42tizy/"
                            "how_the_british_as_seen_by_americans_and_europeans/")


def test_converters_skip_what_is_not_a_post_or_comment() -> None:
    now = utcnow()
    assert reddit_rows.thing_to_row({"kind": "t5", "data": {"name": "t5_x"}}, now) is None
    assert reddit_rows.thing_to_row({"kind": "t3", "data": {"name": "t3_a"}}, now) is None
    entry = feedparser.FeedParserDict(id="https://example.org/1", link="https://example.org")
    assert reddit_rows.entry_to_row(entry, now) is None


def test_cursor_survives_garbage() -> None:
    assert Cursor.load("not json").newest_utc is None
    assert Cursor.load("[1, 2]").excluded == {}
    cursor = Cursor.load('{"newest": "t3_a", "newest_utc": 5, "excluded": {"x": {}}}')
    assert cursor.newest == "t3_a" and cursor.newest_utc == 5.0
    assert not cursor.waiting("x", utcnow())  # an entry without "until" is due


# --- the CLI -------------------------------------------------------------------------------

def test_collect_and_status_show_reddit_sources(fake: FakeReddit, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for sub in ("darknet", "onions"):
        fake.add_subreddit(sub)
        fake.add_post(sub, f"hello {sub}")
    fake.add_subreddit("DarkNetMarkets", "banned")
    config = tmp_path / "config.toml"
    config.write_text(f"""
[database]
path = "monitor.db"

[http]
per_host_delay = "0.01s"

[reddit]
subreddits = ["darknet", "DarkNetMarkets", "onions"]
comments = false
oauth_url = "{fake.url}"
reddit_url = "{fake.url}"
""")
    monkeypatch.setenv("MONITOR_REDDIT_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("MONITOR_REDDIT_CLIENT_SECRET", fake.client_secret)
    runner = CliRunner()

    collected = runner.invoke(cli, ["collect", "--config", str(config)])
    assert collected.exit_code == 0, collected.output
    assert "reddit/new/darknet+DarkNetM" in collected.output
    assert "2 new items from 1 sources; 0 failed." in collected.output

    status = runner.invoke(cli, ["status", "--config", str(config)])
    assert status.exit_code == 0, status.output
    line = next(x for x in status.output.splitlines() if "reddit/r/darknetmarkets" in x)
    assert "banned" in line and "HTTP 404: banned subreddit" in line
    darknet = next(x for x in status.output.splitlines() if "reddit/r/darknet " in x)
    assert darknet.split()[-1] == "ok"
    assert fake.client_secret not in status.output + collected.output


def test_reddit_config_keys(write_config, caplog) -> None:
    config = write_config('[reddit]\nsubreddits = ["darknet"]\nrestrict_searches = true\n'
                          'keyless_pause = "10s"\nuser_agent = "my scraper"\n',
                          env={"MONITOR_REDDIT_CLIENT_ID": "id"})
    assert config.reddit.restrict_searches is True
    assert config.reddit.keyless_pause == 10.0
    assert not config.reddit.use_api  # a secret is missing: keyless
    with caplog.at_level(logging.WARNING, logger="monitor.collect.reddit"):
        sources = reddit_sources(config.reddit, LIMITS)
    assert "is not in Reddit's form" in caplog.text
    assert [s.name for s in sources] == ["reddit/new/darknet", "reddit/comments/darknet"]
    assert sources[0].target == "https://www.reddit.com/r/darknet/new/.rss"
