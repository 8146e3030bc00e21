"""Render a gathered week: the chart (PNG), the HTML and text bodies, and the email.

Titles, bodies, URLs, market names and error messages come from the sources and are untrusted:
the HTML template autoescapes everything, only http(s) URLs become links, .onion addresses
are shown as text, bodies are cut short, and the only image is the chart we draw ourselves.
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import shlex
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from .digest_data import Digest, MarketRank
from .tables import render_table
from .text import html_to_text, safe_url
from .timeutil import parse_iso

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHART_MARKETS = 5
TITLE_CHARS = 200
BODY_CHARS = 280
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e"
                      r"\u2066-\u2069\ufeff]")
_KIND_NAMES = {"news": "News", "reddit_post": "Reddit posts",
               "reddit_comment": "Reddit comments", "replay": "Replayed"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    chart: bytes | None


@dataclass(frozen=True)
class Link:
    """How to show a URL: `href` only for http(s) URLs that are not onion services."""

    href: str | None
    text: str
    onion: bool = False


def clean(value: object, limit: int = TITLE_CHARS) -> str:
    """One line of plain text: no control or bidi characters, whitespace folded, cut at a
    word boundary to at most `limit` characters."""
    text = " ".join(_CONTROL.sub("", str(value or "")).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" .,;:") + "…"


def excerpt(body: str | None, limit: int = BODY_CHARS) -> str:
    """The start of a body as plain text: leftover markup is dropped, not shown."""
    return clean(html_to_text(body or ""), limit)


def link(url: str | None) -> Link:
    safe = safe_url(url or "")
    if not safe:
        return Link(None, "")
    parts = urlsplit(safe)
    host = (parts.hostname or "").lower()
    if host.endswith(".onion"):
        # Never a clickable link, and without the scheme so mail clients do not make one.
        return Link(None, clean(host + parts.path, 120), onion=True)
    return Link(safe, clean(host.removeprefix("www."), 60))


def when(value: str | datetime | None, tz: object) -> str:
    """'Tue 17 Jun 14:05' in the digest's zone."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else parse_iso(value)
    return moment.astimezone(tz).strftime("%a %d %b %H:%M")  # type: ignore[arg-type]


def day(value: date) -> str:
    return value.strftime("%a %d %b")


def signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n) if n < 0 else "±0"


def score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    hours = value.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} days"


def kind_name(kind: str) -> str:
    return _KIND_NAMES.get(kind, kind.replace("_", " ").capitalize())


def label_command(item_id: str, verdict: str) -> str:
    return f"monitor label {shlex.quote(clean(item_id, 200))} {verdict}"


def daily_table(ranking: list[MarketRank], days: list[date]) -> str:
    """The chart as text, for the plain part."""
    rows = [[clean(r.name, 24), *r.daily, r.mentions] for r in ranking[:CHART_MARKETS]]
    headers = ["market", *(d.strftime("%a") for d in days), "week"]
    return render_table(headers, rows)


def chart_png(ranking: list[MarketRank], days: list[date]) -> bytes | None:
    """Daily flagged mentions of the top markets, as a small PNG; None with nothing to draw."""
    series = [r for r in ranking[:CHART_MARKETS] if r.mentions]
    if not series:
        return None
    # The object API with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.2, 2.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = list(range(7))
    for rank in series:
        # Market names are untrusted text: no mathtext, and no leading "_" (legend-hidden).
        name = clean(rank.name, 24).lstrip("_") or "?"
        ax.plot(x, rank.daily, marker="o", markersize=3.5, linewidth=1.6, label=name)
    ax.set_xticks(x, [d.strftime("%a %d") for d in days], fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("flagged items", fontsize=8)
    ax.grid(axis="y", linewidth=0.5, alpha=0.4)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    legend = ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for text in legend.get_texts():
        text.set_parse_math(False)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # A market name in a script the bundled font lacks draws as boxes; not an error.
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters.update(clean=clean, excerpt=excerpt, link=link, day=day, signed=signed,
                       score=score, duration=duration, kind_name=kind_name)
    env.globals.update(label_command=label_command)
    return env


def subject(template: str, digest: Digest) -> str:
    # Only {week} is filled in; str.format would choke on other braces in the config.
    return clean(template.replace("{week}", digest.week.label), 200)


def render(digest: Digest, *, subject_template: str, image_src: str | None = None,
           chart: bytes | None = None) -> Rendered:
    """Both bodies. `image_src` is how the HTML refers to the chart ("cid:..." in the email,
    a data: URI in a preview); without it a chart is embedded as a data: URI."""
    days = digest.week.days
    if chart is None:
        chart = chart_png(digest.ranking, days)
    if chart is not None and image_src is None:
        image_src = "data:image/png;base64," + base64.b64encode(chart).decode("ascii")
    tz = digest.week.tz
    context = {
        "d": digest, "week": digest.week, "days": days, "tz": tz,
        "when": lambda value: when(value, tz),
        "image_src": image_src if chart is not None else None,
        "daily_table": daily_table(digest.ranking, days),
        "subject": subject(subject_template, digest),
    }
    env = _environment()
    html = env.get_template("digest.html.j2").render(context)
    text = env.get_template("digest.txt.j2").render(context)
    return Rendered(subject=context["subject"], html=html, text=text, chart=chart)


def message_id(sender: str, week_label: str) -> str:
    """A unique Message-ID in the sender's domain, short enough never to be folded."""
    return f"<digest.{week_label}.{secrets.token_hex(8)}@{_domain(sender)}>"


def chart_cid(msg_id: str) -> str:
    """A Content-ID for the chart, in the Message-ID's domain: "<...@domain>"."""
    return f"<chart.{secrets.token_hex(8)}@{_domain(msg_id.strip('<>'))}>"


def _domain(address: str) -> str:
    domain = re.sub(r"[^A-Za-z0-9.-]", "", address.rpartition("@")[2])
    return domain.strip(".")[:100] or "localhost"


def compose(rendered: Rendered, *, sender: str, recipients: list[str], msg_id: str,
            now: datetime, week_label: str, cid: str | None = None) -> EmailMessage:
    """multipart/alternative: text/plain, then multipart/related (text/html + the chart).

    `cid` is the Content-ID the HTML was rendered with ("cid:" + cid without brackets).
    """
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = msg_id
    # RFC 3834: auto-responders should not answer a machine-made message.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Monitor-Week"] = week_label
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    if rendered.chart is not None and cid:
        html_part = msg.get_payload()[1]
        html_part.add_related(rendered.chart, maintype="image", subtype="png", cid=cid,
                              filename="mentions.png", disposition="inline")
    return msg
