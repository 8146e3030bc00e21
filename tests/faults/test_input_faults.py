"""Hostile input: malformed configs (the kinds tests/test_config.py does not already cover),
random bytes and random feed-shaped XML at the feed parser and normaliser, random text at the
market extractor and the classifier.

Every malformed config is one line naming the file and the key. The parser and normaliser
never raise anything but SourceError, and every item they make is valid and storable. The
extractor and the classifier take any text.
"""

from __future__ import annotations

import html
import math
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import store
from monitor.cli import cli
from monitor.collect.feeds import MAX_BODY_CHARS, MAX_FUTURE, entries_to_items, parse_feed
from monitor.config import ConfigError, config_from_dict, load_config
from monitor.errors import SourceError
from monitor.timeutil import iso, parse_iso

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DB = '[database]\npath = "x.db"\n'
FEED = '[[feeds]]\nname = "a"\nurl = "https://a.test/f"\n'

# --- malformed configs ---------------------------------------------------------------------

CONFIG_KINDS = [
    # (name, file contents, words the one-line error must hold)
    ("empty file", "", ["missing section [database]"]),
    ("NUL byte", DB + 'x = "\x00"\n', ["invalid TOML"]),
    ("duplicate key", DB + 'path = "y.db"\n', ["invalid TOML"]),
    ("duplicate table", DB + DB, ["invalid TOML"]),
    ("section as a value", 'database = "x.db"\n', ["database", "must be a table"]),
    ("section as a list", '[[database]]\npath = "x.db"\n', ["database", "must be a table"]),
    ("empty path", '[database]\npath = ""\n', ["database.path", "non-empty"]),
    ("path as a number", '[database]\npath = 5\n', ["database.path"]),
    ("feeds as strings", 'feeds = ["https://a.test/f"]\n' + DB, ["feeds", "[[feeds]]"]),
    ("reddit as a list", DB + '[[reddit]]\nsubreddits = []\n', ["reddit", "must be a table"]),
    ("empty feed name", DB + FEED.replace('"a"', '""'), ["feeds[0].name"]),
    ("line break in a feed name", DB + FEED.replace('"a"', '"a\\nb"'), ["feeds[0].name"]),
    ("CRLF in a feed URL", DB + FEED.replace("/f", "/f\\r\\nX-Injected: 1"), ["feeds[0].url"]),
    ("space in a feed URL", DB + FEED.replace("/f", "/a b"), ["feeds[0].url"]),
    ("port out of range", DB + FEED.replace("a.test", "a.test:99999"), ["feeds[0].url"]),
    ("password in a feed URL", DB + FEED.replace("https://", "https://u:pw@"),
     ["feeds[0].url", "password"]),
    ("interval beyond a year", DB + FEED + 'interval = "9999999d"\n',
     ["feeds[0].interval", "longer than a year"]),
    ("interval overflowing a float", DB + '[http]\nread_timeout = "1e400s"\n',
     ["http.read_timeout"]),
    ("enabled as a string", DB + FEED + 'enabled = "no"\n', ["feeds[0].enabled"]),
    ("negative retries", DB + '[http]\nretries = -1\n', ["http", "retries"]),
    ("tiny size cap", DB + '[http]\nmax_bytes = 10\n', ["http", "max_bytes"]),
    ("boolean for a number", DB + '[http]\nmax_bytes = true\n', ["http.max_bytes", "whole"]),
    ("fraction for a whole number", DB + '[http]\nretries = 1.5\n', ["http.retries", "whole"]),
    ("CRLF in the user agent", DB + '[http]\nuser_agent = "a\\r\\nX-Injected: 1"\n',
     ["http.user_agent", "control"]),
    ("CRLF in Reddit's user agent", DB + '[reddit]\nuser_agent = "a:b:1 (by /u/c)\\r\\nX: 1"\n',
     ["reddit.user_agent"]),
    ("numbers as searches", DB + '[reddit]\nsearches = [1, 2]\n', ["reddit.searches"]),
    ("batch size 0", DB + '[reddit]\nbatch_size = 0\n', ["reddit", "batch_size"]),
    ("port 0", DB + '[smtp]\nport = 0\n', ["smtp.port"]),
    ("port beyond 64 bits", DB + '[smtp]\nport = 99999999999999999999999\n', ["smtp.port"]),
    ("empty SMTP host", DB + '[smtp]\nhost = ""\n', ["smtp.host"]),
    ("CRLF in the SMTP host", DB + '[smtp]\nhost = "a\\r\\nb"\n', ["smtp.host"]),
    ("CRLF in the SMTP user", DB + '[smtp]\nusername = "a\\r\\nRCPT TO:<x@y.z>"\n',
     ["smtp.username"]),
    ("missing CA file", DB + '[smtp]\nca_file = "no-such.pem"\n', ["smtp.ca_file"]),
    ("CRLF in the sender", DB + '[digest]\nsender = "a@b.c\\r\\nBcc: x@y.z"\n',
     ["digest.sender"]),
    ("recipients as a string", DB + '[digest]\nrecipients = "a@b.c"\n',
     ["digest.recipients", "list"]),
    ("TOML time for a time", DB + '[digest]\ntime = 07:00:00\n', ["digest.time", "string"]),
    ("24:00", DB + '[digest]\ntime = "24:00"\n', ["digest.time"]),
    ("no top items", DB + '[digest]\ntop_items = 0\n', ["digest", "top_items"]),
    ("nan margin", DB + '[digest]\nunsure_margin = nan\n', ["digest.unsure_margin"]),
    ("nan z threshold", DB + '[alerts]\nz_threshold = nan\n', ["alerts.z_threshold", "finite"]),
    ("infinite threshold", DB + '[classifier]\nthreshold = inf\n', ["classifier.threshold"]),
    ("alert mail to nobody", DB + '[digest]\nrecipients = []\n[alerts]\nemail = true\n',
     ["alerts.email"]),
    ("bad alert recipient", DB + '[alerts]\nrecipients = ["nobody"]\n',
     ["alerts.recipients[0]"]),
    ("no baseline", DB + '[alerts]\nbaseline_days = 0\n', ["alerts", "baseline_days"]),
    ("jitter 0.9", DB + '[daemon]\njitter = 0.9\n', ["daemon.jitter"]),
    ("heartbeat 0", DB + '[daemon]\nheartbeat = "0s"\n', ["daemon.heartbeat"]),
]


