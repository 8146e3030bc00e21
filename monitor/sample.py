"""The bundled sample (data/sample/) and a local server that plays it back for `monitor demo`.

The sample is an invented story told by a few news feeds and a Reddit listing, written with
fixed dates around its `anchor` week (scenario.toml). Playing it back moves every date by
whole weeks, so that the anchor week is the current week and weekdays stay as written, and
serves, at each moment of the demo's clock, only what had been published by then:

- each feed at /feeds/<name>.xml, its newest `feed_size` entries, with ETag and
  Last-Modified (a conditional GET gets 304 when nothing changed); a feed with `down_from`
  answers 503 from that moment on, as a failing source does;
- Reddit's keyless Atom listings, as www.reddit.com serves them: /r/a+b/new/.rss,
  /r/a+b/comments/.rss, /search.rss and /r/a+b/search.rss, with `limit` and `after` paging.

Everything binds to 127.0.0.1 and reads only the bundled files.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .config import parse_interval
from .errors import MonitorError
from .resources import data_dir

log = logging.getLogger(__name__)

WEB = "https://www.reddit.com"
MAX_PAGE = 100  # Reddit's largest page

# One entry of a feed: the <item> (RSS) or <entry> (Atom) element, as text.
_BLOCK = re.compile(rb"<(item|entry)\b[^>]*>.*?</\1>", re.S)
_ITEM_DATE = re.compile(rb"<(pubDate|published|updated|dc:date)>([^<]+)</\1>")
_HEAD_DATE = re.compile(rb"<(lastBuildDate|pubDate|updated)>([^<]+)</\1>")
_REDDIT_FEED = re.compile(r"^(?:/r/(?P<subs>[A-Za-z0-9_+]+))?/(?:(?P<what>new|comments)/\.rss"
                          r"|search\.rss)$")


def sample_dir() -> Path:
    return data_dir() / "sample"


# --- the scenario --------------------------------------------------------------------------

@dataclass(frozen=True)
class SampleFeed:
    name: str
    file: str
    title: str
    interval: str = "30m"
    down_from: datetime | None = None  # sample time from which it answers 503


@dataclass(frozen=True)
class Scenario:
    """data/sample/scenario.toml: what the sample holds and how the demo collects it."""

    anchor: datetime  # Monday 00:00 UTC of the sample's current week
    start: datetime  # the demo's first collection, in sample time
    step: timedelta  # between two collections
    feeds: tuple[SampleFeed, ...]
    reddit_file: str
    subreddits: tuple[str, ...]
    searches: tuple[str, ...]
    events: tuple[dict[str, Any], ...] = ()
    feed_size: int = 20
    directory: Path = field(default_factory=sample_dir)


def load_scenario(directory: Path | None = None) -> Scenario:
    """Read scenario.toml; MonitorError naming the file and key when it is not usable."""
    directory = directory or sample_dir()
    path = directory / "scenario.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read the sample: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MonitorError(f"{path}: invalid sample scenario: {exc}") from None
    try:
        anchor = _utc(data["anchor"])
        if anchor.weekday() != 0 or anchor.time() != time(0):
            raise ValueError("anchor: must be a Monday at 00:00 UTC")
        reddit = data["reddit"]
        scenario = Scenario(
            anchor=anchor, start=_utc(data["start"]),
            step=timedelta(seconds=parse_interval(data["step"])),
            feeds=tuple(SampleFeed(name=f["name"], file=f["file"], title=f["title"],
                                   interval=f.get("interval", "30m"),
                                   down_from=_utc(f["down_from"]) if "down_from" in f else None)
                        for f in data["feeds"]),
            reddit_file=reddit["file"], subreddits=tuple(reddit["subreddits"]),
            searches=tuple(reddit.get("searches", ())),
            events=tuple(_event(e) for e in data.get("events", ())),
            feed_size=int(data.get("feed_size", 20)), directory=directory)
    except (KeyError, TypeError, ValueError) as exc:
        raise MonitorError(f"{path}: invalid sample scenario: {exc}") from None
    if scenario.start >= scenario.anchor:
        raise MonitorError(f"{path}: start must come before the anchor week")
    return scenario


def _utc(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    raise ValueError(f"{value!r} is not a date or time")


def _event(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "happened_at": _utc(row["date"]),
            "kind": row["kind"], "markets": list(row["markets"])}


def week_shift(scenario: Scenario, now: datetime) -> timedelta:
    """Whole weeks from the sample's anchor week to the week holding `now` (UTC)."""
    monday = (now.astimezone(UTC) - timedelta(days=now.astimezone(UTC).weekday())).date()
    return datetime.combine(monday, time(0), tzinfo=UTC) - scenario.anchor


# --- what is served ------------------------------------------------------------------------

@dataclass
class _Entry:
    published: datetime  # sample time
    text: bytes


@dataclass
class _Feed:
    spec: SampleFeed
    head: bytes
    tail: bytes
    entries: list[_Entry]  # newest first


