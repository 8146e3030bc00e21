"""Successor intelligence on mentions written straight into a fresh database: lineage,
warnings, rising-name alerts, corroboration, the takedown response, alert mail, and the CLI
surfaces (`monitor events`, `status`, `markets`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import store
from monitor.cli import cli
from monitor.config import AlertsConfig, ConfigError, config_from_dict
from monitor.intel import after_classify, alerts, corroboration, lineage, takedown, warnings
from monitor.intel.notify import send_alerts
from monitor.timeutil import iso

from .conftest import shared_path
from .digest_helpers import free_port, parse, smtp_server

DATA = Path(__file__).resolve().parent / "data"
T0 = datetime(2025, 3, 3, tzinfo=UTC)  # coverage starts here in most tests


def add_item(db, item_id: str, text: str, at: datetime, *, kind: str = "reddit_post",
             source: str = "reddit/r/darknet", mentions: tuple = ()) -> str:
    """One stored item (collected when published, as in a replay) and its mentions."""
    title, _, body = text.partition("\n")
    store.save_items(db, [{
        "id": item_id, "source": source, "kind": kind, "title": title, "body": body,
        "url": None, "published_at": iso(at), "collected_at": iso(at),
        "content_hash": None}])
    store.add_mentions(db, [{"item_id": item_id, "market": m, "surface": m, "role": r}
                            for m, r in mentions])
    return item_id


def edges(db) -> dict[tuple[str, str], dict]:
    return {(e["predecessor"], e["successor"]): e for e in store.lineage_edges(db)}


# --- lineage -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "base", "generation"), [
    ("Silk Road", "silkroad", 1.0),
    ("Silk Road 2.0", "silkroad", 2.0),
    ("Silk Road II", "silkroad", 2.0),
    ("Silk Road 3", "silkroad", 3.0),
    ("Silk Road Reloaded", "silkroad", None),
    ("AlphaBay (2021)", "alphabay", None),
    ("Archetyp Market", "archetyp", 1.0),
    ("Archetyp Market Reloaded", "archetyp", None),
    ("Cloud 9", "cloud9", 1.0),       # a name, not version 9
    ("Dark0de Reborn", "darkode", None),
    ("Nexus v3", "nexus", 3.0),
])
def test_brand(name, base, generation):
    assert lineage.brand(name) == lineage.Brand(base, generation)


def test_older_version():
    assert lineage.older_version("Zephyr", "Zephyr 2.0")
    assert lineage.older_version("Zephyr 2.0", "Zephyr 3.0")
    assert lineage.older_version("Zephyr", "Zephyr Reloaded")
    assert not lineage.older_version("Zephyr 3.0", "Zephyr 2.0")
    assert not lineage.older_version("Zephyr", "Quillon")
    assert not lineage.older_version("Zephyr Reloaded", "Zephyr 2.0")  # order unknown


def _three_generations(db, order: list[int]) -> None:
    texts = {
        1: ("z1", "Zephyr 2.0 is live, the old Zephyr admins relaunched it",
            datetime(2025, 3, 10, 12, tzinfo=UTC),
            (("Zephyr 2.0", "successor"), ("Zephyr", "predecessor"))),
        2: ("z2", "Zephyr 3.0 launched after Zephyr 2.0 was seized; Zephyr before it",
            datetime(2025, 5, 2, 9, tzinfo=UTC),
            (("Zephyr 3.0", "successor"), ("Zephyr 2.0", "predecessor"),
             ("Zephyr", "predecessor"))),
        3: ("z3", "Zephyr 3.0 is up, same escrow as ever",
            datetime(2025, 5, 4, 18, tzinfo=UTC), (("Zephyr 3.0", "successor"),)),
    }
    for n in order:
        item_id, text, at, mentions = texts[n]
        add_item(db, item_id, text, at, mentions=mentions)
        lineage.update(db, [item_id])


@pytest.mark.parametrize("order", [[1, 2, 3], [2, 3, 1], [3, 2, 1]])
def test_three_generation_chain(fresh_db, order):
    """X -> X 2.0 -> X 3.0 whatever order the evidence arrives in, with no X -> X 3.0."""
    _three_generations(fresh_db, order)
    found = edges(fresh_db)
    assert set(found) == {("Zephyr", "Zephyr 2.0"), ("Zephyr 2.0", "Zephyr 3.0")}
    assert found[("Zephyr 2.0", "Zephyr 3.0")]["kind"] == "relaunch"
    first = found[("Zephyr", "Zephyr 2.0")]
    assert (first["kind"], first["origin"], first["count"]) == ("relaunch", "discovered", 1)
    assert first["first_seen_at"] == "2025-03-10T12:00:00+00:00"
    assert first["first_item_id"] == "z1"


def test_three_generation_chain_exact_rows(fresh_db):
    _three_generations(fresh_db, [1, 2, 3])
    rows = [{k: e[k] for k in ("predecessor", "successor", "kind", "origin", "count",
                               "first_seen_at", "last_seen_at", "first_item_id",
                               "last_item_id")} for e in store.lineage_edges(fresh_db)]
    assert rows == [
        {"predecessor": "Zephyr", "successor": "Zephyr 2.0", "kind": "relaunch",
         "origin": "discovered", "count": 1, "first_seen_at": "2025-03-10T12:00:00+00:00",
         "last_seen_at": "2025-03-10T12:00:00+00:00", "first_item_id": "z1",
         "last_item_id": "z1"},
        # z3 names only "Zephyr 3.0": it is linked to the newest older version known.
        {"predecessor": "Zephyr 2.0", "successor": "Zephyr 3.0", "kind": "relaunch",
         "origin": "discovered", "count": 2, "first_seen_at": "2025-05-02T09:00:00+00:00",
         "last_seen_at": "2025-05-04T18:00:00+00:00", "first_item_id": "z2",
         "last_item_id": "z3"},
    ]
    forest = [(depth, name) for depth, name, _ in lineage.tree(store.lineage_edges(fresh_db))]
    assert forest == [(0, "Zephyr"), (1, "Zephyr 2.0"), (2, "Zephyr 3.0")]


def test_a_lone_versioned_name_arriving_first_has_no_parent_yet(fresh_db):
    """With nothing known about the brand, "Zephyr 3.0 is up" links to nothing."""
    add_item(fresh_db, "z3", "Zephyr 3.0 is up", T0, mentions=(("Zephyr 3.0", "successor"),))
    lineage.update(fresh_db, ["z3"])
    assert edges(fresh_db) == {}


def test_gazetteer_edges_are_told_apart_from_discovered(fresh_db):
    db = fresh_db
    db["markets"].insert_all([
        {"name": "Silk Road", "origin": "gazetteer"},
        {"name": "Silk Road 2.0", "predecessor": "Silk Road", "origin": "gazetteer"},
        {"name": "Silk Road 3.0", "predecessor": "Silk Road 2.0", "origin": "gazetteer"},
        {"name": "Archetyp Market", "origin": "gazetteer"},
        {"name": "Quillon", "predecessor": "Archetyp Market", "origin": "discovered"},
    ])
    add_item(db, "a", "Silk Road 3.0 is up after Silk Road 2.0 was seized", T0,
             mentions=(("Silk Road 3.0", "successor"), ("Silk Road 2.0", "predecessor")))
    add_item(db, "b", "After AlphaBay fell everyone moved to Hansa", T0 + timedelta(hours=1),
             mentions=(("Hansa", "successor"), ("AlphaBay", "predecessor")))
    add_item(db, "c", "Hansa launched to fill the gap AlphaBay left", T0 + timedelta(hours=2),
             mentions=(("Hansa", "successor"), ("AlphaBay", "predecessor")))
    add_item(db, "d", "Vendors are migrating from AlphaBay to Hansa", T0 + timedelta(hours=3),
             mentions=(("Hansa", "successor"), ("AlphaBay", "predecessor")))
    lineage.update(db, ["a", "b", "c", "d"])
    found = edges(db)
    summary = {pair: (e["kind"], e["origin"], e["count"]) for pair, e in found.items()}
    assert summary == {
        ("Silk Road", "Silk Road 2.0"): ("relaunch", "gazetteer", 0),
        ("Silk Road 2.0", "Silk Road 3.0"): ("relaunch", "gazetteer", 1),
        ("Archetyp Market", "Quillon"): ("replacement", "discovered", 0),
        # two of the three items say users moved: a migration destination
        ("AlphaBay", "Hansa"): ("migration", "discovered", 3),
    }
    evidence = store.lineage_evidence(db, "AlphaBay", "Hansa")
    assert [(e["item_id"], e["kind"]) for e in evidence] == [
        ("b", "migration"), ("c", "replacement"), ("d", "migration")]


def test_a_discovered_edge_later_stated_by_the_gazetteer_becomes_gazetteer(fresh_db):
    db = fresh_db
    add_item(db, "a", "Quillon replaced Archetyp", T0,
             mentions=(("Quillon", "successor"), ("Archetyp Market", "predecessor")))
    lineage.update(db, ["a"])
    assert edges(db)[("Archetyp Market", "Quillon")]["origin"] == "discovered"
    db["markets"].insert({"name": "Quillon", "predecessor": "Archetyp Market",
                          "origin": "gazetteer"})
    lineage.update(db, [])
    edge = edges(db)[("Archetyp Market", "Quillon")]
    assert (edge["origin"], edge["count"]) == ("gazetteer", 1)


def test_a_predecessor_newer_than_its_successor_is_not_lineage(fresh_db):
    add_item(fresh_db, "x", "Zephyr is back, forget Zephyr 2.0", T0,
             mentions=(("Zephyr", "successor"), ("Zephyr 2.0", "predecessor")))
    lineage.update(fresh_db, ["x"])
    assert edges(fresh_db) == {}


# --- warnings ------------------------------------------------------------------------------

def _gazetteer_aliases() -> dict[str, list[str]]:
    from monitor.classify.markets import load_gazetteer

    return {m.name: list(m.aliases) for m in load_gazetteer().markets}


def _score(path: Path) -> tuple[int, int, int]:
    aliases = _gazetteer_aliases()
    tp = fp = fn = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        names = {m: aliases.get(m, []) for m in case["markets"]}
        got = {w.market for w in warnings.find_warnings(case["text"], names)}
        expected = set(case["warned"])
        tp, fp, fn = tp + len(got & expected), fp + len(got - expected), fn + len(expected - got)
    return tp, fp, fn


def test_warning_rule_on_the_examples_it_was_written_with():
    # 60 examples (28 warnings): measured 28 right, 1 wrong ("Some say X is run by the
    # feds, but ... proof it isn't"), 0 missed.
    tp, fp, fn = _score(DATA / "warning_examples.jsonl")
    assert tp + fn == 28
    assert tp / (tp + fp) >= 0.95 and tp / (tp + fn) >= 0.95


def test_warning_rule_on_held_out_examples():
    # 40 examples written after the rule was frozen (18 warnings): measured precision
    # 13/15 = 0.87, recall 13/18 = 0.72. The misses are warnings without a cue word
    # ("asks for your address at signup") or with the market named only in passing.
    tp, fp, fn = _score(DATA / "warning_heldout.jsonl")
    assert tp + fn == 18
    assert tp / (tp + fp) >= 0.85
    assert tp / (tp + fn) >= 0.7


def test_warning_rule_on_the_shared_dev_set():
    """The dev set's scam talk is almost all exit-scam reports, which are not warnings; the
    one text that calls a market a honeypot (Hansa) is the one warning."""
    path = shared_path("eval", "dev.jsonl")
    aliases = _gazetteer_aliases()
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        names = {m: aliases.get(m, []) for m in case["markets"] if m in aliases}
        got = sorted(w.market for w in warnings.find_warnings(case["text"], names))
        if got:
            found[case["id"]] = got
    assert found == {"succ-0114": ["Hansa"]}


@pytest.mark.parametrize(("text", "warned"), [
    ("Zephyr Reloaded is a phishing clone of Zephyr.", ["Zephyr Reloaded"]),
    ("After Zephyr's seizure, beware of phishing links for Quillon.", ["Quillon"]),
    ("Lost my coins on Quillon. It's a scam, the old Zephyr admins run it.", ["Quillon"]),
    ("Quillon is not a scam, ten orders and no problem.", []),
    ("Is Quillon a honeypot? Nobody knows yet.", []),
    ("Zephyr exit scammed last night and took the escrow.", []),
    ("Quillon is fine; the Zephyr link above is phishing.", ["Zephyr"]),
])
def test_which_market_a_warning_is_about(text, warned):
    names = {"Zephyr": [], "Zephyr Reloaded": [], "Quillon": []}
    assert [w.market for w in warnings.find_warnings(text, names)] == warned


def test_mark_stores_warning_mentions_once(fresh_db):
    db = fresh_db
    db["markets"].insert({"name": "Archetyp Market", "aliases": json.dumps(["Archetyp"]),
                          "origin": "gazetteer"})
    add_item(db, "w", "PSA\nDon't use the new Archetyp mirror, it is a phishing clone.", T0,
             mentions=(("Archetyp Market", "mention"),))
    add_item(db, "n", "Archetyp support answered my ticket", T0,
             mentions=(("Archetyp Market", "mention"),))
    assert warnings.mark(db, ["w", "n"]) == 1
    assert warnings.mark(db, ["w", "n"]) == 0
    rows = list(db.query("SELECT item_id, market, surface, role FROM mentions "
                         "WHERE role = 'warning'"))
    assert rows == [{"item_id": "w", "market": "Archetyp Market", "surface": "Archetyp",
                     "role": "warning"}]
    assert store.warning_counts(db) == {"Archetyp Market": 1}


def test_a_shared_surface_warns_the_clone_not_its_base(fresh_db):
    """The extractor names "Archetyp Reloaded" as the clone and, with the same surface, as its
    base market (the predecessor): the warning is about the clone."""
    db = fresh_db
    add_item(db, "c", "Archetyp Reloaded is live, but it is an LE honeypot.", T0)
    store.add_mentions(db, [
        {"item_id": "c", "market": "Archetyp Market", "surface": "Archetyp Reloaded",
         "role": "predecessor"},
        {"item_id": "c", "market": "Archetyp Market Reloaded", "surface": "Archetyp Reloaded",
         "role": "successor"}])
    assert warnings.mark(db, ["c"]) == 1
    assert store.warning_counts(db) == {"Archetyp Market Reloaded": 1}


# --- rising names --------------------------------------------------------------------------

SETTINGS = AlertsConfig()


def test_robust_z():
    assert alerts.robust_z(9, [2, 3, 3, 4, 2, 3, 5]) == (3.0, 1.0, pytest.approx(6 / 1.4826))
    # a name never seen before: MAD 0, the floor of 1 keeps z finite
    assert alerts.robust_z(6, [0] * 10) == (0.0, 0.0, 6.0)


def test_periods_are_24_hours_back_from_now():
    now = datetime(2025, 6, 19, 12, tzinfo=UTC)
    times = [now, now - timedelta(hours=23, minutes=59), now - timedelta(hours=24),
             now - timedelta(hours=47), now - timedelta(days=3, hours=1), now + timedelta(1)]
    level, counts = alerts.periods(times, now, 4)
    assert level == 2
    assert counts == [2, 0, 1, 0]


def _steady(start: datetime, days: int, per_day: list[int]) -> list[datetime]:
    out = []
    for d in range(days):
        n = per_day[d % len(per_day)]
        out += [start + timedelta(days=d, hours=1 + 22 * k / max(n, 1)) for k in range(n)]
    return out


def test_detect_steady_chatter_never_fires():
    times = _steady(T0, 40, [2, 4, 3, 5, 3, 2, 4])
    for hour in range(8 * 24, 40 * 24, 5):
        now = T0 + timedelta(hours=hour)
        assert alerts.detect(times, now, T0, SETTINGS) is None, now


def test_detect_a_new_name_rising():
    rise = T0 + timedelta(days=20)
    times = [rise + timedelta(hours=2 * k) for k in range(10)]
    fired = [t for t in times if alerts.detect(times, t, T0, SETTINGS)]
    assert fired[0] == times[SETTINGS.min_count - 1]  # the 5th mention in 24 hours
    spike = alerts.detect(times, fired[0], T0, SETTINGS)
    assert (spike.count, spike.median, spike.z, spike.baseline_days) == (5, 0.0, 5.0, 19)


def test_detect_waits_for_enough_baseline():
    times = [T0 + timedelta(days=3, hours=k) for k in range(12)]
    assert alerts.detect(times, times[-1], T0, SETTINGS) is None  # 2 days covered, 7 needed
    later = [t + timedelta(days=10) for t in times]
    assert alerts.detect(later, later[-1], T0, SETTINGS) is not None


def _mention_burst(db, market: str, start: datetime, count: int, every: timedelta,
                   prefix: str, role: str = "successor") -> list[str]:
    ids = []
    for k in range(count):
        ids.append(add_item(db, f"{prefix}{k}", f"{market} is where everyone went",
                            start + k * every, mentions=((market, role),)))
    return ids


def test_check_raises_one_alert_per_rise(fresh_db):
    db = fresh_db
    add_item(db, "first", "coverage starts", T0)
    db["markets"].insert({"name": "DrugHub", "origin": "gazetteer"})
    raised = []
    start = T0 + timedelta(days=10)
    # a new name: 3 days at ~8 a day, quiet for 6 days, then a second rise
    for k in range(24):
        add_item(db, f"q{k}", "Quillon", start + timedelta(hours=3 * k),
                 mentions=(("Quillon", "successor"),))
        raised += alerts.check(db, ["Quillon"], start + timedelta(hours=3 * k), SETTINGS)
    quiet = start + timedelta(days=7)
    add_item(db, "lull", "Quillon", quiet, mentions=(("Quillon", "mention"),))
    assert alerts.check(db, ["Quillon"], quiet, SETTINGS) == []
    again = start + timedelta(days=9)
    for k in range(6):
        add_item(db, f"r{k}", "Quillon", again + timedelta(hours=2 * k),
                 mentions=(("Quillon", "successor"),))
        raised += alerts.check(db, ["Quillon"], again + timedelta(hours=2 * k), SETTINGS)
    rows = store.alerts_by_id(db, raised)
    assert [(r["market"], r["kind"], r["raised_at"]) for r in rows] == [
        ("Quillon", "new-rising", iso(start + timedelta(hours=12))),
        ("Quillon", "new-rising", iso(again + timedelta(hours=8))),
    ]
    first = store.alerts_by_id(db, raised[:1])[0]
    assert first["cleared_at"] == iso(quiet)
    detail = json.loads(first["detail"])
    assert detail["count_24h"] == 5 and detail["baseline_median"] == 0
    assert detail["items"] == ["q0", "q1", "q2", "q3", "q4"]
    assert alerts.describe(first) == ("Quillon: new name rising, 5 mentions in 24h "
                                      "(baseline 0/day, z 5)")


def test_check_gazetteer_market_is_rising_not_new(fresh_db):
    db = fresh_db
    add_item(db, "first", "coverage starts", T0)
    db["markets"].insert({"name": "Vice City", "origin": "gazetteer"})
    ids = _mention_burst(db, "Vice City", T0 + timedelta(days=12), 6, timedelta(hours=1), "v")
    raised = alerts.check(db, ["Vice City"], T0 + timedelta(days=12, hours=5), SETTINGS)
    assert [r["kind"] for r in store.alerts_by_id(db, raised)] == ["rising"]
    assert ids


def test_check_ignores_talk_of_a_fallen_market(fresh_db):
    """A seizure makes a market's name busy; only talk of its return counts from then on."""
    db = fresh_db
    add_item(db, "first", "coverage starts", T0)
    db["markets"].insert({"name": "Archetyp Market", "origin": "gazetteer"})
    down = T0 + timedelta(days=14)
    db["events"].insert({"id": "e", "name": "Archetyp seized", "happened_at": iso(down),
                         "kind": "seizure", "markets": json.dumps(["Archetyp Market"])})
    _mention_burst(db, "Archetyp Market", down, 8, timedelta(hours=1), "s", role="mention")
    _mention_burst(db, "Archetyp Market", down, 8, timedelta(hours=1), "p", role="predecessor")
    assert alerts.check(db, ["Archetyp Market"], down + timedelta(hours=8), SETTINGS) == []
    _mention_burst(db, "Archetyp Market", down + timedelta(hours=9), 5, timedelta(hours=1),
                   "back")
    assert len(alerts.check(db, ["Archetyp Market"], down + timedelta(hours=13),
                            SETTINGS)) == 1


