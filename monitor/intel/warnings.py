"""Scam and clone warnings: which market an item warns about.

The rule, per sentence (a title is a sentence of its own; "but" and ";" split clauses):
1. A warning cue: phishing, honeypot, "is a scam / fraud / trap", "scam / fake / phishing
   link, mirror, site, clone", "run by the feds / police / LE", "LE honeypot / op / front",
   "steals your coins", "don't use / deposit / trust", "stay away". "Exit scam" is not one:
   it reports how a market ended, it does not warn about a market to come.
2. Not negated ("not a scam", "isn't phishing", "legit"), not hedged ("honeypot or not") and
   not a question ("is X a scam?").
3. The market warned about is one the item names (its mentions), in this order: the nearest
   one before the cue in the same clause, unless a comma separates them (the subject
   usually comes first: "X is a phishing clone"); else, when the clause points back ("it",
   "that link", "the site") before the cue, the one market of the last clause that named
   one; else the nearest one after the cue ("stay away from X"); else, when the clause
   points back anywhere ("don't use it"), that last market.

Measured on tests/data/warning_examples.jsonl (written for this project) and the shared dev
set; see tests/test_intel.py for the figures the tests hold it to.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from .. import store
from ..text import string_list

_OBJECTS = (r"links?|urls?|mirrors?|sites?|websites?|onions?|address(?:es)?|clones?|cop(?:y|ies)"
            r"|versions?|markets?|marketplaces?|fronts?|domains?|pages?|logins?")
_LAW = r"feds?|police|cops|le|fbi|dea|law enforcement|glowies|europol|bka|the government"
_CUES = re.compile("|".join(f"(?:{p})" for p in (
    r"\bphish\w*",
    r"\bhoney[\s-]?pot(?:s|ted)?\b",
    rf"\b(?:scam|fake|bogus|cloned|spoofed|malicious|copycat|fraudulent)\s+(?:{_OBJECTS})\b",
    r"\b(?:is|are|it'?s|that'?s|'s|looks like|seems like|seems to be|must be|probably|definitely"
    r"|obviously|clearly)\s+(?:just\s+|only\s+|all\s+)?(?:a\s+|an\s+)?(?:total\s+|complete\s+"
    r"|obvious\s+|massive\s+|huge\s+|giant\s+|big\s+|known\s+|confirmed\s+)?"
    r"(?:scam(?:mers?)?|fraud|rip-?off|trap|sting|clone|fake)\b",
    rf"\b(?:run|operated|controlled|ran|owned|backed)\s+by\s+(?:the\s+)?(?:{_LAW})\b",
    # "LE op" is slang for a honeypot; a "police operation" is ordinary news of a takedown.
    r"\b(?:le|feds?|glowies?)\s+(?:honey[\s-]?pot|trap|sting|op|front|site|run)\b",
    rf"\b(?:{_LAW})\s+(?:honey[\s-]?pot|trap|sting|front)\b",
    r"\ble[\s-]run\b|\bfed[\s-]run\b|\bglowie\s+(?:site|op|trap)\b",
    r"\b(?:steal|stole|steals|stealing|drain\w*|swipe\w*|grab\w*|harvest\w*)\s+(?:(?:your|their"
    r"|my|our|people'?s|users'?|everyone'?s|all)\s+)?(?:\w+\s+)?(?:coins|btc|xmr|monero|bitcoin"
    r"|funds|money|deposits?|crypto|logins?|credentials|passwords?|keys)\b",
    r"\b(?:do(?:n'?t|n’t| not)|never)\s+(?:ever\s+)?(?:use|deposit|trust|send|buy from"
    r"|log ?in|sign up|register)\b",
    r"\bstay\s+(?:the\s+hell\s+|far\s+)?away\b",
)))
# Words just before a cue that cancel it ("not a scam", "no phishing", "isn't run by LE").
_NEGATION = re.compile(r"\b(?:not|isn'?t|isn’t|aren'?t|wasn'?t|no|never|nothing|hardly|nor"
                       r"|ain'?t)\b(?:\s+\w+){0,2}\s*$")
_HEDGE = re.compile(r"\s*(?:or not|or legit|or real)\b")  # "honeypot or not, ..."
_LEGIT = re.compile(r"\blegit(?:imate)?\b|\bnot (?:a )?(?:scam|phishing|honeypot|fake)")
_ANAPHOR = re.compile(r"\b(?:it|its|it'?s|this|that|they|those|these|the (?:site|link|links"
                      r"|mirror|mirrors|market|new one|url|onion|clone|address))\b")
_CLAUSE = re.compile(r"(?<=[.!?;])\s+|\n+|\s+(?:but|however|whereas)\s+|\s+[-–—]\s+")


@dataclass(frozen=True)
class MarketWarning:
    market: str
    surface: str
    clause: str


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.split(text or "") if c and c.strip()]


def cue_spans(clause: str) -> list[tuple[int, int]]:
    """Spans of the warning cues in a lower-cased clause that are not negated."""
    if clause.rstrip().endswith("?"):
        return []
    spans = []
    for match in _CUES.finditer(clause):
        before = clause[max(0, match.start() - 30):match.start()]
        if _NEGATION.search(before) or _HEDGE.match(clause, match.end()):
            continue
        spans.append(match.span())
    if spans and _LEGIT.search(clause):
        return []
    return spans


def surface_pattern(surfaces: Iterable[str]) -> re.Pattern[str] | None:
    forms = sorted({s.lower() for s in surfaces if s and s.strip()}, key=lambda f: (-len(f), f))
    return _alternatives(tuple(forms)) if forms else None


@functools.lru_cache(maxsize=1024)
def _alternatives(forms: tuple[str, ...]) -> re.Pattern[str]:
    # Kept: the same few markets come up item after item, and re's own cache is small and
    # keyed on the whole pattern text, built again each time.
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(f) for f in forms) + r")(?![\w])")


def find_warnings(text: str, names: dict[str, Sequence[str]]) -> list[MarketWarning]:
    """The markets `text` warns about. `names` maps each market the text names to the surface
    forms to look for (its name, aliases and the surface the extractor saw); a form two
    markets share counts for the one listed first."""
    by_surface: dict[str, str] = {}
    for market, forms in names.items():
        for form in (market, *forms):
            if form and form.strip():
                by_surface.setdefault(form.lower(), market)
    pattern = surface_pattern(by_surface)
    if pattern is None:
        return []
    found: dict[str, MarketWarning] = {}
    previous: list[tuple[str, str]] = []  # the markets of the last clause that named any
    for clause in clauses(text):
        lowered = clause.lower()
        hits = [(m.start(), m.end(), m.group(0)) for m in pattern.finditer(lowered)]
        for start, end in cue_spans(lowered):
            target = _target(lowered, hits, start, end, len({m for m, _ in previous}) == 1)
            if target == "previous":
                market, surface = previous[0]
            elif target is not None:
                market, surface = by_surface[target[2]], clause[target[0]:target[1]]
            else:
                continue
            found.setdefault(market, MarketWarning(market, surface, clause))
        if hits:
            previous = [(by_surface[h[2]], clause[h[0]:h[1]]) for h in hits]
    return list(found.values())


def _target(lowered: str, hits: list[tuple[int, int, str]], start: int, end: int,
            previous_known: bool) -> tuple[int, int, str] | str | None:
    """Which market a cue at [start, end) is about: a hit, "previous", or None."""
    before = [h for h in hits if h[1] <= start]
    inside = [h for h in hits if h[0] < end and h[1] > start]  # "Fake Market" is a name
    close = [h for h in before if "," not in lowered[h[1]:start]] + inside
    if close:
        return max(close, key=lambda h: h[1])
    pointing = _ANAPHOR.search(lowered[:end])
    if pointing and previous_known:
        return "previous"
    after = [h for h in hits if h[0] >= end]
    if after:
        return min(after, key=lambda h: h[0])
    if _ANAPHOR.search(lowered):
        # "Beware of X, it's a scam" / "Don't use it": the clause's own market, else the
        # last one named.
        if before:
            return max(before, key=lambda h: h[1])
        if previous_known:
            return "previous"
    return None


def mark(db: Database, item_ids: Sequence[str],
         items: list[dict[str, Any]] | None = None) -> int:
    """Store a `warning` mention for each market these items warn about; return how many
    were new. `items`: store.intel_items(db, item_ids), when the caller has them."""
    items = store.intel_items(db, item_ids) if items is None else items
    mentions = store.item_mentions(db, [i["id"] for i in items])
    named = {m["market"] for rows in mentions.values() for m in rows}
    aliases = {name: string_list(row.get("aliases"))
               for name, row in store.markets_by_name(db, named).items()}
    rows = []
    for item in items:
        names: dict[str, list[str]] = {}
        # A surface two markets share ("Archetyp Reloaded" for the clone and, as its base,
        # for Archetyp) goes to the one not named as a predecessor, then the longer name.
        ordered = sorted(mentions.get(item["id"], []),
                         key=lambda m: (m["role"] == "predecessor", -len(m["market"])))
        for m in ordered:
            names.setdefault(m["market"], list(aliases.get(m["market"], [])))
            if m.get("surface"):
                names[m["market"]].append(m["surface"])
        if not names:
            continue
        text = "\n".join(t for t in (item["title"], item["body"]) if t)
        rows += [{"item_id": item["id"], "market": w.market, "surface": w.surface,
                  "role": "warning"} for w in find_warnings(text, names)]
    return store.add_mentions(db, rows) if rows else 0
