"""Reddit under faults: rate limits, a run of server errors, truncated JSON, a failing token
endpoint, a subreddit that turns private mid-run, deleted posts and comments.

The real praw client (or the keyless Atom reader) talks to the fake Reddit of
tests/reddit_fake.py. Each case runs the fault, then the cycles that follow it, and checks
that every post and comment that Reddit shows was stored exactly once.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import prawcore.sessions
import pytest
import requests
from werkzeug import Request, Response

from monitor import pipeline, store
from monitor.collect.reddit import reddit_sources
from monitor.config import HttpConfig, Interval, RedditConfig, Secret
from monitor.timeutil import parse_iso, utcnow

from ..reddit_fake import Comment, FakeReddit, Post

LIMITS = HttpConfig(connect_timeout=Interval(2), read_timeout=Interval(2),
                    deadline=Interval(10), per_host_delay=Interval(0), retries=1)
GONE = ("[deleted]", "[removed]")


@pytest.fixture(autouse=True)
def no_praw_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """prawcore waits 0-4 s before retrying a server error; the retries matter, the waits not."""
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds",
                        lambda self: None)


@pytest.fixture
def fake():
    with FakeReddit() as server:
        yield server


@pytest.fixture
def db(tmp_path):
    database = store.open_db(tmp_path / "reddit.db")
    yield database
    database.close()


def api(fake: FakeReddit, **kw) -> RedditConfig:
    kw.setdefault("oauth_url", fake.url)
    kw.setdefault("reddit_url", fake.url)
    return RedditConfig(client_id=Secret(fake.client_id),
                        client_secret=Secret(fake.client_secret), **kw)


def keyless(fake: FakeReddit, **kw) -> RedditConfig:
    return RedditConfig(oauth_url=fake.url, reddit_url=fake.url, keyless_pause=Interval(0),
                        **kw)


def cycle(db, config: RedditConfig, now: datetime, *, force: bool = False) -> dict:
    sources = reddit_sources(config, LIMITS)
    pipeline.register(db, sources)
    return {r.name: r for r in pipeline.collect(db, sources, now=now, force=force)}


def wanted(fake: FakeReddit, subs: set[str] | None = None, *, comments: bool = True
           ) -> set[str]:
    """Item ids of every post (and comment with text, if read) that Reddit shows."""
    things: list[Post | Comment] = [*fake.posts, *(fake.comments if comments else [])]
    return {f"reddit:{t.fullname}" for t in things
            if (subs is None or t.sub.lower() in subs)
            and not (isinstance(t, Comment) and t.body in GONE)}


def account(ledger, name: str, db, fake: FakeReddit, config: RedditConfig, now: datetime,
            subs: set[str] | None = None, *, survived: bool = True) -> None:
    """One more cycle must store nothing new; then count the lost and the doubled."""
    final = cycle(db, config, now, force=True)
    stored_again = sum(r.new for r in final.values())
    ids = {r[0] for r in db.execute("SELECT id FROM items")}
    total, urls = db.execute("SELECT count(*), count(DISTINCT url) FROM items").fetchone()
    expected = wanted(fake, subs, comments=config.comments)
    lost = len(expected - ids)
    duplicates = stored_again + (total - urls)
    check = db.execute("PRAGMA integrity_check").fetchone()[0]
    ledger.record(name, survived=survived and not lost and not duplicates and check == "ok",
                  lost=lost, duplicates=duplicates)
    assert check == "ok"
    assert lost == 0, sorted(expected - ids)[:5]
    assert duplicates == 0
    assert survived


def populate(fake: FakeReddit, posts: int = 30) -> None:
    for sub in ("darknet", "onions"):
        fake.add_subreddit(sub)
        for post in fake.add_posts(sub, posts):
            fake.add_comment(post, f"reply to {post.title}")


# --- rate limits ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["api", "keyless"])
@pytest.mark.parametrize("retry_after", ["120", None])
def test_429_is_honoured_and_nothing_is_lost(fake, db, ledger, mode, retry_after):
    populate(fake)
    config = (api if mode == "api" else keyless)(fake, subreddits=("darknet", "onions"))
    listing = r"/new(/\.rss)?$"
    headers = {"Content-Type": "text/html"}
    if retry_after:
        headers["Retry-After"] = retry_after
    fake.fail(listing, 429, headers=headers, body="<html>Too Many Requests</html>", times=5)
    now = utcnow()

    first = cycle(db, config, now)
    limited = first["reddit/new/darknet+onions"]
    assert limited.status == "error" and "429" in limited.error, limited
    assert first["reddit/comments/darknet+onions"].new == 60  # the other listing is read
    state = store.source_state(db, "reddit/new/darknet+onions")
    wait = parse_iso(state["next_attempt_at"]) - now
    assert wait >= timedelta(seconds=120 if retry_after else 54)
    # Nothing is asked of Reddit before that time (the fault would still answer).
    fake.forget_requests()
    assert cycle(db, config, now + timedelta(seconds=30))[
        "reddit/new/darknet+onions"].status == "skipped"
    assert not [r for r in fake.listing_requests() if r.path.endswith(("/new", "/new/.rss"))]

    fake.clear_faults()
    fake.add_posts("darknet", 5, prefix="later")
    later = cycle(db, config, now + wait + timedelta(seconds=1))
    assert later["reddit/new/darknet+onions"].new == 65
    account(ledger, f"reddit 429 ({mode}, Retry-After {retry_after or 'absent'})", db, fake,
            config, now + wait + timedelta(minutes=10))


# --- server errors -------------------------------------------------------------------------

def test_500_502_503_522_in_a_row(fake, db, ledger):
    populate(fake)
    config = api(fake, subreddits=("darknet", "onions"))
    statuses = [500, 502, 503, 522]
    for status in statuses:
        fake.fail(r"/new$", status, body=f"<html>{status}</html>",
                  headers={"Content-Type": "text/html"}, times=1)
    now = utcnow()

    first = cycle(db, config, now)["reddit/new/darknet+onions"]
    assert first.status == "error" and first.error.startswith("Reddit server error (HTTP 5")
    assert store.source_state(db, "reddit/new/darknet+onions")["consecutive_failures"] == 1
    # Each next attempt waits for its backoff; prawcore retries within an attempt. Once the
    # errors are used up the listing is read in full.
    when, attempts = now, 1
    while fake.faults:
        when = parse_iso(store.source_state(db, "reddit/new/darknet+onions")["next_attempt_at"])
        result = cycle(db, config, when)["reddit/new/darknet+onions"]
        attempts += 1
        assert attempts <= len(statuses)
    assert result.status == "new" and result.new == 60, result
    assert store.source_state(db, "reddit/new/darknet+onions")["consecutive_failures"] == 0
    served = [r.path for r in fake.listing_requests() if r.path.endswith("/new")]
    assert len(served) == len(statuses) + 1  # every error was met, then the listing
    account(ledger, "reddit 500/502/503/522 in a row", db, fake, config,
            when + timedelta(minutes=10))


@pytest.mark.parametrize("body", [
    '{"kind": "Listing", "data": {"after": null, "children": [{"kind": "t3", "data": {"ti',
    '{"kind": "Listing"}',
    "",
])
def test_truncated_or_hollow_json(fake, db, ledger, body):
    populate(fake)
    config = api(fake, subreddits=("darknet", "onions"))
    fake.fail(r"/new$", 200, body=body, times=1)
    now = utcnow()

    first = cycle(db, config, now)["reddit/new/darknet+onions"]
    assert first.status == "error", first
    assert first.error.startswith(("Reddit sent a response that is not JSON",
                                   "Reddit sent something that is not a listing")), first.error
    assert not first.error.startswith("internal error")
    assert cycle(db, config, parse_iso(first.next_attempt_at))[
        "reddit/new/darknet+onions"].new == 60
    account(ledger, f"reddit truncated JSON ({len(body)} bytes)", db, fake, config,
            parse_iso(first.next_attempt_at) + timedelta(minutes=10))


# --- the token endpoint --------------------------------------------------------------------

def test_a_failing_token_endpoint(fake, db, ledger, local_server):
    """reddit_url (where praw gets its token) points at a server whose token endpoint fails
    in several ways, then recovers by passing the request on to the fake Reddit."""
    populate(fake)
    failures = [
        (503, "text/html", b"<html>Service Unavailable</html>"),
        (500, "application/json", b'{"message": "Internal Server Error", "error": 500}'),
        (200, "application/json", b'{"access_token": "abc", "token_ty'),
        (200, "application/json", b'{"error": "invalid_grant"}'),
    ]
    asked = []

    def token(request: Request) -> Response:
        asked.append(request.headers.get("Authorization"))
        if failures:
            status, kind, body = failures.pop(0)
            return Response(body, status=status, content_type=kind)
        passed = requests.post(f"{fake.url}/api/v1/access_token", data=request.form,
                               headers={"Authorization": request.headers["Authorization"]},
                               timeout=5)
        return Response(passed.content, status=passed.status_code,
                        content_type=passed.headers["Content-Type"])

    local_server.expect_request("/api/v1/access_token", method="POST").respond_with_handler(
        token)
    config = api(fake, subreddits=("darknet", "onions"), comments=False,
                 reddit_url=local_server.url_for("/").rstrip("/"))
    now = utcnow()
    errors = []
    for _ in range(4):
        result = cycle(db, config, now, force=True)["reddit/new/darknet+onions"]
        assert result.status == "error", result
        errors.append(result.error)
    assert errors[:3] == ["Reddit server error (HTTP 503)", "Reddit server error (HTTP 500)",
                          "Reddit sent a response that is not JSON"]
    assert errors[3].startswith("Reddit refused the credentials (invalid_grant): check "
                                "MONITOR_REDDIT_CLIENT_ID")
    expected = "Basic " + base64.b64encode(
        f"{fake.client_id}:{fake.client_secret}".encode()).decode()
    assert set(asked) == {expected}
    # Recovered: the token comes through and the listing is read.
    assert cycle(db, config, now, force=True)["reddit/new/darknet+onions"].new == 60
    account(ledger, "reddit token endpoint failing", db, fake, config,
            now + timedelta(minutes=10))


# --- a subreddit that turns private mid-run ------------------------------------------------

def test_a_subreddit_that_turns_private_mid_run_loses_nothing(fake, db, ledger):
    populate(fake, posts=30)
    config = api(fake, subreddits=("darknet", "onions"), comments=False)
    t0 = utcnow()
    assert cycle(db, config, t0)["reddit/new/darknet+onions"].new == 60

    # Two hours on: a burst in r/darknet, a few posts in r/onions (the newest).
    fake.clock += 2 * 3600
    fake.add_posts("darknet", 150, prefix="burst")
    fake.add_posts("onions", 20, prefix="meanwhile")
    served = {"n": 0}
    real = fake.post_data

    def post_data(post: Post) -> dict:
        # r/darknet goes private once the first page of this cycle has been served.
        served["n"] += 1
        if served["n"] == 100:
            fake.set_status("darknet", "private")
        return real(post)

    fake.post_data = post_data
    t1 = t0 + timedelta(hours=2)
    mid = cycle(db, config, t1)["reddit/new/darknet+onions"]
    assert mid.status == "new" and mid.new == 20  # r/onions is read in full
    gap = store.source_state(db, "reddit/r/darknet")
    assert gap["gap"] == "private" and gap["last_error"] == "HTTP 403: private subreddit"
    fake.post_data = real

    # While private, approved users still post (visible once it reopens); r/onions goes on.
    fake.clock += 86400
    fake.add_posts("darknet", 10, prefix="while private")
    fake.clock += 3600
    fake.add_posts("onions", 5, prefix="next day")
    t2 = t1 + timedelta(days=1)
    assert cycle(db, config, t2)["reddit/new/darknet+onions"].new == 5

    # Public again: the recheck reads it back to where it was when it went private.
    fake.set_status("darknet", "public")
    t3 = t2 + timedelta(days=1)
    back = cycle(db, config, t3)["reddit/new/darknet+onions"]
    assert back.status == "new"
    assert store.source_state(db, "reddit/r/darknet")["gap"] is None
    assert back.new == 160, back
    account(ledger, "subreddit private mid-run", db, fake, config, t3 + timedelta(minutes=10))


# --- deleted posts and comments ------------------------------------------------------------

@pytest.mark.parametrize("mode", ["api", "keyless"])
def test_deleted_posts_and_comments(fake, db, ledger, mode):
    fake.add_subreddit("darknet")
    live = fake.add_post("darknet", "Archetyp is gone, where now?", "Asking for a friend")
    fake.add_comment(live, "[deleted]", author="[deleted]")
    fake.add_comment(live, "[removed]", author="moderator")
    kept = fake.add_comment(live, "Try the new one", author="carol")
    gone_author = fake.add_post("darknet", "Author left", "text stays", author="[deleted]")
    removed = fake.add_post("darknet", "Removed by mods", "[removed]", author="bob")
    deleted = fake.add_post("darknet", "[deleted by user]", "[deleted]", author="[deleted]")
    orphan_parent = fake.add_post("darknet", "[deleted]", "[deleted]", author="[deleted]")
    orphan = fake.add_comment(orphan_parent, "the post above is gone but I am not")
    config = (api if mode == "api" else keyless)(fake, subreddits=("darknet",))
    now = utcnow()

    results = cycle(db, config, now)
    assert {r.status for r in results.values()} == {"new"}

    def row(thing) -> dict:
        rows = list(db.query("SELECT * FROM items WHERE id = ?", [f"reddit:{thing.fullname}"]))
        assert rows, thing
        return rows[0]

    assert row(gone_author)["author"] is None and row(gone_author)["body"] == "text stays"
    assert row(removed)["body"] == "" and row(removed)["title"] == "Removed by mods"
    assert row(deleted)["body"] == "" and row(deleted)["author"] is None
    assert row(orphan)["parent_id"] == f"reddit:{orphan_parent.fullname}"
    assert row(kept)["body"] == "Try the new one"
    assert db.execute("SELECT count(*) FROM items WHERE kind = 'reddit_comment'"
                      ).fetchone() == (2,)  # the deleted and removed ones have no text

    # Deleted on Reddit after we stored it: our copy stays as it was.
    live.selftext = "[deleted]"
    live.author = "[deleted]"
    later = cycle(db, config, now + timedelta(minutes=15), force=True)
    assert sum(r.new for r in later.values()) == 0
    assert row(live)["body"] == "Asking for a friend" and row(live)["author"] == "someone"
    account(ledger, f"deleted posts and comments ({mode})", db, fake, config,
            now + timedelta(minutes=30))
