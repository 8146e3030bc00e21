"""Generated, realistic news feeds, and a server for them on 127.0.0.1 in a child process.

Feeds look like what the collector meets in the wild: RSS 2.0 (four in five) with
content:encoded, dc:creator, categories and a CDATA summary, or Atom with html content;
titles of 40-110 characters; bodies of one to eight paragraphs with links, emphasis and
entities. About 5% of entries name a market in passing, 3% are successor chatter (a market
went down, vendors move to another), 1 in 50 is a syndicated copy of an entry of another feed.

The server runs in its own process so that its CPU time never counts as the pipeline's. It
listens on several ports: the politeness gate keys on host and port, so each port stands for
one site. A feed answers 304 to a matching If-None-Match; in the steady-state benchmark a
control request moves every feed to the next cycle, and one feed in ten gains a few entries.

    python -m bench._feeds SPEC_JSON     (prints "READY [ports]" once listening)
"""

from __future__ import annotations

import gzip
import json
import random
import select
import subprocess
import sys
import threading
import time
import typing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

EPOCH = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FeedSpec:
    """What the server serves: `feeds` feeds on `hosts` ports."""

    feeds: int
    entries: int = 100           # entries in each feed
    new_per_change: int = 3      # entries a changed feed gains
    change_every: int = 10       # in each cycle, one feed in this many changes
    hosts: int = 1
    latency: float = 0.0         # seconds the server takes to answer (network + server)
    gzip: bool = True
    seed: int = 0

    def changes(self, feed: int, cycle: int) -> bool:
        return cycle > 0 and (feed + cycle) % self.change_every == 0

    def version(self, feed: int, cycle: int) -> int:
        """How many times a feed has changed by `cycle` (cycle 0: the initial contents)."""
        if cycle <= 0:
            return 0
        # cycles c in 1..cycle with (feed + c) % change_every == 0
        first = (-feed) % self.change_every or self.change_every
        return 0 if first > cycle else 1 + (cycle - first) // self.change_every


# --- text --------------------------------------------------------------------------------

_MARKETS = ["AlphaBay", "Hydra", "Empire Market", "White House Market", "Dream Market",
            "Abacus", "Archetyp", "Incognito", "ASAP Market", "Bohemia", "Torrez",
            "Versus", "Cannazon", "Kingdom", "Nemesis", "DarkMarket", "Monopoly",
            "World Market", "Tor2Door", "Vice City", "Cypher", "Kerberos", "MGM Grand",
            "Nexus", "Drughub", "Mega", "BlackSprut", "Ares", "Dark0de Reborn", "Quantum"]
_NEW_NAMES = ["Velvet Bazaar", "Ironleaf", "Corvid Market", "Saltmarsh", "Northwind",
              "Lantern", "Pale Harbor", "Quartz Row", "Ember Exchange", "Tidewater"]
_PLACES = ["Seattle", "Frankfurt", "Rotterdam", "Sydney", "Toronto", "Madrid", "Warsaw",
           "Boston", "Helsinki", "Lyon", "Porto", "Denver", "Leeds", "Vilnius", "Osaka"]
_AGENCIES = ["Europol", "the FBI", "the DEA", "Germany's BKA", "the Dutch police",
             "the National Crime Agency", "the Australian Federal Police", "Eurojust",
             "Homeland Security Investigations", "the Polish CBZC"]
_GOODS = ["fentanyl", "counterfeit pills", "cocaine", "stolen card data", "MDMA",
          "ketamine", "forged passports", "phishing kits", "cannabis", "methamphetamine"]
_COINS = ["Monero", "bitcoin", "Litecoin", "Zcash"]

