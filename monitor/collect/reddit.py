"""Reddit: the API through praw when keys are set, else Reddit's public Atom feeds.

Subreddits are read in batches (/r/a+b+c/new), so fifty of them cost a handful of requests a
cycle. Each listing keeps a cursor (the newest item it has seen) and pages back with `after`
until it reaches it, so a burst between two cycles is not lost. A subreddit that fails inside a
batch (private, banned, quarantined, gone) is isolated by bisection, left out of the batch until
a recheck, and reported as a coverage gap on its own source row, `reddit/r/<name>`; the rest of
the batch is still read. Items name their subreddit as their source, whichever listing found
them, and carry the same ids in both modes.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests

from ..config import HttpConfig, RedditConfig
from ..errors import SourceError
from ..http import HostGate, fetch, make_session, read_capped
from ..timeutil import iso, parse_iso
from . import reddit_rows
from .base import Fetched
from .feeds import parse_feed

if TYPE_CHECKING:
    import praw
    from sqlite_utils import Database

log = logging.getLogger(__name__)

KIND = "reddit"
PAGE = 100  # the largest page Reddit serves
LISTING_CAP = 1000  # Reddit serves about this many items of any listing, no more
# Seconds re-read behind the cursor on every cycle: posts approved late by moderators and
# clock skew; the store drops what it already has.
OVERLAP = 900.0
MAX_PATH = 2000  # characters of a combined /r/a+b+c path: well under any URL limit
GAP_RECHECK = 1800.0  # first recheck of a subreddit in a gap; doubles up to the cap
GAP_RECHECK_CAP = 6 * 3600.0
_USER_AGENT_FORM = re.compile(r"[^:\s]+:[^:\s]+:[^:\s]+ \(by /u/[A-Za-z0-9_-]+\)")


# --- listings ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    """One thing to poll: new posts or comments of a batch of subreddits, or a search."""

    what: str  # "new", "comments" or "search"
    subreddits: tuple[str, ...] = ()
    query: str = ""

    @property
    def name(self) -> str:
        subs = "+".join(self.subreddits)
        if self.what != "search":
            return f"reddit/{self.what}/{subs}"
        return f"reddit/search/{self.query}" + (f" in r/{subs}" if subs else "")

    def path(self, subs: Sequence[str], *, feed: bool) -> str:
        """The path relative to the API or site root; `feed` for the keyless .rss form."""
        prefix = f"r/{'+'.join(subs)}/" if subs else ""
        if self.what == "search":
            return f"{prefix}search" + (".rss" if feed else "")
        return f"{prefix}{self.what}" + ("/.rss" if feed else "")

    def params(self, subs: Sequence[str]) -> dict[str, str]:
        if self.what != "search":
            return {}
        params = {"q": self.query, "sort": "new", "t": "all", "type": "link"}
        if subs:
            params["restrict_sr"] = "on"
        return params


def batch_subreddits(subreddits: Sequence[str], size: int,
                     max_chars: int = MAX_PATH) -> list[tuple[str, ...]]:
    """Group subreddits (case-insensitively unique, in order) into combined listings."""
    seen: set[str] = set()
    batches: list[list[str]] = []
    length = 0
    for sub in subreddits:
        if sub.lower() in seen:
            continue
        seen.add(sub.lower())
        if not batches or len(batches[-1]) >= size or length + len(sub) + 1 > max_chars:
            batches.append([])
            length = 0
        batches[-1].append(sub)
        length += len(sub) + 1
    return [tuple(b) for b in batches]


# --- what a back end hands back ------------------------------------------------------------

@dataclass
class Thing:
    fullname: str
    created: float  # epoch seconds
    row: dict[str, Any] | None  # None: nothing worth storing (a deleted comment)


@dataclass
class Page:
    things: list[Thing]  # newest first
    after: str | None  # token for the next page; None at the end of the listing


class Unavailable(Exception):
    """A subreddit, or a batch holding one, cannot be read: private, banned, quarantined..."""

    def __init__(self, gap: str, detail: str) -> None:
        super().__init__(detail)
        self.gap = gap
        self.detail = detail


class Backend(Protocol):
    mode: str

    def target(self, listing: Listing) -> str: ...

    def page(self, listing: Listing, subs: Sequence[str], *, limit: int, after: str | None,
             now: datetime) -> Page: ...


# --- API back end (praw) -------------------------------------------------------------------

class BoundedSession(requests.Session):
    """A requests session that bounds every request, whatever the caller asks for.

    prawcore sends its own timeout (PRAWCORE_TIMEOUT, 16 s by default) with every API call,
    ignoring praw's `timeout` setting, and reads bodies without a size limit. Here each
    request gets the configured connect/read timeouts, and the body is read against the
    overall deadline and the size cap.
    """

    def __init__(self, limits: HttpConfig) -> None:
        super().__init__()
        self.limits = limits

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = (self.limits.connect_timeout, self.limits.read_timeout)
        kwargs["stream"] = True
        deadline = time.monotonic() + self.limits.deadline
        response = super().request(method, url, *args, **kwargs)
        try:
            body = read_capped(response, self.limits.max_bytes, deadline, self.limits.deadline)
        finally:
            response.close()
        response._content = body  # what .json() and .text read
        return response


class ApiBackend:
    """Reddit's OAuth API with application-only (read-only) credentials, through praw."""

    mode = "api"

    def __init__(self, config: RedditConfig, limits: HttpConfig, gate: HostGate) -> None:
        self.config = config
        self.limits = limits
        self.gate = gate
        self._reddit: praw.Reddit | None = None
        self._init_lock = threading.Lock()

    def target(self, listing: Listing) -> str:
        return _join(self.config.oauth_url, listing.path(listing.subreddits, feed=False))

    def client(self) -> praw.Reddit:
        with self._init_lock:
            if self._reddit is None:
                self._reddit = make_reddit(self.config, self.limits)
            return self._reddit

    def page(self, listing: Listing, subs: Sequence[str], *, limit: int, after: str | None,
             now: datetime) -> Page:
        params: dict[str, str | int] = {**listing.params(subs), "limit": limit}
        if after:
            params["after"] = after
        reddit = self.client()
        # praw is not thread-safe; the gate also serialises calls to the API host.
        with self.gate.hold(self.config.oauth_url):
            try:
                data = reddit.request(method="GET", path=listing.path(subs, feed=False),
                                      params=params)
            except Exception as exc:
                mapped = api_error(exc, subs)
                if mapped is exc:
                    raise
                raise mapped from None
        if not isinstance(data, dict) or data.get("kind") != "Listing" \
                or not isinstance(data.get("data"), dict):
            raise SourceError("Reddit sent something that is not a listing", retryable=False)
        body = data["data"]
        things = []
        for child in body.get("children") or []:
            key = reddit_rows.thing_key(child) if isinstance(child, dict) else None
            if key:
                things.append(Thing(key[0], key[1], reddit_rows.thing_to_row(child, now)))
        return Page(things, body.get("after") or None)