def test_check_does_nothing_when_disabled(fresh_db):
    add_item(fresh_db, "first", "coverage starts", T0)
    _mention_burst(fresh_db, "Quillon", T0 + timedelta(days=10), 9, timedelta(hours=1), "q")
    off = AlertsConfig(enabled=False)
    assert alerts.check(fresh_db, ["Quillon"], T0 + timedelta(days=10, hours=9), off) == []


# --- corroboration -------------------------------------------------------------------------

def test_corroboration_needs_both_platforms_within_the_window(fresh_db):
    db = fresh_db
    window = timedelta(days=3)
    add_item(db, "r1", "Quillon on reddit", T0, mentions=(("Quillon", "successor"),))
    add_item(db, "r2", "Zephyr on reddit", T0, mentions=(("Zephyr", "mention"),))
    assert corroboration.update(db, ["r1", "r2"], window) == []
    add_item(db, "n1", "Quillon in the news", T0 + timedelta(days=2), kind="news",
             source="darknetlive", mentions=(("Quillon", "mention"),))
    add_item(db, "n2", "Zephyr in the news", T0 + timedelta(days=5), kind="news",
             source="darknetlive", mentions=(("Zephyr", "mention"),))
    new = corroboration.update(db, ["n1", "n2"], window)
    assert len(new) == 1
    rows = list(db.query("SELECT market, corroborated_at, news_item_id, reddit_item_id "
                         "FROM corroborations"))
    assert rows == [{"market": "Quillon", "corroborated_at": iso(T0 + timedelta(days=2)),
                     "news_item_id": "n1", "reddit_item_id": "r1"}]
    # more of the same within the window: the same sighting, no new row
    add_item(db, "r3", "Quillon again", T0 + timedelta(days=3), mentions=(("Quillon", "mention"),))
    assert corroboration.update(db, ["r3"], window) == []
    assert corroboration.is_corroborated(db, "Quillon", T0 + timedelta(days=4), window)
    assert not corroboration.is_corroborated(db, "Zephyr", T0 + timedelta(days=6), window)
    week = store.corroborations_between(db, iso(T0), iso(T0 + timedelta(days=7)))
    assert week == [{"market": "Quillon", "corroborated_at": iso(T0 + timedelta(days=2)),
                     "news_items": 1, "reddit_items": 2}]