_TITLES_PLAIN = [
    "{agency} arrests {n} suspects in {place} over {goods} shipments",
    "Vendor who sold {goods} by post sentenced to {n} years in {place}",
    "Court in {place} hears appeal in darknet {goods} case",
    "{coin} mixing service operator pleads guilty",
    "Researchers map {n} new phishing domains targeting Tor users",
    "Report: {goods} sales on encrypted apps grew {n}% last year",
    "Police in {place} seize {n} kilograms of {goods} bought online",
    "How {agency} traced {coin} payments to a {place} flat",
    "Tor Project releases a security update for its browser",
    "Customs in {place} find {goods} hidden in {n} parcels",
    "Privacy coins face new exchange delistings in {place}",
    "Interview: a former moderator on running a forum for {n} years",
]
_TITLES_MENTION = [
    "Former {market} vendor sentenced to {n} years in {place}",
    "{agency} says {market} buyers are being identified",
    "Study of {market} listings finds {goods} dominate sales",
    "{market} moderators warn of a wave of fake mirrors",
    "Prosecutors detail {market} administrator's {coin} trail",
]
_TITLES_SUCCESSOR = [
    "After {fallen} goes dark, vendors move to {successor}",
    "{successor} emerges as the main successor to {fallen}",
    "{fallen} users flock to {successor} following the takedown",
    "Is {successor} the new {fallen}? Traffic suggests so",
    "{fallen} exit scam pushes buyers toward {successor}",
]
_SENTENCES_PLAIN = [
    "Investigators said the group shipped {goods} to customers in at least {n} countries.",
    "The defendant admitted laundering the proceeds through {coin} and prepaid cards.",
    "According to the indictment, orders were packed in {place} and posted in small batches.",
    "{agency} declined to say how the suspects had been identified.",
    "Officers searched {n} addresses and seized phones, laptops and hardware wallets.",
    "Defence lawyers argued that the evidence from the seized server was unreliable.",
    "The court ordered the forfeiture of {coin} worth an estimated {n} million euros.",
    "Security researchers said the campaign relied on look-alike onion addresses.",
    "Analysts noted that prices for {goods} had barely changed over the past year.",
    "A spokesperson for {agency} called it one of the largest cases of its kind.",
    "The operation involved authorities in {place} and {n} other jurisdictions.",
    "Several buyers were identified through the return addresses on parcels.",
    "The judge noted that the defendant had no previous convictions.",
    "Blockchain analysis firms have published similar findings before.",
]
_SENTENCES_MENTION = [
    "He had been one of the better-rated sellers on {market} until it closed.",
    "Listings on {market} advertised {goods} with free shipping to Europe.",
    "{agency} said the data came from servers linked to {market}.",
    "Users of {market} have been warned about phishing links circulating on forums.",
]
_SENTENCES_SUCCESSOR = [
    "Since {fallen} went offline, many of its vendors have opened shops on {successor}.",
    "Forum posts suggest {successor} is now where former {fallen} buyers go.",
    "Moderators of {successor} say they have seen a surge of sign-ups from {fallen}.",
    "With {fallen} gone, {successor} has quickly become the largest market by listings.",
]


def _fill(template: str, rng: random.Random, **fixed: str) -> str:
    values = {"agency": rng.choice(_AGENCIES), "place": rng.choice(_PLACES),
              "goods": rng.choice(_GOODS), "coin": rng.choice(_COINS),
              "n": str(rng.randint(2, 60)), "market": rng.choice(_MARKETS), **fixed}
    return template.format(**values)


def _paragraphs(rng: random.Random, extra: list[str]) -> str:
    paras = []
    for i in range(rng.choice((1, 2, 2, 3, 3, 4, 5, 6, 8))):
        sentences = [_fill(rng.choice(_SENTENCES_PLAIN), rng) for _ in range(rng.randint(1, 3))]
        if extra and i == 0:
            sentences.insert(0, extra.pop())
        text = escape(" ".join(sentences))
        if rng.random() < 0.3:
            word = rng.choice(("report", "court filing", "press release", "statement"))
            text += (f' Read the <a href="https://example.org/docs/{rng.randint(1, 99999)}'
                     f'?ref=feed&amp;id={rng.randint(1, 999)}">{word}</a>.')
        if rng.random() < 0.2:
            text = f"<em>{escape(rng.choice(_PLACES))}</em> &#8212; " + text
        paras.append(f"<p>{text}</p>")
    paras.extend(f"<p>{escape(s)}</p>" for s in extra)
    return "\n".join(paras)


@dataclass
class Entry:
    guid: str
    title: str
    link: str
    author: str
    published: datetime
    summary: str
    content: str
    categories: tuple[str, ...]


def entry(spec: FeedSpec, feed: int, number: int, *, original: bool = False) -> Entry:
    """Entry `number` (0 = the oldest) of feed `feed`, the same in every process."""
    rng = random.Random(f"{spec.seed}:{feed}:{number}")
    if rng.random() < 0.02 and spec.feeds > 1 and not original:
        # A syndicated copy: another feed's own entry, under this feed's guid and link.
        other = rng.randrange(spec.feeds - 1)
        other = other + 1 if other >= feed else other
        copy = entry(spec, other, number, original=True)
        return Entry(f"urn:feed{feed}:{number}", copy.title,
                     f"https://news{feed % 97}.example.net/{number}", copy.author,
                     copy.published, copy.summary, copy.content, copy.categories)
    roll = rng.random()
    if roll < 0.03:
        fallen, successor = rng.sample(_MARKETS, 2)
        if rng.random() < 0.3:
            successor = rng.choice(_NEW_NAMES)
        title = _fill(rng.choice(_TITLES_SUCCESSOR), rng, fallen=fallen, successor=successor)
        extra = [_fill(rng.choice(_SENTENCES_SUCCESSOR), rng, fallen=fallen,
                       successor=successor)]
    elif roll < 0.08:
        market = rng.choice(_MARKETS)
        title = _fill(rng.choice(_TITLES_MENTION), rng, market=market)
        extra = [_fill(rng.choice(_SENTENCES_MENTION), rng, market=market)]
    else:
        title, extra = _fill(rng.choice(_TITLES_PLAIN), rng), []
    content = _paragraphs(rng, extra)
    first = content.split("</p>", 1)[0] + "</p>"
    published = EPOCH + timedelta(minutes=37 * number + (feed % 60))
    return Entry(
        guid=f"urn:feed{feed}:{number}" if rng.random() < 0.5
        else f"https://news{feed % 97}.example.net/{number}",
        title=title, link=f"https://news{feed % 97}.example.net/{number}",
        author=rng.choice(("Staff", "A. Moreau", "J. Kowalski", "R. Tanaka", "L. Okafor")),
        published=published, summary=first, content=content,
        categories=tuple(rng.sample(("News", "Arrests", "Markets", "Crypto", "Privacy",
                                     "Courts", "Opinion"), 2)))