def make_reddit(config: RedditConfig, limits: HttpConfig) -> praw.Reddit:
    """A read-only praw client with bounded requests, pointed at the configured URLs."""
    import praw

    return praw.Reddit(
        client_id=str(config.client_id), client_secret=str(config.client_secret),
        user_agent=config.user_agent,
        oauth_url=config.oauth_url.rstrip("/") + "/", reddit_url=config.reddit_url.rstrip("/"),
        # Application-only auth whatever praw.ini or praw_* variables say.
        username=None, password=None, refresh_token=None,
        check_for_updates=False, check_for_async=False,
        requestor_kwargs={"session": BoundedSession(limits), "timeout": limits.read_timeout},
    )


_CREDENTIALS_HINT = ("check MONITOR_REDDIT_CLIENT_ID and MONITOR_REDDIT_CLIENT_SECRET "
                     "(a \"script\" or \"web\" app at reddit.com/prefs/apps)")


def api_error(exc: Exception, subs: Sequence[str]) -> Exception:
    """A praw/prawcore exception -> Unavailable (the subreddits' fault) or SourceError."""
    import praw.exceptions
    import prawcore

    if isinstance(exc, prawcore.TooManyRequests):
        wait = _seconds(exc.retry_after)
        return SourceError("rate limited by Reddit (HTTP 429)"
                           + (f"; retry after {wait:.0f}s" if wait is not None else ""),
                           retry_after=wait)
    if isinstance(exc, prawcore.ServerError):
        return SourceError(f"Reddit server error (HTTP {exc.response.status_code})")
    if isinstance(exc, prawcore.Redirect):
        if subs and exc.path.rstrip("/").endswith("/subreddits/search"):
            return Unavailable("not found", "no such subreddit (Reddit redirects to search)")
        return SourceError(f"unexpected redirect to {exc.path}", retryable=False)
    if isinstance(exc, prawcore.InvalidToken | prawcore.InsufficientScope):
        return SourceError(f"Reddit refused the access token (HTTP "
                           f"{exc.response.status_code}): {_CREDENTIALS_HINT}", retryable=False)
    if isinstance(exc, prawcore.Forbidden | prawcore.NotFound
                  | prawcore.UnavailableForLegalReasons):
        status = exc.response.status_code
        reason = _json_reason(exc.response)
        default = {403: "private", 404: "banned", 451: "blocked"}[status]
        gap = reason if reason in _GAP_REASONS else default
        detail = f"HTTP {status}: {_GAP_REASONS.get(gap, gap)}"
        if subs:
            return Unavailable(gap, detail)
        return SourceError(detail, retryable=status != 404)
    if isinstance(exc, prawcore.BadJSON | requests.exceptions.JSONDecodeError):
        # prawcore checks listings; the token endpoint's answer it parses unchecked.
        return SourceError("Reddit sent a response that is not JSON")
    if isinstance(exc, prawcore.ResponseException):
        status = exc.response.status_code
        if status == 401:
            return SourceError(f"Reddit refused the credentials (HTTP 401): {_CREDENTIALS_HINT}",
                               retryable=False)
        if status >= 500:  # the token endpoint's errors come here, not as ServerError
            return SourceError(f"Reddit server error (HTTP {status})")
        return SourceError(f"unexpected HTTP {status} from Reddit")
    if isinstance(exc, prawcore.OAuthException):
        return SourceError(f"Reddit refused the credentials ({exc.error}"
                           + (f": {exc.description}" if exc.description else "")
                           + f"): {_CREDENTIALS_HINT}", retryable=False)
    if isinstance(exc, prawcore.RequestException):
        original = exc.original_exception
        if isinstance(original, SourceError):
            return original
        if isinstance(original, requests.Timeout):
            return SourceError("timed out talking to Reddit")
        return SourceError(f"connection to Reddit failed: {_short(original)}")
    if isinstance(exc, prawcore.PrawcoreException | praw.exceptions.PRAWException):
        return SourceError(f"Reddit API error: {_short(exc)}")
    return exc


