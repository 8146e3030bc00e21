"""Market-name extraction: aliases, version forms, Cyrillic, names inside URLs, roles,
discovery of unlisted names, the ordinary senses of the names, and the gazetteer itself.

(tests/test_markets.py is the `monitor markets` lineage tree.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from monitor import store
from monitor.classify import apply
from monitor.classify.markets import (
    Extractor,
    iso_date,
    joined_key,
    load_gazetteer,
)
from monitor.errors import MonitorError


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(load_gazetteer())


def names(extractor: Extractor, text: str) -> dict[str, str]:
    """{canonical name: role} for a text."""
    return {m.name: m.role for m in extractor.find(text)}


# --- the gazetteer -------------------------------------------------------------------------

def test_gazetteer_size_and_shape():
    g = load_gazetteer()
    assert len(g.markets) >= 50
    assert len(g.events) >= 15
    names_ = {m.name for m in g.markets}
    for m in g.markets:
        assert m.status in ("active", "seized", "exit-scam", "closed", "unknown")
        assert m.predecessor is None or m.predecessor in names_
    for e in g.events:
        assert e.markets and set(e.markets) <= names_
    assert g.by_name["Silk Road 2.0"].predecessor == "Silk Road"
    assert g.by_name["Hydra Market"].status == "seized"


@pytest.mark.parametrize("surface, canonical", [
    ("alphabay", "AlphaBay"), ("Alpha Bay", "AlphaBay"), ("ALPHA-BAY", "AlphaBay"),
    ("BMR", "Black Market Reloaded"), ("SamSara Market", "Samsara Market"),
    ("Silkkitie", "Valhalla"), ("Гидра", "Hydra Market"), ("Nemesis", "Nemesis Market"),
    ("no such market", None),
])
def test_resolve(surface, canonical):
    assert load_gazetteer().resolve(surface) == canonical


def test_iso_date_uses_the_first_day_when_vague():
    assert iso_date("2017-07-05") == "2017-07-05T00:00:00+00:00"
    assert iso_date("2017-07") == "2017-07-01T00:00:00+00:00"
    assert iso_date("2017") == "2017-01-01T00:00:00+00:00"
    assert iso_date(None) is None


def test_a_broken_gazetteer_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "markets.toml"
    bad.write_text('[[markets]]\nname = "X"\nstatus = "dormant"\n')
    with pytest.raises(MonitorError, match=r"markets\[0\]\.status: 'dormant'"):
        load_gazetteer(bad)
    bad.write_text('[[markets]]\nname = "X"\npredecessor = "Y"\n')
    with pytest.raises(MonitorError, match="predecessor 'Y' is not a market"):
        load_gazetteer(bad)


def test_gazetteer_loads_into_the_database_once_and_keeps_first_seen(fresh_db):
    apply.ensure_gazetteer(fresh_db)
    markets = {r["name"]: r for r in fresh_db["markets"].rows}
    assert len(markets) == len(load_gazetteer().markets)
    ab = markets["AlphaBay"]
    assert ab["origin"] == "gazetteer"
    assert ab["down_at"] == "2017-07-05T00:00:00+00:00"
    assert ab["launched_at"] == "2014-12-01T00:00:00+00:00"
    assert "alphabay" in json.loads(ab["aliases"])
    hydra = fresh_db["events"].get("hydra-seizure-2022")
    assert hydra["happened_at"] == "2022-04-05T00:00:00+00:00"
    assert json.loads(hydra["markets"]) == ["Hydra Market"]
    # A first-seen time recorded later survives a reload; the reload is a no-op when the
    # file has not changed, and an upsert when it has.
    fresh_db.execute("UPDATE markets SET first_seen_at = '2026-01-01T00:00:00+00:00' "
                     "WHERE name = 'AlphaBay'")
    fresh_db.execute("DELETE FROM meta WHERE key = 'gazetteer_digest'")
    apply.ensure_gazetteer(fresh_db)
    assert fresh_db["markets"].get("AlphaBay")["first_seen_at"] == "2026-01-01T00:00:00+00:00"
    assert fresh_db["markets"].count == len(markets)
    assert fresh_db["events"].count == len(load_gazetteer().events)


# --- aliases, spellings, version forms -----------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("AlphaBay vendors are everywhere on the darknet", "AlphaBay"),
    ("alpha bay was the biggest darknet market", "AlphaBay"),
    ("anyone remember Alpha-Bay? the tor market", "AlphaBay"),
    ("ALPHABAY IS GONE", "AlphaBay"),
    ("WSM admins arrested, vendors panicking on the darknet", "Wall Street Market"),
    ("Finnish customs took the Silkkitie server", "Valhalla"),
    ("the old TheRealDeal market sold exploits", "TheRealDeal"),
    ("Joker's Stash retires", "Joker's Stash"),
    ("Jokers Stash retires", "Joker's Stash"),
    ("Tor2Door has new listings", "Tor2Door"),
])
def test_aliases_and_spellings(extractor, text, expected):
    assert expected in names(extractor, text)


@pytest.mark.parametrize("text, expected", [
    ("Silk Road 2.0 is up", "Silk Road 2.0"),
    ("SR2 is live, same admins", "Silk Road 2.0"),
    ("silk road 3 launched on tor", "Silk Road 3.0"),
    ("Silk Road Reloaded runs on I2P", "Silk Road Reloaded"),
    ("the new AlphaBay v2 on the darknet", "AlphaBay (2021)"),
    ("AlphaBay 2.0 is online", "AlphaBay (2021)"),
])
def test_listed_version_forms_are_their_own_markets(extractor, text, expected):
    found = names(extractor, text)
    assert expected in found
    assert found[expected] == "successor"


@pytest.mark.parametrize("text, versioned, base", [
    ("Empire 2.0 is up, same admins", "Empire Market 2.0", "Empire Market"),
    ("Hydra Reborn opened yesterday, darknet forums say", "Hydra Market Reborn", "Hydra Market"),
    ("Dream Market Reloaded is live on tor", "Dream Market Reloaded", "Dream Market"),
    ("Nemesis v2 launched after the seizure", "Nemesis Market 2.0", "Nemesis Market"),
])
def test_unlisted_versions_of_known_markets(extractor, text, versioned, base):
    found = {m.name: m for m in extractor.find(text)}
    assert found[versioned].role == "successor"
    assert found[versioned].known is False
    assert found[base].role == "predecessor"
    assert found[base].known is True


def test_a_bare_number_after_a_name_is_not_a_version(extractor):
    found = names(extractor, "Empire 2 weeks ago had a DDoS, vendors said on the darknet forum")
    assert "Empire Market" in found
    assert not any(n.endswith("2.0") for n in found)


# --- Cyrillic ------------------------------------------------------------------------------

def test_cyrillic_names_and_their_case_endings(extractor):
    found = names(extractor, "После закрытия Гидры пользователи перешли на Мегу и Блэкспрут")
    assert found == {"Hydra Market": "predecessor", "Mega": "successor",
                     "Blacksprut": "successor"}
    assert "OMG!OMG!" in names(extractor, "Магазины переезжают на ОМГ, пишут в даркнете")
    assert "Kraken" in names(extractor, "Кракен захватил площадку Соляриса")
    assert "Solaris" in names(extractor, "Кракен захватил площадку Соляриса")


def test_mixed_script_lookalikes_are_folded(extractor):
    # A Cyrillic "а" inside a Latin name (a common trick to dodge filters).
    assert "Hydra Market" in names(extractor, "Hydrа market is back on the darknet")
    assert joined_key("Hydrа") == "hydra"


# --- names inside URLs ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("see https://www.reddit.com/r/darknet/comments/abc/empire_market_exit_scam/", "Empire Market"),
    ("https://darknetlive.com/post/hydra-market-seized-by-german-police/", "Hydra Market"),
    ("the link alphabay522szl32u4ci5e3iokdsyth56ei7rwngr2wm7i5jo54j2eid.onion works",
     "AlphaBay"),
    ("mirror: http://dreammarketxyzabcdefg.onion/login", "Dream Market"),
    ("old sub: https://reddit.com/r/AlphaBayMarket", "AlphaBay"),
])
def test_names_inside_urls(extractor, text, expected):
    assert expected in names(extractor, text)


def test_url_mentions_take_the_role_from_the_text(extractor):
    found = {m.name: m for m in extractor.find(
        "Everyone moved to Abacus after Archetyp was seized https://example.org/abacus-market")}
    assert found["Abacus Market"].role == "successor"
    assert found["Abacus Market"].surface == "Abacus"


# --- the ordinary senses of the names ------------------------------------------------------

@pytest.mark.parametrize("text", [
    "The Silk Road trade route linked China with the Mediterranean for centuries.",
    "Caravans on the Silk Road carried silk and porcelain westwards.",
    "China's Belt and Road plan is often called a new Silk Road.",
    "Hansa Rostock won 2-0 at home on Saturday.",
    "The Hanseatic League, or Hansa, dominated Baltic trade.",
    "Hansa Pilsner is back in stores this summer.",
    "The Roman Empire fell in 476.",
    "The Empire Strikes Back returns to cinemas.",
    "The Empire State Building lit up in blue; police seized drugs nearby.",
    "Genesis of the darknet: how Tor markets began",
    "Electric cars are the dream market for battery makers.",
    "Stocks on Wall Street rallied as the market came back.",
    "I had a dream about a market.",
    "Evolution of the darknet: a study of Tor hidden services",
    "that's BS, the vendors lied about stealth",
    "Sr. Vendor Manager at a retail chain talked about drug policy",
    "Kraken, the crypto exchange, lists a new token; bitcoin rallies.",
    "Mega cloud storage now offers 20GB free.",
])
def test_other_senses_are_not_markets(extractor, text):
    assert extractor.find(text) == []


@pytest.mark.parametrize("text, expected", [
    ("Hansa was run by Dutch police for a month before the darknet market closed", "Hansa"),
    ("Empire exit scammed, vendors are moving to Versus", "Empire Market"),
    ("the original Silk Road was seized by the FBI in 2013", "Silk Road"),
    ("after dream closed everyone went to empire lol", "Dream Market"),
])
def test_the_same_names_in_darknet_context_are_markets(extractor, text, expected):
    assert expected in names(extractor, text)


# --- roles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("After AlphaBay went down everyone moved to Hansa.",
     {"AlphaBay": "predecessor", "Hansa": "successor"}),
    ("Silk Road is back, same DPR name, says the darknet forum.", {"Silk Road": "successor"}),
    ("Vendors from Empire are setting up shop on White House Market.",
     {"Empire Market": "predecessor", "White House Market": "successor"}),
    # Nothing replaces it: a market that went down is only mentioned.
    ("Nemesis Market was seized by German police.", {"Nemesis Market": "mention"}),
    ("Hydra Market sales statistics for 2021, from a darknet researcher",
     {"Hydra Market": "mention"}),
    # The gazetteer's lineage: Utopia is Black Market Reloaded's successor.
    ("BMR vendors keep their names on Utopia market.",
     {"Black Market Reloaded": "predecessor", "Utopia": "successor"}),
])
def test_roles(extractor, text, expected):
    assert names(extractor, text) == expected


def test_cue_words_inside_names_are_not_cues(extractor):
    analysed = extractor.analyse("Black Market Reloaded processed 16,000 registrations.")
    assert [m.role for m in analysed.mentions] == ["mention"]
    assert "reloaded" not in analysed.masked.lower()


# --- discovery -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, name", [
    ("A new market called Zorblax just opened after the seizure.", "Zorblax"),
    ("There's a new darknet marketplace named Quillfeather, vendors say.", "Quillfeather"),
    ("Vortex market just launched and half the vendors are ex-Archetyp.", "Vortex"),
    ("Pinecrest 2.0 is up, same admins as the first one.", "Pinecrest 2.0"),
    ("Новая площадка Зефир запустилась после закрытия Гидры", "Зефир"),
])
def test_discovery_of_unlisted_names(extractor, text, name):
    found = {m.name: m for m in extractor.find(text)}
    assert name in found
    assert found[name].known is False
    assert found[name].role == "successor"


@pytest.mark.parametrize("text", [
    "A new market called The Station opened downtown.",  # a stop word is no name
    "The new market called for more parking spaces.",
    "Our new shop named after my grandmother opened today.",
])
def test_no_discovery_without_a_name(extractor, text):
    assert not [m for m in extractor.find(text) if not m.known]


def test_a_known_name_introduced_as_new_is_known(extractor):
    found = {m.name: m for m in extractor.find("A new market called Abacus just opened.")}
    assert found["Abacus Market"].known is True


def test_discovered_names_are_recognised_once_recorded(fresh_db):
    apply.ensure_gazetteer(fresh_db)
    store.save_classifications(fresh_db, [], [], [
        {"name": "Zorblax", "predecessor": None, "first_seen_at": "2026-11-02T00:00:00+00:00"}])
    extractor = apply.extractor_for(fresh_db)
    found = {m.name: m for m in extractor.find("Vendors moved to Zorblax after the seizure")}
    assert found["Zorblax"].known is True
    row = fresh_db["markets"].get("Zorblax")
    assert row["origin"] == "discovered"
    # An earlier sighting moves first_seen_at back; a later one does not.
    for when in ("2026-11-05T00:00:00+00:00", "2026-10-30T00:00:00+00:00"):
        store.save_classifications(fresh_db, [], [], [
            {"name": "Zorblax", "predecessor": None, "first_seen_at": when}])
    assert fresh_db["markets"].get("Zorblax")["first_seen_at"] == "2026-10-30T00:00:00+00:00"


# --- one extraction per item ---------------------------------------------------------------

SAMPLES = [
    "Vendors moved to Zorblax after the seizure of Archetyp.",
    "Empire v2 is up, same admins as the old Empire Market.",
    "Empire II is live — mirrors posted on Dread.",
    "Abacus 2.0 just launched; Abacus users are migrating.",
    "A new market called Quillon opened its doors last week.",
    "Zorblax market is live now, everyone is heading over to Zorblax.",
    "The weather in Berlin was lovely — nothing about markets here.",
    "Police seized AlphaBay servers in Lithuania, the agency said.",
    "Гидра 2.0 запустилась, пользователи переходят на новую площадку.",
    "Check http://zorblaxabcdefghijklmnop.onion for the new link.",
    "ZorBlax-Market rises from the ashes of Nemesis.",
]


@pytest.mark.parametrize("discovered", [
    ("Zorblax",), ("Empire 2.0", "Abacus 2.0"), ("Zorblax", "Quillon", "Hydra 2.0"), ()])
def test_discovered_names_matter_only_where_the_extractor_says(discovered):
    plain = Extractor(load_gazetteer())
    with_names = Extractor(load_gazetteer(), discovered)
    for text in SAMPLES:
        if with_names.adds_nothing(text):
            assert with_names.find(text) == plain.find(text), text


def test_adds_nothing_sees_a_discovered_name_in_any_spelling():
    with_names = Extractor(load_gazetteer(), ("Zorblax", "Empire 2.0"))
    assert not with_names.adds_nothing("everyone moved to Zor-blax")
    assert not with_names.adds_nothing("Empire v2 is up")  # read as "Empire 2.0"
    assert not with_names.adds_nothing("Гидра is back")  # non-ASCII words: not judged
    assert with_names.adds_nothing("Empire Market was seized — a curly “quote” too")
    assert Extractor(load_gazetteer()).adds_nothing("everyone moved to Zorblax")


def test_the_cue_scan_tokens_match_a_plain_tokeniser():
    from monitor.classify import cues

    rng = random.Random(0)
    pieces = ["a", "Zb", "9", "_", " ", "—", "–", "’", "“", "”", "\u00a0", "…", ".", "Гидра", "²",
              "é", "\n", "-", "x1"]
    fuzzed = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(500)]
    for text in (*SAMPLES, "", "  ", "a_b c1d ²x ’t", "x" * 3, "Empire — “Market” ’s\u00a0x…",
                 "Гидра — back", "ABC_def — x", " — ", *fuzzed):
        lowered = text.lower()
        scan = cues.scan(lowered)
        expected = [(m.start(), m.end(), m.group(0)) for m in cues._WORD.finditer(lowered)]
        assert list(scan.tokens) == expected
        assert [scan.tokens[i] for i in range(len(scan.tokens))] == expected
        assert scan.tokens[1:3] == expected[1:3] and scan.tokens[-1:] == expected[-1:]
        assert scan.words == [w for _, _, w in expected]
        assert scan.present == set(scan.words)


@pytest.mark.parametrize("text, negated, version", [
    ("the market did not come back", True, False),
    ("it won’t return, admins said", True, False),
    ("no longer returning after the raid", True, False),
    ("neither site has resurfaced", True, False),
    ("empire 2.0 is up", False, True),
    ("nemesis v3 launched", False, True),
    ("sold 2.05 kilos, the market is back", False, False),
    ("v1 notes: the site came back", False, False),
])
def test_negated_returns_and_version_numbers_in_the_cue_scan(text, negated, version):
    from monitor.classify import cues

    scan = cues.scan(text)
    assert scan.has(cues.NEGATED) is negated
    assert scan.version is version


def _fuzzed_texts(seed: int, pieces: list[str], count: int = 600) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 16))) for _ in range(count)]


def test_the_sentence_end_pattern_splits_as_the_plain_alternation():
    import re

    from monitor.classify import markets

    plain = re.compile(r"[.!?;]+(?=\s)|\n+|[“”\"]\s")
    pieces = ["a", " ", ".", "!", "?", ";", "\n", "“", "”", '"', "\t", "..", "x.y", "Bay"]
    for text in (*SAMPLES, '"\n\n"', "end.\n\nnext", "a?! b", "x...y. z", *_fuzzed_texts(1, pieces)):
        low = text.lower()
        assert [m.span() for m in markets._SENTENCE_END.finditer(low)] == [
            m.span() for m in plain.finditer(low)], text


def test_the_move_word_test_never_rules_out_a_move_target():
    from monitor.classify import cues, markets

    pieces = [" ", "moved", "Moved", "to", "onto", "on", "at", "with", "over", "back", "go",
              "fled", "now", "Cinder", "X", "_", "d", ",", "\n", "the", "use", "İ", "mov"]
    moves = ["we moved to Cinder", "vendors are moving back to Cinder", "went over to Ares",
             "now on Abacus", "sticking with Torzon", "fleeing to Kerberos"]
    for text in (*moves, *SAMPLES, *_fuzzed_texts(2, pieces, 2000)):
        words = cues.scan(text.lower()).words
        if markets._MOVE_TARGET.search(text):
            assert markets._may_move(text, words), text
    for text in moves:
        assert markets._may_move(text, cues.scan(text.lower()).words)
    assert not markets._may_move("Sent to Europol at Noon", ["sent", "to", "europol", "at",
                                                             "noon"])
    assert markets._may_move("move_d to X", ["move", "d", "to", "x"])  # cannot tell: yes


def test_the_market_relations_match_the_plain_patterns():
    from monitor.classify import cues

    texts = [" mkt  and  mkt ", "moved to the new  mkt  now", "from  mkt  refugees", "former mkt",
             " mkt 's admins were seized", "after the fall of the  mkt ", " mkt ver  is back",
             " mkt  is live", "now on  mkt ", " mkt , mkt ", "left for mkt", "dead mkt"]
    pieces = [" ", " mkt ", " mkt ver ", "to", "the", "new", "from", "ex-", "seized", "fall of",
              "is back", "now", "on", ",", "and", ".", "refugees", "'s", "went", "xmkt"]
    for low in (*texts, *(t for t in _fuzzed_texts(3, pieces, 3000) if "mkt" in t)):
        assert cues.relations(low) == (
            cues.count(cues.TO_MARKET, low), cues.count(cues.FROM_MARKET, low),
            1 if cues.ON_MARKET_NOW.search(low) else 0, cues.count(cues.MARKET_FATE, low),
            1 if cues.MARKET_LIST.search(low) else 0, cues.count(cues.MARKET_ARRIVES, low)), low


def test_a_scan_counts_the_same_with_or_without_character_offsets():
    from monitor.classify import cues

    for text in (*SAMPLES, "the market did not come back, it is back. empire 2.0 is up"):
        scan = cues.scan(text.lower())
        by_offsets = [0] * len(cues.VOCABULARY)
        for _, _, category in scan.matches:
            by_offsets[category] += 1
        assert scan.counts() == by_offsets
        assert scan.succession() == any(c in cues.SUCCESSION for _, _, c in scan.matches)
        for category in range(len(cues.VOCABULARY)):
            assert scan.has(category) == any(c == category for _, _, c in scan.matches)
        for start, end, _ in scan.matches:
            assert 0 <= start < end <= len(text)
