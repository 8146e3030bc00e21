"""RSS and Atom: conditional GET, parse the bytes with feedparser, turn entries into items."""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import feedparser
import requests

from ..config import FeedConfig, HttpConfig
from ..errors import SourceError
from ..http import HostGate, fetch
from ..text import html_to_text, safe_url
from ..timeutil import from_struct, iso
from .base import Fetched, Pending

if TYPE_CHECKING:
    from .parse_pool import ParsePool

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 20_000
# A date further ahead than this is a broken clock, not news from the future.
MAX_FUTURE = timedelta(days=2)
# A numeric character reference: &#55296; or &#xD800; (the ; is optional to the loose parser).
_CHARREF = re.compile(rb"&#([xX][0-9a-fA-F]{1,32}|[0-9]{1,32})")


def parse_feed(body: bytes, headers: dict[str, str] | None = None) -> feedparser.FeedParserDict:
    """Parse feed bytes. Raise SourceError when they are not a feed at all.

    The Content-Location header is dropped so that feedparser does not resolve relative
    guids against it: ids must be what the feed says, whatever URL it was fetched from.
    """
    if not body.strip():
        raise SourceError("not a feed: the response was empty", retryable=False)
    kept = {k.lower(): v for k, v in (headers or {}).items()
            if k.lower() in ("content-type", "content-language")}
    try:
        parsed = feedparser.parse(_defuse_charrefs(body), response_headers=kept,
                                  sanitize_html=True)
    except (ValueError, UnicodeError, OverflowError) as exc:
        # feedparser's loose parser still trips on inputs _defuse_charrefs cannot reach
        # (UTF-16 documents); this is the feed's fault, not a bug of ours.
        raise SourceError(f"not a feed: the parser failed: {type(exc).__name__}: "
                          f"{str(exc)[:200]}", retryable=False) from None
    if not parsed.entries and (parsed.bozo or not parsed.version):
        reason = parsed.get("bozo_exception") or "no RSS or Atom content"
        raise SourceError(f"not a feed: {str(reason)[:200]}", retryable=False)
    problems = readable_problems(parsed)
    if problems:
        log_problems(problems)
    return parsed


def readable_problems(parsed: feedparser.FeedParserDict) -> str | None:
    """What the parser complained of in a document it could still read, if anything."""
    return str(parsed.bozo_exception)[:200] if parsed.bozo else None


def log_problems(problems: str) -> None:
    log.info("feed has problems but is readable: %s", problems)


def _defuse_charrefs(body: bytes) -> bytes:
    """Replace character references to no character (surrogates, beyond U+10FFFF) with
    U+FFFD: feedparser's loose parser raises on them, which would lose the whole feed."""

    def fix(match: re.Match[bytes]) -> bytes:
        ref = match.group(1)
        code = int(ref[1:], 16) if ref[:1] in (b"x", b"X") else int(ref)
        return match.group(0) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF \
            else b"&#65533"

    return _CHARREF.sub(fix, body) if b"&#" in body else body


def entry_key(entry: dict[str, Any]) -> str | None:
    """What identifies an entry: its guid/id, else its link, else title + date."""
    for key in ("id", "link"):
        value = (entry.get(key) or "").strip()
        if value:
            return value
    title = (entry.get("title") or "").strip()
    date = (entry.get("published") or entry.get("updated") or "").strip()
    if title or date:
        return f"{title}\x00{date}"
    summary = (entry.get("summary") or "").strip()
    return f"summary\x00{summary}" if summary else None


def item_id(source: str, key: str) -> str:
    digest = hashlib.sha256(f"{source}\x00{key}".encode()).hexdigest()[:24]
    return f"feed:{digest}"


def content_hash(title: str, body: str) -> str | None:
    text = " ".join(f"{title}\n{body}".lower().split())
    return hashlib.sha256(text.encode()).hexdigest()[:32] if text else None


