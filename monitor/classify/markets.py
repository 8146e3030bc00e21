"""The gazetteer (data/markets.toml) and market-name extraction.

`Extractor.find(text)` returns every market a text names, by canonical name, with the surface
form it used and its role: `successor` (the new or returning market), `predecessor` (the one it
replaces) or `mention` (LABELING.md). Warnings are marked later, by monitor.intel.warnings.

Matching works on tokens (runs of letters and digits, Latin or Cyrillic), so case, hyphens,
spaces and joined spellings ("Alpha Bay", "alpha-bay", "AlphaBay") all meet the same key.
Names that are also ordinary words ("Empire", "Dream", "Hansa") count only in darknet context;
short acronyms ("SR", "WSM") only in upper case. A known name followed by a version suffix
("Empire 2.0", "Hydra Reborn") is reported as that new version, with the base market as its
predecessor. Names the gazetteer lacks are discovered when the text introduces them as a
market ("a new market called X", "X market just launched", "X 2.0 is up").
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MonitorError
from ..resources import data_dir
from . import cues

# Warnings (a market called a scam or honeypot) are marked by monitor.intel.warnings.
ROLES = ("successor", "predecessor", "mention")
STATUSES = ("active", "seized", "exit-scam", "closed", "unknown")
MAX_NGRAM = 5

_TOKEN = re.compile(r"[^\W_]+")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+|\b[\w.-]+\.onion\b[^\s<>\"']*", re.I)
_URL_PIECE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_]+")
# A run of [.!?;] before a space, a run of newlines, or a quote before a space; written to
# start with one character class so that the regular expression engine skips ahead to those
# characters (an alternation of classes made it try every position of the text).
_SENTENCE_END = re.compile(r"[.!?;\n“”\"](?:(?<=[.!?;])[.!?;]*(?=\s)|(?<=\n)\n*|(?<=[“”\"])\s)")
_CYRILLIC = re.compile(r"[а-яё]")
_CYRILLIC_ENDINGS = ("ами", "ями", "ого", "ому", "ой", "ою", "ей", "ом", "ем", "ам", "ям",
                     "ах", "ях", "ов", "а", "я", "ы", "и", "е", "у", "ю", "о")
# Cyrillic letters that look like Latin ones: a mixed-script token ("Hydrа" with a Cyrillic
# "а") is folded to Latin before lookup, so look-alike spellings still match.
_CONFUSABLE = str.maketrans("аеорсухкмнтвАЕОРСУХКМНТВ", "aeopcyxkmhtbAEOPCYXKMHTB")

_VERSION_WORDS = {
    "reloaded": "Reloaded", "reborn": "Reborn", "returns": "Returns", "resurrected":
    "Resurrected", "relaunched": "Relaunched", "revived": "Revived", "redux": "Redux",
    "remastered": "Remastered", "ii": "2.0", "iii": "3.0", "iv": "4.0", "v2": "2.0",
    "v3": "3.0", "v4": "4.0", "2": "2.0", "3": "3.0", "4": "4.0", "5": "5.0",
}
# A bare digit after a name is a version only before one of these (not "Empire 2 weeks ago").
_VERSION_FOLLOWERS = {"is", "was", "has", "just", "launched", "live", "up", "back", "market",
                      "coming", "will", "are", "link", "links", "mirror", "onion", "and", "or",
                      "vs", "now", "finally", "officially", "relaunch", "site", "opened"}
_MARKET_WORDS = {"market", "marketplace", "markets", "dnm", "shop", "store"}
_STOP_NAMES = {
    "the", "a", "an", "this", "that", "these", "new", "another", "dark", "darknet", "tor",
    "onion", "black", "drug", "drugs", "our", "my", "your", "their", "its", "it", "which",
    "what", "any", "some", "every", "no", "one", "first", "second", "reddit", "dread", "web",
    "deep", "market", "marketplace", "shop", "site", "today", "yesterday", "now", "finally",
    "just", "old", "big", "largest", "biggest", "russian", "english", "german", "european",
    "western", "monero", "bitcoin", "crypto", "telegram", "he", "she", "they", "we", "i", "you",
    "there", "here", "if", "when", "after", "before", "since", "so", "but", "and", "or", "is",
    "was", "who", "why", "how", "where", "police", "fbi", "europol", "admin", "admins", "vendor",
    "vendors", "users", "everyone", "people", "anyone", "someone", "nobody", "next",
    "last", "best", "top", "main", "local", "online", "global", "legit", "fake", "real",
}
# Spellings that are coined words although their market is flagged ambiguous (for another
# alias, such as Blacksprut's "BS"): they need no context.
_COINED = {"blacksprut", "блэкспрут", "блекспрут", "silkkitie", "hydraru", "omgomg",
           "berlusconimarket", "cryptonia", "tochka", "bitbazaar",
           "dreammarket"}
_DISCOVER_NAME = (r"(?P<name>(?:[A-Z][\w'’-]*|[a-z]+[A-Z0-9][\w-]*|[А-ЯЁ][\w-]*)"
                  r"(?:\s(?:[A-Z][\w'’-]*|\d+(?:\.\d+)?))?)")
_VERSION_TAIL = r"(?:\d\.0|v\d|II|III|Reloaded|Reborn|Returns|Relaunched|Resurrected)"
_LAUNCHED = (r"(?:[Mm]arket(?:place)?|DNM)\s*,?\s+(?:has\s+|have\s+|just\s+|finally\s+"
             r"|officially\s+|now\s+)*(?:launched|opened|went live|is\s+(?:now\s+)?"
             r"(?:live|up|online|open|here)|goes live)")
_DISCOVER = [
    re.compile(r"\b(?:[Nn]ew|[Aa]nother|[Ff]resh)\s+(?:[\w-]+\s+){0,2}?(?:market(?:place)?|dnm|DNM"
               r"|shop|site|platform)s?\s*,?\s*(?:called|named|dubbed|known as|going by|by the "
               r"name(?: of)?)\s+[\"'“‘«]?" + _DISCOVER_NAME),
    re.compile(_DISCOVER_NAME + r"\s+" + _LAUNCHED),
    re.compile(r"(?P<name>(?:[A-Z][\w'’-]*|[А-ЯЁ][\w-]*)(?:\s[A-Z][\w'’-]*)?\s" + _VERSION_TAIL
               + r")\s+(?:is|are|has|just|went)\s+(?:now\s+|finally\s+|officially\s+|been\s+)?"
               r"(?:up|live|back|online|open|launched|here|out|released)"),
    re.compile(r"\b(?:launch(?:ed)?|opening|debut)\s+of\s+(?:the\s+|a\s+)?(?:new\s+)?"
               + _DISCOVER_NAME + r"\s+(?:[Mm]arket(?:place)?|DNM)"),
    re.compile(r"(?:[Нн]ов(?:ая|ый|ой|ую|ые)|[Зз]апустил\w*)\s+(?:\w+\s+)?(?:площадк\w*|маркетплейс"
               r"\w*|рын\w*|магазин\w*)\s+[«\"]?(?P<name>[A-ZА-ЯЁ][\w-]+)"),
]

# Names the gazetteer lacks but the text plainly uses for a market: "Meridian Market" (output
# as an unknown market), and a capitalised word right after a move ("migrating to Cinder"),
# which only shapes the model's view of the text and is not reported.
_PSEUDO_MARKET = re.compile(r"\b(?P<name>[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+)?)\s(?:Market(?:place)?"
                            r"|Bazaar)\b")
_MOVE_TARGET = re.compile(
    r"\b(?:mov\w*|migrat\w*|go|goes|going|went|head\w*|switch\w*|relocat\w*|pivot\w*"
    r"|retreat\w*|jump\w*|fle\w*|landed|now|over|stick\w*|stay\w*|try|trying|use|using)\s+"
    r"(?:over\s+|back\s+)?(?:to|onto|on|at|with)\s+(?P<name>[A-Z][\w'’-]+)")
# What every _MOVE_TARGET match ends with, searched first: it is much cheaper.
_MOVE_TAIL = re.compile(r"\s(?:to|onto|on|at|with)\s+[A-Z]")
# The words of a _MOVE_TARGET match before the name: a verb, maybe "over" or "back", and one
# of _MOVE_PREPS, each a whole word of the lower-cased text.
_MOVE_VERB = re.compile(r"(?:mov|migrat|head|switch|relocat|pivot|retreat|jump|fle|stick|stay)"
                        r"\w*|go|goes|going|went|landed|now|over|try|trying|use|using")
_MOVE_PREPS = frozenset(("to", "onto", "on", "at", "with"))
_MOVE_VERBS: dict[str, bool] = {}  # word -> whether _MOVE_VERB matches all of it
_MOVE_VERBS_MAX = 100_000


def _may_move(text: str, words: list[str] | None) -> bool:
    """False when _MOVE_TARGET surely finds nothing in `text`, judged from its lower-cased
    words (which is far cheaper than any regular expression over the text): a match is
    a verb word, then maybe "over"/"back", then a preposition word. With no words, an "_"
    in the text (a word character that splits words, so "move_d to" would be missed) or an
    "İ" (lower-cased, it splits a word in two) it cannot tell and says True."""
    if words is None or "_" in text or (not text.isascii() and "\u0130" in text):
        return True
    verbs = _MOVE_VERBS
    for j in itertools.compress(range(1, len(words)), map(_MOVE_PREPS.__contains__,
                                                             words[1:])):
        before = words[j - 1]
        verb = verbs.get(before)  # (the cache looked up here: this runs for most texts)
        if verb is None:
            verb = _is_move_verb(before)
        # ("over" is a verb word itself)
        if verb or (before == "back" and j >= 2 and _is_move_verb(words[j - 2])):
            return True
    return False


def _is_move_verb(word: str) -> bool:
    known = _MOVE_VERBS.get(word)
    if known is None:
        known = _MOVE_VERB.fullmatch(word) is not None
        if len(_MOVE_VERBS) < _MOVE_VERBS_MAX:
            _MOVE_VERBS[word] = known
    return known


_MARKET_AFTER = re.compile(r"[ \t]+(?:[Mm]arket(?:place)?|DNM)\b")
_NOT_MARKET_WORDS = _STOP_NAMES | {
    "stock", "farmers", "flea", "christmas", "holiday", "super", "free", "open", "single",
    "common", "emerging", "global", "asian", "us", "housing", "labor", "labour", "job", "bond",
    "bull", "bear", "grey", "gray", "night", "street", "fish", "art", "food", "digital",
    "wall", "europe", "telegram", "signal", "session", "tails", "whonix", "i2p", "twitter",
    "discord", "jail", "prison", "court", "canada", "america", "china", "russia", "germany",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "xmr", "btc", "pgp", "le", "google", "amazon", "ebay", "facebook",
}

# Cheap tests before each discovery pattern: a word each match must contain.
# Words each discovery pattern needs (one from each set), tested on the text's words before
# the pattern runs: most texts need none of the patterns.
_DISCOVER_NEEDS = [[frozenset(group) for group in groups] for groups in (
    [("called", "named", "dubbed", "known", "going", "name"), ("new", "another", "fresh")],
    [("market", "marketplace", "dnm"), ("launched", "opened", "live", "up", "online", "open",
                                        "here")],
    [("0", "ii", "iii", "reloaded", "reborn", "returns", "relaunched", "resurrected", "v2", "v3",
      "v4"), ("is", "are", "has", "just", "went")],
    [("launch", "launched", "opening", "debut"), ("of",)],
    [],  # Russian: run on any text whose words are not plain ASCII
)]
# A part of a discovery pattern that every match holds, searched first: where the pattern
# starts with a name or a word boundary, the regular expression engine tries it at every
# position of a long text, but these start with literal words it can skip ahead to.
_DISCOVER_TAILS = [
    re.compile(r"(?:market(?:place)?|dnm|DNM|shop|site|platform)s?\s*,?\s*(?:called|named|dubbed"
               r"|known as|going by|by the name)"),
    re.compile(r"\s" + _LAUNCHED), None, None, None]

# Role patterns run on the lower-cased sentence around a mention: the text just before it
# (anchored at its end) and just after it (anchored at its start).
_SUCC_BEFORE = re.compile(
    r"\b(?:(?:mov\w*|migrat\w*|switch\w*|flock\w*|head\w*|went|go|going|gone|jump\w*|fled|flee\w*"
    r"|shift\w*|over|pushed[^.]{0,40}|refugees?[^.]{0,20}|exodus|influx[^.]{0,30}|welcome)\s+"
    r"(?:over\s+)?(?:to|into|towards|onto)"
    r"|(?:called|named|dubbed|known as)"
    r"|then came|now there'?s|there'?s now|long live"
    r"|(?:replacements?|successors?|heirs?|alternatives?|answer)\s*(?:is|are|was|like|such as"
    r"|:|,|-|—)?"
    r"|(?:try|check out|sign up (?:on|at|for)|recommend|(?:set|sets|setting) up shop (?:on|at))"
    r"|(?:everyone|everybody|users|vendors|buyers|people|we|i)\s+(?:is|are|am|went|moved|now|'re"
    r"|'m)\s+(?:now\s+)?(?:on|at|to|using)"
    r"|(?:new|next)\s+(?:market|site|marketplace|dnm|home)\s*(?:is|:|,|-|—)?"
    r"|\bnew|\bnext|the rise of|rise of|launch of|relaunch of|return of|birth of)"
    r"\s+(?:the\s+)?(?:new\s+)?$")
_SUCC_AFTER = re.compile(
    r"^\W{0,3}(?:'s?\s+)?(?:market\s+|marketplace\s+)?(?:(?:is|are|has|have|was|were|just|finally"
    r"|now|officially|already|been|had|will|quickly|soon|then|which|that|seems to|became)\s+)*"
    r"(?:back|up|live|online|open|here|returning|returned|returns|relaunch\w*|reopen\w*|reborn"
    r"|resurrected|rises|rising|risen|rose|launched|launches|opened|took over|takes over"
    r"|taking over|absorbed|absorbs|stepped in|steps in|swooped in|emerged|grew|exploded"
    r"|picked up|became the|become the|is where|filled|fills|fill|inherited|replaced|replaces"
    r"|replace|the new|as the new|popped up|attracted|welcomed|gained|took in|taking in|profited"
    r"|benefit\w*|seems to be the|the go-to|the place|where everyone)")
_PRED_BEFORE = re.compile(
    r"\b(?:(?:fall|demise|death|closure|seizure|takedown|bust|collapse|shutdown|shut ?down|exit"
    r"|exit scam|loss|end|raid|disappearance|ashes|remnants|remains|vacuum|void|gap|hole|shoes"
    r"|place|wake|downfall|absence|implosion)\s+(?:left\s+)?(?:of|by)"
    r"|(?:migrat\w*|mov\w*|fled|flee\w*|refugees?|users|vendors|buyers|influx|exodus|came|coming"
    r"|switch\w*|escap\w*|arrivals?|customers)\s+(?:\w+\s+){0,3}from"
    r"|(?:replac\w*|succeed\w*|successors? (?:to|of)|follow-?up (?:act )?to|heirs? (?:to|of)"
    r"|replacements? (?:for|to|of)|alternatives? (?:to|for)|instead of|in place of|clones? of"
    r"|copy of|copycats? of|versions? of|mirrors? of|version of|reincarnation of|revival of"
    r"|styled itself as|successor)"
    r"|(?:old|original|first|former|defunct|dead|late|previous|fallen|seized|busted|ex-)"
    r"|(?:after|since|when|once|following|now that|with)\s+(?:the\s+)?(?:fall|demise|death|closure"
    r"|seizure|takedown|bust|collapse|shutdown|exit|loss|end|raid)\s+of)"
    r"\s+(?:the\s+)?(?:old\s+|original\s+|infamous\s+|notorious\s+|defunct\s+|former\s+)?$")
_PRED_AFTER = re.compile(
    r"^\W{0,3}(?:'s?\s+)?(?:market\s+|marketplace\s+)?(?:(?:was|is|got|has|have|had|been|went"
    r"|having|being|gets|just|finally|officially|abruptly|suddenly|also|were|are)\s+)*"
    r"(?:seized|busted|shut|taken|closed|down|dead|gone|exit\w*|raided|offline|died|fell"
    r"|vanished|disappeared|collapsed|retired|rugged|scammed|dark|no more|pulled|killed)"
    r"|^\W{0,3}'s?\s+(?:\w+\s+)?(?:takedown|seizure|closure|demise|death|exit|shutdown|fall"
    r"|collapse|downfall|refugees|bust|end|disappearance|users|vendors|buyers|customers"
    r"|user base|absence)")
# The words those two "before" patterns can end with (they are anchored at the end of the
# text before a name): a cheap test that spares most names the regular expressions.
_SUCC_LAST = frozenset((
    "to", "into", "towards", "onto", "called", "named", "dubbed", "as", "came", "there's",
    "there’s", "theres", "now", "live", "replacement", "replacements", "successor",
    "successors", "heir", "heirs", "alternative", "alternatives", "answer", "is", "are", "was",
    "like", "try", "out", "on", "at", "for", "recommend", "using", "market", "site",
    "marketplace", "dnm", "home", "new", "next", "of", "the"))
_PRED_LAST = frozenset((
    "of", "by", "from", "to", "for", "as", "successor", "successors", "old", "original", "first",
    "former", "defunct", "dead", "late", "previous", "fallen", "seized", "busted", "ex", "the",
    "infamous", "notorious"))


def _last_word_allows(before: str, allowed: frozenset[str], prefixes: tuple[str, ...] = ()
                      ) -> bool:
    words = before.split()
    if not words:
        return False
    last = words[-1].lstrip("'\"“‘«(")
    return bool(last) and (last[-1] in ":,-—–" or last in allowed or last.startswith(prefixes))


_LIST_GAP = re.compile(r"^\s*(?:,|and|or|&|/|,\s*and|,\s*or|\band\b)\s*$")


@dataclass(frozen=True)
class Market:
    name: str
    aliases: tuple[str, ...] = ()
    status: str = "unknown"
    launched: str | None = None
    ended: str | None = None
    predecessor: str | None = None
    network: str | None = None
    ambiguous: bool = False
    notes: str = ""
    origin: str = "gazetteer"


@dataclass(frozen=True)
class Event:
    id: str
    name: str
    date: str
    kind: str
    markets: tuple[str, ...]
    notes: str = ""


@dataclass(frozen=True)
class Gazetteer:
    markets: tuple[Market, ...]
    events: tuple[Event, ...]
    digest: str = ""

    @functools.cached_property
    def by_name(self) -> dict[str, Market]:
        return {m.name: m for m in self.markets}

    def resolve(self, surface: str) -> str | None:
        """The canonical name for a name or alias as written, or None."""
        return _resolver(self).get(joined_key(surface))


@dataclass(frozen=True)
class Mention:
    name: str
    role: str
    surface: str
    known: bool
    start: int = -1
    end: int = -1

    def as_json(self) -> dict:
        return {"name": self.name, "role": self.role, "surface": self.surface,
                "known": self.known}


@dataclass
class Analysed:
    mentions: list[Mention]
    masked: str
    scan: cues.Scan
    spans: list[tuple[int, int]]
    # masked.lower() when the mask changed nothing (the text was lowered for the scan
    # already), else None
    masked_lower: str | None = None


@dataclass
class _Hit:
    market: Market | None
    name: str
    surface: str
    start: int
    end: int
    tier: int  # 0 distinctive, 1 needs darknet context, 2 also capitals and a market word
    # near, 3 (two-letter acronyms) a market word or another market right beside it
    key: str
    version: str | None = None
    in_url: bool = False
    discovered: bool = False
    role: str = "mention"
    accepted: bool = False
    hidden: bool = False  # shapes features and masking only; not reported


def joined_key(text: str) -> str:
    """Lower-case letters and digits only: "Alpha-Bay", "alpha bay" and "AlphaBay" agree."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return "".join(_fold(t) for t in _TOKEN.findall(text))