# --- takedown response ---------------------------------------------------------------------

def _takedown_world(db) -> None:
    """Two events: an older one with slow chatter, and Archetyp with a clear winner."""
    db["events"].insert_all([
        {"id": "old", "name": "Zephyr seizure", "happened_at": "2024-01-10T00:00:00+00:00",
         "kind": "seizure", "markets": json.dumps(["Zephyr"])},
        {"id": "arch", "name": "Archetyp seizure", "happened_at": "2025-06-16T00:00:00+00:00",
         "kind": "seizure", "markets": json.dumps(["Archetyp Market"])},
    ])
    db["markets"].insert({"name": "Obsidia", "predecessor": "Archetyp Market",
                          "origin": "discovered"})
    base = datetime(2024, 1, 10, tzinfo=UTC)
    add_item(db, "o1", "Zephyr gone, Nimbus now", base + timedelta(days=3, hours=6),
             mentions=(("Nimbus", "successor"), ("Zephyr", "predecessor")))
    add_item(db, "o2", "Nimbus took over from Zephyr", base + timedelta(days=5),
             mentions=(("Nimbus", "successor"), ("Zephyr", "predecessor")))
    day = datetime(2025, 6, 16, tzinfo=UTC)
    add_item(db, "before", "Quillon is new", day - timedelta(days=2),
             mentions=(("Quillon", "successor"), ("Archetyp Market", "predecessor")))
    add_item(db, "q1", "Archetyp is gone, try Quillon", day + timedelta(days=1, hours=8, minutes=41),
             mentions=(("Quillon", "successor"), ("Archetyp Market", "predecessor")))
    for k in range(5):
        add_item(db, f"q{k + 2}", "everyone moved from Archetyp to Quillon",
                 day + timedelta(days=3, hours=k),
                 mentions=(("Quillon", "successor"), ("Archetyp Market", "predecessor")))
    add_item(db, "late", "Quillon after Archetyp", day + timedelta(days=40),
             mentions=(("Quillon", "successor"), ("Archetyp Market", "predecessor")))
    # Obsidia counts through its recorded predecessor, without naming Archetyp
    add_item(db, "v1", "Obsidia is back", day + timedelta(days=2),
             mentions=(("Obsidia", "successor"),))
    # a warning about a successor, and an unrelated successor that must not count
    add_item(db, "w1", "Quillon mirror is phishing", day + timedelta(days=4),
             mentions=(("Quillon", "warning"), ("Archetyp Market", "mention")))
    add_item(db, "x1", "Nimbus 2.0 is live", day + timedelta(days=1),
             mentions=(("Nimbus 2.0", "successor"),))