def entry_to_item(entry: dict[str, Any], *, source: str, base_url: str, now: datetime,
                  kind: str = "news", key: str | None = None) -> dict[str, Any] | None:
    """One feedparser entry -> one item row, or None when it has nothing to keep."""
    key = key or entry_key(entry)
    if key is None:
        return None
    title = html_to_text(entry.get("title") or "")
    body = _entry_body(entry)
    url = safe_url(entry.get("link") or "", base_url)
    if not title and not body and not url:
        return None
    published = None
    for field in ("published_parsed", "updated_parsed", "created_parsed"):
        if entry.get(field):
            published = from_struct(entry[field])
            if published:
                break
    if published is None or published > now + MAX_FUTURE:
        published = now
    return {
        "id": item_id(source, key),
        "source": source,
        "kind": kind,
        "url": url,
        "title": title[:1000],
        "body": body[:MAX_BODY_CHARS],
        "author": html_to_text(entry.get("author") or "")[:200] or None,
        "published_at": iso(published),
        "collected_at": iso(now),
        "content_hash": content_hash(title, body),
        "parent_id": None,
    }


def _entry_body(entry: dict[str, Any]) -> str:
    candidates = [c.get("value") or "" for c in entry.get("content") or []]
    candidates.append(entry.get("summary") or "")
    best = max(candidates, key=len)
    return html_to_text(best)


def entries_to_items(parsed: feedparser.FeedParserDict, *, source: str, base_url: str,
                     now: datetime, kind: str = "news") -> list[dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    for entry in parsed.entries:
        item = entry_to_item(entry, source=source, base_url=base_url, now=now, kind=kind)
        if item and item["id"] not in items:
            items[item["id"]] = item
    return list(items.values())


def pending_items(parsed: feedparser.FeedParserDict, *, source: str, base_url: str,
                  now: datetime, kind: str = "news") -> list[Pending]:
    """Each entry's item id with what makes its item: entries_to_items, deferred, so that
    only the entries not stored yet are normalised (store.record_fetch)."""
    pending: list[Pending] = []
    for entry in parsed.entries:
        key = entry_key(entry)
        if key is not None:
            pending.append((item_id(source, key), partial(
                entry_to_item, entry, source=source, base_url=base_url, now=now, kind=kind,
                key=key)))
    return pending


@dataclass
class FeedSource:
    """One configured feed, fetched conditionally."""

    config: FeedConfig
    session: requests.Session
    limits: HttpConfig
    gate: HostGate | None = None
    kind: str = "feed"
    item_kind: str = "news"
    parser: ParsePool | None = None  # worker processes for a cycle with much to parse

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def target(self) -> str:
        return self.config.url

    @property
    def interval(self) -> float:
        return self.config.interval

    def fetch(self, state: dict[str, Any], now: datetime) -> Fetched:
        with self.gate.hold(self.config.url) if self.gate else nullcontext():
            resp = fetch(self.session, self.config.url, self.limits,
                         etag=state.get("etag"), modified=state.get("modified"))
        if resp.moved_to:
            log.warning("%s: feed moved permanently to %s; update its url in the config",
                        self.name, resp.moved_to)
        etag = resp.headers.get("ETag") or state.get("etag")
        modified = resp.headers.get("Last-Modified") or state.get("modified")
        if resp.not_modified:
            return Fetched(items=[], not_modified=True, etag=etag, modified=modified)
        with self.parser.claim(len(resp.body)) if self.parser else nullcontext(False) as away:
            if away:
                seen, items = self.parser.items(
                    resp.body, dict(resp.headers), source=self.name, base_url=resp.url,
                    now=now, kind=self.item_kind)
                return Fetched(items=items, etag=etag, modified=modified, seen=seen,
                               moved_to=resp.moved_to)
            parsed = parse_feed(resp.body, resp.headers)
        pending = pending_items(parsed, source=self.name, base_url=resp.url, now=now,
                                kind=self.item_kind)
        return Fetched(pending=pending, etag=etag, modified=modified, seen=len(parsed.entries),
                       moved_to=resp.moved_to)