@dataclass(frozen=True)
class Thing:
    """A post (t3) or comment (t1) of the sample listing, with its sample time."""

    kind: str
    data: dict[str, Any]
    created: datetime

    @property
    def fullname(self) -> str:
        return self.data["name"]

    @property
    def subreddit(self) -> str:
        return self.data["subreddit"]


class Playback:
    """The sample with every date moved by `shift`, served as of any moment (a clock)."""

    def __init__(self, scenario: Scenario, shift: timedelta) -> None:
        self.scenario = scenario
        self.shift = shift
        self.feeds = {spec.name: _read_feed(scenario.directory / spec.file, spec)
                      for spec in scenario.feeds}
        self.things = read_listing(scenario.directory / scenario.reddit_file)
        self._titles = {t.fullname: t.data.get("title", "") for t in self.things
                        if t.kind == "t3"}

    def real(self, moment: datetime) -> datetime:
        return moment + self.shift

    def sample_time(self, moment: datetime) -> datetime:
        return moment - self.shift

    # -- feeds ----------------------------------------------------------------------------

    def feed_down(self, name: str, clock: datetime) -> bool:
        spec = self.feeds[name].spec
        return spec.down_from is not None and self.sample_time(clock) >= spec.down_from

    def feed(self, name: str, clock: datetime) -> tuple[bytes, datetime | None]:
        """The feed's document at `clock` and the time of its newest entry (None if empty)."""
        feed = self.feeds[name]
        until = self.sample_time(clock)
        shown = [e for e in feed.entries if e.published <= until][:self.scenario.feed_size]
        newest = self.real(shown[0].published) if shown else None
        head = _HEAD_DATE.sub(lambda m: self._date(m, newest or self.real(until)), feed.head,
                              count=1)
        body = head + b"".join(_ITEM_DATE.sub(lambda m: self._date(m), e.text)
                               for e in shown) + feed.tail
        return body, newest

    def _date(self, match: re.Match[bytes], value: datetime | None = None) -> bytes:
        tag, text = match.group(1), match.group(2).decode()
        moment = value or self.real(_parse_date(text))
        if tag in (b"pubDate", b"lastBuildDate"):
            out = format_datetime(moment.astimezone(UTC), usegmt=True)
        else:
            out = moment.astimezone(UTC).isoformat()
        return b"<%s>%s</%s>" % (tag, out.encode(), tag)

    # -- Reddit ---------------------------------------------------------------------------

    def listing(self, what: str, subs: Sequence[str], clock: datetime, *, query: str = "",
                limit: int = 25, after: str | None = None) -> list[Thing]:
        """Newest first, as Reddit pages them: `what` is "new", "comments" or "search"."""
        until = self.sample_time(clock)
        wanted = {s.lower() for s in subs}
        kind = "t1" if what == "comments" else "t3"
        pool = [t for t in self.things if t.kind == kind and t.created <= until
                and (not wanted or t.subreddit.lower() in wanted)]
        if what == "search":
            words = query.lower().split()
            pool = [t for t in pool if all(
                w in f"{t.data.get('title', '')} {t.data.get('selftext', '')}".lower()
                for w in words)]
        pool.sort(key=lambda t: (t.created, t.fullname), reverse=True)
        if after:
            names = [t.fullname for t in pool]
            pool = pool[names.index(after) + 1:] if after in names else []
        return pool[:max(1, min(MAX_PAGE, limit))]

    def atom(self, path: str, things: Sequence[Thing]) -> bytes:
        """Reddit's Atom document for a listing."""
        updated = self.real(things[0].created).isoformat() if things else ""
        entries = "".join(self._atom_entry(t) for t in things)
        esc = html.escape
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<feed xmlns="http://www.w3.org/2005/Atom" '
                'xmlns:media="http://search.yahoo.com/mrss/">'
                f'<updated>{updated}</updated><id>{esc(path)}</id>'
                f'<link rel="self" href="{WEB}{esc(path)}" type="application/atom+xml" />'
                f"<title>{esc(path)}</title>{entries}</feed>").encode()

    def _atom_entry(self, thing: Thing) -> str:
        data = thing.data
        esc = html.escape
        author = data.get("author") or "[deleted]"
        when = self.real(thing.created).isoformat()
        link = WEB + data["permalink"]
        if thing.kind == "t3":
            content = (f'{markdown_html(data.get("selftext", ""))} &#32; submitted by &#32; '
                       f'<a href="{WEB}/user/{esc(author)}"> /u/{esc(author)} </a> <br/> '
                       f'<span><a href="{link}">[link]</a></span> &#32; '
                       f'<span><a href="{link}">[comments]</a></span>')
            title = data.get("title", "")
            dates = f"<updated>{when}</updated><published>{when}</published>"
        else:
            content = markdown_html(data.get("body", ""))
            title = f"/u/{author} on {self._titles.get(data.get('link_id', ''), '')}"
            dates = f"<updated>{when}</updated>"
        sub = esc(thing.subreddit)
        return (f"<entry><author><name>/u/{esc(author)}</name>"
                f"<uri>{WEB}/user/{esc(author)}</uri></author>"
                f'<category term="{sub}" label="r/{sub}"/>'
                f'<content type="html">{esc(content)}</content>'
                f"<id>{thing.fullname}</id><link href=\"{esc(link)}\" />{dates}"
                f"<title>{esc(title)}</title></entry>")