def test_takedown_response_view(fresh_db):
    _takedown_world(fresh_db)
    rows = store.takedown_response_rows(fresh_db, ["arch"])
    got = [{k: r[k] for k in ("successor", "first_mention_at", "days_to_first_mention",
                              "mentions_7d", "mentions_30d", "mentions_total", "share_30d",
                              "rank_30d", "warnings_30d")} for r in rows]
    assert got == [
        {"successor": "Quillon", "first_mention_at": "2025-06-17T08:41:00+00:00",
         "days_to_first_mention": 1.36, "mentions_7d": 6, "mentions_30d": 6,
         "mentions_total": 7, "share_30d": 0.857, "rank_30d": 1, "warnings_30d": 1},
        {"successor": "Obsidia", "first_mention_at": "2025-06-18T00:00:00+00:00",
         "days_to_first_mention": 2.0, "mentions_7d": 1, "mentions_30d": 1,
         "mentions_total": 1, "share_30d": 0.143, "rank_30d": 2, "warnings_30d": 0},
    ]
    daily = json.loads(rows[0]["daily_30d"])
    assert len(daily) == 30 and daily[:5] == [0, 1, 0, 5, 0] and sum(daily) == 6


def test_takedown_responses_and_comparison(fresh_db):
    _takedown_world(fresh_db)
    found = takedown.responses(fresh_db)
    assert [r.event_id for r in found] == ["old", "arch"]
    arch = found[1]
    assert (arch.first.market, arch.leader.market, arch.chatter_30d) == ("Quillon", "Quillon", 7)
    comparison = takedown.compare(arch, found)
    assert comparison.earlier == 1
    assert comparison.days_to_first == 3.25 and comparison.chatter_30d == 2.0
    assert comparison.leader_share == 1.0
    text = takedown.render([arch], found)
    assert "Quillon (86%)" in text and "1d 9h" in text
    assert "Against 1 earlier event: first successor after 1d 9h (median 3d 6h)" in text
    assert takedown.sparkline([0, 1, 0, 5]) == " ▂ █"


