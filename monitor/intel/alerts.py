"""Rising names: a spike detector over each market's mentions per day.

The rule, evaluated for a market whenever new items name it (at the time `now` they are
stored, which in a replay is the replayed item's time):
- level: the distinct items naming the market (other than as a predecessor: talk of its end
  is not a rise) published in the 24 hours up to `now`;
- baseline: the same count for each 24-hour period of the `baseline_days` before that,
  keeping only periods that monitor covered (from its first collected item on);
- z = (level - median) / max(1.4826 * MAD, 1): a robust z-score (the median absolute
  deviation, scaled to match a standard deviation, is not moved by the odd busy day; the
  floor of 1 keeps a name never mentioned before from dividing by zero);
- alert when level >= min_count and z >= z_threshold, once at least min_baseline_days
  periods are covered and no alert was raised for that market within `cooldown`;
- one alert per rise: while the alert is open no other is raised for that market; it is
  closed (`cleared_at`) by an evaluation where the last 48 hours were quiet, both 24-hour
  periods under half of min_count or with a z under half of z_threshold (a margin, so that
  a level hovering at the threshold or one slow day does not alert again and again), or
  when it is older than baseline_days.
From the time a market went down (its down_at, or an event naming it), only talk of its
return (role `successor`) counts, so that news of its seizure does not make it "rise".
The kind is `new-rising` for a name the gazetteer lacks that was first mentioned within
`new_days`, and `rising` otherwise.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from .. import store
from ..config import AlertsConfig
from ..timeutil import iso, parse_iso

DAY = timedelta(days=1)
MAD_SCALE = 1.4826
MIN_SCALE = 1.0
SAMPLE_ITEMS = 5


@dataclass(frozen=True)
class Spike:
    count: int
    median: float
    mad: float
    z: float
    baseline_days: int
    previous: int = 0  # the 24 hours before the level's

    def z_of(self, level: int) -> float:
        return (level - self.median) / max(MAD_SCALE * self.mad, MIN_SCALE)


def robust_z(level: int, baseline: Sequence[int]) -> tuple[float, float, float]:
    """(median, MAD, z) of `level` against `baseline` as the module docstring says."""
    median = float(statistics.median(baseline)) if baseline else 0.0
    mad = float(statistics.median(abs(b - median) for b in baseline)) if baseline else 0.0
    scale = max(MAD_SCALE * mad, MIN_SCALE)
    return median, mad, (level - median) / scale


def periods(times: Sequence[datetime], now: datetime, days: int) -> tuple[int, list[int]]:
    """(items in the 24 hours up to now, counts for each of the `days` periods before)."""
    level = 0
    counts = [0] * days
    for t in times:
        if t > now:
            continue
        back = (now - t) // DAY  # 0: (now - 1d, now]; k: (now - (k+1)d, now - kd]
        if back == 0:
            level += 1
        elif 1 <= back <= days:
            counts[back - 1] += 1
    return level, counts


def measure(times: Sequence[datetime], now: datetime, coverage_start: datetime | None,
            settings: AlertsConfig) -> Spike | None:
    """Level and robust z at `now`; None until enough baseline periods are covered."""
    if coverage_start is None:
        return None
    level, counts = periods(times, now, settings.baseline_days)
    # Period k (1-based) spans (now - (k+1)d, now - k*d]; it counts only if fully covered.
    covered = [c for k, c in enumerate(counts, start=1)
               if now - (k + 1) * DAY >= coverage_start]
    if len(covered) < max(1, settings.min_baseline_days):
        return None
    median, mad, z = robust_z(level, covered)
    return Spike(level, median, mad, round(z, 2), len(covered), counts[0] if counts else 0)


def fires(spike: Spike | None, settings: AlertsConfig) -> bool:
    return spike is not None and spike.count >= settings.min_count \
        and spike.z >= settings.z_threshold


def calm(spike: Spike | None, settings: AlertsConfig) -> bool:
    """Whether a rise is over: 48 quiet hours, with a margin under the thresholds."""
    if spike is None:
        return True
    peak = max(spike.count, spike.previous)
    return peak < settings.min_count / 2 or spike.z_of(peak) < settings.z_threshold / 2


def detect(times: Sequence[datetime], now: datetime, coverage_start: datetime | None,
           settings: AlertsConfig) -> Spike | None:
    """The spike at `now`, or None when the rule does not fire (pure: no database)."""
    spike = measure(times, now, coverage_start, settings)
    return spike if fires(spike, settings) else None


def check(db: Database, markets: Iterable[str], now: datetime,
          settings: AlertsConfig) -> list[int]:
    """Evaluate the rule for each market at `now`; store and return the new alerts' ids."""
    if not settings.enabled:
        return []
    started = store.first_activity_at(db)
    coverage_start = parse_iso(started) if started else None
    window = timedelta(days=settings.baseline_days)
    since = iso(now - window - DAY)
    raised: list[int] = []
    names = sorted(set(markets))
    rows = store.markets_by_name(db, names)
    for market in names:
        hits = store.market_mention_times(db, market, since, iso(now),
                                          fallen_at=store.market_fallen_at(db, market))
        spike = measure([parse_iso(t) for t, _ in hits], now, coverage_start, settings)
        last = store.latest_alert(db, market)
        open_alert = last if last and not last["cleared_at"] else None
        if open_alert and (calm(spike, settings)
                           or parse_iso(open_alert["raised_at"]) <= now - window):
            store.clear_alert(db, open_alert["id"], now)
            open_alert = None
        if not fires(spike, settings) or open_alert is not None:
            continue
        if last and parse_iso(last["raised_at"]) > now - timedelta(seconds=settings.cooldown):
            continue
        assert spike is not None  # fires() said so; for the type checker
        first_seen = store.first_mention_at(db, market)
        gazetteer = (rows.get(market) or {}).get("origin") == "gazetteer"
        new = (not gazetteer and first_seen is not None
               and parse_iso(first_seen) >= now - timedelta(days=settings.new_days))
        recent = [i for t, i in hits if parse_iso(t) > now - DAY]
        detail = _detail(spike, settings, first_seen, recent[-SAMPLE_ITEMS:])
        raised.append(store.save_alert(db, market, "new-rising" if new else "rising", now,
                                       detail))
    return raised


def _detail(spike: Spike, settings: AlertsConfig, first_seen: str | None,
            items: list[str]) -> dict[str, Any]:
    return {
        "count_24h": spike.count, "baseline_median": spike.median,
        "baseline_mad": spike.mad, "z": spike.z, "baseline_days": spike.baseline_days,
        "first_seen_at": first_seen, "items": items,
        "rule": f">= {settings.min_count} mentions in 24h and robust z >= "
                f"{settings.z_threshold:g} over {settings.baseline_days} days",
    }


def describe(alert: dict[str, Any]) -> str:
    """One line for a stored alert: 'X: new name rising, 9 mentions in 24h (baseline ...)'."""
    try:
        detail = json.loads(alert.get("detail") or "{}")
    except ValueError:
        detail = {}
    label = "new name rising" if alert["kind"] == "new-rising" else alert["kind"]
    if "count_24h" not in detail:
        return f"{alert['market']}: {label}"
    return (f"{alert['market']}: {label}, {detail['count_24h']} mentions in 24h "
            f"(baseline {detail.get('baseline_median', 0):g}/day, z {detail.get('z', 0):g})")