@pytest.mark.parametrize("name,text,words", CONFIG_KINDS, ids=[k[0] for k in CONFIG_KINDS])
def test_malformed_config_is_one_line_naming_file_and_key(tmp_path, ledger, name, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    result = CliRunner().invoke(cli, ["status", "--config", str(path)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    ok = (message.startswith(f"{path}: ") and "\n" not in message
          and all(w in message for w in words) and result.exit_code == 1
          and lines == [f"Error: {message}"] and result.exception is not None
          and isinstance(result.exception, SystemExit))
    ledger.record(f"config: {name}", survived=ok)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for word in words:
        assert word in message, message
    assert result.exit_code == 1 and lines == [f"Error: {message}"], result.output
    assert ok


def test_unreadable_config_paths(tmp_path, ledger):
    folder = tmp_path / "config.toml"
    folder.mkdir()
    dangling = tmp_path / "link.toml"
    dangling.symlink_to(tmp_path / "gone.toml")
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    cases = {folder: "cannot read config file", dangling: "config file not found",
             loop: "cannot read config file"}
    for path, words in cases.items():
        with pytest.raises(ConfigError, match=re.escape(f"{path}: {words}")):
            load_config(path, env={})
    ledger.record("config: directory, dangling and looping links", survived=True)


def test_a_byte_order_mark_is_accepted(tmp_path, ledger):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + (DB + FEED).encode())
    config = load_config(path, env={})
    ledger.record("config: byte-order mark", survived=config.feeds[0].name == "a")
    assert config.feeds[0].name == "a"


TOML_VALUES = st.recursive(
    st.booleans() | st.integers()
    | st.floats(allow_nan=True) | st.text(max_size=30) | st.datetimes() | st.times(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=6)
SECTIONS = ["database", "http", "feeds", "reddit", "classifier", "digest", "smtp", "daemon",
            "alerts"]
KEYS = ["path", "url", "name", "interval", "max_bytes", "retries", "user_agent", "subreddits",
        "searches", "threshold", "weekday", "time", "timezone", "recipients", "sender", "port",
        "host", "security", "ca_file", "jitter", "heartbeat", "z_threshold", "enabled",
        "comments", "batch_size", "unknown"]


def fuzz(ledger, name: str, prop) -> None:
    """Run a property (a @given function) and record it in the ledger as one fault."""
    try:
        prop()
    except BaseException:
        ledger.record(name, survived=False)
        raise
    ledger.record(name, survived=True)


def test_any_config_shape_is_a_config_or_a_config_error(ledger):
    """Whatever a TOML file can hold: a Config or a ConfigError, never a crash."""

    @FUZZ
    @given(st.dictionaries(
        st.sampled_from(SECTIONS),
        st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=4)
        | st.lists(st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=4),
                   max_size=2)
        | TOML_VALUES, max_size=5))
    def prop(data):
        try:
            config_from_dict(data, Path("/nonexistent/fuzz.toml"), {})
        except ConfigError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("/nonexistent/fuzz.toml: ")

    fuzz(ledger, "config: random TOML shapes", prop)


def test_any_bytes_as_a_config_file(tmp_path, ledger):
    path = tmp_path / "fuzz-config.toml"

    @FUZZ
    @given(st.binary(max_size=2000))
    def prop(raw):
        path.write_bytes(raw)
        try:
            load_config(path, env={})
        except ConfigError as exc:
            assert "\n" not in str(exc)

    fuzz(ledger, "config: random bytes", prop)


# --- the feed parser and normaliser --------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ID = re.compile(r"feed:[0-9a-f]{24}")


@pytest.fixture
def scratch_db(tmp_path):
    db = store.open_db(tmp_path / "fuzz.db")
    yield db
    db.close()


def check_items(items: list[dict], db, *, source: str = "fuzz") -> None:
    """What every normalised item must be, then stored (which SQLite must accept)."""
    assert len({i["id"] for i in items}) == len(items)
    for item in items:
        assert _ID.fullmatch(item["id"]), item["id"]
        assert item["source"] == source and item["kind"] == "news"
        assert item["collected_at"] == iso(NOW)
        published = parse_iso(item["published_at"])
        assert item["published_at"] == iso(published) and published <= NOW + MAX_FUTURE
        for key, cap in (("title", 1000), ("body", MAX_BODY_CHARS), ("author", 200)):
            value = item[key]
            if value is None and key == "author":
                continue
            assert isinstance(value, str) and len(value) <= cap
            assert not _CONTROL.search(value), (key, value)
            value.encode("utf-8")  # no lone surrogates: SQLite and email need valid text
        if item["url"] is not None:
            assert re.match(r"https?://[^\s]+$", item["url"]), item["url"]
            assert not _CONTROL.search(item["url"])
        assert item["content_hash"] is None or re.fullmatch(r"[0-9a-f]{32}",
                                                            item["content_hash"])
        assert item["title"] or item["body"] or item["url"]
    store.save_items(db, items)


def normalise(raw: bytes, base_url: str = "https://news.example.org/feed",
              now: datetime = NOW) -> list[dict]:
    try:
        parsed = parse_feed(raw, {"Content-Type": "application/rss+xml"})
    except SourceError as exc:
        assert str(exc).startswith("not a feed") and "\n" not in str(exc)
        return []
    return entries_to_items(parsed, source="fuzz", base_url=base_url, now=now)


def test_random_bytes_at_the_feed_parser(scratch_db, ledger):

    @FUZZ
    @given(st.binary(max_size=4096))
    def prop(raw):
        check_items(normalise(raw), scratch_db)

    fuzz(ledger, "feeds: random bytes", prop)


HOSTILE = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "&lt;b&gt;bold&lt;/b&gt;",
    "&amp;lt;script&amp;gt;", "&#0;", "&#x1F;", "&#xD800;", "&#xDFFF;", "&#1114112;",
    "&#x10FFFF;", "&nbsp;&copy;", "&bogus;", "\u202eevil", "\ufeff", "\x0b\x0c", "\r\n",
    "]]>", "<![CDATA[x]]>", "<!-- c -->", "\u0000", "Ω≈ç√", "🦊", "a\u0300", "\x85\u2028",
]
URLS = ["https://news.example.org/a", "/relative/path", "javascript:alert(1)",
        "data:text/html,<b>x</b>", "http://[::1]:99999/", "https://h/\r\nX-Injected: 1",
        "http://exa mple.org/", "//evil.example/x", "mailto:a@b.c", "ftp://x/y", ""]