def test_events_command(tmp_path, fresh_db):
    _takedown_world(fresh_db)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "fresh.db"}"\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["events", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Archetyp seizure" in result.output and "Quillon" in result.output
    assert "Zephyr seizure" in result.output
    one = runner.invoke(cli, ["events", "--config", str(config), "--event", "arch"])
    assert "Zephyr seizure" not in one.output and "Obsidia" in one.output
    bad = runner.invoke(cli, ["events", "--config", str(config), "--event", "nope"])
    assert bad.exit_code == 1 and "no event with id 'nope'" in bad.output


# --- after_classify, status and markets ----------------------------------------------------

def test_after_classify_runs_every_step(tmp_path, fresh_db):
    db = fresh_db
    add_item(db, "first", "coverage starts", T0)
    start = T0 + timedelta(days=9)
    ids = []
    for k in range(6):
        ids.append(add_item(
            db, f"q{k}", "Everyone moved from Archetyp to Quillon", start + timedelta(hours=k),
            mentions=(("Quillon", "successor"), ("Archetyp Market", "predecessor"))))
    ids.append(add_item(db, "n", "Quillon draws Archetyp users\nThe Quillon onion in the ad "
                        "is a phishing clone.", start + timedelta(hours=6), kind="news",
                        source="darknetlive", mentions=(("Quillon", "successor"),)))
    result = after_classify(db, ids, start + timedelta(hours=6), AlertsConfig())
    assert result.warnings == 1 and result.edges == 1
    assert len(result.corroborations) == 1 and len(result.alerts) == 1

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "fresh.db"}"\n')
    status = CliRunner().invoke(cli, ["status", "--config", str(config)])
    assert status.exit_code == 0
    assert "Quillon: new name rising, 7 mentions in 24h" in status.output
    markets = CliRunner().invoke(cli, ["markets", "--config", str(config)])
    assert markets.exit_code == 0, markets.output
    lines = markets.output.splitlines()
    assert any(line.split()[:2] == ["Quillon", "1"] for line in lines)  # the warnings table
    assert any("Archetyp Market" in line and "Quillon" in line and "migration" in line
               for line in lines)


