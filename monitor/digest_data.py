"""Gather one ISO week for the digest: read-only queries through the store, no rendering.

A week is Monday 00:00 to the next Monday 00:00 in the digest's time zone and holds the items
*published* in it. Everything here is plain data; untrusted text stays as it came and is made
safe where it is rendered (digest_render.py).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from . import store
from .config import Config
from .intel import alerts, takedown
from .timeutil import iso, parse_iso

MAX_RANKED = 15
MAX_UNSURE = 10
MAX_WARNINGS = 10
MAX_EVENT_ITEMS = 5
_WEEK_RE = re.compile(r"(\d{4})-?[Ww](\d{1,2})")


@dataclass(frozen=True)
class Week:
    """An ISO week in a time zone."""

    year: int
    number: int
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> Week:
        match = _WEEK_RE.fullmatch(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not an ISO week (write e.g. 2026-W48)")
        year, number = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ValueError(f"{text!r}: {year} has no week {number}") from None
        return cls(year, number, tz)

    @classmethod
    def containing(cls, moment: datetime, tz: ZoneInfo) -> Week:
        year, number, _ = moment.astimezone(tz).isocalendar()
        return cls(year, number, tz)

    @classmethod
    def last_complete(cls, now: datetime, tz: ZoneInfo) -> Week:
        return cls.containing(now, tz).shift(-1)

    def shift(self, weeks: int) -> Week:
        year, number, _ = (self.first_day + timedelta(weeks=weeks)).isocalendar()
        return Week(year, number, self.tz)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def first_day(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(7)]

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.first_day + timedelta(days=7), time(0), tzinfo=self.tz)

    @property
    def start_iso(self) -> str:
        return iso(self.start)

    @property
    def end_iso(self) -> str:
        return iso(self.end)

    def day_index(self, moment: datetime) -> int:
        """0 (Monday) to 6 (Sunday) for a moment inside the week."""
        return (moment.astimezone(self.tz).date() - self.first_day).days


@dataclass
class Item:
    id: str
    source: str
    kind: str
    url: str | None
    title: str | None
    body: str | None
    published_at: str
    score: float | None
    label: int | None = None
    mentions: list[dict] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict, mentions: list[dict] | None = None) -> Item:
        return cls(id=row["id"], source=row["source"], kind=row["kind"], url=row["url"],
                   title=row["title"], body=row["body"], published_at=row["published_at"],
                   score=row["score"], label=row.get("label"), mentions=mentions or [])

    @property
    def primary_market(self) -> str | None:
        # item_mentions lists successors first, so this is what the item is mostly about.
        return self.mentions[0]["market"] if self.mentions else None


@dataclass
class KindTotal:
    kind: str
    items: int = 0
    items_before: int = 0
    flagged: int = 0
    flagged_before: int = 0
    unclassified: int = 0


@dataclass
class NewMarket:
    name: str
    origin: str | None
    status: str | None
    predecessor: str | None
    first_seen_at: str
    mentions: int
    first: Item | None


@dataclass
class MarketRank:
    name: str
    mentions: int
    mentions_before: int
    as_successor: int
    daily: list[int]
    status: str | None = None
    origin: str | None = None
    predecessor: str | None = None

    @property
    def change(self) -> int:
        return self.mentions - self.mentions_before


@dataclass
class ItemGroup:
    market: str | None
    items: list[Item]


@dataclass
class EventChatter:
    id: str
    name: str
    kind: str | None
    happened_at: datetime
    markets: list[str]
    chatter: int  # flagged items of the week about its markets or their successors
    items: list[Item]
    successors: list[tuple[str, int]]  # named in the 7 days after it (takedown_response)
    warned: list[tuple[str, int]]  # successors warned about in the 30 days after it
    first_at: datetime | None  # the first successor mention
    date_only: bool  # happened_at was a day, not a moment

    @property
    def first_after(self) -> timedelta | None:
        return None if self.first_at is None else self.first_at - self.happened_at


@dataclass
class SourceProblem:
    name: str
    kind: str
    state: str  # "gap", "backoff" or "failing"
    failures: int
    gap: str | None
    last_error: str | None
    last_success_at: str | None
    next_attempt_at: str | None
    gap_since: str | None = None  # since when its items are missing
    gap_hours: float | None = None


@dataclass
class Health:
    sources: int
    sources_ok: int
    problems: list[SourceProblem]
    runs: int
    runs_failed: int


@dataclass
class Digest:
    week: Week
    generated_at: datetime
    threshold: float
    model_version: str | None
    totals: list[KindTotal]
    new_markets: list[NewMarket]
    ranking: list[MarketRank]
    dropped: list[tuple[str, int]]
    alerts: list[dict]
    warnings: list[dict]
    corroborated: list[dict]
    groups: list[ItemGroup]
    events: list[EventChatter]
    unsure: list[Item]
    health: Health

    @property
    def items(self) -> int:
        return sum(t.items for t in self.totals)

    @property
    def items_before(self) -> int:
        return sum(t.items_before for t in self.totals)

    @property
    def flagged(self) -> int:
        return sum(t.flagged for t in self.totals)

    @property
    def flagged_before(self) -> int:
        return sum(t.flagged_before for t in self.totals)

    @property
    def unclassified(self) -> int:
        return sum(t.unclassified for t in self.totals)

    @property
    def shown_items(self) -> int:
        return sum(len(g.items) for g in self.groups)


def gather(db: Database, config: Config, week: Week, now: datetime) -> Digest:
    """Everything the digest shows for `week`; source health as of `now`."""
    model_version = store.get_meta(db, "model_version")
    before = week.shift(-1)
    ranking, dropped = _ranking(db, week, before, model_version)
    return Digest(
        week=week, generated_at=now, threshold=config.classifier.threshold,
        model_version=model_version,
        totals=_totals(db, week, before, model_version),
        new_markets=_new_markets(db, week),
        ranking=ranking, dropped=dropped,
        alerts=[{**a, "summary": alerts.describe(a)}
                for a in store.digest_alerts(db, week.start_iso, week.end_iso)],
        warnings=store.warnings_between(db, week.start_iso, week.end_iso)[:MAX_WARNINGS],
        corroborated=store.corroborations_between(db, week.start_iso, week.end_iso),
        groups=_top_groups(db, week, model_version, config.digest.top_items, ranking),
        events=_events(db, week, model_version),
        unsure=_with_mentions(db, store.digest_unsure_items(
            db, week.start_iso, week.end_iso, model_version,
            threshold=config.classifier.threshold, margin=config.digest.unsure_margin,
            limit=MAX_UNSURE)),
        health=_health(db, week, now),
    )


def _totals(db: Database, week: Week, before: Week, model_version: str | None
            ) -> list[KindTotal]:
    totals: dict[str, KindTotal] = {}
    for row in store.digest_kind_counts(db, week.start_iso, week.end_iso, model_version):
        totals[row["kind"]] = KindTotal(row["kind"], items=row["items"], flagged=row["flagged"],
                                        unclassified=row["unclassified"])
    for row in store.digest_kind_counts(db, before.start_iso, before.end_iso, model_version):
        total = totals.setdefault(row["kind"], KindTotal(row["kind"]))
        total.items_before = row["items"]
        total.flagged_before = row["flagged"]
    order = {"news": 0, "reddit_post": 1, "reddit_comment": 2}
    return sorted(totals.values(), key=lambda t: (order.get(t.kind, 9), t.kind))


def _new_markets(db: Database, week: Week) -> list[NewMarket]:
    # The analysts' definition (the new_markets view): first mention published in the week.
    rows = store.new_market_rows(db, week.start_iso, week.end_iso)
    rows.sort(key=lambda r: (not r["discovered"], r["first_seen_at"], r["market"].lower()))
    markets = []
    for row in rows:
        first = None
        if row["first_item_id"]:
            first = Item(id=row["first_item_id"], source=row["first_source"], kind="",
                         url=row["first_url"], title=row["first_title"], body=None,
                         published_at=row["first_seen_at"], score=None)
        markets.append(NewMarket(
            name=row["market"], origin=row["origin"], status=row["status"],
            predecessor=row["predecessor"], first_seen_at=row["first_seen_at"],
            mentions=row["mentions"], first=first))
    return markets


def _mention_counts(db: Database, week: Week, model_version: str | None
                    ) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, list[int]]]:
    items: dict[str, set[str]] = defaultdict(set)
    successor: dict[str, set[str]] = defaultdict(set)
    daily_items: dict[str, list[set[str]]] = defaultdict(lambda: [set() for _ in range(7)])
    for row in store.digest_flagged_mentions(db, week.start_iso, week.end_iso, model_version):
        market, item_id = row["market"], row["item_id"]
        items[market].add(item_id)
        if row["role"] == "successor":
            successor[market].add(item_id)
        day = week.day_index(parse_iso(row["published_at"]))
        if 0 <= day < 7:
            daily_items[market][day].add(item_id)
    daily = {m: [len(s) for s in days] for m, days in daily_items.items()}
    return items, successor, daily


def _ranking(db: Database, week: Week, before: Week, model_version: str | None
             ) -> tuple[list[MarketRank], list[tuple[str, int]]]:
    now_items, successor, daily = _mention_counts(db, week, model_version)
    before_items, _, _ = _mention_counts(db, before, model_version)
    known = store.markets_by_name(db, now_items)
    ranking = []
    for market, ids in now_items.items():
        info = known.get(market, {})
        ranking.append(MarketRank(
            name=market, mentions=len(ids), mentions_before=len(before_items.get(market, ())),
            as_successor=len(successor.get(market, ())), daily=daily.get(market, [0] * 7),
            status=info.get("status"), origin=info.get("origin"),
            predecessor=info.get("predecessor")))
    ranking.sort(key=lambda r: (-r.mentions, -r.change, r.name.lower()))
    dropped = sorted(((m, len(ids)) for m, ids in before_items.items() if m not in now_items),
                     key=lambda pair: (-pair[1], pair[0].lower()))
    return ranking[:MAX_RANKED], dropped[:MAX_RANKED]


def _with_mentions(db: Database, rows: list[dict]) -> list[Item]:
    mentions = store.item_mentions(db, [r["id"] for r in rows])
    return [Item.from_row(r, mentions.get(r["id"])) for r in rows]


def _top_groups(db: Database, week: Week, model_version: str | None, limit: int,
                ranking: list[MarketRank]) -> list[ItemGroup]:
    items = _with_mentions(db, store.digest_flagged_items(
        db, week.start_iso, week.end_iso, model_version, limit=limit))
    groups: dict[str | None, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.primary_market].append(item)
    position = {r.name: i for i, r in enumerate(ranking)}
    order = sorted(groups, key=lambda m: (m is None, position.get(m or "", len(position)),
                                          (m or "").lower()))
    return [ItemGroup(market, groups[market]) for market in order]


def _event_markets(value: str | None) -> list[str]:
    if not value:
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value.split(",")
    if isinstance(parsed, str):
        parsed = [parsed]
    return [str(m).strip() for m in parsed if str(m).strip()] if isinstance(parsed, list) else []


def _event_moment(value: str, tz: ZoneInfo) -> datetime | None:
    """A date means the start of that day in the digest's zone; a datetime is exact."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=tz)
        return parse_iso(value)
    except ValueError:
        return None


