"""Bounded HTTP fetches: timeouts, an overall deadline, a size cap, retries, conditional GET.

feedparser and praw never fetch on their own: every byte from the network comes through here
(or through praw's own session, which gets the same timeout).
"""

from __future__ import annotations

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
from urllib.parse import urlsplit
from urllib.request import getproxies

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

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
    """A requests session that reads the proxy settings of the environment once.

    requests reads every variable of the environment (for HTTP(S)_PROXY, NO_PROXY, the CA
    bundle) on each request: about a third of a request's CPU. A session lives for a cycle
    or a daemon's run, whose environment does not change: they are read once, and whether a
    site goes through the proxy (NO_PROXY) once per site.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environ: tuple[bool, str | None] | None = None
        self._site_proxies: dict[tuple[str, str], dict[str, str]] = {}

    def merge_environment_settings(self, url: str, proxies: dict | None, stream: bool | None,
                                   verify: bool | str | None, cert: object) -> dict:
        if not self.trust_env or proxies:  # proxies of the call itself: requests' own way
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._environ is None:
            # Two threads may both read it the first time: the same answer, no harm.
            proxied = any(scheme != "no" for scheme in getproxies())
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            self._environ = (proxied, bundle)
        proxied, bundle = self._environ
        if bundle and (verify is True or verify is None):
            verify = bundle
        return {"proxies": merge_setting(self._proxies_for(url) if proxied else {},
                                         self.proxies),
                "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify),
                "cert": merge_setting(cert, self.cert)}

    def _proxies_for(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        site = (parts.scheme.lower(), parts.netloc.lower())
        found = self._site_proxies.get(site)
        if found is None:
            found = self._site_proxies[site] = get_environ_proxies(url)
        return dict(found)  # requests may add to it


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