# --- alert mail ----------------------------------------------------------------------------

@pytest.fixture
def smtp():
    with smtp_server() as (inbox, port):
        yield port, inbox


def _mail_config(tmp_path, port: int, email: bool = True):
    data = {"database": {"path": "m.db"}, "smtp": {"host": "127.0.0.1", "port": port,
                                                   "security": "none"},
            "digest": {"recipients": ["team@example.org"], "sender": "monitor@example.org"},
            "alerts": {"email": email, "recipients": ["oncall@example.org"]}}
    return config_from_dict(data, tmp_path / "config.toml", {})


def test_alerts_are_mailed_once(tmp_path, fresh_db, smtp):
    port, inbox = smtp
    db = fresh_db
    add_item(db, "first", "coverage starts", T0)
    now = T0 + timedelta(days=10, hours=6)
    _mention_burst(db, "Quillon", now - timedelta(hours=6), 6, timedelta(hours=1), "q")
    alerts.check(db, ["Quillon"], now, SETTINGS)
    config = _mail_config(tmp_path, port)
    assert send_alerts(db, config, now) == 1
    assert send_alerts(db, config, now) == 0
    assert len(inbox.messages) == 1
    rcpt_tos, raw, _tls = inbox.messages[0]
    assert rcpt_tos == ["oncall@example.org"]
    message = parse(raw)
    assert message["Subject"] == "monitor alert: Quillon: new name rising"
    assert message["From"] == "monitor@example.org"
    body = message.get_content()
    assert "Quillon: new name rising, 6 mentions in 24h" in body
    assert "Quillon is where everyone went" in body
    assert store.recent_alerts(db)[0]["notified_at"] == iso(now)


