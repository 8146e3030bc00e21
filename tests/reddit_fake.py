"""A small Reddit on 127.0.0.1 for the Reddit collector's tests.

It serves what the collector uses, in Reddit's response shapes: the token endpoint
(POST /api/v1/access_token, HTTP Basic client credentials), listings (/r/a+b/new,
/r/a+b/comments), search (/search, /r/a+b/search) and the keyless Atom feeds (/r/a+b/new/.rss,
/r/a+b/comments/.rss, /search.rss). Subreddits can be private, quarantined, banned or missing,
and any path can be made to fail (status, headers, body) or to hang.

Things are built from a recorded post and comment (every key Reddit sent) when the shared
praw cassettes are present, else from small synthetic ones with the keys the collector reads.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

CASSETTES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "reddit"
WEB = "https://www.reddit.com"
RATE_HEADERS = {
    # Plenty left and nothing used: prawcore's limiter computes no wait from these.
    "x-ratelimit-remaining": "599.0", "x-ratelimit-used": "0", "x-ratelimit-reset": "300",
}

_SYNTHETIC_POST = {
    "approved_by": None, "archived": False, "author": "", "banned_by": None,
    "created": 0.0, "created_utc": 0.0, "distinguished": None, "domain": "", "edited": False,
    "id": "", "is_self": True, "locked": False, "name": "", "num_comments": 0,
    "over_18": False, "permalink": "", "quarantine": False, "removal_reason": None,
    "score": 1, "selftext": "", "selftext_html": None, "stickied": False, "subreddit": "",
    "subreddit_id": "t5_0", "thumbnail": "self", "title": "", "url": "",
}
_SYNTHETIC_COMMENT = {
    "approved_by": None, "author": "", "banned_by": None, "body": "", "body_html": "",
    "created": 0.0, "created_utc": 0.0, "distinguished": None, "edited": False, "id": "",
    "link_id": "", "link_title": "", "name": "", "parent_id": "", "permalink": "",
    "removal_reason": None, "score": 1, "stickied": False, "subreddit": "",
    "subreddit_id": "t5_0",
}


def recorded_things() -> tuple[dict, dict] | None:
    """The first recorded t3 and t1 `data` dicts of praw's cassettes, or None if absent."""
    try:
        posts = _cassette_listing("praw_TestSubredditListings.test_new.json")
        comments = _cassette_listing("praw_TestSubredditListings.test_comments.json")
    except (OSError, ValueError, KeyError):
        return None
    return posts[0]["data"], comments[0]["data"]


def _cassette_listing(name: str) -> list[dict]:
    data = json.loads((CASSETTES / name).read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        body = interaction["response"]["body"]["string"]
        if interaction["request"]["method"] == "GET" and body.startswith("{"):
            return json.loads(body)["data"]["children"]
    raise KeyError(name)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass
class Post:
    id: str
    sub: str
    title: str
    selftext: str
    author: str
    created: float

    @property
    def fullname(self) -> str:
        return f"t3_{self.id}"

    @property
    def permalink(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", self.title.lower()).strip("_")[:40] or "_"
        return f"/r/{self.sub}/comments/{self.id}/{slug}/"


@dataclass
class Comment:
    id: str
    post: Post
    body: str
    author: str
    created: float

    @property
    def sub(self) -> str:
        return self.post.sub

    @property
    def fullname(self) -> str:
        return f"t1_{self.id}"

    @property
    def permalink(self) -> str:
        return f"{self.post.permalink}{self.id}/"


@dataclass
class Fault:
    pattern: re.Pattern
    status: int
    headers: dict[str, str]
    body: bytes
    times: int | None  # None: for ever
    hang: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)


class FakeReddit:
    """Start with `with FakeReddit() as fake:`; `fake.url` is its root."""

    def __init__(self, client_id: str = "test-client", client_secret: str = "test-secret",
                 *, recorded: bool = True) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        templates = recorded_things() if recorded else None
        self.post_template, self.comment_template = templates or (_SYNTHETIC_POST,
                                                                  _SYNTHETIC_COMMENT)
        self.uses_recorded = templates is not None
        self.status: dict[str, str] = {}  # lower-case name -> public|private|quarantined|banned
        self.names: dict[str, str] = {}  # lower-case name -> display name
        self.posts: list[Post] = []
        self.comments: list[Comment] = []
        self.requests: list[Seen] = []
        self.faults: list[Fault] = []
        self.token_mode = "ok"  # "ok", "unauthorized" or "oauth_error"
        self.tokens: set[str] = set()
        self.clock = time.time() - 30 * 86400  # items are made 10 s apart from here on
        self._counter = 36 ** 4
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    # -- life cycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeReddit:
        self._thread.start()  # the socket listens from construction: no wait needed
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # -- content ------------------------------------------------------------------------

    def add_subreddit(self, name: str, status: str = "public") -> None:
        with self._lock:
            self.names[name.lower()] = name
            self.status[name.lower()] = status

    def set_status(self, name: str, status: str) -> None:
        with self._lock:
            self.status[name.lower()] = status

    def _next(self) -> tuple[str, float]:
        self._counter += 1
        self.clock += 10
        return _base36(self._counter), self.clock

    def add_post(self, sub: str, title: str = "", selftext: str = "",
                 author: str = "someone") -> Post:
        with self._lock:
            ident, created = self._next()
            post = Post(ident, self.names.get(sub.lower(), sub), title or f"post {ident}",
                        selftext, author, created)
            self.posts.append(post)
            return post

    def add_posts(self, sub: str, count: int, prefix: str = "post") -> list[Post]:
        return [self.add_post(sub, f"{prefix} {i} in {sub}", f"text {i} of {prefix}")
                for i in range(count)]

    def add_comment(self, post: Post, body: str, author: str = "commenter") -> Comment:
        with self._lock:
            ident, created = self._next()
            comment = Comment(ident, post, body, author, created)
            self.comments.append(comment)
            return comment

    # -- failures -----------------------------------------------------------------------

    def fail(self, pattern: str, status: int, *, headers: dict[str, str] | None = None,
             body: bytes | str = b"", times: int | None = None) -> None:
        """Answer GETs whose path matches `pattern` (a regex) with this status."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self.faults.append(Fault(re.compile(pattern), status, headers or {}, data, times))

    def hang(self, pattern: str) -> None:
        """Never answer requests whose path matches (until the server stops)."""
        with self._lock:
            self.faults.append(Fault(re.compile(pattern), 0, {}, b"", None, hang=True))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    # -- what was asked -----------------------------------------------------------------

    def listing_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "GET"]

    def forget_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- shapes -------------------------------------------------------------------------

    def post_data(self, post: Post) -> dict:
        data = copy.deepcopy(self.post_template)
        removed = post.selftext in ("[removed]", "[deleted]")
        data.update(
            id=post.id, name=post.fullname, title=post.title, selftext=post.selftext,
            selftext_html=_md_html(post.selftext) if post.selftext else None,
            author=post.author, subreddit=post.sub, subreddit_name_prefixed=f"r/{post.sub}",
            permalink=post.permalink, url=WEB + post.permalink, created_utc=post.created,
            created=post.created, is_self=True, domain=f"self.{post.sub}",
            removed_by_category="moderator" if removed else None)
        return data

    def comment_data(self, comment: Comment) -> dict:
        data = copy.deepcopy(self.comment_template)
        data.update(
            id=comment.id, name=comment.fullname, body=comment.body,
            body_html=_md_html(comment.body), author=comment.author,
            link_id=comment.post.fullname, parent_id=comment.post.fullname,
            link_title=comment.post.title, link_permalink=WEB + comment.post.permalink,
            subreddit=comment.sub, permalink=comment.permalink, created_utc=comment.created,
            created=comment.created)
        return data


def _md_html(text: str) -> str:
    """Reddit's rendering of a little markdown: paragraphs and **bold**."""
    paragraphs = "".join(
        "<p>" + re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(p)) + "</p>\n"
        for p in text.split("\n\n"))
    return f'<!-- SC_OFF --><div class="md">{paragraphs}</div><!-- SC_ON -->'


# --- the HTTP side -------------------------------------------------------------------------

_API_LISTING = re.compile(r"^/r/([^/]+)/(new|comments)/?$")
_API_SEARCH = re.compile(r"^(?:/r/([^/]+))?/search/?$")
_FEED_LISTING = re.compile(r"^/r/([^/]+)/(new|comments)/\.rss$")
_FEED_SEARCH = re.compile(r"^(?:/r/([^/]+))?/search\.rss$")
_SUB_SEARCH = re.compile(r"^/subreddits/search(\.rss|\.json)?/?$")


def _handler(fake: FakeReddit) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet in tests
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            parts = urlsplit(self.path)
            with fake._lock:
                fake.requests.append(Seen("POST", parts.path, form, dict(self.headers)))
            if parts.path != "/api/v1/access_token":
                return self._json(404, {"message": "Not Found", "error": 404})
            expected = base64.b64encode(
                f"{fake.client_id}:{fake.client_secret}".encode()).decode()
            if fake.token_mode == "unauthorized" or \
                    self.headers.get("Authorization") != f"Basic {expected}":
                return self._json(401, {"message": "Unauthorized", "error": 401})
            if fake.token_mode == "oauth_error":
                return self._json(200, {"error": "invalid_grant"})
            if form.get("grant_type") != "client_credentials":
                return self._json(200, {"error": "unsupported_grant_type"})
            token = f"fake-token-{len(fake.tokens) + 1}"
            with fake._lock:
                fake.tokens.add(token)
            self._json(200, {"access_token": token, "token_type": "bearer",
                             "expires_in": 86400, "scope": "*"})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            path = parts.path
            with fake._lock:
                fake.requests.append(Seen("GET", path, query, dict(self.headers)))
                fault = next((f for f in fake.faults if f.pattern.search(path)), None)
                if fault and fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        fake.faults.remove(fault)
            if fault:
                if fault.hang:
                    fake._stop.wait(30)
                    self.close_connection = True
                    return None
                return self._send(fault.status, fault.body,
                                  fault.headers.get("Content-Type", "application/json"),
                                  {k: v for k, v in fault.headers.items()
                                   if k != "Content-Type"})
            if _SUB_SEARCH.match(path):
                if path.endswith(".rss"):
                    return self._send(200, _atom([], "search results"), "application/atom+xml")
                return self._json(200, _listing([], None))
            for pattern in (_FEED_LISTING, _FEED_SEARCH, _API_LISTING, _API_SEARCH):
                match = pattern.match(path)
                if match:
                    break
            else:
                return self._json(404, {"message": "Not Found", "error": 404})
            feed = pattern in (_FEED_LISTING, _FEED_SEARCH)
            if not feed and not self._authorized():
                return self._json(401, {"message": "Unauthorized", "error": 401},
                                  {"www-authenticate": 'Bearer realm="reddit", '
                                                       'error="invalid_token"'})
            subs = match.group(1).split("+") if match.group(1) else []
            if self._refuse(subs, feed):
                return None
            what = match.group(2) if pattern in (_FEED_LISTING, _API_LISTING) else "search"
            things = self._things(what, subs, query)
            limit = max(1, min(100, int(query.get("limit") or 25)))
            after = query.get("after")
            if after:
                names = [t.fullname for t in things]
                things = things[names.index(after) + 1:] if after in names else []
            page, rest = things[:limit], things[limit:]
            if feed:
                return self._send(200, _atom([self._entry(t) for t in page], path),
                                  "application/atom+xml; charset=UTF-8")
            children = [{"kind": "t3", "data": fake.post_data(t)} if isinstance(t, Post)
                        else {"kind": "t1", "data": fake.comment_data(t)} for t in page]
            self._json(200, _listing(children, page[-1].fullname if rest and page else None))

        # -- helpers --------------------------------------------------------------------

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization") or ""
            return header.startswith("bearer ") and header[7:] in fake.tokens

        def _refuse(self, subs: list[str], feed: bool) -> bool:
            """Refuse the whole request for the first unreadable subreddit, as Reddit does
            for a combined listing; return True if refused."""
            for sub in subs:
                status = fake.status.get(sub.lower())
                if status is None:
                    target = f"{fake.url}/subreddits/search{'.rss' if feed else ''}" \
                             f"?q={quote(sub)}"
                    self._send(302, b"", "text/html", {"Location": target})
                    return True
                if status in ("private", "quarantined", "gated"):
                    self._refusal(403, status, "Forbidden", feed)
                    return True
                if status == "banned":
                    self._refusal(404, "banned", "Not Found", feed)
                    return True
            return False

        def _refusal(self, code: int, reason: str, message: str, feed: bool) -> None:
            if feed:
                self._send(code, f"<html><body>{message}</body></html>".encode(), "text/html")
            else:
                self._json(code, {"reason": reason, "message": message, "error": code})

        def _things(self, what: str, subs: list[str], query: dict[str, str]) -> list:
            wanted = {s.lower() for s in subs}
            with fake._lock:
                if what == "comments":
                    pool: list = list(fake.comments)
                else:
                    pool = list(fake.posts)
            if wanted:
                pool = [t for t in pool if t.sub.lower() in wanted]
            if what == "search":
                words = (query.get("q") or "").lower().split()
                pool = [p for p in pool
                        if all(w in f"{p.title} {p.selftext}".lower() for w in words)]
            return sorted(pool, key=lambda t: (t.created, t.id), reverse=True)

        def _entry(self, thing: Post | Comment) -> str:
            when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(thing.created))
            author = html.escape(thing.author)
            sub = html.escape(thing.sub)
            if isinstance(thing, Post):
                md = _md_html(thing.selftext) if thing.selftext else ""
                content = (f'{md} &#32; submitted by &#32; <a href="{WEB}/user/{author}"> '
                           f'/u/{author} </a> <br/> <span><a href="{WEB}{thing.permalink}">'
                           f'[link]</a></span> &#32; <span><a href="{WEB}{thing.permalink}">'
                           f"[comments]</a></span>")
                title = thing.title
                dates = f"<updated>{when}</updated><published>{when}</published>"
            else:
                content = _md_html(thing.body)
                title = f"/u/{thing.author} on {thing.post.title}"
                dates = f"<updated>{when}</updated>"
            return (f"<entry><author><name>/u/{author}</name><uri>{WEB}/user/{author}</uri>"
                    f'</author><category term="{sub}" label="r/{sub}"/>'
                    f'<content type="html">{html.escape(content)}</content>'
                    f"<id>{thing.fullname}</id>"
                    f'<link href="{WEB}{thing.permalink}" />{dates}'
                    f"<title>{html.escape(title)}</title></entry>")

        def _json(self, code: int, payload: object,
                  headers: dict[str, str] | None = None) -> None:
            self._send(code, json.dumps(payload).encode(), "application/json; charset=UTF-8",
                       {**RATE_HEADERS, **(headers or {})})

        def _send(self, code: int, body: bytes, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if self.headers.get("Connection", "").lower() == "close":
                # Say so, or the client may reuse a socket this server is about to close.
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _listing(children: list[dict], after: str | None) -> dict:
    return {"kind": "Listing", "data": {"after": after, "before": None, "dist": len(children),
                                        "modhash": "", "geo_filter": "",
                                        "children": children}}


def _atom(entries: list[str], path: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:media="http://search.yahoo.com/mrss/">'
            f'<category term="all" label="r/all"/><id>{html.escape(path)}</id>'
            f'<link rel="self" href="{WEB}{html.escape(path)}" type="application/atom+xml" />'
            f"<title>{html.escape(path)}</title>" + "".join(entries) + "</feed>").encode()
