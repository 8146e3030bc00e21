"""Reddit shapes -> item rows, for both back ends: API "things" (t3 posts, t1 comments) and the
entries of Reddit's public Atom feeds.

Both produce the same row for the same post or comment: id `reddit:<fullname>`, source
`reddit/r/<subreddit>`, a www.reddit.com permalink and plain text from Reddit's rendered HTML,
so that the two modes dedupe against each other. Pure functions: no network, no database.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..text import html_to_text, safe_url
from ..timeutil import from_struct, iso
from .feeds import MAX_BODY_CHARS, content_hash, entry_to_item

WEB_URL = "https://www.reddit.com"
POST_KIND = "reddit_post"
COMMENT_KIND = "reddit_comment"
# What Reddit leaves in place of an author or a text that was deleted or removed.
GONE = frozenset({"[deleted]", "[removed]", "[ Removed by Reddit ]", "[removed by reddit]"})

_FULLNAME = re.compile(r"t[13]_[0-9a-z]{1,13}")
_SUB_IN_PATH = re.compile(r"^/r/([A-Za-z0-9_]{2,21})/")
_COMMENT_PATH = re.compile(r"^/r/[A-Za-z0-9_]+/comments/([0-9a-z]+)/[^/]*/([0-9a-z]+)/?$")
# The keyless feeds append "submitted by /u/x [link] [comments]" after a post's own text.
_SUBMITTED = re.compile(r"\s*submitted by\s")


def subreddit_source(name: str) -> str:
    """The source name of a subreddit's items (and of its health row): reddit/r/<name>."""
    return f"reddit/r/{name.lower()}"


def thing_to_row(thing: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """One API listing child ({"kind": "t3"|"t1", "data": {...}}) -> a row, or None."""
    kind = thing.get("kind")
    data = thing.get("data")
    if not isinstance(data, dict):
        return None
    if kind == "t3":
        return post_to_row(data, now)
    if kind == "t1":
        return comment_to_row(data, now)
    return None


def thing_key(thing: dict[str, Any]) -> tuple[str, float] | None:
    """(fullname, created epoch seconds) of an API child, for paging and the cursor."""
    data = thing.get("data")
    if not isinstance(data, dict):
        return None
    name = data.get("name") or ""
    if not _FULLNAME.fullmatch(name):
        return None
    try:
        return name, float(data.get("created_utc") or 0)
    except (TypeError, ValueError):
        return name, 0.0


def post_to_row(data: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """An API t3 (submission) -> an item row. None when it has no id or subreddit."""
    name = data.get("name") or (f"t3_{data['id']}" if data.get("id") else "")
    subreddit = data.get("subreddit") or ""
    if not name.startswith("t3_") or not subreddit:
        return None
    title = html_to_text(data.get("title") or "")
    # The rendered HTML gives the same text as the keyless feed; markdown is the fallback.
    body = _text(data.get("selftext_html")) or _plain(data.get("selftext"))
    return _row(
        fullname=name, kind=POST_KIND, subreddit=subreddit, title=title, body=body,
        author=data.get("author"), created=data.get("created_utc"),
        url=_permalink(data.get("permalink")) or _fallback_post_url(subreddit, name),
        parent_id=None, now=now)


def comment_to_row(data: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """An API t1 (comment) -> an item row whose parent_id is its post's item id.

    A comment whose text is gone keeps nothing worth classifying: None.
    """
    name = data.get("name") or (f"t1_{data['id']}" if data.get("id") else "")
    subreddit = data.get("subreddit") or ""
    link_id = data.get("link_id") or ""
    if not name.startswith("t1_") or not subreddit:
        return None
    body = _text(data.get("body_html")) or _plain(data.get("body"))
    if not body or body in GONE:
        return None
    url = _permalink(data.get("permalink"))
    if url is None and link_id.startswith("t3_"):
        # Older listings carry no permalink for comments; this form redirects to it.
        url = f"{WEB_URL}/r/{subreddit}/comments/{link_id[3:]}/_/{name[3:]}/"
    return _row(
        fullname=name, kind=COMMENT_KIND, subreddit=subreddit, title="", body=body,
        author=data.get("author"), created=data.get("created_utc"), url=url,
        parent_id=f"reddit:{link_id}" if link_id.startswith("t3_") else None, now=now)


def entry_key(entry: dict[str, Any]) -> tuple[str, float] | None:
    """(fullname, published epoch seconds) of a feed entry; None if it is not a post/comment."""
    # Reddit writes bare fullnames (t3_abc), which feedparser may resolve against the feed's
    # xml:base ("/t3_abc", "https://www.reddit.com/t3_abc"): keep the last path segment.
    name = (entry.get("id") or "").strip().rsplit("/", 1)[-1]
    if not _FULLNAME.fullmatch(name):
        return None
    for field in ("published_parsed", "updated_parsed"):
        when = from_struct(entry[field]) if entry.get(field) else None
        if when:
            return name, when.timestamp()
    return name, 0.0


def entry_to_row(entry: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """One entry of a Reddit Atom feed (/new/.rss, /comments/.rss, /search.rss) -> a row."""
    key = entry_key(entry)
    if key is None:
        return None
    fullname = key[0]
    link = urlsplit(entry.get("link") or "")
    subreddit = _entry_subreddit(entry, link.path)
    if not subreddit:
        return None
    is_post = fullname.startswith("t3_")
    # The feed helper handles the title, the permalink and a missing or future date.
    base = entry_to_item(entry, source=subreddit_source(subreddit), base_url=WEB_URL, now=now,
                         kind=POST_KIND if is_post else COMMENT_KIND, key=fullname)
    if base is None:
        return None
    html = _entry_html(entry)
    body = _text(html)
    parent_id = None
    if is_post:
        # Cut at the last "submitted by": the post's own text may say it too.
        starts = [m.start() for m in _SUBMITTED.finditer(body)]
        if starts:
            body = body[:starts[-1]].rstrip()
        body = "" if body in GONE else body
    else:
        found = _COMMENT_PATH.match(link.path)
        parent_id = f"reddit:t3_{found.group(1)}" if found else None
        if not body or body in GONE:
            return None
    author = (entry.get("author") or "").strip()
    author = author[3:] if author.startswith("/u/") else author
    title = base["title"] if is_post else ""
    return {
        **base,
        "id": f"reddit:{fullname}",
        "url": _permalink(link.path) if link.path else base["url"],
        "title": title,
        "body": body[:MAX_BODY_CHARS],
        "author": None if (not author or author in GONE) else author[:200],
        "content_hash": content_hash(title, body[:MAX_BODY_CHARS]),
        "parent_id": parent_id,
    }


def _row(*, fullname: str, kind: str, subreddit: str, title: str, body: str, author: Any,
         created: Any, url: str | None, parent_id: str | None, now: datetime
         ) -> dict[str, Any]:
    body = "" if body in GONE else body[:MAX_BODY_CHARS]
    author = author if isinstance(author, str) and author and author not in GONE else None
    return {
        "id": f"reddit:{fullname}",
        "source": subreddit_source(subreddit),
        "kind": kind,
        "url": url,
        "title": title[:1000],
        "body": body,
        "author": author[:200] if author else None,
        "published_at": iso(_when(created, now)),
        "collected_at": iso(now),
        "content_hash": content_hash(title, body),
        "parent_id": parent_id,
    }


def _when(created: Any, now: datetime) -> datetime:
    try:
        when = datetime.fromtimestamp(float(created), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now
    # A zero or missing time is not "1970"; a time far ahead is a broken clock.
    return now if when.year < 2005 or (when - now).days >= 2 else when


def _permalink(value: Any) -> str | None:
    """A Reddit permalink (relative or absolute, any host) -> https://www.reddit.com/<path>."""
    if not isinstance(value, str) or not value:
        return None
    path = urlsplit(value).path
    return safe_url(f"{WEB_URL}{path}") if path.startswith("/") else None


def _fallback_post_url(subreddit: str, fullname: str) -> str:
    return f"{WEB_URL}/r/{subreddit}/comments/{fullname[3:]}/"


def _text(html: Any) -> str:
    return html_to_text(html) if isinstance(html, str) else ""


def _plain(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _entry_html(entry: dict[str, Any]) -> str:
    parts = [c.get("value") or "" for c in entry.get("content") or []]
    parts.append(entry.get("summary") or "")
    return max(parts, key=len)


def _entry_subreddit(entry: dict[str, Any], path: str) -> str:
    for tag in entry.get("tags") or []:
        term = (tag.get("term") or "").strip()
        if re.fullmatch(r"[A-Za-z0-9_]{2,21}", term):
            return term
    found = _SUB_IN_PATH.match(path)
    return found.group(1) if found else ""