def _events(db: Database, week: Week, model_version: str | None) -> list[EventChatter]:
    # Dates are compared as text first (padded a day each side for the time zone), then
    # exactly.
    rows = store.digest_events(db, (week.first_day - timedelta(days=1)).isoformat(),
                               (week.first_day + timedelta(days=7)).isoformat())
    in_week = [(row, moment) for row in rows
               if (moment := _event_moment(row["happened_at"], week.tz)) is not None
               and week.start <= moment < week.end]
    if not in_week:
        return []
    # Successor figures as `monitor events` shows them (the takedown_response view).
    responses = {r.event_id: r for r in takedown.responses(db, [r["id"] for r, _ in in_week])}
    events = []
    for row, moment in in_week:
        markets = _event_markets(row["markets"])
        response = responses.get(row["id"])
        named = response.successors if response else []
        watched = sorted(set(markets) | set(store.market_successors(db, markets))
                         | {s.market for s in named})
        chatter = _with_mentions(db, store.digest_flagged_items(
            db, week.start_iso, week.end_iso, model_version, limit=1000, markets=watched,
            since=iso(moment))) if watched else []
        first = min((s.first_mention_at for s in named), default=None)
        events.append(EventChatter(
            id=row["id"], name=row["name"] or row["id"], kind=row["kind"], happened_at=moment,
            markets=markets, chatter=len(chatter), items=chatter[:MAX_EVENT_ITEMS],
            successors=[(s.market, s.mentions_7d) for s in sorted(
                named, key=lambda s: (-s.mentions_7d, s.first_mention_at, s.market))],
            warned=[(s.market, s.warnings_30d) for s in named if s.warnings_30d],
            first_at=parse_iso(first) if first else None,
            date_only=len(row["happened_at"]) == 10))
    return events


def _health(db: Database, week: Week, now: datetime) -> Health:
    problems = []
    for s in store.failing_sources(db):
        if s["gap_reason"]:
            state = "gap"
        elif s["next_attempt_at"] and parse_iso(s["next_attempt_at"]) > now:
            state = "backoff"
        else:
            state = "failing"
        problems.append(SourceProblem(
            name=s["source"], kind=s["kind"], state=state,
            failures=int(s["consecutive_failures"] or 0), gap=s["gap_reason"],
            last_error=s["last_error"], last_success_at=s["last_success_at"],
            next_attempt_at=s["next_attempt_at"], gap_since=s["gap_since"],
            gap_hours=s["gap_hours"]))
    order = {"gap": 0, "backoff": 1, "failing": 2}
    problems.sort(key=lambda p: (order[p.state], -p.failures, p.name))
    sources = len(store.source_rows(db))
    runs = store.digest_run_counts(db, week.start_iso, week.end_iso)
    return Health(sources=sources, sources_ok=sources - len(problems), problems=problems,
                  runs=runs["runs"], runs_failed=runs["failed"])