def _fold(token: str) -> str:
    if token.isascii():
        return token.lower()
    low = token.lower()
    if _CYRILLIC.search(low) and re.search(r"[a-z]", low):
        low = low.translate(_CONFUSABLE)
    return low


def _stem(word: str) -> str:
    """Drop one Russian case ending ("Гидры" -> "гидр"), keeping at least three letters."""
    for ending in _CYRILLIC_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def _is_acronym(alias: str) -> bool:
    letters = re.sub(r"[\W_]", "", alias)
    return len(letters) <= 5 and letters.upper() == letters and not letters.isdigit()


# --- loading the gazetteer -------------------------------------------------------------------

def gazetteer_path() -> Path:
    return data_dir() / "markets.toml"


def load_gazetteer(path: Path | str | None = None) -> Gazetteer:
    """Read and check markets.toml (cached per file and modification time)."""
    path = Path(path) if path else gazetteer_path()
    try:
        stat = path.stat()
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read the market gazetteer: {exc.strerror}") from None
    return _load_gazetteer(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load_gazetteer(path: str, _mtime: int, _size: int) -> Gazetteer:
    import hashlib

    raw = Path(path).read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MonitorError(f"{path}: invalid gazetteer: {exc}") from None
    markets = []
    for i, row in enumerate(data.get("markets", [])):
        where = f"{path}: markets[{i}]"
        if not isinstance(row.get("name"), str) or not row["name"].strip():
            raise MonitorError(f"{where}.name: missing")
        status = row.get("status", "unknown")
        if status not in STATUSES:
            raise MonitorError(f"{where}.status: {status!r} is not one of {', '.join(STATUSES)}")
        markets.append(Market(
            name=row["name"], aliases=tuple(row.get("aliases", ())), status=status,
            launched=_date_text(row.get("launched")), ended=_date_text(row.get("ended")),
            predecessor=row.get("predecessor"), network=row.get("network"),
            ambiguous=bool(row.get("ambiguous", False)), notes=row.get("notes", "")))
    names = {m.name for m in markets}
    for m in markets:
        if m.predecessor and m.predecessor not in names:
            raise MonitorError(f"{path}: {m.name}: predecessor {m.predecessor!r} is not a market "
                               "in the file")
    events = []
    for i, row in enumerate(data.get("events", [])):
        missing = [k for k in ("id", "name", "date", "kind") if not row.get(k)]
        if missing:
            raise MonitorError(f"{path}: events[{i}].{missing[0]}: missing")
        unknown = [n for n in row.get("markets", ()) if n not in names]
        if unknown:
            raise MonitorError(f"{path}: events[{i}] ({row['id']}): unknown market "
                               f"{unknown[0]!r}")
        events.append(Event(id=row["id"], name=row["name"], date=_date_text(row["date"]) or "",
                            kind=row["kind"], markets=tuple(row.get("markets", ())),
                            notes=row.get("notes", "")))
    return Gazetteer(tuple(markets), tuple(events), hashlib.sha256(raw).hexdigest())


def _date_text(value: object) -> str | None:
    if value is None:
        return None
    return str(value)


def iso_date(value: str | None) -> str | None:
    """'2017-07', '2017' or '2017-07-05' -> '2017-07-05T00:00:00+00:00' (first day if vague)."""
    if not value:
        return None
    parts = str(value).split("-")
    year = parts[0]
    month = parts[1] if len(parts) > 1 else "01"
    day = parts[2][:2] if len(parts) > 2 else "01"
    return f"{year}-{month}-{day}T00:00:00+00:00"


@functools.lru_cache(maxsize=4)
def _resolver(gazetteer: Gazetteer) -> dict[str, str]:
    table: dict[str, str] = {}
    for m in gazetteer.markets:
        for surface in (m.name, *m.aliases):
            table.setdefault(joined_key(surface), m.name)
    for m in gazetteer.markets:
        # "Nemesis" for "Nemesis Market": the canonical name without its market word.
        bare = re.sub(r"\s*\b(?:market|marketplace)\b\s*$", "", m.name, flags=re.I)
        table.setdefault(joined_key(bare), m.name)
    return table


# --- extraction ----------------------------------------------------------------------------

@dataclass
class _Entry:
    market: Market
    acronym: bool
    surface: str
    joined: frozenset[str]  # keys of the market's multi-word spellings
    spellings: frozenset[str]  # the name and aliases exactly as listed

    def tier(self, written: str) -> int:
        """How much context the name needs, judged on the spelling in the text."""
        if self.acronym:
            # "SR" and "BS" are everyday letters: they need a market right beside them.
            return 3 if len(re.sub(r"[\W_]", "", written)) <= 2 else 1
        if not self.market.ambiguous:
            return 0
        written = written.strip()
        # "TheRealDeal market" is as distinctive as "TheRealDeal".
        core = re.sub(r"[\s-]+(?:market|marketplace)$", "", written, flags=re.I)
        if self._distinctive(core):
            return 0
        if " " in written or re.search(r"\d", written):
            return 1
        return 2

    def _distinctive(self, written: str) -> bool:
        key = joined_key(written)
        if key in _COINED:
            return True
        # A joined spelling as listed, or in camel case ("EmpireMarket"), is nobody's
        # ordinary word; "cryptomarket" in lower case is a research term, though.
        return key in self.joined and len(key) >= 8 and bool(
            re.fullmatch(r"[^\W_]+", written)) and (
            written in self.spellings or bool(re.search(r"[a-z][A-Z]", written)))


@dataclass
class Extractor:
    """Finds markets in text. Build once (it indexes every alias); `find` is thread-safe."""

    gazetteer: Gazetteer
    discovered: tuple[str, ...] = ()
    _index: dict[str, list[_Entry]] = field(default_factory=dict, init=False, repr=False)
    _stems: dict[str, list[_Entry]] = field(default_factory=dict, init=False, repr=False)
    _onion_keys: list[tuple[str, _Entry]] = field(default_factory=list, init=False, repr=False)
    _prefixes: set[str] = field(default_factory=set, init=False, repr=False)
    _extra_keys: tuple[tuple[str, ...], tuple[str, ...]] | None = field(
        default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        markets = list(self.gazetteer.markets)
        known = {joined_key(m.name) for m in markets}
        for name in self.discovered:
            if joined_key(name) not in known:
                markets.append(Market(name=name, ambiguous=True, origin="discovered"))
        if len(markets) > len(self.gazetteer.markets):
            self._extra_keys = _discovered_keys(markets)
        for m in markets:
            joined = frozenset(joined_key(s) for s in (m.name, *m.aliases) if " " in s.strip())
            spellings = frozenset((m.name, *m.aliases))
            for surface in dict.fromkeys((m.name, *m.aliases)):
                key = joined_key(surface)
                if not key:
                    continue
                entry = _Entry(m, _is_acronym(surface), surface, joined, spellings)
                self._index.setdefault(key, []).append(entry)
                if _CYRILLIC.search(key) and " " not in surface.strip():
                    self._stems.setdefault(_stem(key), []).append(entry)
                if len(key) >= 6 and not entry.acronym and entry.tier(key) == 0:
                    self._onion_keys.append((key, entry))
        self._onion_keys.sort(key=lambda pair: -len(pair[0]))
        self._prefixes = {key[:n] for key in self._index for n in range(1, len(key) + 1)}

    # The public entry points.

    def find(self, text: str) -> list[Mention]:
        """Every market named in `text`, one mention per (market, role)."""
        return _mentions(self._hits(text)[0])

    def analyse(self, text: str) -> Analysed:
        """The mentions; the text with each market name replaced by a placeholder, so a model
        learns the words around names rather than the names themselves; the text's cues; and
        the spans of the names (cue words inside names, as in "Black Market Reloaded", do not
        count)."""
        hits, normal, scan, lowered = self._hits(text)
        spans = [(h.start, h.end) for h in hits if not h.in_url]
        masked = _mask(normal, hits)
        return Analysed(_mentions(hits), masked, scan, spans,
                        lowered if masked == normal else None)

    def adds_nothing(self, text: str, words: list[str] | None = None) -> bool:
        """Whether this extractor's discovered names cannot change what `text` yields, so
        that the gazetteer-only extractor's result (the model's) serves as this one's.
        `words`: the text's words as its cue scan has them (Analysed.scan.words), if known.

        Every lookup that could reach a discovered name uses a key made of the text's words
        run together, or a versioned name whose base is in them; so if no such key occurs in
        the text's joined words, no lookup can. Texts with non-ASCII words are not judged."""
        if self._extra_keys is None:
            return True
        if words is None:
            if not text.isascii():
                text = unicodedata.normalize("NFKC", text)
            words = _TOKEN.findall(text.lower())
        joined = "".join(words)
        if not joined.isascii():
            return False
        keys, bases = self._extra_keys
        if any(map(joined.__contains__, keys)):
            return False
        return _VERSION_TOKENS.isdisjoint(words) or not any(map(joined.__contains__, bases))

    def names(self, text: str) -> list[str]:
        return list(dict.fromkeys(m.name for m in self.find(text)))

    # Matching.

    def _hits(self, text: str) -> tuple[list[_Hit], str, cues.Scan, str]:
        """The accepted hits, the text as matched (normalised), its scan, and the text
        lower-cased."""
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        lowered = text.lower()
        scan = cues.scan(lowered)
        candidates: list[_Hit] = []
        body_spans: list[tuple[int, int]] = []
        last = 0
        urls = _URL.finditer(text) if ("http" in lowered or "www." in lowered
                                       or ".onion" in lowered) else ()
        for url in urls:
            body_spans.append((last, url.start()))
            candidates.extend(self._url_hits(url.group(0), url.start()))
            last = url.end()
        body_spans.append((last, len(text)))
        if len(lowered) != len(text):  # lower() changed some lengths: offsets differ
            scan_tokens = [(m.start(), m.end(), m.group(0).lower())
                           for m in _TOKEN.finditer(text)]
        else:
            scan_tokens = scan.tokens
        if len(body_spans) == 1 and scan_tokens is scan.tokens and (
                lowered.isascii() or "".join(scan.words).isascii()):
            # The usual case: the cue scan's words are already folded.
            candidates.extend(self._token_hits(text, scan_tokens, scan.words))
        else:
            for start, end in body_spans:
                tokens = scan_tokens if len(body_spans) == 1 else [
                    t for t in scan_tokens if t[0] >= start and t[1] <= end]
                candidates.extend(self._token_hits(text, tokens))
        words = scan.present if scan_tokens is scan.tokens else {t[2] for t in scan_tokens}
        for hit in self._discover(text, lowered, words):
            # Being introduced as a market is context enough: the discovery replaces a weaker
            # match of the same words ("Empire 2.0 is up").
            overlapping = [h for h in candidates if h.start < hit.end and hit.start < h.end]
            if all(h.tier > 0 for h in overlapping):
                candidates = [h for h in candidates if h not in overlapping]
                candidates.append(hit)
        for hit in self._unlisted(text, scan.words if scan_tokens is scan.tokens else None):
            if not any(h.start < hit.end and hit.start < h.end for h in candidates):
                candidates.append(hit)
        if not candidates:
            return [], text, scan, lowered
        self._accept(text, lowered, scan, candidates)
        hits = sorted((h for h in candidates if h.accepted), key=lambda h: h.start)
        _assign_roles(lowered, scan, hits, self.gazetteer)
        return hits, text, scan, lowered

    def _lookup(self, key: str) -> list[_Entry]:
        found = self._index.get(key)
        if found is None and _CYRILLIC.search(key):
            found = self._stems.get(_stem(key))
        return found or []

    def _token_hits(self, text: str, tokens: Sequence[tuple[int, int, str]],
                    ascii_words: list[str] | None = None) -> list[_Hit]:
        """Known names in a run of lower-cased tokens (offsets into `text`); `ascii_words`:
        the tokens' words when all of them are ASCII (then folding changes nothing)."""
        hits = []
        prefixes = self._prefixes
        count = len(tokens)
        if ascii_words is not None:
            folded = ascii_words
            # Only a word that starts some key can start a name (no stems in ASCII).
            starts: Iterable[int] = itertools.compress(range(count),
                                                       map(prefixes.__contains__, folded))
        else:
            folded = [t if t.isascii() else _fold(t) for _, _, t in tokens]
            starts = range(count)
        index = self._index
        following = 0  # the first token not taken by the previous name
        for i in starts:
            if i < following:
                continue
            key = folded[i]
            # Most starts ("the", "in") are no key and no key starts with them and the next
            # word: skipped at once (ASCII words have no stem to try either).
            if ascii_words is not None and key not in index and (
                    i + 1 >= count or key + folded[i + 1] not in prefixes):
                continue
            # Walk forward while the joined tokens are still the start of some known key.
            match: tuple[int, list[_Entry]] | None = None
            k = i
            while key in prefixes:
                entries = self._index.get(key)
                if entries:
                    match = (k - i + 1, entries)
                k += 1
                if k >= count or k - i >= MAX_NGRAM:
                    break
                longer = key + folded[k]
                # The lookup first: it rules out nearly every pair of words more cheaply.
                if longer not in prefixes or not _tight(text, tokens[k - 1][1], tokens[k][0]):
                    break
                key = longer
            if match is None and not folded[i].isascii() and _CYRILLIC.search(folded[i]):
                stemmed = self._stems.get(_stem(folded[i]))
                if stemmed:
                    match = (1, stemmed)
            if match is None:
                continue
            n, entries = match
            start, end = tokens[i][0], tokens[i + n - 1][1]
            entry = _best_entry(entries, text[start:end])
            if entry is None:
                following = i + n
                continue
            version, used = _version_after(text, tokens, i + n)
            if used:
                end = tokens[i + n + used - 1][1]
            hits.append(self._make_hit(entry, text[start:end], start, end, version))
            following = i + n + used
        return hits

    def _make_hit(self, entry: _Entry, surface: str, start: int, end: int,
                  version: str | None, in_url: bool = False) -> _Hit:
        m = entry.market
        name = m.name
        tier = entry.tier(surface)
        if version and m.predecessor and _is_version_of(m, version):
            version = None  # "the new AlphaBay v2" is AlphaBay (2021), not a version of it
        if version:
            tier = min(tier, 1)
            name = f"{m.name} {version}"
            existing = self._lookup(joined_key(name))
            if existing:  # the versioned name is itself a known market
                return _Hit(existing[0].market, existing[0].market.name, surface, start, end,
                            tier, joined_key(surface), in_url=in_url)
        return _Hit(m, name, surface, start, end, tier, joined_key(surface),
                    version=version, in_url=in_url)

    def _url_hits(self, url: str, offset: int) -> list[_Hit]:
        hits: list[_Hit] = []
        for piece in re.finditer(r"[^/?#&=.:_+%~-]+", url):
            word = piece.group(0)
            low = word.lower()
            if re.search(r"[a-z]", low) and len(low) >= 16 and url.lower().find(".onion") > 0:
                # An onion address often starts with the market's name (vanity addresses).
                for key, entry in self._onion_keys:
                    if low.startswith(key):
                        start = offset + piece.start()
                        hits.append(self._make_hit(entry, word, start, start + len(word), None,
                                                   in_url=True))
                        break
                continue
            parts = [(offset + piece.start() + p.start(), offset + piece.start() + p.end(),
                      p.group(0)) for p in _URL_PIECE.finditer(word)]
            hits.extend(self._token_hits_url(parts, offset, url))
        if not hits:
            # Names spread over path segments: "/empire-market-exit/" or "/r/dream_market".
            parts = [(offset + p.start(), offset + p.end(), p.group(0))
                     for p in _URL_PIECE.finditer(url)]
            hits.extend(self._token_hits_url(parts, offset, url))
        for hit in hits:
            hit.in_url = True
        return hits

    def _token_hits_url(self, parts: list[tuple[int, int, str]], offset: int,
                        url: str) -> list[_Hit]:
        hits = []
        i = 0
        folded = [_fold(t) for _, _, t in parts]
        while i < len(parts):
            for n in range(min(MAX_NGRAM, len(parts) - i), 0, -1):
                entries = self._lookup("".join(folded[i:i + n]))
                entry = _best_entry(entries, "".join(t for _, _, t in parts[i:i + n]),
                                    case_blind=True) if entries else None
                written = "".join(t for _, _, t in parts[i:i + n])
                if entry is not None and not (n == 1 and entry.tier(written) == 2):
                    start, end = parts[i][0], parts[i + n - 1][1]
                    hits.append(self._make_hit(entry, url[start - offset:end - offset], start,
                                               end, None, in_url=True))
                    i += n
                    break
            else:
                i += 1
        return hits

    def _discover(self, text: str, lowered: str, words: set[str]) -> list[_Hit]:
        found = []
        # (an ASCII text has ASCII words: no join needed, isascii is a flag test)
        ascii_words = lowered.isascii() or "".join(words).isascii()
        for pattern, needs, tail in zip(_DISCOVER, _DISCOVER_NEEDS, _DISCOVER_TAILS, strict=True):
            # (any(map(...)) rather than a generator: this runs for every text)
            if any(map(words.isdisjoint, needs)) if needs else ascii_words:
                continue
            if tail is not None and not tail.search(text):
                continue
            for match in pattern.finditer(text):
                raw = match.group("name").strip(" '\"’-")
                name = _discovered_name(raw)
                if not name:
                    continue
                start = match.start("name")
                key = joined_key(name)
                entries = self._lookup(key) or self._lookup(joined_key(
                    re.sub(r"\s*\b(?:market|marketplace)\b\s*$", "", name, flags=re.I)))
                if entries:
                    m = entries[0].market
                    found.append(_Hit(m, m.name, raw, start, start + len(raw), 0, key))
                    continue
                base, version = _split_version(name)
                hit = _Hit(None, name, raw, start, start + len(raw), 0, key, discovered=True)
                if version:
                    known_base = self._lookup(joined_key(base))
                    if known_base:
                        m = known_base[0].market
                        hit = _Hit(m, f"{m.name} {version}", raw, start, start + len(raw), 0,
                                   key, version=version)
                found.append(hit)
        return found

    def _unlisted(self, text: str, words: list[str] | None = None) -> list[_Hit]:
        """Market-like names outside the gazetteer; accepted only in darknet context.
        `words`: the lower-cased words of `text` (its cue scan's), if known."""
        found = []
        for pattern, hidden in ((_PSEUDO_MARKET, False), (_MOVE_TARGET, True)):
            if hidden and ((" to " not in text and " on " not in text and " at " not in text
                            and " with " not in text) or not _may_move(text, words)
                           or not _MOVE_TAIL.search(text)):
                continue
            if not hidden and "Market" not in text and "Bazaar" not in text:
                continue
            for match in pattern.finditer(text):
                raw = match.group("name")
                if any(w.lower().strip("'’") in _NOT_MARKET_WORDS for w in raw.split()[:1]):
                    continue
                key = joined_key(raw)
                if self._lookup(key) or len(key) < 3:
                    continue
                start = match.start("name")
                name = raw if hidden else raw + text[match.end("name"):match.end()]
                # "moved to Zorblax market": a move and the word market make it a name.
                shown = not hidden or bool(_MARKET_AFTER.match(text, match.end("name")))
                found.append(_Hit(None, _discovered_name(name) or raw, raw, start,
                                  start + len(raw), 1, key, discovered=shown,
                                  hidden=not shown))
        return found

    def _accept(self, text: str, lowered: str, scan: cues.Scan, hits: list[_Hit]) -> None:
        found = set(scan.categories())
        darknet = cues.DARKNET in found
        succession = not found.isdisjoint(cues.SUCCESSION)
        several = len({h.key for h in hits}) >= 2 and cues.OTHER_SENSE not in found
        fate_news = cues.TAKEDOWN in found or cues.EXIT in found
        mostly_lower = None
        for hit in hits:
            if hit.tier == 0:
                hit.accepted = True
        for _ in range(2):  # a second pass: markets accepted in the first are context too
            anchors = [h for h in hits if h.accepted]
            for hit in hits:
                if hit.accepted:
                    continue
                context = (darknet or any(a.key != hit.key and not a.hidden for a in anchors)
                           or (several and succession))
                capital = hit.surface[:1].isupper() or hit.in_url or any(
                    h.key == hit.key and h.surface[:1].isupper() for h in hits)
                if not capital:
                    if mostly_lower is None:
                        mostly_lower = _mostly_lower(text)
                    capital = mostly_lower
                if not context:
                    # "Evolution is gone, any alternatives?": a name that is the subject of a
                    # market's fate, in a text about replacements; "Nemesis Market was seized":
                    # a capitalised market name in news of a takedown or an exit.
                    hit.accepted = capital and (
                        (succession and _fate_follows(lowered, hit))
                        or (fate_news and _MARKET_NAME.fullmatch(hit.surface) is not None))
                    continue
                if hit.tier == 1:
                    hit.accepted = True
                elif hit.tier == 3:
                    before = lowered[max(0, hit.start - 60):hit.start]
                    hit.accepted = (_listed_with(text, hit, anchors) or _fate_follows(lowered, hit)
                                    or bool(_MARKET_BESIDE.search(
                                        lowered[max(0, hit.start - 20):hit.end + 20]))
                                    or (_last_word_allows(before, _SUCC_LAST)
                                        and bool(_SUCC_BEFORE.search(before)))
                                    or (_last_word_allows(before, _PRED_LAST, ("replac",
                                                                               "succeed"))
                                        and bool(_PRED_BEFORE.search(before))))
                elif capital and (_market_near(scan, hit) or _listed_with(text, hit, anchors)):
                    hit.accepted = hit.in_url or not _ordinary_use(text, hit)


_MARKET_NAME = re.compile(r"[A-Z][\w'’-]+ (?:Market|Marketplace)")
_MARKET_BESIDE = re.compile(r"\b(?:market\w*|dnm|mirrors?|links?|onions?|shop|site)\b")
_NAME_TAILS = {"market", "marketplace", "dnm", "reloaded", "reborn", "is", "was", "has", "had",
               "got", "gets", "went", "goes", "are", "and", "or", "but", "vendors", "users",
               "admins", "mirror", "link", "seized", "exit", "down", "back", "up", "rises",
               "returns", "launches", "opens", "closes", "falls", "shuts"}


_OF = re.compile(r"\s+of\b")
_NEXT_NAME = re.compile(r"[ \t]+([A-Z][\w'’-]*)")
_PREVIOUS_NAME = re.compile(r"(?:^|[^.!?:;\s][ \t]+)([A-Z][\w'’-]*)[ \t]+$")


def _ordinary_use(text: str, hit: _Hit) -> bool:
    """A capitalised everyday word used in its everyday sense: part of another proper name
    ("Empire State", "Roman Empire", "Hansa Rostock") or followed by "of" ("Genesis of")."""
    after = text[hit.end:hit.end + 30]
    if _OF.match(after):
        return True
    if _title_case(text):
        return False  # in a headline every word is capitalised: neighbours say nothing
    nxt = _NEXT_NAME.match(after)
    if nxt and nxt.group(1).lower() not in _NAME_TAILS:
        return True
    prev = _PREVIOUS_NAME.search(text[max(0, hit.start - 30):hit.start])
    return bool(prev) and prev.group(1).lower() not in _STOP_NAMES


def _title_case(text: str) -> bool:
    words = re.findall(r"[^\W\d_]{4,}", text)
    return len(words) >= 3 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def _discovered_keys(markets: Sequence[Market]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a text must contain for a discovered name to match in it (see
    Extractor.adds_nothing): the name's key; or, for a versioned name ("Empire 2.0", which
    also matches "Empire v2", "Empire II" or an alias of Empire with a suffix), the key of a
    spelling of its base together with a version word."""
    suffixes = {f"{digit}0" for digit in range(10)} | {joined_key(v) for v in
                                                       _VERSION_WORDS.values()}
    keys, bases = set(), set()
    for market in markets:
        if market.origin != "discovered":
            continue
        key = joined_key(market.name)
        keys.add(key)
        for suffix in suffixes:
            if key.endswith(suffix) and len(key) > len(suffix):
                base = key[:-len(suffix)]
                bases.add(base)
                bases.update(joined_key(s) for m in markets if joined_key(m.name) == base
                             for s in m.aliases)
    # Non-ASCII keys are left out: texts whose words are not ASCII are not judged.
    return (tuple(sorted(k for k in keys if k and k.isascii())),
            tuple(sorted(k for k in bases if k and k.isascii())))


# Every word a version suffix is read from (_version_after, _DISCOVER, _split_version).
_VERSION_TOKENS = frozenset(_VERSION_WORDS) | {str(d) for d in range(10)} | {
    f"v{d}" for d in range(10)}


def _tight(text: str, end: int, start: int) -> bool:
    """Two tokens belong to one name: at most a space, hyphen, dot or apostrophe between."""
    return start - end <= 2 and not text[end:start].strip(" -.'’!/")


def _best_entry(entries: list[_Entry], surface: str, case_blind: bool = False) -> _Entry | None:
    for entry in entries:
        if entry.acronym and not case_blind:
            # Acronyms count only as written in capitals ("SR2", not "sr2" or "Sr.").
            letters = re.sub(r"[\W_]", "", surface)
            if letters.upper() != letters:
                continue
        elif entry.acronym and case_blind:
            continue
        return entry
    return None


def _version_after(text: str, tokens: Sequence[tuple[int, int, str]], j: int
                   ) -> tuple[str | None, int]:
    """A version suffix starting at token j: ("2.0", tokens used) or (None, 0)."""
    if j >= len(tokens):
        return None, 0
    gap = text[tokens[j - 1][1]:tokens[j][0]]
    if gap not in (" ", "-", "", " v", " V"):
        return None, 0
    word = tokens[j][2].lower()
    if gap.endswith(("v", "V")):
        word = "v" + word
    nxt = tokens[j + 1] if j + 1 < len(tokens) else None
    if word.isdigit() and len(word) == 1:
        if nxt is not None and text[tokens[j][1]:nxt[0]] == "." and nxt[2] == "0":
            return f"{word}.0", 2
        after = nxt[2].lower() if nxt is not None else ""
        tail = text[tokens[j][1]:nxt[0]] if nxt is not None else ""
        if nxt is None or after in _VERSION_FOLLOWERS or tail.strip()[:1] in (".", ",", "!", "?",
                                                                              ")", ":"):
            return _VERSION_WORDS.get(word), 1 if word in _VERSION_WORDS else 0
        return None, 0
    if word in _VERSION_WORDS and not word.isdigit():
        written = text[tokens[j][0]:tokens[j][1]]
        if word in ("ii", "iii", "iv") and written != written.upper():
            return None, 0
        return _VERSION_WORDS[word], 1
    return None, 0


def _is_version_of(market: Market, version: str) -> bool:
    """Whether a suffix adds nothing to a market that is already a later version."""
    return bool(market.predecessor) and (version.endswith(".0") or version in (
        "Reloaded", "Reborn", "Relaunched", "Returns"))


def _version_form(market: Market) -> bool:
    """A listed successor named after its predecessor: "Silk Road Reloaded", "AlphaBay (2021)"."""
    if not market.predecessor:
        return False
    base = re.sub(r"\s*\b(?:market|marketplace)\b\s*$", "", market.predecessor, flags=re.I)
    base = re.sub(r"\s*\d+(?:\.\d+)?$", "", base)
    return joined_key(market.name).startswith(joined_key(base)) and \
        joined_key(market.name) != joined_key(market.predecessor)


def _split_version(name: str) -> tuple[str, str | None]:
    parts = name.rsplit(" ", 1)
    if len(parts) == 2:
        tail = parts[1].lower()
        if re.fullmatch(r"\d\.0", tail):
            return parts[0], tail
        if re.fullmatch(r"v\d", tail):
            return parts[0], f"{tail[1]}.0"
        if tail in _VERSION_WORDS and not tail.isdigit():
            return parts[0], _VERSION_WORDS[tail]
    return name, None


def _discovered_name(raw: str) -> str | None:
    base, version = _split_version(raw.strip())
    words = base.split()
    while words and words[-1].lower() in _MARKET_WORDS:
        words.pop()
    if not words or words[0].lower() in _STOP_NAMES or words[0].lower().strip("'’") in _STOP_NAMES:
        return None
    if len(words) > 1 and words[1].lower() in _STOP_NAMES:
        words = words[:1]
    name = " ".join(words).rstrip(".,:;!?")
    if len(joined_key(name)) < 3:
        return None
    return f"{name} {version}" if version else name


def _fate_follows(lowered: str, hit: _Hit) -> bool:
    after = lowered[hit.end:hit.end + 60]
    return bool(_PRED_AFTER.match(after) or _SUCC_AFTER.match(after))


def _mostly_lower(text: str) -> bool:
    words = re.findall(r"[^\W\d_]+", text)
    if not words:
        return False
    capitals = sum(1 for w in words if w[:1].isupper())
    return capitals <= max(1, len(words) // 20)


def _market_near(scan: cues.Scan, hit: _Hit, width: int = 60) -> bool:
    return scan.has(cues.MARKET_NEAR, hit.start - width, hit.end + width,
                    outside=[(hit.start, hit.end)])


def _listed_with(text: str, hit: _Hit, anchors: Iterable[_Hit]) -> bool:
    for other in anchors:
        if other.end <= hit.start and _LIST_GAP.match(text[other.end:hit.start]):
            return True
        if hit.end <= other.start and _LIST_GAP.match(text[hit.end:other.start]):
            return True
    return False


# --- roles ---------------------------------------------------------------------------------

def _sentence_bounds(lowered: str, start: int, end: int) -> tuple[int, int]:
    # The sentence ends of a text are found once, not once per hit: rescanning the text
    # for each of its names made a long body of names take seconds (quadratic).
    starts, ends = _sentence_ends(lowered)
    before = bisect.bisect_right(ends, start)
    lo = ends[before - 1] if before else 0
    after = bisect.bisect_left(starts, end)
    hi = starts[after] if after < len(starts) else len(lowered)
    return lo, hi


@functools.lru_cache(maxsize=8)
def _sentence_ends(lowered: str) -> tuple[list[int], list[int]]:
    spans = [m.span() for m in _SENTENCE_END.finditer(lowered)]
    return [s for s, _ in spans], [e for _, e in spans]


def _assign_roles(lowered: str, scan: cues.Scan, hits: list[_Hit], gazetteer: Gazetteer
                  ) -> None:
    for hit in hits:
        if hit.in_url:
            continue
        if hit.version or hit.discovered or (hit.market is not None
                                             and _version_form(hit.market)):
            hit.role = "successor"
            continue
        lo, hi = _sentence_bounds(lowered, hit.start, hit.end)
        before = lowered[max(lo, hit.start - 60):hit.start]
        after = lowered[hit.end:min(hi, hit.end + 80)]
        succ = bool(_SUCC_AFTER.match(after) or (
            _last_word_allows(before, _SUCC_LAST) and _SUCC_BEFORE.search(before)))
        pred = bool(_PRED_AFTER.match(after) or (
            _last_word_allows(before, _PRED_LAST, ("replac", "succeed"))
            and _PRED_BEFORE.search(before)))
        if succ:
            hit.role = "successor"
        elif pred:
            hit.role = "predecessor"
    # A list continues the role of its first member: "after AlphaBay and Hansa fell".
    for prev, hit in itertools.pairwise(hits):
        if hit.role == "mention" and prev.role != "mention" and not hit.in_url \
                and _LIST_GAP.match(lowered[prev.end:hit.start]):
            hit.role = prev.role
    named = {h.name: h for h in hits if h.market is not None}
    for hit in hits:
        # The gazetteer's lineage: a relaunch named beside the market it replaces.
        m = hit.market
        hops = 0
        while m is not None and m.predecessor and hops < 4:
            older = named.get(m.predecessor)
            if older is not None:
                if hit.role in ("mention", "predecessor") and older.role != "successor":
                    hit.role = "successor"
                if older.role == "mention":
                    older.role = "predecessor"
            m = gazetteer.by_name.get(m.predecessor)
            hops += 1
    # Cue words inside names ("Black Market Reloaded") say nothing: look at the rest.
    spans = [(h.start, h.end) for h in hits]
    negated = scan.has(cues.NEGATED, outside=spans)
    has_cue = scan.succession(outside=spans) and not negated
    if not has_cue and not any(h.role == "successor" for h in hits):
        # Nothing replaces it, so a market that went down is only mentioned.
        for hit in hits:
            if hit.role == "predecessor":
                hit.role = "mention"
    roles = {h.role for h in hits if not h.in_url}
    replaced = {h.name for h in hits if h.role == "predecessor"}
    for hit in hits:
        if hit.role != "mention" or hit.in_url:
            continue
        if "predecessor" in roles and "successor" not in roles and has_cue \
                and hit.name not in replaced and not lowered.startswith("'s", hit.end):
            # Something replaced the fallen market and this is the other market named.
            hit.role = "successor"
        elif roles == {"mention"} and len(named) == 1 and not negated and scan.has(
                cues.RELAUNCH, outside=spans):
            hit.role = "successor"  # one market and talk of its return: it is the returning one


def _mentions(hits: list[_Hit]) -> list[Mention]:
    out: dict[tuple[str, str], Mention] = {}
    rank = {r: i for i, r in enumerate(ROLES)}
    by_name: dict[str, str] = {}
    for hit in hits:
        if hit.hidden:
            continue
        role = hit.role
        # URL mentions carry no role of their own; the text's role for the same market wins.
        if hit.in_url and any(h.name == hit.name and not h.in_url for h in hits):
            continue
        best = by_name.get(hit.name)
        if best is not None and rank[best] <= rank[role]:
            continue
        by_name[hit.name] = role
        known = not hit.discovered and hit.market is not None and not hit.version
        out = {k: v for k, v in out.items() if k[0] != hit.name}
        out[(hit.name, role)] = Mention(hit.name, role, hit.surface, known, hit.start, hit.end)
        if hit.version and hit.market is not None:
            base = hit.market.name
            if base not in by_name:
                by_name[base] = "predecessor"
                out[(base, "predecessor")] = Mention(base, "predecessor", hit.surface, True,
                                                     hit.start, hit.end)
    return sorted(out.values(), key=lambda m: (m.start, m.name))


def _mask(text: str, hits: list[_Hit]) -> str:
    parts = []
    last = 0
    for hit in sorted((h for h in hits if not h.in_url), key=lambda h: h.start):
        if hit.start < last:
            continue
        parts.append(text[last:hit.start])
        successor = hit.version or hit.discovered or (hit.market is not None
                                                      and hit.market.predecessor)
        parts.append(" mkt ver " if successor else " mkt ")
        last = hit.end
    parts.append(text[last:])
    return "".join(parts)


@functools.lru_cache(maxsize=8)
def default_extractor(discovered: tuple[str, ...] = ()) -> Extractor:
    return Extractor(load_gazetteer(), discovered)
