"""Plain text out of untrusted HTML, and URLs that are safe to keep."""

from __future__ import annotations

import html
import ipaddress
import json
import re
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

_SKIP = {"script", "style", "head", "title", "noscript", "template", "iframe", "object"}
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
          "pre", "section", "article", "table", "ul", "ol", "hr"}
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\ufeff]")
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_URL_UNSAFE = re.compile(r"[\s<>\"`{}|\\^]")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self.skip:
            self.skip -= 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


# A start or end tag in its plainest form: a name, attributes with double-quoted values
# holding no angle brackets, nothing else. Markup made only of these (what feed parsers
# hand over) is read with one regular expression; anything else goes to the HTML parser.
_PLAIN_TAG = re.compile(
    # (the parser ends a tag name only at these whitespace characters, "/" or ">")
    r'<(?:([a-zA-Z][a-zA-Z0-9]*)(?:[ \t\n\r\f]+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:="[^"<>]*")?)*'
    r'[ \t\n\r\f]*/?|/([a-zA-Z][a-zA-Z0-9]*)[ \t\n\r\f]*)>')


def _strip_plain(value: str) -> str | None:
    """What _Text makes of `value`, when all its markup is plain tags; else None. Like the
    parser: text between tags has its character references decoded, a block tag becomes a
    space (how many does not matter: whitespace is folded afterwards)."""
    parts = []
    last = tags = 0
    for match in _PLAIN_TAG.finditer(value):
        name = (match.group(1) or match.group(2)).lower()
        if name in _SKIP:
            return None  # scripts, styles and the like: the parser knows their content rules
        text = value[last:match.start()]
        parts.append(html.unescape(text) if "&" in text else text)
        if name in _BLOCK:
            parts.append(" ")
        last = match.end()
        tags += 1
    if tags != value.count("<"):
        return None  # a "<" that does not open a plain tag: a comment, CDATA, stray text
    text = value[last:]
    parts.append(html.unescape(text) if "&" in text else text)
    return "".join(parts)


def _strip(value: str) -> str:
    plain = _strip_plain(value)
    if plain is not None:
        return plain
    parser = _Text()
    try:
        parser.feed(value)
        parser.close()
        return "".join(parser.parts)
    except (AssertionError, ValueError):
        return html.unescape(_TAG.sub(" ", value))


def html_to_text(value: str) -> str:
    """Strip tags, decode entities, drop control characters, fold whitespace."""
    if not value:
        return ""
    if "<" in value or "&" in value:
        value = _strip(value)
        # Double-escaped feeds (&lt;b&gt; inside CDATA) still hold markup after one pass.
        if _TAG.search(value) or "&" in value:
            value = _strip(value)
    value = _CONTROL.sub("", value)
    # Whitespace runs to one space: str.split() splits at exactly the characters a regular
    # expression's \s matches, and costs far less than substituting every single space.
    return " ".join(value.split())


def safe_url(value: str, base: str = "") -> str | None:
    """An absolute http(s) URL, or None (javascript:, data:, mailto: and junk are dropped).

    Control characters anywhere, or a host that is not one, make it junk; spaces and the
    characters RFC 3986 never allows raw (<, >, " ...) are percent-encoded.
    """
    value = (value or "").strip()
    if not value or _URL_CONTROL.search(value):
        return None
    try:
        absolute = urljoin(base, value) if base else value
        parts = urlsplit(absolute)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname \
            or _URL_UNSAFE.search(parts.netloc):
        return None
    return _URL_UNSAFE.sub(lambda m: quote(m.group(), safe=""), absolute)


def string_list(value: object) -> list[str]:
    """A list of names stored as JSON text, a comma-separated string or a list."""
    if not value:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return [a.strip() for a in str(value).split(",") if a.strip()]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: traffic that never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