def test_a_failed_alert_mail_is_recorded_and_retried(tmp_path, fresh_db, smtp):
    db = fresh_db
    add_item(db, "first", "coverage starts", T0)
    now = T0 + timedelta(days=10, hours=6)
    _mention_burst(db, "Quillon", now - timedelta(hours=6), 6, timedelta(hours=1), "q")
    alerts.check(db, ["Quillon"], now, SETTINGS)
    assert send_alerts(db, _mail_config(tmp_path, free_port()), now) == 0  # nobody listens
    alert = store.recent_alerts(db)[0]
    assert alert["notified_at"] is None and "cannot reach SMTP server" in alert["notify_error"]
    port, inbox = smtp
    assert send_alerts(db, _mail_config(tmp_path, port), now + timedelta(minutes=5)) == 1
    assert len(inbox.messages) == 1
    # a day later a never-mailed alert is left to the digest
    _mention_burst(db, "Zephyr", now, 6, timedelta(hours=1), "z")
    alerts.check(db, ["Zephyr"], now + timedelta(hours=5), SETTINGS)
    assert send_alerts(db, _mail_config(tmp_path, port), now + timedelta(days=2)) == 0


# --- config --------------------------------------------------------------------------------

def test_alerts_config(tmp_path):
    path = tmp_path / "c.toml"
    config = config_from_dict({"database": {"path": "m.db"}, "alerts": {
        "min_count": 3, "cooldown": "2d", "z_threshold": 3.5}}, path, {})
    assert (config.alerts.min_count, config.alerts.cooldown, config.alerts.z_threshold) == (
        3, 172800.0, 3.5)
    with pytest.raises(ConfigError, match=r"alerts\.min_cont: unknown key .*min_count"):
        config_from_dict({"database": {"path": "m.db"}, "alerts": {"min_cont": 3}}, path, {})
    with pytest.raises(ConfigError, match=r"alerts\.email: true, but neither"):
        config_from_dict({"database": {"path": "m.db"}, "alerts": {"email": True}}, path, {})
    with pytest.raises(ConfigError, match=r"alerts.recipients\[0\]"):
        config_from_dict({"database": {"path": "m.db"}, "alerts": {"recipients": ["x"]}},
                         path, {})