# Reddit's own words for why a subreddit cannot be read, with what they mean.
_GAP_REASONS = {
    "private": "private subreddit",
    "quarantined": "quarantined subreddit (needs an opt-in)",
    "gated": "gated subreddit (needs an opt-in)",
    "banned": "banned subreddit",
    "not found": "no such subreddit",
    "blocked": "unavailable for legal reasons",
}


def _json_reason(response: requests.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason.lower() if isinstance(reason, str) else None


# --- keyless back end (public Atom feeds) --------------------------------------------------



class FeedBackend:
    """Reddit's public Atom feeds, through the feed collector's bounded fetch and parser."""

    mode = "feeds"

    def __init__(self, config: RedditConfig, limits: HttpConfig, session: requests.Session,
                 gate: HostGate) -> None:
        self.config = config
        self.limits = limits
        self.session = session
        self.gate = gate

    def target(self, listing: Listing) -> str:
        return _join(self.config.reddit_url, listing.path(listing.subreddits, feed=True))

    def page(self, listing: Listing, subs: Sequence[str], *, limit: int, after: str | None,
             now: datetime) -> Page:
        params: dict[str, str | int] = {**listing.params(subs), "limit": limit}
        if after:
            params["after"] = after
        url = _join(self.config.reddit_url, listing.path(subs, feed=True)) + "?" + \
            urlencode(params)
        with self.gate.hold(url):
            try:
                resp = fetch(self.session, url, self.limits)
            except SourceError as exc:
                raise feed_error(exc, subs) from None
        if urlsplit(resp.url).path.rstrip("/").startswith("/subreddits/search"):
            if subs:
                raise Unavailable("not found", "no such subreddit (Reddit redirects to search)")
            raise SourceError(f"unexpected redirect to {resp.url}", retryable=False)
        parsed = parse_feed(resp.body, resp.headers)
        things = []
        for entry in parsed.entries:
            key = reddit_rows.entry_key(entry)
            if key:
                things.append(Thing(key[0], key[1], reddit_rows.entry_to_row(entry, now)))
        # The feeds carry no paging token; the last fullname is what `after` wants.
        full = len(parsed.entries) >= limit and things
        return Page(things, things[-1].fullname if full else None)


def feed_error(exc: SourceError, subs: Sequence[str]) -> Exception:
    """A failed feed fetch -> Unavailable when the status blames the subreddits."""
    status = exc.status
    gap = {403: "private", 404: "banned", 451: "blocked"}.get(status or 0)
    if gap and subs:
        return Unavailable(gap, f"HTTP {status}: {_GAP_REASONS[gap]}")
    return exc


# --- one listing as a source ---------------------------------------------------------------

@dataclass
class RedditFetched(Fetched):
    """Fetched, plus what this fetch learnt about each subreddit it asked for."""

    checks: list[dict[str, Any]] = field(default_factory=list)

    def after_store(self, db: Database, now: datetime) -> None:
        """Record each checked subreddit's health on its own row (the pipeline calls this
        in its writing thread, after storing the items)."""
        from .. import store

        if self.checks:
            store.record_subreddit_checks(db, self.checks, now, kind=KIND)


@dataclass
class Cursor:
    """A listing's state between cycles, stored as JSON in sources.cursor."""

    newest: str | None = None
    newest_utc: float | None = None
    # The oldest time the first run read back to: the overlap never reaches below it, so
    # `backfill` bounds the history taken.
    floor: float | None = None
    # subreddit (lower case) -> {"gap", "error", "failures", "since", "until"}
    excluded: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        utc, floor = data.get("newest_utc"), data.get("floor")
        excluded = data.get("excluded")
        return cls(newest=data.get("newest") if isinstance(data.get("newest"), str) else None,
                   newest_utc=float(utc) if isinstance(utc, int | float) else None,
                   floor=float(floor) if isinstance(floor, int | float) else None,
                   excluded=excluded if isinstance(excluded, dict) else {})

    def dump(self) -> str:
        return json.dumps({"newest": self.newest, "newest_utc": self.newest_utc,
                           "floor": self.floor, "excluded": self.excluded}, sort_keys=True)

    def waiting(self, sub: str, now: datetime) -> bool:
        """Is this subreddit in a gap whose recheck is not due yet?"""
        entry = self.excluded.get(sub.lower())
        if not entry:
            return False
        try:
            return parse_iso(entry["until"]) > now
        except (KeyError, TypeError, ValueError):
            return False


class GapMemo:
    """Subreddits found unreadable in the last few minutes, shared by the listings of one
    config, so the comments listing does not bisect again what the posts listing just found."""

    ttl = 300.0

    def __init__(self) -> None:
        self._found: dict[str, tuple[float, Unavailable]] = {}
        self._lock = threading.Lock()
        self._batches: dict[frozenset[str], threading.Lock] = {}

    def isolating(self, subs: Sequence[str]) -> threading.Lock:
        """A lock per batch: one listing bisects while the other waits for its answer."""
        with self._lock:
            return self._batches.setdefault(frozenset(s.lower() for s in subs),
                                            threading.Lock())

    def recent(self, subs: Sequence[str]) -> dict[str, Unavailable]:
        now = time.monotonic()
        with self._lock:
            return {s: found[1] for s in subs
                    if (found := self._found.get(s.lower())) and now - found[0] < self.ttl}

    def remember(self, broken: dict[str, Unavailable]) -> None:
        now = time.monotonic()
        with self._lock:
            self._found.update({s.lower(): (now, exc) for s, exc in broken.items()})


@dataclass
class _Walk:
    things: list[Thing] = field(default_factory=list)
    pages: int = 0
    reached: bool = False  # got back to what the cursor had seen
    more: bool = False  # the listing had more pages when we stopped


@dataclass
class RedditSource:
    """One listing, polled incrementally. Follows the Source protocol of collect.base."""

    listing: Listing
    backend: Backend
    config: RedditConfig
    memo: GapMemo = field(default_factory=GapMemo)
    kind: str = KIND

    @property
    def name(self) -> str:
        return self.listing.name

    @property
    def target(self) -> str:
        return self.backend.target(self.listing)

    @property
    def interval(self) -> float:
        return self.config.interval

    @property
    def members(self) -> list[tuple[str, str, str]]:
        """(name, kind, target) of the per-subreddit rows this listing reports on."""
        return [(reddit_rows.subreddit_source(s), KIND, _sub_url(s))
                for s in self.listing.subreddits]

    def fetch(self, state: dict[str, Any], now: datetime) -> RedditFetched:
        cursor = Cursor.load(state.get("cursor"))
        subs = [s for s in self.listing.subreddits if not cursor.waiting(s, now)]
        warnings: list[str] = []
        checks: list[dict[str, Any]] = []
        if self.listing.subreddits and not subs:
            # Every subreddit of this batch is in a gap; nothing to ask until a recheck.
            return RedditFetched(items=[], cursor=cursor.dump(), seen=0)
        known = self.memo.recent(subs)
        ask = [s for s in subs if s not in known]
        if ask or not self.listing.subreddits:  # a site-wide search names none
            walk, broken = self._read(ask, cursor, now)
        else:
            walk, broken = _Walk(), {}
        self.memo.remember(broken)
        broken.update(known)
        returning: list[tuple[str, dict[str, Any]]] = []
        for sub in subs:
            if sub in broken:
                checks.append(self._exclude(cursor, sub, broken[sub], now, warnings))
            else:
                gap = cursor.excluded.pop(sub.lower(), None)
                if gap is not None:
                    log.info("%s: r/%s is readable again", self.name, sub)
                    returning.append((sub, gap))
                checks.append({"name": reddit_rows.subreddit_source(sub),
                               "target": _sub_url(sub), "ok": True})
        warnings += self._gap_warnings(walk, cursor)
        if returning:
            self._catch_up(walk, returning, cursor, now, warnings)
        things = walk.things
        if things:
            newest = max(things, key=lambda t: t.created)
            if cursor.newest_utc is None:
                cursor.floor = min(t.created for t in things)
            if cursor.newest_utc is None or newest.created >= cursor.newest_utc:
                cursor.newest, cursor.newest_utc = newest.fullname, newest.created
        items = [t.row for t in things if t.row is not None]
        return RedditFetched(items=items, cursor=cursor.dump(), seen=len(things),
                             warnings=warnings, checks=checks)

    # -- reading ------------------------------------------------------------------------

    def _read(self, subs: list[str], cursor: Cursor, now: datetime
              ) -> tuple[_Walk, dict[str, Unavailable]]:
        """Page through the listing; on a subreddit failure find the culprits, read the rest."""
        try:
            return self._page_through(subs, cursor, now), {}
        except Unavailable as exc:
            if len(subs) == 1:
                return _Walk(), {subs[0]: exc}
            first = exc
        with self.memo.isolating(subs):
            broken = self.memo.recent(subs) or self._isolate(subs, first, now)
            self.memo.remember(broken)
        if not broken:
            raise SourceError(f"Reddit refused the combined listing, but no single subreddit "
                              f"({first.detail})")
        if len(broken) == len(subs):
            # A whole batch refused at once is a block or an outage, not fifty bans.
            raise SourceError(f"Reddit refused every subreddit of this listing "
                              f"({first.detail})")
        rest = [s for s in subs if s not in broken]
        try:
            return self._page_through(rest, cursor, now), broken
        except Unavailable as again:
            raise SourceError(f"Reddit refused the listing again ({again.detail})") from None

    def _isolate(self, subs: list[str], exc: Unavailable, now: datetime
                 ) -> dict[str, Unavailable]:
        """Bisect a failing batch with one-item probes; return the failing subreddits."""
        if len(subs) == 1:
            return {subs[0]: exc}
        broken: dict[str, Unavailable] = {}
        mid = len(subs) // 2
        for half in (subs[:mid], subs[mid:]):
            try:
                self.backend.page(self.listing, half, limit=1, after=None, now=now)
            except Unavailable as failed:
                broken.update(self._isolate(half, failed, now))
        return broken

    def _page_through(self, subs: list[str], cursor: Cursor, now: datetime) -> _Walk:
        walk = _Walk()
        first_run = cursor.newest_utc is None
        if first_run:
            budget = self.config.backfill
            if budget == 0:
                # No history wanted: read one item so that the next cycle starts from it.
                page = self.backend.page(self.listing, subs, limit=1, after=None, now=now)
                newest = page.things[:1]
                return _Walk(things=[Thing(t.fullname, t.created, None) for t in newest],
                             pages=1, reached=True)
            max_pages = math.ceil(budget / PAGE)
            threshold = None
        else:
            budget = LISTING_CAP
            max_pages = self.config.max_pages
            threshold = (cursor.newest_utc or 0.0) - OVERLAP
        after = None
        while walk.pages < max_pages and len(walk.things) < budget:
            limit = min(PAGE, budget - len(walk.things))
            page = self.backend.page(self.listing, subs, limit=limit, after=after, now=now)
            walk.pages += 1
            for thing in page.things:
                if threshold is not None and (thing.created < threshold or (
                        cursor.floor is not None and thing.created <= cursor.floor)):
                    walk.reached = True
                    break
                walk.things.append(thing)
            walk.more = page.after is not None
            if walk.reached or not page.after:
                break
            after = page.after
        if first_run:
            walk.reached = True
        return walk

    def _gap_warnings(self, walk: _Walk, cursor: Cursor) -> list[str]:
        if walk.reached:
            return []
        if walk.more:
            return [f"more than {walk.pages * PAGE} new items since the last cycle; older "
                    f"ones were skipped (raise reddit.max_pages or shorten reddit.interval)"]
        if len(walk.things) >= LISTING_CAP - PAGE:
            return [f"Reddit's listing ended after {len(walk.things)} items, before the last "
                    "one seen; older ones are out of reach (shorten reddit.interval)"]
        return []

    def _catch_up(self, walk: _Walk, returning: list[tuple[str, dict[str, Any]]],
                  cursor: Cursor, now: datetime, warnings: list[str]) -> None:
        """Read each subreddit back from a gap on its own, as far back as the listing had got
        when it left. What it held then, and what approved users posted while it was closed,
        is older than the other subreddits' newest items, so the batch's walk stops short of
        it."""
        if cursor.newest_utc is None:
            return  # a first run: the batch's backfill read these subreddits too
        covered = cursor.newest_utc - OVERLAP
        seen = {t.fullname for t in walk.things}
        for sub, gap in returning:
            resume = gap.get("resume_utc")
            if not isinstance(resume, int | float):
                resume = None  # left before the listing read anything: read it as a first run
            elif walk.reached and resume >= covered:
                continue  # the batch's walk reached back that far
            try:
                extra = self._page_through([sub], Cursor(newest_utc=resume, floor=cursor.floor),
                                           now)
            except Unavailable as exc:
                # Closed again between the probe and now; the next cycle rechecks.
                raise SourceError(f"r/{sub} could not be read back after its gap "
                                  f"({exc.detail})") from None
            warnings += [f"r/{sub}: {w}" for w in self._gap_warnings(extra, cursor)]
            walk.things += [t for t in extra.things if t.fullname not in seen]
            seen.update(t.fullname for t in extra.things)

    def _exclude(self, cursor: Cursor, sub: str, exc: Unavailable, now: datetime,
                 warnings: list[str]) -> dict[str, Any]:
        old = cursor.excluded.get(sub.lower()) or {}
        failures = int(old.get("failures") or 0) + 1
        delay = min(GAP_RECHECK_CAP, GAP_RECHECK * 2 ** (failures - 1))
        until = now + timedelta(seconds=max(delay, self.config.interval))
        cursor.excluded[sub.lower()] = {
            "gap": exc.gap, "error": exc.detail, "failures": failures,
            "since": old.get("since") or iso(now), "until": iso(until),
            # How far the listing had read when the subreddit left it: on its return it is
            # read back to here (None: the listing had read nothing yet).
            "resume_utc": old.get("resume_utc", cursor.newest_utc),
        }
        if failures == 1:
            warnings.append(f"r/{sub} cannot be read ({exc.detail}); recorded as a {exc.gap!r} "
                            f"gap, left out of {self.listing.what} until {iso(until)}")
        return {"name": reddit_rows.subreddit_source(sub), "target": _sub_url(sub),
                "ok": False, "gap": exc.gap,
                "error": exc.detail, "failures": failures,
                "next_attempt_at": iso(until)}


# --- building the sources ------------------------------------------------------------------

def reddit_sources(config: RedditConfig, limits: HttpConfig, *,
                   session: requests.Session | None = None,
                   gate: HostGate | None = None) -> list[RedditSource]:
    """One source per listing: new posts and comments per batch of subreddits, and searches.

    `session` carries the keyless feed requests (a new one with the Reddit user agent if
    None); `gate` spaces API calls (a new one if None).
    """
    if not _USER_AGENT_FORM.fullmatch(config.user_agent):
        log.warning("reddit.user_agent %r is not in Reddit's form "
                    "\"<platform>:<app id>:<version> (by /u/<name>)\"; Reddit throttles "
                    "agents it cannot identify", config.user_agent)
    backend: Backend
    if config.use_api:
        backend = ApiBackend(config, limits, gate or HostGate(delay=limits.per_host_delay))
    else:
        pause = max(config.keyless_pause, limits.per_host_delay)
        log.warning("Reddit: no API keys (MONITOR_REDDIT_CLIENT_ID, MONITOR_REDDIT_CLIENT_SECRET)"
                    "; reading the public feeds instead, which is slower (one request every "
                    "%.0fs, as Reddit allows about 10 a minute without OAuth) and may be "
                    "blocked", pause)
        backend = FeedBackend(config, limits, session or make_session(config.user_agent),
                              HostGate(delay=pause))
    batches = batch_subreddits(config.subreddits, config.batch_size)
    listings = [Listing("new", batch) for batch in batches]
    if config.comments:
        listings += [Listing("comments", batch) for batch in batches]
    for query in dict.fromkeys(q.strip() for q in config.searches if q.strip()):
        if config.restrict_searches and batches:
            listings += [Listing("search", batch, query) for batch in batches]
        else:
            listings.append(Listing("search", (), query))
    memo = GapMemo()
    return [RedditSource(listing, backend, config, memo) for listing in listings]


# --- small helpers -------------------------------------------------------------------------

def _sub_url(sub: str) -> str:
    return f"{reddit_rows.WEB_URL}/r/{sub}/"


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Caused by" in text:
        text = text.rsplit("Caused by", 1)[1].strip(" ()'\"")
    return text[:300]
