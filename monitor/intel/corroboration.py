"""Corroboration: a market named both on Reddit and in the news within a window.

Chatter on one platform is cheap; the same name turning up in a news story and on Reddit
within `window` (published times, either order) is worth an analyst's look. Each such
sighting is a `corroborations` row, at most one per market per window: a market that stays
in both for weeks gets a row every `window` or so, not one per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from .. import store
from ..timeutil import iso, parse_iso

_FAMILY = {"news": "news", "reddit_post": "reddit", "reddit_comment": "reddit"}
_OTHER = {"news": "reddit", "reddit": "news"}


def update(db: Database, item_ids: Sequence[str], window: timedelta,
           items: list[dict[str, Any]] | None = None) -> list[int]:
    """Record the corroborations these items complete; return the new rows' ids.
    `items`: store.intel_items(db, item_ids), when the caller has them."""
    new: list[int] = []
    items = store.intel_items(db, item_ids) if items is None else items
    mentions = store.item_mentions(db, [i["id"] for i in items])
    for item in items:
        family = _FAMILY.get(item["kind"])
        if family is None:
            continue
        at = parse_iso(item["published_at"])
        for market in sorted({m["market"] for m in mentions.get(item["id"], [])}):
            other = store.latest_family_mention(
                db, market, _OTHER[family], iso(at - window), iso(at + window))
            if other is None:
                continue
            when = max(item["published_at"], other["published_at"])
            if _same_episode(db, market, when, window):
                continue
            news_id, reddit_id = ((item["id"], other["id"]) if family == "news"
                                  else (other["id"], item["id"]))
            new.append(store.save_corroboration(db, market, when, news_id, reddit_id))
    return new


def _same_episode(db: Database, market: str, when: str, window: timedelta) -> bool:
    last = store.latest_corroboration(db, market)
    if last is None:
        return False
    gap = abs(parse_iso(when) - parse_iso(last["corroborated_at"]))
    return gap <= window


def is_corroborated(db: Database, market: str, at: datetime, window: timedelta) -> bool:
    """Whether `market` had a corroboration within `window` before `at`."""
    last = store.latest_corroboration(db, market)
    if last is None:
        return False
    when = parse_iso(last["corroborated_at"])
    return at - window <= when <= at