def markdown_html(text: str) -> str:
    """Reddit's rendering of the little markdown the sample uses: paragraphs, **bold**,
    *italics* and > quotes."""
    if not text.strip():
        return ""
    parts = []
    for para in re.split(r"\n\s*\n", text.strip()):
        quoted = para.startswith(">")
        inner = html.escape(para.lstrip("> ") if quoted else para)
        inner = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", inner)
        inner = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", inner)
        inner = f"<p>{inner}</p>"
        parts.append(f"<blockquote>{inner}</blockquote>" if quoted else inner)
    return '<!-- SC_OFF --><div class="md">' + "\n".join(parts) + "</div><!-- SC_ON -->"


def _read_feed(path: Path, spec: SampleFeed) -> _Feed:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read the sample feed: {exc.strerror}") from None
    blocks = list(_BLOCK.finditer(raw))
    if not blocks:
        raise MonitorError(f"{path}: the sample feed has no <item> or <entry>")
    entries = []
    for block in blocks:
        found = _ITEM_DATE.search(block.group(0))
        if not found:
            raise MonitorError(f"{path}: an entry has no date: {block.group(0)[:80]!r}")
        entries.append(_Entry(_parse_date(found.group(2).decode()), block.group(0)))
    entries.sort(key=lambda e: e.published, reverse=True)
    return _Feed(spec, raw[:blocks[0].start()], raw[blocks[-1].end():], entries)


def _parse_date(text: str) -> datetime:
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = parsedate_to_datetime(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_listing(path: Path) -> list[Thing]:
    """The sample's Reddit listing: {"kind": "Listing", "data": {"children": [...]}}."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        children = data["data"]["children"]
        return [Thing(c["kind"], c["data"], datetime.fromtimestamp(c["data"]["created_utc"], UTC))
                for c in children]
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read the sample listing: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MonitorError(f"{path}: invalid sample listing: {exc}") from None


# --- the server ----------------------------------------------------------------------------

class SampleServer:
    """`with SampleServer(playback) as server:` serves on 127.0.0.1 at `server.url`.

    `clock` is the moment the sample is served as of; the demo moves it between collections.
    """

    def __init__(self, playback: Playback, clock: datetime) -> None:
        self.playback = playback
        self.clock = clock
        self.requests = 0
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="sample-server")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def feed_url(self, name: str) -> str:
        return f"{self.url}/feeds/{name}.xml"

    def __enter__(self) -> SampleServer:
        self._thread.start()  # the socket listens from construction on
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def count(self) -> None:
        with self._lock:
            self.requests += 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing its kept-alive connection is routine; anything else is a bug
        # worth seeing, but in the log rather than as a traceback on the terminal.
        log.debug("sample server: error serving %s", client_address, exc_info=True)


def _handler(server: SampleServer) -> type[BaseHTTPRequestHandler]:
    playback = server.playback

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "monitor-sample"
        # Headers and body go out in two writes; with Nagle's algorithm the body would wait
        # for the client's delayed ACK (tens of milliseconds, hundreds of times a demo).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass  # the demo reports what it collected; a request log would be noise

        def do_GET(self) -> None:
            server.count()
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            clock = server.clock
            feed = re.fullmatch(r"/feeds/([\w.-]+)\.xml", parts.path)
            if feed and feed.group(1) in playback.feeds:
                return self._feed(feed.group(1), clock)
            reddit = _REDDIT_FEED.match(parts.path)
            if reddit:
                subs = (reddit.group("subs") or "").split("+") if reddit.group("subs") else []
                what = reddit.group("what") or "search"
                try:
                    limit = int(query.get("limit") or 25)
                except ValueError:
                    limit = 25
                things = playback.listing(what, subs, clock, query=query.get("q", ""),
                                          limit=limit, after=query.get("after"))
                return self._send(200, playback.atom(parts.path, things),
                                  "application/atom+xml; charset=UTF-8")
            self._send(404, b"<html><body>not found</body></html>", "text/html")

        def _feed(self, name: str, clock: datetime) -> None:
            if playback.feed_down(name, clock):
                return self._send(503, b"<html><body>503 Service Unavailable</body></html>",
                                  "text/html")
            body, newest = playback.feed(name, clock)
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            headers = {"ETag": etag}
            if newest is not None:
                headers["Last-Modified"] = format_datetime(newest.astimezone(UTC), usegmt=True)
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", None, headers)
            self._send(200, body, "application/rss+xml; charset=UTF-8"
                       if b"<rss" in body[:300] else "application/atom+xml; charset=UTF-8",
                       headers)

        def _send(self, code: int, body: bytes, content_type: str | None,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler
