"""Bounded HTTP fetches: timeouts, an overall deadline, a size cap, retries, conditional GET.

feedparser and praw never fetch on their own: every byte from the network comes through here
(or through praw's own session, which gets the same timeout).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import urlsplit
from urllib.request import getproxies

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, get_netrc_auth

from . import __version__
from .config import HttpConfig
from .errors import SourceError

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (f"monitor/{__version__} (darknet-market news monitor; "
                      "+https://github.com/monitor-project/monitor)")
_RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
_CHUNK = 64 * 1024
# Idle connections kept per host: one is in use at a time (HostGate); a few spare for callers
# that fetch without the gate.
_CONNECTIONS_PER_HOST = 4


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes = b""
    moved_to: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class HostGate:
    """Politeness: one request at a time per host, with a pause between them."""

    delay: float = 1.0
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, url: str) -> _HostHold:
        host = urlsplit(url).netloc.lower()
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        return _HostHold(self, host, lock)


class _HostHold:
    def __init__(self, gate: HostGate, host: str, lock: threading.Lock) -> None:
        self.gate, self.host, self.lock = gate, host, lock

    def __enter__(self) -> None:
        self.lock.acquire()
        wait = self.gate._last.get(self.host, 0.0) + self.gate.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def __exit__(self, *exc: object) -> None:
        self.gate._last[self.host] = time.monotonic()
        self.lock.release()


class Session(requests.Session):
    """A requests session that does per request only what a plain GET of ours needs.

    requests reads every variable of the environment (for HTTP(S)_PROXY, NO_PROXY, the CA
    bundle) on each request: about a third of a request's CPU. A session lives for a cycle
    or a daemon's run, whose environment does not change: they are read once (whether there
    is a netrc file too), and whether a site goes through the proxy (NO_PROXY) or has netrc
    credentials once per site. Preparing a request merges settings through generic helpers
    (each an isinstance check against a typing Protocol, slow): a plain GET is prepared with
    PreparedRequest's own steps instead (tests/test_http_session.py holds the two equal).
    """

    def __init__(self) -> None:
        super().__init__()
        self._environ: _Environ | None = None
        self._site_proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._site_auth: dict[str, tuple[str, str] | None] = {}

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if not self._plain(request):
            return super().prepare_request(request)
        prepared = requests.PreparedRequest()
        prepared.prepare_method(request.method)
        prepared.url = _prepared_url(request.url)
        headers = CaseInsensitiveDict(self.headers)
        headers.update(request.headers or {})
        prepared.prepare_headers({k: v for k, v in headers.items() if v is not None})
        prepared.prepare_body(None, None)
        # netrc credentials, else user:password in the URL, as requests would add them.
        auth = self._netrc_auth(prepared.url) if (
            self.trust_env and self._environment().netrc) else None
        if auth or "@" in prepared.url:
            prepared.prepare_auth(auth, prepared.url)
        prepared.prepare_cookies(RequestsCookieJar())  # redirects add to it: one each
        prepared.prepare_hooks(request.hooks)
        return prepared

    def _plain(self, request: requests.Request) -> bool:
        """A GET with nothing to merge but headers: no body, query parameters, auth,
        cookies or hooks, on the request or on the session."""
        return (isinstance(request.url, str) and (request.method or "").upper() == "GET"
                and not (request.data or request.files or request.params or request.auth
                         or request.cookies)
                and request.json is None
                and self.auth is None and not self.params and not self.cookies
                and not any(request.hooks.values()) and not any(self.hooks.values()))

    def _netrc_auth(self, url: str) -> tuple[str, str] | None:
        # Once per site, like the proxies: requests reads and parses the file each time.
        site = urlsplit(url).netloc.lower()
        if site not in self._site_auth:
            self._site_auth[site] = get_netrc_auth(url)
        return self._site_auth[site]

    def merge_environment_settings(self, url: str, proxies: dict | None, stream: bool | None,
                                   verify: bool | str | None, cert: object) -> dict:
        if not self.trust_env or proxies:  # proxies of the call itself: requests' own way
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        proxied, bundle, _ = self._environment()
        if bundle and (verify is True or verify is None):
            verify = bundle
        # requests' merge_setting, written out: the call's value unless None; proxies
        # merged over the session's, a None dropping a scheme.
        merged = {**self.proxies, **self._proxies_for(url)} if proxied else dict(self.proxies)
        return {"proxies": {k: v for k, v in merged.items() if v is not None},
                "stream": self.stream if stream is None else stream,
                "verify": self.verify if verify is None else verify,
                "cert": self.cert if cert is None else cert}

    def _environment(self) -> _Environ:
        if self._environ is None:
            # Two threads may both read it the first time: the same answer, no harm.
            self._environ = _Environ(
                proxied=any(scheme != "no" for scheme in getproxies()),
                bundle=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"),
                netrc=_netrc_file_exists())
        return self._environ

    def _proxies_for(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        site = (parts.scheme.lower(), parts.netloc.lower())
        found = self._site_proxies.get(site)
        if found is None:
            found = self._site_proxies[site] = get_environ_proxies(url)
        return found


class _Environ(NamedTuple):
    """What requests would read from the environment on every request."""

    proxied: bool  # any HTTP(S)_PROXY / ALL_PROXY set
    bundle: str | None  # REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE
    netrc: bool  # a netrc file where requests looks: $NETRC, else ~/.netrc or ~/_netrc


def _netrc_file_exists() -> bool:
    named = os.environ.get("NETRC")
    places = [named] if named is not None else ["~/.netrc", "~/_netrc"]
    return any(os.path.exists(os.path.expanduser(place)) for place in places)


@functools.lru_cache(maxsize=4096)
def _prepared_url(url: str) -> str:
    """The URL as requests sends it (IDNA host, quoting): the same for the same text each
    time, so each feed's URL is parsed and re-quoted once. Errors are raised, never cached."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


def make_session(user_agent: str = "", pool_size: int = 10, max_redirects: int = 10, *,
                 hosts: int = 0) -> requests.Session:
    """A session keeping a connection pool for each of up to max(pool_size, hosts) hosts.

    With fewer pools than hosts, urllib3 drops a host's pool (and its open connection) to
    make room for the next, and builds it again for the next request there. The politeness
    gate sends one request at a time to a host, so each pool keeps only a few connections.
    """
    session = Session()
    session.headers["User-Agent"] = user_agent or DEFAULT_USER_AGENT
    session.headers["Accept-Encoding"] = "gzip, deflate"
    session.max_redirects = max_redirects
    adapter = HTTPAdapter(pool_connections=max(pool_size, hosts),
                          pool_maxsize=min(pool_size, _CONNECTIONS_PER_HOST))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def fetch(session: requests.Session, url: str, limits: HttpConfig, *,
          etag: str | None = None, modified: str | None = None,
          accept: str = "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
                        "text/xml;q=0.9, */*;q=0.5",
          sleep: Callable[[float], None] = time.sleep) -> Response:
    """GET `url` within `limits`, retrying transient failures; raise SourceError otherwise."""
    headers = {"Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    deadline = time.monotonic() + limits.deadline
    attempt = 0
    while True:
        attempt += 1
        try:
            return _fetch_once(session, url, headers, limits, deadline)
        except SourceError as exc:
            remaining = deadline - time.monotonic()
            if not exc.retryable or attempt > limits.retries:
                raise
            pause = exc.retry_after if exc.retry_after is not None else (
                0.5 * 2 ** (attempt - 1) + random.uniform(0, 0.25))
            if pause >= remaining - 1:
                raise
            log.debug("retrying %s in %.1fs after: %s", url, pause, exc)
            sleep(pause)


def _fetch_once(session: requests.Session, url: str, headers: dict[str, str],
                limits: HttpConfig, deadline: float) -> Response:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise SourceError(f"gave up after {limits.deadline:.0f}s (deadline)")
    timeout = (min(limits.connect_timeout, remaining), min(limits.read_timeout, remaining))
    try:
        resp = session.get(url, headers=headers, timeout=timeout, stream=True)
    except requests.TooManyRedirects:
        raise SourceError(f"redirect loop: more than {session.max_redirects} redirects",
                          retryable=False) from None
    except requests.Timeout:
        raise SourceError(f"timed out after {remaining:.0f}s") from None
    except requests.exceptions.InvalidURL as exc:
        raise SourceError(f"invalid URL: {exc}", retryable=False) from None
    except requests.RequestException as exc:
        raise SourceError(f"connection failed: {_reason(exc)}") from None
    with resp:
        moved_to = _permanent_move(resp)
        if resp.status_code == 304:
            _hand_back(resp)
            return Response(resp.url, 304, dict(resp.headers), moved_to=moved_to)
        if resp.status_code >= 400:
            raise SourceError(
                f"HTTP {resp.status_code} {resp.reason or ''}".strip(),
                retryable=resp.status_code in _RETRY_STATUSES, status=resp.status_code,
                retry_after=_retry_after(resp.headers.get("Retry-After")))
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limits.max_bytes:
            raise SourceError(f"response too large: {int(length)} bytes "
                              f"(limit {limits.max_bytes})", retryable=False)
        body = read_capped(resp, limits.max_bytes, deadline, limits.deadline)
        return Response(resp.url, resp.status_code, dict(resp.headers), body, moved_to)


def read_capped(resp: requests.Response, cap: int, deadline: float, budget: float) -> bytes:
    """Read the (decoded) body in pieces, stopping at the cap or the deadline.

    read1 returns whatever has arrived, so a server that drips one byte a second is noticed
    at the deadline instead of holding the read for hours.
    """
    raw = resp.raw
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise SourceError(f"timed out: body not complete after {budget:.0f}s")
            chunk = raw.read1(_CHUNK, decode_content=True) if hasattr(raw, "read1") else (
                raw.read(_CHUNK, decode_content=True))
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise SourceError(f"response too large: more than {cap} bytes", retryable=False)
            parts.append(chunk)
    except SourceError:
        raise
    except requests.RequestException as exc:
        raise SourceError(f"connection failed while reading: {_reason(exc)}") from None
    except Exception as exc:  # urllib3 raises its own errors (protocol, decode, timeout)
        name = type(exc).__name__
        if "Timeout" in name:
            raise SourceError("timed out while reading the body") from None
        raise SourceError(f"connection failed while reading: {name}: {_reason(exc)}") from None
    return b"".join(parts)


def _hand_back(resp: requests.Response) -> None:
    """Read the end of a response without a body (a 304), so that urllib3 puts its
    connection back in the pool: closed unread, the connection is closed, and the host's
    next feed has to connect again."""
    if "chunked" in resp.headers.get("Transfer-Encoding", "").lower():
        return  # a chunked 304 is broken: reading it could wait for the read timeout
    # On an error the response is closed unread, as before: the 304 itself is good.
    with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
        resp.raw.read(decode_content=False)


def _permanent_move(resp: requests.Response) -> str | None:
    for hop in resp.history:
        if hop.status_code in (301, 308):
            return resp.url
    return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """A short human reason from requests' nested urllib3 exceptions."""
    seen: set[int] = set()
    inner: BaseException | None = exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, socket.gaierror):
            return "DNS lookup failed (no such host, or no network)"
        if isinstance(inner, ConnectionRefusedError):
            return "connection refused"
        if isinstance(inner, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(inner, ssl.SSLError):
            return f"TLS error: {inner.reason or inner}"[:300]
        nested = getattr(inner, "reason", None)
        if not isinstance(nested, BaseException) and inner.args and isinstance(
                inner.args[0], BaseException):
            nested = inner.args[0]
        inner = nested if isinstance(nested, BaseException) else (
            inner.__cause__ or inner.__context__)
    text = str(exc)
    if "Caused by" in text:
        text = text.rsplit("Caused by", 1)[1].strip(" ()'\"")
    return text[:300]