DATES = ["Fri, 27 Nov 2026 10:00:00 GMT", "Mon, 31 Feb 2026 25:61:00 +9999",
         "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-11-28", "yesterday", "",
         "Thu, 01 Jan 1970 00:00:00 GMT", "2100-01-01T00:00:00+14:00", "1e309"]


def fragment() -> st.SearchStrategy[str]:
    raw = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
    return st.lists(st.sampled_from(HOSTILE) | raw.map(html.escape) | raw, max_size=4).map(
        "".join)


def wrapped(text: str, how: str) -> str:
    if how == "cdata":
        return f"<![CDATA[{text.replace(']]>', ']]&gt;')}]]>"
    return html.escape(text) if how == "escaped" else text


@st.composite
def feeds(draw) -> bytes:
    kind = draw(st.sampled_from(["rss", "atom", "rdf"]))
    entries = []
    for _ in range(draw(st.integers(0, 6))):
        how = draw(st.sampled_from(["raw", "escaped", "cdata"]))
        title = wrapped(draw(fragment()), how)
        body = wrapped(draw(fragment()), how)
        guid = draw(st.none() | st.sampled_from(["g1", "g2", "  ", ""]) | fragment())
        link = html.escape(draw(st.sampled_from(URLS) | fragment()))
        date = html.escape(draw(st.sampled_from(DATES)))
        author = wrapped(draw(fragment()), how)
        if kind == "atom":
            entries.append(
                (f"<id>{html.escape(guid)}</id>" if guid is not None else "")
                + f"<title type='html'>{title}</title><link href=\"{link}\"/>"
                f"<updated>{date}</updated><author><name>{author}</name></author>"
                f"<content type='html'>{body}</content>")
        else:
            entries.append(
                (f"<guid>{html.escape(guid)}</guid>" if guid is not None else "")
                + f"<title>{title}</title><link>{link}</link><pubDate>{date}</pubDate>"
                f"<author>{author}</author><description>{body}</description>")
    if kind == "atom":
        doc = ("<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>"
               + "".join(f"<entry>{e}</entry>" for e in entries) + "</feed>")
    elif kind == "rdf":
        doc = ("<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' "
               "xmlns='http://purl.org/rss/1.0/'><channel><title>t</title></channel>"
               + "".join(f"<item>{e}</item>" for e in entries) + "</rdf:RDF>")
    else:
        doc = ("<rss version='2.0'><channel><title>t</title>"
               + "".join(f"<item>{e}</item>" for e in entries) + "</channel></rss>")
    encoding = draw(st.sampled_from(["utf-8", "iso-8859-1", "utf-16", "x-bogus", None]))
    declared = f"<?xml version='1.0' encoding='{encoding}'?>" if encoding else ""
    codec = encoding if encoding in ("utf-8", "iso-8859-1", "utf-16") else "utf-8"
    return (declared + doc).encode(codec, errors="xmlcharrefreplace")


def test_random_feed_shaped_xml(scratch_db, ledger):

    @FUZZ
    @given(feeds(), st.sampled_from(["https://news.example.org/feed",
                                     "http://moved.example/x"]))
    def prop(raw, base_url):
        items = normalise(raw, base_url)
        check_items(items, scratch_db)
        # The same document fetched again, later or from a new address: the same ids, so
        # a second poll stores nothing twice.
        again = normalise(raw, "https://elsewhere.example/feed", NOW + timedelta(hours=1))
        assert [i["id"] for i in again] == [i["id"] for i in items]

    fuzz(ledger, "feeds: random feed-shaped XML", prop)


def test_truncated_and_corrupted_feeds(scratch_db, ledger):

    @FUZZ
    @given(feeds(), st.data())
    def prop(raw, data):
        cut = data.draw(st.integers(0, len(raw)))
        flips = data.draw(st.lists(st.tuples(st.integers(0, max(0, len(raw) - 1)),
                                             st.integers(0, 255)), max_size=4))
        damaged = bytearray(raw[:cut] if data.draw(st.booleans()) else raw)
        for pos, value in flips:
            if pos < len(damaged):
                damaged[pos] = value
        check_items(normalise(bytes(damaged)), scratch_db)

    fuzz(ledger, "feeds: truncated and corrupted XML", prop)


# --- the market extractor and the classifier -----------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=400) | st.lists(
    st.sampled_from(["AlphaBay", "alpha bay", "Hydra", "Гидра", "Empire 2.0", "a new market "
                     "called", "is back", "exit scam", "phishing clone", ".onion", "Reloaded",
                     "\n", "\r\n", " ", "Market", "DNM", "2.0", "v3", "http://x.onion/",
                     "\u202e", "'", "\"", "«", "Silk Road 4.0", "Zorg", "dread"]),
    max_size=40).map(" ".join)


@pytest.fixture(scope="module")
def extractor():
    from monitor.classify.markets import ROLES, default_extractor

    return default_extractor(), ROLES


def test_random_text_at_the_market_extractor(extractor, ledger):

    @FUZZ
    @given(TEXT)
    def prop(text):
        found, roles = extractor[0].find(text), extractor[1]
        for mention in found:
            assert mention.role in roles
            # Market names reach the database, the digest and email subjects: one line.
            assert mention.name and mention.name == mention.name.strip()
            assert not _CONTROL.search(mention.name), repr(mention.name)
        assert len({(m.name, m.role) for m in found}) == len(found)

    fuzz(ledger, "random text at the market extractor", prop)


@pytest.fixture(scope="module")
def small_model():
    """A model trained on 200 of the project's examples: the same pipeline as the real one,
    in a fraction of a second."""
    from monitor.classify import dataset, model

    examples = dataset.project_examples()
    random.Random(0).shuffle(examples)
    return model.train(examples[:200], version="fault-suite", folds=3)


def test_random_text_at_the_classifier(small_model, ledger):

    @FUZZ
    @given(st.lists(TEXT, min_size=1, max_size=8))
    def prop(texts):
        scores = small_model.score(texts)
        assert len(scores) == len(texts)
        assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)

    fuzz(ledger, "random text at the classifier", prop)


PATHOLOGICAL = [
    "a " * 10_000, "A" * 20_000, "-" * 20_000, "Market " * 3_000, "new market called " * 1_000,
    "Alpha" + " Bay" * 5_000, ("x" * 50 + ".onion ") * 350, "\n" * 20_000,
    "Hydra 2.0 " * 2_000, "Гидра " * 3_000, "é" * 20_000, "((((" * 5_000, "AAAA" * 5_000 + "!",
    " ".join(["Empire", "Market", "is", "back"] * 1_200),
]


def test_pathological_text_is_bounded_in_time(extractor, small_model, ledger):
    """Item bodies are capped at MAX_BODY_CHARS; no regular expression may take seconds on
    such a body (catastrophic backtracking would stall the collector)."""
    slowest = 0.0
    for text in PATHOLOGICAL:
        text = text[:MAX_BODY_CHARS + 1000]
        started = time.perf_counter()
        extractor[0].find(text)
        small_model.score([text])
        slowest = max(slowest, time.perf_counter() - started)
    ledger.record("pathological text at extractor and classifier", survived=slowest < 5)
    assert slowest < 5, f"{slowest:.1f}s"
