"""monitor.http.Session prepares plain GETs its own cheaper way: what it sends must be what
requests would send. And a 304 leaves its connection open for the host's next feed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from monitor import http
from monitor.config import HttpConfig

_ENVIRONMENT = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy", "NETRC")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc of whoever runs the tests
    return monkeypatch


def both(headers: dict[str, str | None] | None = None) -> tuple[requests.Session, ...]:
    """Ours, and a plain requests session with the same settings."""
    ours, theirs = http.make_session("ua/1"), requests.Session()
    theirs.headers.update(ours.headers)
    for session in (ours, theirs):
        session.headers.update(headers or {})
    return ours, theirs


def prepared(session: requests.Session, url: str, **kwargs) -> dict:
    # As Session.request builds it: data and params default to empty dicts.
    kwargs.setdefault("data", {})
    kwargs.setdefault("params", {})
    p = session.prepare_request(requests.Request("GET", url, **kwargs))
    return {"method": p.method, "url": p.url, "headers": dict(p.headers), "body": p.body,
            "hooks": p.hooks}


@pytest.mark.parametrize("url, kwargs", [
    ("http://feeds.example/news.xml", {}),
    ("http://feeds.example/news.xml", {"headers": {"If-None-Match": '"v1"',
                                                   "Accept": "application/rss+xml"}}),
    ("http://feeds.example/news.xml", {"headers": {"Accept-Encoding": None}}),  # dropped
    ("HTTP://Feeds.Example:8080/a b/ü.xml?x=1&y=ä#frag", {}),  # quoting, fragment
    ("http://bücher.example/feed", {}),  # IDNA host
    ("https://user:pa%20ss@feeds.example/private.xml", {}),  # credentials in the URL
    ("http://feeds.example/news.xml", {"params": {"page": "2"}}),  # requests' own way
    ("http://feeds.example/news.xml", {"cookies": {"session": "abc"}}),
    ("http://feeds.example/news.xml", {"auth": ("me", "secret")}),
])
def test_a_request_is_prepared_as_requests_would(clean_env, url, kwargs):
    ours, theirs = both()
    assert prepared(ours, url, **kwargs) == prepared(theirs, url, **kwargs)


def test_session_headers_cookies_and_hooks_are_kept(clean_env):
    ours, theirs = both({"X-Session": "1", "Accept-Encoding": None})
    url = "http://feeds.example/news.xml"
    assert "Accept-Encoding" not in prepared(ours, url)["headers"]
    assert prepared(ours, url) == prepared(theirs, url)
    for session in (ours, theirs):
        session.cookies.set("cf", "token", domain="feeds.example", path="/")
    assert prepared(ours, url)["headers"]["Cookie"] == "cf=token"
    assert prepared(ours, url) == prepared(theirs, url)

    def hook(response, **_):
        return response

    ours, theirs = both()
    for session in (ours, theirs):
        session.hooks["response"].append(hook)
    assert prepared(ours, url)["hooks"] == {"response": [hook]}
    assert prepared(ours, url) == prepared(theirs, url)


def test_netrc_credentials_are_sent_as_requests_would(clean_env, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine feeds.example login reader password s3cret\n")
    netrc.chmod(0o600)
    clean_env.setenv("NETRC", str(netrc))
    ours, theirs = both()
    for url in ("http://feeds.example/a.xml", "http://other.example/b.xml",
                "http://feeds.example/c.xml"):
        assert prepared(ours, url) == prepared(theirs, url)
    assert prepared(ours, "http://feeds.example/a.xml")["headers"]["Authorization"] == (
        requests.auth._basic_auth_str("reader", "s3cret"))
    assert "Authorization" not in prepared(ours, "http://other.example/b.xml")["headers"]
    ours.trust_env = theirs.trust_env = False  # netrc is part of the environment
    assert "Authorization" not in prepared(ours, "http://feeds.example/a.xml")["headers"]
    assert prepared(ours, "http://feeds.example/a.xml") == prepared(
        theirs, "http://feeds.example/a.xml")


def test_a_bad_url_fails_each_time(clean_env):
    session = http.make_session()
    for _ in range(2):  # the failure is not remembered as an answer
        with pytest.raises(requests.exceptions.InvalidURL):
            session.get("http://exa mple.com:port/", timeout=1)


class _Conditional(BaseHTTPRequestHandler):
    """A feed that answers 304 to its ETag; `chunked` 304s claim a chunked body."""

    protocol_version = "HTTP/1.1"  # keep-alive
    chunked = False

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            if self.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            return
        body = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
        self.send_response(200)
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def process_request(self, request, client_address) -> None:  # one call per connection
        self.connections += 1
        super().process_request(request, client_address)


@pytest.fixture
def conditional_server() -> Iterator[_CountingServer]:
    server = _CountingServer(("127.0.0.1", 0), _Conditional)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def limits() -> HttpConfig:
    return HttpConfig(connect_timeout=2.0, read_timeout=3.0, deadline=10.0, retries=0)


def test_a_304_keeps_its_connection_for_the_next_request(clean_env, conditional_server):
    base = f"http://127.0.0.1:{conditional_server.server_address[1]}"
    session = http.make_session()
    assert http.fetch(session, f"{base}/a.xml", limits()).status == 200
    for name in ("a", "b", "a", "b"):
        assert http.fetch(session, f"{base}/{name}.xml", limits(), etag='"v1"').status == 304
    assert http.fetch(session, f"{base}/c.xml", limits()).status == 200
    assert conditional_server.connections == 1


def test_a_304_claiming_a_chunked_body_is_not_waited_for(clean_env, conditional_server,
                                                         monkeypatch):
    monkeypatch.setattr(_Conditional, "chunked", True)
    base = f"http://127.0.0.1:{conditional_server.server_address[1]}"
    session = http.make_session()
    started = time.monotonic()
    resp = http.fetch(session, f"{base}/a.xml", limits(), etag='"v1"')
    assert resp.status == 304 and time.monotonic() - started < 2.0  # read timeout: 3 s
    # Its connection was closed rather than trusted: the next request connects again.
    assert http.fetch(session, f"{base}/a.xml", limits(), etag='"v1"').status == 304
    assert conditional_server.connections == 2
