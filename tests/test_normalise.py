"""Feed entries -> items: ids, text, links and dates."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from monitor import text
from monitor.collect.feeds import entries_to_items, entry_to_item, parse_feed
from monitor.errors import SourceError
from monitor.text import html_to_text, safe_url

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BASE = "https://news.example/feeds/main.xml"


def rss(items: str, channel_extra: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>t</title><link>https://news.example/</link>{channel_extra}{items}"
            f"</channel></rss>").encode()


def items_of(body: bytes, source: str = "news") -> list[dict]:
    return entries_to_items(parse_feed(body), source=source, base_url=BASE, now=NOW)


def test_date_with_offset_becomes_utc():
    [item] = items_of(rss("<item><guid>a</guid><title>x</title>"
                          "<pubDate>Fri, 27 Nov 2026 23:30:00 -0500</pubDate></item>"))
    assert item["published_at"] == "2026-11-28T04:30:00+00:00"


def test_atom_updated_is_used_when_published_is_missing():
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            b'<entry><id>urn:1</id><title>x</title><updated>2026-11-01T10:00:00+02:00</updated>'
            b"</entry></feed>")
    [item] = items_of(body)
    assert item["published_at"] == "2026-11-01T08:00:00+00:00"


def test_missing_or_absurd_dates_fall_back_to_collection_time():
    [missing, future] = items_of(rss(
        "<item><guid>a</guid><title>no date</title></item>"
        "<item><guid>b</guid><title>future</title>"
        "<pubDate>Sat, 01 Jan 2099 00:00:00 GMT</pubDate></item>"))
    assert missing["published_at"] == future["published_at"] == "2026-11-28T12:00:00+00:00"
    assert missing["collected_at"] == "2026-11-28T12:00:00+00:00"


def test_html_in_titles_and_bodies_becomes_plain_text():
    [item] = items_of(rss(
        "<item><guid>a</guid><title>&lt;b&gt;AlphaBay&lt;/b&gt; is &amp;quot;back&amp;quot;"
        "</title><description><![CDATA[<p>Line one</p><script>alert(1)</script>"
        "<p>Line&nbsp;two &amp; more</p>   <br/>end]]></description></item>"))
    assert item["title"] == 'AlphaBay is "back"'
    assert item["body"] == "Line one Line two & more end"
    assert "<" not in item["body"] and "alert" not in item["body"]


def test_relative_links_become_absolute_and_unsafe_ones_are_dropped():
    [rel, js, none] = items_of(rss(
        "<item><guid>1</guid><title>a</title><link>/story/1</link></item>"
        "<item><guid>2</guid><title>b</title><link>javascript:alert(1)</link></item>"
        "<item><guid isPermaLink='false'>3</guid><title>c</title></item>"))
    assert rel["url"] == "https://news.example/story/1"
    assert js["url"] is None
    assert none["url"] is None


def test_duplicate_guids_in_one_feed_give_one_item():
    items = items_of(rss("<item><guid>same</guid><title>first</title></item>"
                         "<item><guid>same</guid><title>second</title></item>"))
    assert [i["title"] for i in items] == ["first"]


def test_entries_without_guid_use_link_then_title_and_date():
    items = items_of(rss(
        "<item><title>only link</title><link>https://news.example/a</link></item>"
        "<item><title>only title</title><pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item>"
        "<item><title>only title</title><pubDate>Fri, 27 Nov 2026 11:00:00 GMT</pubDate></item>"
        "<item><description>body only</description></item>"))
    assert len({i["id"] for i in items}) == 4
    again = items_of(rss(
        "<item><title>only link</title><link>https://news.example/a</link></item>"))
    assert again[0]["id"] == items[0]["id"]


def test_ids_are_stable_per_source_and_independent_of_the_feed_url():
    body = rss("<item><guid isPermaLink='true'>/relative/guid</guid><title>x</title></item>")
    a = entries_to_items(parse_feed(body), source="s", base_url="http://127.0.0.1:1/f", now=NOW)
    b = entries_to_items(parse_feed(body), source="s", base_url="http://mirror.test/g", now=NOW)
    c = entries_to_items(parse_feed(body), source="other", base_url=BASE, now=NOW)
    assert a[0]["id"] == b[0]["id"] != c[0]["id"]
    assert a[0]["id"].startswith("feed:")


def test_content_hash_ignores_case_and_spacing_but_not_words():
    [a, b, c] = items_of(rss(
        "<item><guid>1</guid><title>Hydra  seized</title><description>x</description></item>"
        "<item><guid>2</guid><title>hydra seized</title><description>X</description></item>"
        "<item><guid>3</guid><title>hydra back</title><description>x</description></item>"))
    assert a["content_hash"] == b["content_hash"] != c["content_hash"]


def test_an_entry_with_nothing_in_it_is_skipped():
    assert items_of(rss("<item><guid isPermaLink='false'>1</guid></item>")) == []


@pytest.mark.parametrize("body,reason", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"<html><body><h1>Document Moved</h1></body></html>", "not a feed"),
    (b"\x00\xff garbage \x13\x37" * 50, "not a feed"),
])
def test_non_feeds_are_errors(body, reason):
    with pytest.raises(SourceError, match=reason):
        parse_feed(body)


def test_entry_to_item_is_pure():
    entry = {"id": "x", "title": "T", "summary": "S", "link": "a/b"}
    assert entry_to_item(entry, source="s", base_url=BASE, now=NOW) == entry_to_item(
        dict(entry), source="s", base_url=BASE, now=NOW)


@pytest.mark.parametrize("value,expected", [
    ("", ""), ("plain", "plain"), ("a &amp; b", "a & b"), ("<p>x</p><p>y</p>", "x y"),
    ("tab\tand\nnewline", "tab and newline"), ("zero\u200bwidth", "zerowidth"),
    ("<style>p{}</style>kept", "kept"), ("&lt;i&gt;double&lt;/i&gt;", "double"),
])
def test_html_to_text(value, expected):
    assert html_to_text(value) == expected


@pytest.mark.parametrize("value,expected", [
    ("https://a.test/x", "https://a.test/x"), ("/x", "https://news.example/x"),
    ("javascript:alert(1)", None), ("data:text/html,hi", None), ("mailto:a@b.c", None),
    ("http://a.test/\r\nSet-Cookie: x", None), ("", None),
])
def test_safe_url(value, expected):
    assert safe_url(value, BASE) == expected


# --- plain markup without the HTML parser --------------------------------------------------

_FRAGMENTS = [
    "<p>", "</p>", "<br/>", "<br />", "<BR>", "<b>", "</b>",
    '<a href="https://x.example/?a=1&amp;b=2">', "</a>", '<div class="x">', "</div>", "<script>", "</script>", "<style>", "x<y", "a > b",
    "&amp;", "&lt;b&gt;", "&nbsp;", "&#39;", "&bogus;", "&", "<!-- c -->", "<![CDATA[x]]>",
    "<?pi?>", "<p\x0bclass>", '<a\thref="x">', "</p >", '<img src="a>b">', "<img src='x'>",
    "<h1>", "<li>", "text ", " more\ntext", "AlphaBay", "—", "<title>", "</title>", "<x-y>",
    "<p/>", "<<p>", "</ p>", "<a b=c>", "<>", "</>", "<a", "\x00", "&#0;",
]


def _parsed(value: str) -> str:
    parser = text._Text()
    parser.feed(value)
    parser.close()
    return " ".join(text._CONTROL.sub("", "".join(parser.parts)).split())


def test_plain_markup_reads_as_the_html_parser_reads_it():
    rng = random.Random(9)
    taken = 0
    for _ in range(5000):
        value = "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 8)))
        plain = text._strip_plain(value)
        if plain is not None:
            taken += 1
            assert " ".join(text._CONTROL.sub("", plain).split()) == _parsed(value), value
    assert taken > 500  # the shortcut is used, not only the parser


def test_markup_the_shortcut_does_not_know_goes_to_the_parser():
    assert text._strip_plain("<p>One</p><p>Two &amp; three</p>") == " One  Two & three "
    for value in ("<script>a<b</script>", "<!-- <p> -->x", "a <3 b", '<img src="a>b">',
                  "<style>p{}</style>", "<p\x0bx>y"):
        assert text._strip_plain(value) is None
    assert html_to_text("<p>a</p><script>alert(1)</script><p>b</p>") == "a b"