def render(spec: FeedSpec, feed: int, version: int) -> bytes:
    """The feed document of `feed` after `version` changes: its newest `entries` entries."""
    newest = spec.entries + version * spec.new_per_change
    entries = [entry(spec, feed, n) for n in range(newest - 1, newest - spec.entries - 1, -1)]
    if feed % 5 == 4:
        return _atom(feed, entries)
    return _rss(feed, entries)


def _rss(feed: int, entries: list[Entry]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/" '
           'xmlns:atom="http://www.w3.org/2005/Atom">',
           "<channel>", f"<title>Darknet News Desk {feed}</title>",
           f"<link>https://news{feed % 97}.example.net/</link>",
           "<description>Markets, arrests and privacy news</description>",
           "<language>en-us</language>",
           f"<lastBuildDate>{format_datetime(entries[0].published)}</lastBuildDate>"]
    for e in entries:
        permalink = "true" if e.guid.startswith("https://") else "false"
        out += ["<item>", f"<title>{escape(e.title)}</title>", f"<link>{e.link}</link>",
                f'<guid isPermaLink="{permalink}">{e.guid}</guid>',
                f"<pubDate>{format_datetime(e.published)}</pubDate>",
                f"<dc:creator>{escape(e.author)}</dc:creator>"]
        out += [f"<category>{c}</category>" for c in e.categories]
        out += [f"<description><![CDATA[{e.summary}]]></description>",
                f"<content:encoded><![CDATA[{e.content}]]></content:encoded>", "</item>"]
    out += ["</channel>", "</rss>"]
    return "\n".join(out).encode()


def _atom(feed: int, entries: list[Entry]) -> bytes:
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<feed xmlns="http://www.w3.org/2005/Atom">',
           f"<title>Onion Watch {feed}</title>", f"<id>urn:feed:{feed}</id>",
           f"<updated>{entries[0].published.isoformat()}</updated>",
           f'<link href="https://news{feed % 97}.example.net/"/>']
    for e in entries:
        out += ["<entry>", f"<title>{escape(e.title)}</title>", f"<id>{e.guid}</id>",
                f'<link rel="alternate" href="{e.link}"/>',
                f"<published>{e.published.isoformat()}</published>",
                f"<updated>{e.published.isoformat()}</updated>",
                f"<author><name>{escape(e.author)}</name></author>",
                f'<summary type="html">{escape(e.summary)}</summary>',
                f'<content type="html">{escape(e.content)}</content>', "</entry>"]
    out.append("</feed>")
    return "\n".join(out).encode()


# --- the server (child process) --------------------------------------------------------------

class _Feeds:
    def __init__(self, spec: FeedSpec) -> None:
        self.spec = spec
        self.cycle = 0
        self.lock = threading.Lock()
        self.cache: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self.counts = {"requests": 0, "200": 0, "304": 0, "bytes": 0}

    def body(self, feed: int) -> tuple[int, bytes, bytes]:
        version = self.spec.version(feed, self.cycle)
        key = (feed, version)
        with self.lock:
            cached = self.cache.get(key)
        if cached is None:
            raw = render(self.spec, feed, version)
            cached = (raw, gzip.compress(raw, 6) if self.spec.gzip else raw)
            with self.lock:
                self.cache[key] = cached
                self.cache.pop((feed, version - 1), None)
        return version, cached[0], cached[1]

    def advance(self, cycle: int) -> None:
        """Move to `cycle`, rendering the changed feeds now rather than while timed."""
        self.cycle = cycle
        for feed in range(self.spec.feeds):
            self.body(feed)

    def count(self, status: int, size: int) -> None:
        with self.lock:
            self.counts["requests"] += 1
            self.counts[str(status)] = self.counts.get(str(status), 0) + 1
            self.counts["bytes"] += size


def _handler(feeds: _Feeds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: thousands of requests
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/_control/"):
                return self._control(self.path[len("/_control/"):])
            if feeds.spec.latency:
                time.sleep(feeds.spec.latency)  # simulated network and server time
            try:
                feed = int(self.path.rsplit("/", 1)[1].split(".")[0])
            except (IndexError, ValueError):
                feed = -1
            if not 0 <= feed < feeds.spec.feeds:
                return self._send(404, b"no such feed", {})
            version, raw, packed = feeds.body(feed)
            etag = f'"{feed}-{version}"'
            if self.headers.get("If-None-Match") == etag:
                feeds.count(304, 0)
                return self._send(304, b"", {"ETag": etag})
            zipped = feeds.spec.gzip and "gzip" in self.headers.get("Accept-Encoding", "")
            body = packed if zipped else raw
            headers = {"ETag": etag, "Content-Type": "application/rss+xml; charset=utf-8"
                       if feed % 5 != 4 else "application/atom+xml; charset=utf-8"}
            if zipped:
                headers["Content-Encoding"] = "gzip"
            feeds.count(200, len(body))
            self._send(200, body, headers)

        def _control(self, command: str) -> None:
            if command.startswith("cycle/"):
                feeds.advance(int(command.split("/", 1)[1]))
                return self._send(200, b"ok", {})
            if command == "stats":
                with feeds.lock:
                    data = json.dumps(feeds.counts).encode()
                return self._send(200, data, {"Content-Type": "application/json"})
            if command == "reset":
                with feeds.lock:
                    feeds.counts = {"requests": 0, "200": 0, "304": 0, "bytes": 0}
                return self._send(200, b"ok", {})
            self._send(404, b"unknown command", {})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

    return Handler


def serve(spec: FeedSpec) -> None:
    feeds = _Feeds(spec)
    feeds.advance(0)
    handler = _handler(feeds)
    servers = []
    for _ in range(spec.hosts):
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.request_queue_size = 128
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY", json.dumps([s.server_address[1] for s in servers]), flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin (or ends us)


class FeedServer:
    """The feed server in a child process; a context manager."""

    def __init__(self, spec: FeedSpec, *, ready_timeout: float = 600.0) -> None:
        self.spec = spec
        self.ready_timeout = ready_timeout
        self.ports: list[int] = []
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> FeedServer:
        root = str(Path(__file__).resolve().parents[1])
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench._feeds", json.dumps(asdict(self.spec))],
            cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        out = typing.cast(typing.TextIO, self._proc.stdout)  # a pipe: asked for above
        # Readiness: the child prints its ports once every socket listens.
        deadline = time.monotonic() + self.ready_timeout
        while True:
            ready, _, _ = select.select([out], [], [], 0.5)
            if ready:
                line = out.readline()
                if line.startswith("READY "):
                    self.ports = json.loads(line[6:])
                    return self
                self.close()
                raise RuntimeError(f"feed server failed to start: {line.strip()!r}")
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("feed server failed to start")

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def url(self, feed: int) -> str:
        return f"http://127.0.0.1:{self.ports[feed % len(self.ports)]}/f/{feed}.xml"

    def control(self, command: str) -> bytes:
        import urllib.request

        url = f"http://127.0.0.1:{self.ports[0]}/_control/{command}"
        with urllib.request.urlopen(url, timeout=600) as resp:
            return resp.read()

    def set_cycle(self, cycle: int) -> None:
        self.control(f"cycle/{cycle}")

    def stats(self) -> dict[str, int]:
        return json.loads(self.control("stats"))

    def reset_stats(self) -> None:
        self.control("reset")


def config_text(server: FeedServer, db_path: Path, *, per_host_delay: str = "1s",
                concurrency: int | None = None, interval: str = "30m",
                threshold: float = 0.5) -> str:
    """A monitor config for every feed the server serves."""
    lines = ["[database]", f'path = "{db_path}"', "", "[http]", "retries = 0",
             f'per_host_delay = "{per_host_delay}"', 'deadline = "120s"',
             'read_timeout = "60s"']
    if concurrency is not None:
        lines.append(f"concurrency = {concurrency}")
    lines += ["", "[classifier]", f"threshold = {threshold}", ""]
    for feed in range(server.spec.feeds):
        lines += ["[[feeds]]", f'name = "bench-{feed:06d}"', f'url = "{server.url(feed)}"',
                  f'interval = "{interval}"', ""]
    return "\n".join(lines)


if __name__ == "__main__":
    serve(FeedSpec(**json.loads(sys.argv[1])))
