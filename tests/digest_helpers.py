"""A realistic week for the digest tests: the Archetyp takedown (2025-W25, 16-22 June 2025)
and the chatter after it, plus the week before, failing sources and coverage gaps.

Items go in through store functions; classifications, mentions, markets, events, labels and
alerts are written straight into their tables (what the classifier would store), so these
tests do not depend on the classifier.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser

from sqlite_utils import Database

from monitor import store
from monitor.timeutil import iso

MODEL = "sgd-2025.06.1"
OLD_MODEL = "sgd-2025.05.3"
NOW = datetime(2025, 6, 23, 7, 0, tzinfo=UTC)  # Monday after the week, digest time
WEEK = "2025-W25"
SCRIPT_TITLE = "<script>alert('owned')</script> Archetyp 2.0 mirror list <b>verified</b>"
JS_URL = "javascript:alert(document.cookie)"
ONION_URL = "http://archetyp2q7v3xkqmyfpgcsw4qz3la6hb2rlp4ge7dcxnbwyxzd5oxh6yd.onion/login"

SOURCES = [
    ("darknetlive", "news", "https://darknetlive.com/index.xml"),
    ("therecord", "news", "https://therecord.media/feed"),
    ("bleepingcomputer", "news", "https://www.bleepingcomputer.com/feed/"),
    ("gnews-darknet-market", "news", "https://news.google.com/rss/search?q=darknet+market"),
    ("reddit:r/darknet", "reddit_post", "https://www.reddit.com/r/darknet/new"),
    ("reddit:r/darknet/comments", "reddit_comment", "https://www.reddit.com/r/darknet/comments"),
    ("reddit:r/DarkNetMarkets", "reddit_post", "https://www.reddit.com/r/DarkNetMarkets/new"),
    ("reddit:r/onionsellers", "reddit_post", "https://www.reddit.com/r/onionsellers/new"),
]

MARKETS = [
    # name, origin, status, predecessor, first_seen_at
    ("Archetyp Market", "gazetteer", "seized", None, "2025-04-28T11:02:00+00:00"),
    ("DrugHub", "gazetteer", "unknown", None, "2025-05-19T08:40:00+00:00"),
    ("Vice City", "gazetteer", "unknown", None, "2025-05-30T17:15:00+00:00"),
    ("Abacus Market", "gazetteer", "exit-scam", None, "2025-04-30T09:00:00+00:00"),
    ("Tor2Door", "gazetteer", "unknown", None, "2025-06-19T08:05:00+00:00"),
    ("Archetyp Reborn", "discovered", "unknown", "Archetyp Market",
     "2025-06-17T09:12:00+00:00"),
    ("Silk Road", "gazetteer", "seized", None, "2025-04-28T10:00:00+00:00"),
]
DOWN_AT = {"Archetyp Market": "2025-06-16", "Silk Road": "2013-10-02"}


@dataclass(frozen=True)
class Row:
    """One item with what the classifier said about it."""

    key: str
    source: str
    kind: str
    at: str
    title: str
    body: str
    score: float | None
    mentions: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    label: int | None = None


W25 = [
    Row("europol", "darknetlive", "news", "2025-06-16T10:05",
        "Europol: Archetyp Market taken down in Operation Deep Sentinel",
        "Police in six countries took Archetyp Market offline; the administrator, a 30-year-old "
        "German national, was arrested in Barcelona and moderators were targeted in Germany and "
        "Sweden. Servers in the Netherlands were seized along with 7.8 million euro in assets.",
        0.31, (("Archetyp Market", "mention"),)),
    Row("where-now", "reddit:r/darknet", "reddit_post", "2025-06-16T14:20",
        "Archetyp is gone. Where is everyone moving?",
        "Seizure banner is up since this morning. Had an order in escrow. Which market are the "
        "old Archetyp vendors going to now?", 0.91,
        (("Archetyp Market", "predecessor"),)),
    Row("drughub-shops", "reddit:r/darknet/comments", "reddit_comment", "2025-06-16T15:02",
        "Re: Archetyp is gone. Where is everyone moving?",
        "Most of the vendors I follow already opened shops on DrugHub, same PGP keys as on "
        "Archetyp. Check the keys yourself before ordering.", 0.84,
        (("DrugHub", "successor"), ("Archetyp Market", "predecessor"))),
    Row("reborn", "reddit:r/darknet", "reddit_post", "2025-06-17T09:12",
        "\"Archetyp Reborn\" launched by ex-staff? Has anyone verified the admin PGP key",
        "A new market calling itself Archetyp Reborn claims to be run by former Archetyp "
        "moderators and to honour old vendor bonds. Nobody has verified a signed message yet.",
        0.88, (("Archetyp Reborn", "successor"), ("Archetyp Market", "predecessor"))),
    Row("script", "reddit:r/darknet", "reddit_post", "2025-06-17T21:40", SCRIPT_TITLE,
        "<img src=\"https://tracker.example.net/pixel.gif\"> Mirrors for the new Archetyp: "
        "click <a href=\"javascript:alert(1)\">here</a> to log in with your old account.",
        0.77, (("Archetyp Reborn", "successor"), ("Archetyp Market", "predecessor")),
        url=JS_URL),
    Row("phishing", "reddit:r/darknet/comments", "reddit_comment", "2025-06-18T06:55",
        "Re: Archetyp 2.0 mirror list",
        "Do NOT use that link. The Archetyp Reborn onion in this thread is a phishing clone, "
        "it asks for your old mnemonic and empties the wallet.", 0.81,
        (("Archetyp Reborn", "warning"), ("Archetyp Market", "predecessor")), url=ONION_URL),
    Row("therecord", "therecord", "news", "2025-06-18T13:30",
        "After Archetyp, vendors split between DrugHub and Vice City, researchers say",
        "Blockchain analysts tracked deposits moving from wallets linked to Archetyp to two "
        "competing markets within 48 hours of the takedown, a pattern seen after earlier "
        "seizures.", 0.93,
        (("DrugHub", "successor"), ("Vice City", "successor"),
         ("Archetyp Market", "predecessor")),
        url="https://therecord.media/archetyp-vendors-drughub-vice-city"),
    Row("tor2door", "reddit:r/darknet", "reddit_post", "2025-06-19T08:05",
        "Is Tor2Door taking Archetyp refugees?",
        "Saw Tor2Door waiving vendor bonds for anyone with Archetyp feedback. Legit or bait?",
        0.66, (("Tor2Door", "successor"), ("Archetyp Market", "predecessor"))),
    Row("vicecity-slow", "reddit:r/darknet", "reddit_post", "2025-06-20T12:30",
        "Vice City withdrawals slow since the Archetyp exodus",
        "Support says it is load from new users; withdrawals take 12 hours now.", 0.58,
        (("Vice City", "mention"), ("Archetyp Market", "predecessor"))),
    Row("drughub-next", "reddit:r/darknet/comments", "reddit_comment", "2025-06-21T19:45",
        "Re: Vice City withdrawals slow",
        "People on Dread are saying DrugHub will be where most end up.", 0.53,
        (("DrugHub", "mention"),)),
    Row("abacus-volume", "darknetlive", "news", "2025-06-20T09:10",
        "Abacus Market volume doubled in the first half of 2025",
        "A report on market revenue puts Abacus ahead of its competitors.", 0.47,
        (("Abacus Market", "mention"),)),
    Row("vendor-sentenced", "darknetlive", "news", "2025-06-17T16:00",
        "Fentanyl vendor sentenced to 12 years",
        "A vendor who sold on several markets was sentenced in Ohio.", 0.08),
    Row("tor-update", "bleepingcomputer", "news", "2025-06-18T10:00",
        "Tor Browser 14.5.4 fixes a crash on Android", "Routine maintenance release.", 0.02),
    Row("monero-news", "therecord", "news", "2025-06-19T15:20",
        "Monero developers ship wallet update", "No market is involved.", 0.04),
    Row("silk-road-book", "darknetlive", "news", "2025-06-21T08:00",
        "A new book retells the Silk Road case", "History, no relaunch talk.", 0.12,
        (("Silk Road", "mention"),)),
    Row("labeled-no", "reddit:r/darknet", "reddit_post", "2025-06-19T22:10",
        "Archetyp forum archive mirrored on the clearnet",
        "Someone mirrored the old forum posts for research; read only.", 0.62,
        (("Archetyp Market", "mention"),), label=0),
    Row("labeled-yes", "reddit:r/darknet/comments", "reddit_comment", "2025-06-22T11:30",
        "Re: where do the Archetyp vendors go",
        "Half of my vendors are on Vice City now.", 0.41,
        (("Vice City", "successor"), ("Archetyp Market", "predecessor")), label=1),
    Row("unscored-1", "reddit:r/darknet", "reddit_post", "2025-06-22T20:00",
        "Best VPN for Tor?", "Asking for a friend.", None),
    Row("unscored-2", "darknetlive", "news", "2025-06-22T21:00",
        "Weekly roundup", "Links from the week.", None),
]

W24 = [
    Row("w24-drughub-1", "reddit:r/darknet", "reddit_post", "2025-06-10T12:00",
        "DrugHub or Abacus for a new vendor?", "Comparing fees.", 0.71,
        (("DrugHub", "mention"), ("Abacus Market", "mention"))),
    Row("w24-abacus-1", "reddit:r/darknet", "reddit_post", "2025-06-11T09:00",
        "Abacus withdrawal delays again", "Is this the start of an exit?", 0.64,
        (("Abacus Market", "mention"),)),
    Row("w24-abacus-2", "reddit:r/darknet/comments", "reddit_comment", "2025-06-12T18:00",
        "Re: Abacus withdrawal delays", "Moving my funds to Vice City to be safe.", 0.79,
        (("Vice City", "successor"), ("Abacus Market", "predecessor"))),
    Row("w24-drughub-2", "darknetlive", "news", "2025-06-13T07:00",
        "DrugHub adds Monero-only escrow", "A feature update.", 0.55,
        (("DrugHub", "mention"),)),
    Row("w24-news-1", "darknetlive", "news", "2025-06-09T10:00",
        "Police arrest vendor in Rotterdam", "No market named.", 0.05),
    Row("w24-news-2", "therecord", "news", "2025-06-14T10:00",
        "Ransomware group leaks hospital data", "Unrelated to markets.", 0.01),
]



def item_id(row: Row) -> str:
    if row.kind.startswith("reddit"):
        prefix = "t3_" if row.kind == "reddit_post" else "t1_"
        return f"reddit:{prefix}{hashlib.sha1(row.key.encode()).hexdigest()[:7]}"
    return "feed:" + hashlib.sha1(row.key.encode()).hexdigest()[:16]


def _at(text: str) -> str:
    return iso(datetime.fromisoformat(text).replace(tzinfo=UTC))


def item_dict(row: Row) -> dict:
    published = _at(row.at)
    url = row.url
    if url is None:
        url = (f"https://www.reddit.com/r/darknet/comments/{row.key}/"
               if row.kind.startswith("reddit") else f"https://darknetlive.com/post/{row.key}/")
    return {
        "id": item_id(row), "source": row.source, "kind": row.kind, "url": url,
        "title": row.title, "body": row.body, "author": "u/" + row.key[:8],
        "published_at": published,
        "collected_at": iso(datetime.fromisoformat(published) + timedelta(minutes=7)),
        "content_hash": hashlib.sha256((row.title + row.body).encode()).hexdigest(),
        "parent_id": None,
    }


def add_rows(db: Database, rows: list[Row], *, model: str = MODEL) -> list[str]:
    """Store items, their classification by `model`, mentions and analyst labels."""
    store.save_items(db, [item_dict(r) for r in rows])
    for row in rows:
        iid = item_id(row)
        if row.score is not None:
            db["classifications"].upsert({
                "item_id": iid, "model_version": model, "score": row.score,
                "flagged": int(row.score >= 0.5),
                "classified_at": iso(datetime.fromisoformat(item_dict(row)["collected_at"])),
            }, pk=("item_id", "model_version"))
        for market, role in row.mentions:
            db["mentions"].insert({"item_id": iid, "market": market, "surface": market,
                                   "role": role}, ignore=True)
        if row.label is not None:
            db["labels"].upsert({"item_id": iid, "label": row.label, "analyst": "mk",
                                 "labeled_at": iso(NOW - timedelta(days=1)), "note": None},
                                pk="item_id")
    return [item_id(r) for r in rows]


def add_sources(db: Database) -> None:
    store.register_sources(db, SOURCES)
    failing = {"bleepingcomputer", "gnews-darknet-market", "reddit:r/DarkNetMarkets",
               "reddit:r/onionsellers"}
    for name, *_ in SOURCES:
        ok_at = NOW - (timedelta(days=2, hours=3) if name in failing else timedelta(minutes=20))
        store.record_fetch(db, name, [], ok_at)
    base = NOW - timedelta(hours=5)
    for n in range(3):
        store.record_failure(db, "bleepingcomputer", base + timedelta(hours=n),
                             "HTTP 503 Service Unavailable (after 3 tries)",
                             next_attempt_at=NOW + timedelta(hours=2))
    store.record_failure(db, "gnews-darknet-market", NOW - timedelta(hours=1),
                         "read timed out after 60s", next_attempt_at=NOW - timedelta(minutes=5))
    store.record_failure(db, "reddit:r/DarkNetMarkets", NOW - timedelta(hours=1),
                         "r/DarkNetMarkets is banned (404)", next_attempt_at=NOW + timedelta(
                             days=1), gap="banned")
    store.record_failure(db, "reddit:r/onionsellers", NOW - timedelta(hours=1),
                         "r/onionsellers is private (403)", next_attempt_at=NOW + timedelta(
                             days=1), gap="private")


def add_runs(db: Database) -> None:
    start = datetime(2025, 6, 16, 0, 10, tzinfo=UTC)
    for hour in range(0, 7 * 24, 6):
        at = start + timedelta(hours=hour)
        for name in ("darknetlive", "reddit:r/darknet", "bleepingcomputer"):
            run = store.start_run(db, f"collect:{name}", at)
            failed = name == "bleepingcomputer" and hour >= 150
            store.finish_run(db, run, at + timedelta(seconds=4), ok=not failed,
                             error="HTTP 503" if failed else None)


def add_catalogue(db: Database) -> None:
    db["markets"].upsert_all([
        {"name": n, "aliases": "[]", "status": s, "predecessor": p, "launched_at": None,
         "down_at": DOWN_AT.get(n), "first_seen_at": f,
         "origin": o} for n, o, s, p, f in MARKETS], pk="name")
    db["events"].upsert_all([
        {"id": "archetyp-deep-sentinel-2025", "happened_at": "2025-06-16",
         "name": "Operation Deep Sentinel (Archetyp takedown)", "kind": "seizure",
         "markets": json.dumps(["Archetyp Market"])},
        {"id": "nemesis-seizure-2024", "happened_at": "2024-03-20",
         "name": "Nemesis Market seizure", "kind": "seizure",
         "markets": json.dumps(["Nemesis Market"])},
    ], pk="id")
    db["alerts"].insert({"market": "Archetyp Reborn", "kind": "rising",
                         "raised_at": "2025-06-18T07:00:00+00:00",
                         "detail": "4 flagged mentions in 48 h, none before"})


def realistic_week(db: Database) -> None:
    """The whole scenario; the digest of 2025-W25 is due at NOW."""
    add_sources(db)
    add_catalogue(db)
    add_rows(db, W24)
    add_rows(db, W25)
    # An older model flagged an item the current one does not: it must not count.
    db["classifications"].insert({"item_id": item_id(W25[11]), "model_version": OLD_MODEL,
                                  "score": 0.72, "flagged": 1,
                                  "classified_at": "2025-06-17T16:05:00+00:00"})
    # A syndicated copy of The Record's story from another feed: counted once.
    copy = item_dict(W25[6]) | {"id": "feed:syndicated-copy", "source": "gnews-darknet-market",
                                "url": "https://news.google.com/articles/abc"}
    store.save_items(db, [copy])
    db["classifications"].insert({"item_id": "feed:syndicated-copy", "model_version": MODEL,
                                  "score": 0.93, "flagged": 1,
                                  "classified_at": "2025-06-18T13:40:00+00:00"})
    store.set_meta(db, "model_version", MODEL)
    add_runs(db)


# --- a real SMTP server on 127.0.0.1 ---------------------------------------------------------

class Inbox:
    """An aiosmtpd handler that keeps what it receives, or answers with `fail_with`."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes, bool]] = []  # (rcpt_tos, raw, over TLS)
        self.fail_with: str | None = None
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        if self.fail_with:
            return self.fail_with
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content, tls))
        return "250 2.0.0 queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"digest-bot" and auth_data.password == b"s3cret pass"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_server(port: int | None = None, **kwargs) -> Iterator[tuple[Inbox, int]]:
    """A running aiosmtpd server; Controller.start() returns once it answers."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            server_hostname="mx.test", authenticator=inbox.authenticate,
                            **kwargs)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


class Tags(HTMLParser):
    """Every start tag with its attributes, to check what a mail client would act on."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def attr(self, tag: str, name: str) -> list[str]:
        return [a[name] or "" for t, a in self.tags if t == tag and name in a]
