"""`monitor demo` and the bundled sample it plays back (monitor/sample.py, data/sample/).

The sample files are checked as data (every feed parses, every date and reference holds), the
playback server as an HTTP server (only what was published by its clock, conditional GET,
a feed that goes down, Reddit paging), and the demo end to end on pinned clocks: early on a
Monday and late on a Sunday, so that its report and digest show the story whichever day of
the week it runs.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
import requests
from click.testing import CliRunner

from monitor import demo, store
from monitor.cli import cli
from monitor.collect.feeds import parse_feed
from monitor.config import load_config
from monitor.errors import MonitorError
from monitor.sample import (
    Playback,
    SampleServer,
    load_scenario,
    markdown_html,
    read_listing,
    week_shift,
)

SCENARIO = load_scenario()
# The sample's own current week, and a later week to play it back in.
ANCHOR = SCENARIO.anchor
LATER_MONDAY = datetime(2027, 3, 1, tzinfo=UTC)


# --- the sample as data --------------------------------------------------------------------

def test_scenario_is_consistent() -> None:
    assert ANCHOR.weekday() == 0 and ANCHOR.hour == 0
    assert SCENARIO.start < ANCHOR
    assert {f.name for f in SCENARIO.feeds} == {"darkwire", "cyberdesk", "courtwatch",
                                                 "chainbeat"}
    assert [f.name for f in SCENARIO.feeds if f.down_from] == ["courtwatch"]
    [event] = SCENARIO.events
    assert event["kind"] == "seizure" and event["markets"] == ["Larkspur"]
    assert SCENARIO.start < event["happened_at"] < ANCHOR


@pytest.mark.parametrize("feed", SCENARIO.feeds, ids=lambda f: f.name)
def test_every_sample_feed_parses_with_dated_entries_inside_the_story(feed) -> None:
    raw = (SCENARIO.directory / feed.file).read_bytes()
    parsed = parse_feed(raw)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) >= 5
    ids = [e.id for e in parsed.entries]
    assert len(ids) == len(set(ids))
    for entry in parsed.entries:
        published = datetime(*entry.published_parsed[:6], tzinfo=UTC)
        assert SCENARIO.start - timedelta(days=1) <= published < ANCHOR + timedelta(days=7)
        assert entry.title and entry.summary
        assert ".example/" in entry.link  # invented outlets live on a reserved domain


def test_the_reddit_listing_is_a_coherent_listing() -> None:
    data = json.loads((SCENARIO.directory / SCENARIO.reddit_file).read_text(encoding="utf-8"))
    assert data["kind"] == "Listing"
    things = read_listing(SCENARIO.directory / SCENARIO.reddit_file)
    posts = {t.fullname: t for t in things if t.kind == "t3"}
    comments = [t for t in things if t.kind == "t1"]
    assert len(posts) >= 50 and len(comments) >= 80
    assert len({t.fullname for t in things}) == len(things)
    assert [t.created for t in things] == sorted((t.created for t in things), reverse=True)
    watched = {s.lower() for s in SCENARIO.subreddits}
    only_searched = {t.subreddit for t in posts.values()} - set(SCENARIO.subreddits)
    for name in only_searched:  # reachable only through a search
        assert any(all(w in f"{p.data['title']} {p.data['selftext']}".lower()
                       for w in q.lower().split())
                   for p in posts.values() if p.subreddit == name for q in SCENARIO.searches)
    for comment in comments:
        post = posts[comment.data["link_id"]]
        assert comment.created > post.created
        assert comment.subreddit == post.subreddit
        assert comment.data["permalink"].startswith(post.data["permalink"])
        assert comment.data["body"].strip()
    for post in posts.values():
        assert SCENARIO.start - timedelta(days=1) <= post.created < ANCHOR + timedelta(days=7)
        assert post.subreddit.lower() in watched or post.subreddit in only_searched


def test_the_story_names_its_markets_and_its_noise() -> None:
    texts = [f"{t.data.get('title', '')} {t.data.get('selftext', '')} {t.data.get('body', '')}"
             for t in read_listing(SCENARIO.directory / SCENARIO.reddit_file)]
    for feed in SCENARIO.feeds:
        texts += [f"{e.title} {e.summary}" for e in feedparser.parse(
            (SCENARIO.directory / feed.file).read_bytes()).entries]
    joined = "\n".join(texts)
    for needed in ("Larkspur", "Cormorant", "Thistle", "Larkspur 2.0", "Hedgerow", "phishing",
                   "Tor", "Monero"):
        assert needed in joined
    without_markets = [t for t in texts if not any(
        m in t for m in ("Larkspur", "Cormorant", "Thistle"))]
    assert len(without_markets) > len(texts) / 3  # plenty of everyday noise


def test_markdown_rendering_escapes_and_formats() -> None:
    html = markdown_html("**Bold** and *it*\n\n> quoted <b>\n\nplain & done")
    assert "<strong>Bold</strong>" in html and "<em>it</em>" in html
    assert "<blockquote><p>quoted &lt;b&gt;</p></blockquote>" in html
    assert "plain &amp; done" in html
    assert markdown_html("  ") == ""


# --- playing it back -----------------------------------------------------------------------

def test_week_shift_keeps_weekdays_and_makes_the_anchor_week_current() -> None:
    for now in (LATER_MONDAY, LATER_MONDAY + timedelta(days=6, hours=23, minutes=59)):
        shift = week_shift(SCENARIO, now)
        assert shift.days % 7 == 0 and shift.seconds == 0
        assert (ANCHOR + shift).date() == LATER_MONDAY.date()
    assert week_shift(SCENARIO, ANCHOR + timedelta(days=3)) == timedelta(0)


@pytest.fixture
def served():
    playback = Playback(SCENARIO, week_shift(SCENARIO, LATER_MONDAY))
    with SampleServer(playback, LATER_MONDAY) as server:
        yield server


def _entries(server: SampleServer, name: str) -> list:
    response = requests.get(server.feed_url(name), timeout=5)
    assert response.status_code == 200
    return feedparser.parse(response.content).entries


def test_a_feed_shows_only_what_was_published_by_the_clock(served) -> None:
    playback = served.playback
    served.clock = playback.real(datetime(2026, 11, 17, 16, 0, tzinfo=UTC))
    titles = [e.title for e in _entries(served, "darkwire")]
    assert titles[0] == "Larkspur Market seized in 'Operation Hedgerow'"
    assert not any("Larkspur 2.0" in t for t in titles)
    dates = [datetime(*e.published_parsed[:6], tzinfo=UTC) for e in _entries(served, "darkwire")]
    assert max(dates) == playback.real(datetime(2026, 11, 17, 15, 40, tzinfo=UTC))
    assert max(dates).year == 2027  # moved into the playback's weeks
    served.clock = playback.real(datetime(2026, 11, 30, tzinfo=UTC))
    for name in ("darkwire", "cyberdesk"):  # each holds fewer than feed_size in all
        assert len(_entries(served, name)) == len(playback.feeds[name].entries)
    # A feed shows its newest feed_size entries only, as real feeds do.
    short = Playback(dataclasses.replace(SCENARIO, feed_size=3), playback.shift)
    body, newest = short.feed("darkwire", served.clock)
    entries = feedparser.parse(body).entries
    assert len(entries) == 3 and entries[0].title.startswith("Police arrest six vendors")
    assert newest == playback.real(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))


def test_conditional_get_and_a_feed_that_goes_down(served) -> None:
    playback = served.playback
    served.clock = playback.real(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    first = requests.get(served.feed_url("courtwatch"), timeout=5)
    assert first.status_code == 200 and first.headers["ETag"]
    assert first.headers["Last-Modified"] == "Wed, 24 Feb 2027 12:20:00 GMT"
    again = requests.get(served.feed_url("courtwatch"), timeout=5,
                         headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.content
    served.clock = playback.real(datetime(2026, 11, 20, 17, 0, tzinfo=UTC))
    newer = requests.get(served.feed_url("courtwatch"), timeout=5,
                         headers={"If-None-Match": first.headers["ETag"]})
    assert newer.status_code == 200 and newer.headers["ETag"] != first.headers["ETag"]
    served.clock = playback.real(datetime(2026, 11, 21, 0, 0, tzinfo=UTC))
    assert requests.get(served.feed_url("courtwatch"), timeout=5).status_code == 503
    assert requests.get(served.url + "/feeds/nothing.xml", timeout=5).status_code == 404


def test_reddit_listings_page_and_search_like_reddit(served) -> None:
    playback = served.playback
    served.clock = playback.real(datetime(2026, 11, 19, 18, 0, tzinfo=UTC))
    url = served.url + "/r/darknet+onions/new/.rss"
    page1 = feedparser.parse(requests.get(url, params={"limit": 5}, timeout=5).content)
    assert len(page1.entries) == 5
    assert {e.tags[0].term for e in page1.entries} <= {"darknet", "onions"}
    after = page1.entries[-1].id
    page2 = feedparser.parse(requests.get(url, params={"limit": 5, "after": after},
                                          timeout=5).content)
    assert not {e.id for e in page1.entries} & {e.id for e in page2.entries}
    times = [e.published_parsed for e in page1.entries + page2.entries]
    assert times == sorted(times, reverse=True)
    assert page1.entries[0].title == "Where's the signed Cormorant mirror list?"
    comments = feedparser.parse(requests.get(served.url + "/r/darknet/comments/.rss",
                                             timeout=5).content)
    assert all(e.id.startswith("t1_") and e.title.startswith("/u/") for e in comments.entries)
    found = feedparser.parse(requests.get(served.url + "/search.rss", timeout=5,
                                          params={"q": "larkspur", "sort": "new"}).content)
    assert all("larkspur" in (e.title + e.summary).lower() for e in found.entries)
    served.clock = playback.real(datetime(2026, 11, 30, tzinfo=UTC))
    found = feedparser.parse(requests.get(served.url + "/search.rss", timeout=5,
                                          params={"q": "larkspur"}).content)
    assert "osint" in {e.tags[0].term.lower() for e in found.entries}


# --- the demo end to end -------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_models(tmp_path_factory) -> Path:
    """A models directory holding the current model, trained once for this module."""
    from monitor.classify import apply

    where = tmp_path_factory.mktemp("models")
    db = store.open_db(where / "train.db")
    try:
        apply.ensure_gazetteer(db)
        apply.current_classifier(db, where / "train.db")
    finally:
        db.close()
    return where / "models"


def _run(tmp_path: Path, trained_models: Path, now: datetime) -> demo.DemoResult:
    shutil.copytree(trained_models, tmp_path / "models")
    result = demo.run_demo(tmp_path, now=now)
    assert not result.trained  # the model next to the database was reused
    assert result.seconds < 60
    return result


def _rows(db_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_demo_on_a_monday_just_after_midnight(tmp_path: Path, trained_models: Path) -> None:
    now = LATER_MONDAY + timedelta(minutes=30)
    result = _run(tmp_path, trained_models, now)
    db = result.db_path
    assert result.collections == 5 * 14 + 1 and result.last_at == now
    assert result.counts["items"] > 100 and result.counts["flagged"] >= 20
    assert result.counts["mentions"] >= 50 and result.counts["warnings"] >= 3
    # Nothing after `now` was served: the sample's current week has not begun.
    assert _rows(db, "SELECT max(published_at) FROM items")[0][0] < "2027-03-01"
    # The successor, discovered and linked to the seized market, and its rise.
    assert {"Larkspur", "Cormorant", "Larkspur 2.0"} <= {
        r[0] for r in _rows(db, "SELECT name FROM markets WHERE origin = 'discovered'")}
    assert ("Larkspur", "Cormorant") in [(s["predecessor"], s["successor"])
                                         for s in result.successors]
    [rising] = [a for a in result.alerts if a["market"] == "Cormorant"]
    assert rising["kind"] == "new-rising"
    assert rising["raised_at"].startswith("2027-02-25")  # Thursday of last week
    # Warnings name the scam clone; the invented takedown is an event with its response.
    assert _rows(db, "SELECT count(*) FROM mentions WHERE role = 'warning' "
                     "AND market = 'Larkspur 2.0'")[0][0] >= 2
    response = _rows(db, "SELECT successor FROM takedown_response WHERE event_id = "
                         "'sample-operation-hedgerow' ORDER BY mentions_30d DESC")
    assert response[0][0] == "Cormorant"
    assert [f["source"] for f in result.failing] == ["courtwatch"]
    # The digest of last week tells the story; the report covers the days before Monday.
    assert result.week == "2027-W08"
    page = result.digest_path.read_text(encoding="utf-8")
    for needed in ("2027-W08", "Cormorant", "Larkspur 2.0", "Operation Hedgerow", "courtwatch"):
        assert needed in page
    assert "Cormorant" in result.report and "courtwatch" in result.report
    assert "Operation Hedgerow" in result.events


def test_demo_late_on_a_sunday_and_its_config(tmp_path: Path, trained_models: Path) -> None:
    now = LATER_MONDAY + timedelta(days=6, hours=23, minutes=30)
    result = _run(tmp_path, trained_models, now)
    assert result.week == "2027-W08"  # the week before is still the last complete one
    # This week's part of the story was served too: the report's week is full.
    assert _rows(result.db_path, "SELECT count(*) FROM items "
                                 "WHERE published_at >= '2027-03-01'")[0][0] >= 30
    assert "Sun 2027-03-07" in result.report
    config = load_config(result.config_path)
    assert config.db_path == result.db_path
    assert config.feeds == () and config.reddit is None
    summary = demo.render_summary(result)
    assert "Larkspur -> Cormorant (migration" in summary
    assert "Failing source (on purpose): courtwatch" in summary
    steps = demo.render_next_steps(result, tmp_path)
    assert "monitor serve --config demo.toml" in steps
    assert result.digest_path.as_uri() in steps


def test_an_earlier_demo_database_is_replaced_and_no_other(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    db = store.open_db(path)
    store.set_meta(db, store.DEMO_META_KEY, "{}")
    db.close()
    assert store.is_demo_database(path)
    assert any(p.name.startswith("demo.db-") for p in tmp_path.iterdir())  # WAL files
    demo._clear(path)
    assert list(tmp_path.iterdir()) == []

    db = store.open_db(path)  # a database the demo did not make
    db.close()
    with pytest.raises(MonitorError, match="was not made by `monitor demo`"):
        demo.run_demo(tmp_path)
    assert store.schema_version(store.open_db(path)) >= 1  # untouched
    (tmp_path / "other.db").write_bytes(b"not a database at all")
    assert not store.is_demo_database(tmp_path / "other.db")


def test_demo_command_trains_prints_the_report_and_how_to_open_it(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "trained the model" in out  # nothing cached in a new directory
    assert "Successors discovered in the chatter: Larkspur -> Cormorant" in out
    assert "monitor report:" in out and "Flagged by day" in out
    assert "monitor serve --config" in out and "demo-digest.html" in out
    for name in ("demo.db", "demo.toml", "demo-digest.html"):
        assert (tmp_path / "out" / name).is_file()
    # The config it wrote works with the other commands.
    report = runner.invoke(cli, ["report", "--config", str(tmp_path / "out" / "demo.toml")])
    assert report.exit_code == 0, report.output
    assert "Cormorant" in report.output
