"""The vocabulary of successor chatter: the cue words and phrases behind the rule in
LABELING.md (relaunch, replacement, migration, warnings), and the contexts that cancel them
(takedown-only news, outages, archives, other senses of the names).

Phrases are matched on word tokens, not with one regular expression per category: a text is
tokenised once and every token is looked up in a dictionary, which is what keeps scoring fast.
Phrase syntax: words separated by spaces; `word*` matches any word starting with `word`;
`a|b|c` matches any of the alternatives at that position. Apostrophes and hyphens split words,
so "hasn't" is written "hasn t" and "re-launch" is "re launch".
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

DARKNET, MARKET_NEAR, RELAUNCH, REPLACEMENT, MIGRATION, WARNING, TAKEDOWN, EXIT, OUTAGE, \
    NEGATED, ARCHIVE, STATS, OTHER_SENSE = range(13)
SUCCESSION = (RELAUNCH, REPLACEMENT, MIGRATION)
SUCCESSION_SET = frozenset(SUCCESSION)

VOCABULARY: dict[int, tuple[str, ...]] = {
    # Text about the darknet at all: an ambiguous name ("Empire", "Dream") counts as a market
    # only when something like this is in the same text.
    DARKNET: (
        "darknet*", "dark net*", "darkweb*", "dark web*", "deepweb", "deep web", "dnm", "dnms",
        "tor", "onion*", "hidden service*", "cryptomarket*", "crypto market|markets",
        "black market|markets", "drug market*|site|sites", "vendor|vendors", "escrow", "exit scam*",
        "exitscam*", "pgp", "monero", "xmr", "bitcoin*", "btc", "dread", "dpr",
        "dread pirate roberts", "fbi", "europol", "dea", "bka", "law enforcement", "i2p", "opsec",
        "drug|drugs", "narcotic*", "fentanyl", "cocaine", "heroin", "mdma", "carding", "cannabis",
        "weed", "marketplace|marketplaces", "mirror|mirrors", "deepdotweb", "darknetlive",
        "dark fail", "tails", "whonix", "даркнет*", "маркетплейс*", "наркот*", "закладк*",
        "площадк*", "клад|клады|кладов|кладам|кладмен*", "зеркал*", "магазин*",
    ),
    # Words that make a nearby capitalised word look like a market name ("Nemesis is back",
    # "vendors on Kingdom"): checked in a window around an ambiguous single-word name.
    MARKET_NEAR: (
        "market*", "dnm", "dnms", "site|sites", "shop|shops", "vendor*", "admin|admins", "mod|mods",
        "user|users", "buyer|buyers", "listing|listings", "escrow", "exit*", "scam*", "seiz*",
        "takedown", "taken down", "shut", "busted", "down", "back", "relaunch*", "mirror*",
        "link|links", "onion*", "launch*", "reopen*", "clos*", "gone", "mov*", "migrat*",
        "refugee*",
        "successor*", "replac*", "deposit*", "withdraw*", "darknet*", "dark web", "darkweb",
        "honeypot*", "phishing", "рынок*", "рынк*", "площадк*", "магазин*", "сайт*", "закры*",
        "переш*", "пользовател*", "продав*", "покупател*", "даркнет*",
    ),
    # A market that comes back, or a new one that takes over: the positive half of the rule.
    RELAUNCH: (
        "relaunch*", "re launch*", "reopen*", "re open*", "is|are|s|be|been|was|were back",
        "is|are|s|been|was now|finally|officially|already back", "is|are up",
        "come|comes|coming|came back",
        "comeback*", "return|returns|returned|returning", "reborn", "re born", "resurrect*",
        "reviv*", "risen", "rise|rises|rose again", "rises|rose once more", "risen again",
        "from the dead|grave|ashes", "new life", "reloaded", "2 0", "3 0", "4 0", "v2", "v3", "v4",
        "rebrand*", "resurfac*", "re emerg*", "reemerg*", "back up", "up again", "alive again",
        "second coming", "same admin|admins|team|name|brand|layout|operator|operators",
        "old admin|admins|team|staff|crew", "former admin|admins|staff|mod|mods|moderators",
        "went|go|goes live", "is live", "now live", "opens|open for business", "opens up",
        "opens its doors", "new beginning", "reboot*", "restart*", "вернул*", "возвращ*",
        "перезапуск*", "возрожд*", "запуст*",
    ),
    REPLACEMENT: (
        "successor*", "succeed*", "replac*", "in its|their|his place",
        "take|takes its|their|the place",
        "took its|their|the place", "fill|fills|filled|filling the|its|that|their|this "
        "gap|void|vacuum|shoes|hole", "vacuum", "void|gap|hole left", "heir|heirs", "copycat*",
        "copy cat*", "clone|clones", "imitator*", "follow up", "followup",
        "next big|top|biggest|largest",
        "alternative|alternatives", "step|steps|stepped in|up", "swoop* in",
        "pick|picked up the pieces",
        "take|takes|taking over", "took over", "absorb*", "inherit*", "then came", "in the wake of",
        "after|following the fall|demise|death|seizure|takedown|bust|closure|shutdown|collapse|exit"
        "|loss|end|raid",
        "new market|markets|marketplace|marketplaces|site|sites|dnm|shop|shops|home|platform",
        "new kid|kids", "popped up", "pop|pops|popping up", "sprang|spring|sprung up", "sprouted",
        "crop|cropped|crops up", "emerged", "emerges", "emerging", "spin off", "spinoff",
        "partner market|site", "is the new", "the next", "but better", "scrambl*", "crop of",
        "in the aftermath", "post era|world|landscape|scene", "grew after", "grew out of",
        "pick|picks up the|its|their", "last market|markets|ones|one|site|sites standing",
        "still standing", "left standing", "lifeboat", "stranded", "homeless", "orphaned",
        "pour* in", "newcomer|newcomers", "up and comer*", "upandcomer*", "fork|forks|forked",
        "sister market|site", "преемник*", "замен*", "наследник*", "нов* площадк*|рын*|маркет*",
    ),
    MIGRATION: (
        "migrat*", "move|moved|moves|moving to", "move|moved|moves|moving over|on to",
        "move|moved|moving over", "switch* to", "switch* over to", "flock*", "flee|fled|fleeing",
        "exodus", "refugee|refugees", "displaced", "influx", "jump* ship", "jump* to",
        "head|headed|heading to", "head|headed|heading over to", "went to", "went over to",
        "go|going to now", "where to|do|should|is|are|did|does|can", "where s everyone",
        "which market|one|site|dnm", "what market|site|dnm|now", "any good alternatives|markets",
        "any other alternatives|markets", "any alternatives|markets", "where now", "new plug",
        "relist*", "set|sets|setting up shop", "ended up on", "retreat* to", "relocat*",
        "landed on|at|in",
        "reappear*", "pivot* to", "scatter*", "onboard*", "now on", "next place|stop|home|spot",
        "recs", "recommend*", "bouncing between", "followed the crowd", "followed them|him|her",
        "se fueron", "traffic to", "traffic is pouring", "leaving", "stick|sticking to|with",
        "stay|staying on", "welcom*", "drift* to", "переш*", "переезд*", "перетек*", "переезжа*",
        "переех*", "ушли на",
    ),
    # The warning half: a successor or mirror said to be a scam, phishing clone or honeypot.
    WARNING: (
        "phish*", "honeypot*", "honey pot*", "scam link|links|mirror|mirrors|site|sites",
        "fake link|links|mirror|mirrors|site|sites|market|markets|version|versions|onion|onions"
        "|clone|clones", "run by the feds|police|le|fbi|cops", "run by feds|police|le|fbi|cops",
        "le run", "steal* your|their|my", "don t trust", "dont trust", "do not trust", "stay away",
        "avoid", "impostor*", "imposter*", "fed|feds site|trap", "sting", "trap", "фишинг*",
        "ловушк*", "мошенни*",
    ),
    # The negative half: news about the darknet that is not about succession.
    TAKEDOWN: (
        "seiz*", "takedown", "taken down", "shut|shuts|shutting down", "busted", "arrest*",
        "sentenc*", "indict*", "charged", "raid*", "extradit*", "convict*", "pleaded", "plead",
        "pleads", "prison", "custody", "jail*", "court", "trial", "operation", "prosecut*",
        "dismantl*", "изъя*", "арест*", "задерж*", "приговор*", "суд",
    ),
    EXIT: (
        "exit scam*", "exitscam*", "vanish*", "disappear*", "went dark", "gone dark", "ran off",
        "run off", "rug pull*", "rugpull*", "rugged", "exited",
    ),
    OUTAGE: (
        "ddos*", "maintenance", "outage*", "downtime", "technical issues|difficulties|problems",
        "temporar*", "server issues|problems", "back online", "up and running", "hiccup*", "lag*",
        "лежал*", "лагает", "ддос*",
    ),
    NEGATED: (
        "no successor|replacement|relaunch|return|comeback",
        "not|never|hasn|haven|won|isn|wasn|didn relaunch*|resurfac*|return*|back|reopen*|replac*"
        "|reappear*",
        "not|never|hasn|haven|won|isn|wasn|didn t relaunch*|resurfac*|return*|back|reopen*|replac*"
        "|reappear*|come|coming|came",
        "has|have|had not been|yet relaunch*|resurfac*|return*|reopen*|replac*|reappear*",
        "not|never coming|come|came back", "no sign of a|any return|successor|relaunch|comeback",
        "no sign of return|successor|relaunch|comeback", "for good", "dead and gone",
        "не вернётся", "не вернется",
    ),
    ARCHIVE: ("archiv*", "data dump|dumps", "datadump*", "dump|dumps", "scrape|scraped|scrapes",
              "wayback", "snapshot*", "backup*", "dataset*"),
    STATS: ("percent", "per cent", "million|millions", "billion|billions", "statistic*",
            "estimat*", "study", "research*", "report*", "survey*", "share of"),
    # Other senses of the names and of "market ... is back".
    OTHER_SENSE: (
        "trade route|routes", "caravan*", "dynast*", "merchant*", "belt and road", "hanse*",
        "league", "stock|stocks", "stock market|exchange", "investor*", "share|shares", "nasdaq",
        "dow", "equity", "equities", "retail*", "store|stores", "holiday market", "farmers market",
        "pop up", "popup", "nft|nfts", "token|tokens", "startup*", "brand*", "app|apps",
        "social network*", "film*", "movie|movies", "sequel*", "video game*", "videogame*",
        "album|albums", "band", "tour", "football", "club", "season", "roman", "mongol*", "ottoman",
        "medieval", "century", "centuries", "histor*", "software", "browser", "update",
        "company", "companies", "ceo", "reunion", "concert*", "festival*",
    ),
}

_WORD = re.compile(r"[^\W_]+")
_VERSION = re.compile(r"\b\d\.0\b|\bv[2-9]\b")
_QUESTION = re.compile(r"\b(?:where|which|what|any|anyone|anybody|who|куда|какую|какой|что)\b"
                       r"[^.?!]{0,80}\?")
_PERCENT = re.compile(r"\d\s?%")
# Negation a few words before a return ("neither ... has resurfaced", "did not come back").
_NEGATED_RETURN = re.compile(
    r"\b(?:not|never|neither|nor|no longer|hasn't|haven't|won't|isn't|wasn't|didn't|hasn’t"
    r"|won’t|isn’t|didn’t)\b[^.;!?]{0,60}?\b(?:resurfac\w*|relaunch\w*|return\w*|reopen\w*"
    r"|c[oa]me back|coming back|reappear\w*|reviv\w*|be back)")

# Relations between a masked market name ("mkt") and the words around it; these run on the
# masked text, and only when it holds a market.
TO_MARKET = re.compile(
    r"\b(?:mov|migrat|switch|flock|head|went|go|gone|jump|fled|flee|shift|pivot|retreat|relocat"
    r"|drift|flood|pour|turn|return|came|come|push|sent|send|took|tak|leav|left|landed|ended)\w*"
    r"\s+(?:[\w']+\s+){0,4}?(?:to|onto|into|towards|over to|on to|for)\s+(?:the\s+)?(?:new\s+)?"
    r"mkt\b")
FROM_MARKET = re.compile(r"\b(?:from|ex-|former|old|original|seized|dead)\s*(?:the\s+)?mkt\b"
                         r"|\bmkt(?:'s)?\s+(?:refugees|exiles|diaspora|crowd)\b")
ON_MARKET_NOW = re.compile(r"\b(?:on|at|using)\s+mkt\s+now\b|\bnow\s+(?:on|at|using)\s+mkt\b"
                           r"|\bmkt\s+now\b")
MARKET_FATE = re.compile(
    r"\bmkt(?:'s)?\b[^.!?]{0,30}\b(?:seiz\w*|clos\w*|shut\w*|down|gone|dead|exit\w*|vanish\w*"
    r"|fold\w*|retir\w*|busted|raided|offline|went under|went dark|disappear\w*|died|fell|rip)"
    r"|\b(?:fall|demise|death|closure|seizure|takedown|bust|collapse|shutdown|exit|end|loss)"
    r"\s+of\s+(?:the\s+)?mkt\b")
MARKET_ARRIVES = re.compile(
    r"\bmkt(?: ver)?\s+(?:\w+\s+)?(?:rises|rising|has risen|is here|arrives|is up|is live|is back"
    r"|is open|opens|launches|launched|debuts|emerges|returns|went live|goes live|comes back"
    r"|resurfaces|reappears|is online|reopens|reopened|relaunch\w*)\b")
MARKET_LIST = re.compile(r"\bmkt(?: ver)?\s*(?:,|/|and|or)\s*(?:and\s+|or\s+)?mkt\b")
VERSIONED = re.compile(r"\bmkt ver\b")

# Cheap tests that a relation pattern above may match: where one finds nothing, so does the
# pattern. A relation pattern starts with a word boundary or a word list, so the regular
# expression engine tries it at nearly every position of the text; these start with the
# literal "mkt", which it finds by a fast substring search. Patterns that end with the name
# are tested on the reversed text ("tkm" for "mkt"); leaving out a \b or a group's other
# words only lets a test pass more often.
_TO_MARKET_REVERSED = re.compile(
    r"tkm(?:\s+wen)?(?:\s+eht)?\s+(?:ot|sdrawot|rof)")  # "... to|towards|for the new mkt"
_FROM_MARKET_REVERSED = re.compile(
    r"tkm(?:\s+eht)?\s*(?:morf|-xe|remrof|dlo|lanigiro|dezies|daed)")
_FROM_MARKET_AHEAD = re.compile(FROM_MARKET.pattern.split("|\\bmkt", 1)[1].join(("mkt", "")))
_FATE_AHEAD = re.compile(MARKET_FATE.pattern.split("|\\b(?:fall", 1)[0].removeprefix(r"\b"))
_FATE_REVERSED = re.compile(
    r"tkm(?:\s+eht)?\s+fo\s+(?:llaf|esimed|htaed|erusolc|eruzies|nwodekat|tsub|espalloc"
    r"|nwodtuhs|tixe|dne|ssol)")
_ARRIVES_AHEAD = re.compile(MARKET_ARRIVES.pattern.removeprefix(r"\b"))
_LIST_AHEAD = re.compile(MARKET_LIST.pattern.removeprefix(r"\b"))


def relations(low: str) -> tuple[int, int, int, int, int, int]:
    """In a masked, lower-cased text that holds "mkt": the matches of TO_MARKET,
    FROM_MARKET, MARKET_FATE and MARKET_ARRIVES, and whether ON_MARKET_NOW and MARKET_LIST
    match. Each pattern runs only where its cheap test passes (most texts pass none)."""
    rev = low[::-1]
    to_market = count(TO_MARKET, low) if _TO_MARKET_REVERSED.search(rev) else 0
    from_market = count(FROM_MARKET, low) if (
        _FROM_MARKET_REVERSED.search(rev) or _FROM_MARKET_AHEAD.search(low)) else 0
    # Every ON_MARKET_NOW match has "now"; every MARKET_LIST match, two names.
    on_market_now = 1 if "now" in low and ON_MARKET_NOW.search(low) else 0
    fate = count(MARKET_FATE, low) if (
        _FATE_AHEAD.search(low) or _FATE_REVERSED.search(rev)) else 0
    market_list = 1 if _LIST_AHEAD.search(low) and MARKET_LIST.search(low) else 0
    arrives = count(MARKET_ARRIVES, low) if _ARRIVES_AHEAD.search(low) else 0
    return to_market, from_market, on_market_now, fate, market_list, arrives


def _expand(phrase: str) -> list[tuple[str, ...]]:
    slots = [word.split("|") for word in _WORD_SPLIT.findall(phrase)]
    return [tuple(words) for words in itertools.product(*slots)]


_WORD_SPLIT = re.compile(r"[^\s]+")


def _normalise(word: str) -> str:
    star = word.endswith("*")
    tokens = _WORD.findall(word.lower())
    return " ".join(tokens) + ("*" if star else "")


class _Index:
    """First word of every phrase -> (the phrase's words, category)."""

    def __init__(self, vocabulary: dict[int, tuple[str, ...]]) -> None:
        self.exact: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self.prefix: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for category, phrases in vocabulary.items():
            for phrase in phrases:
                for words in _expand(phrase):
                    # "hasn't" and "re-launch" become two words, as the tokeniser sees them.
                    split: list[str] = []
                    for word in words:
                        split.extend(_normalise(word).split(" "))
                    first = split[0]
                    rest = tuple((w.rstrip("*"), w.endswith("*")) for w in split[1:])
                    entry = (rest, category)
                    if first.endswith("*"):
                        self.prefix.setdefault(first[:-1], []).append(entry)
                    else:
                        self.exact.setdefault(first, []).append(entry)
        self.lengths = sorted({len(p) for p in self.prefix})


_INDEX = _Index(VOCABULARY)


@dataclass
class Scan:
    """Where each cue category matched in one text. The word cues are kept as (first word,
    last word, category) in `found`, and turned into characters only when asked (`matches`):
    most texts name no market, need only the categories, and so never pay for the words'
    offsets. `extra`: the matches of the regular expressions, in characters."""

    found: list[tuple[int, int, int]]
    extra: list[tuple[int, int, int]]
    question: bool
    version: bool
    percent: bool
    tokens: Tokens  # the lower-cased words with offsets, for the market extractor
    words: list[str]  # the same words alone
    present: set[str]  # and as a set

    @functools.cached_property
    def matches(self) -> list[tuple[int, int, int]]:
        """Every match as (start, end, category) in characters."""
        end, words = self.tokens.end, self.words
        out = [(end(i) - len(words[i]), end(last), c) for i, last, c in self.found]
        out.extend(self.extra)
        return out

    def categories(self) -> list[int]:
        """The category of every match, in the order of `matches`."""
        return [c for _, _, c in itertools.chain(self.found, self.extra)]

    def counts(self, outside: Iterable[tuple[int, int]] = ()) -> list[int]:
        """Matches per category (indexed by the category constants), outside the spans."""
        spans = list(outside)
        totals = [0] * len(VOCABULARY)
        if not spans:
            for c in self.categories():
                totals[c] += 1
            return totals
        for s, e, c in self.matches:
            if not any(s < b and a < e for a, b in spans):
                totals[c] += 1
        return totals

    def count(self, category: int, outside: Iterable[tuple[int, int]] = ()) -> int:
        spans = list(outside)
        return sum(1 for s, e, c in self.matches if c == category
                   and not any(s < b and a < e for a, b in spans))

    def has(self, category: int, lo: int = 0, hi: int | None = None,
            outside: Iterable[tuple[int, int]] = ()) -> bool:
        spans = list(outside)
        if lo <= 0 and hi is None and not spans:  # (every match starts at 0 or later)
            return category in self.categories()
        for s, e, c in self.matches:
            if c == category and s >= lo and (hi is None or e <= hi) and not any(
                    s < b and a < e for a, b in spans):
                return True
        return False

    def succession(self, outside: Iterable[tuple[int, int]] = ()) -> bool:
        spans = list(outside)
        if not spans:
            return not SUCCESSION_SET.isdisjoint(self.categories())
        return any(c in SUCCESSION and not any(s < b and a < e for a, b in spans)
                   for s, e, c in self.matches)


def scan(lowered: str) -> Scan:
    """Every cue in a lower-cased text, with character offsets."""
    tokens = _tokens(lowered)
    words = tokens.words
    present = set(words)
    count = len(words)
    # Most words start no cue: look them all up at once, then visit only those that do.
    entries = list(map(_CACHE.get, words))
    if None in entries:
        entries = [_candidates(w) if e is None else e for w, e in zip(words, entries,
                                                                         strict=True)]
    found = []
    for i in itertools.compress(range(count), entries):
        singles, by_second, others = entries[i]
        if singles:
            for category in singles:
                found.append((i, i, category))
        if i + 1 >= count or not (by_second or others):
            continue
        phrases = by_second.get(words[i + 1]) if by_second else None
        if phrases is None:
            if not others:
                continue
            phrases = others
        elif others:
            phrases = (*phrases, *others)
        for rest, category in phrases:
            last = i + len(rest)
            if last >= count:
                continue
            for k, (text, is_prefix) in enumerate(rest, i + 1):
                other = words[k]
                if not (other.startswith(text) if is_prefix else other == text):
                    break
            else:
                found.append((i, last, category))
    # The regular expressions below match only where one of these words is a token.
    extra = []
    if not present.isdisjoint(_NEGATION_TOKENS):
        extra.extend((m.start(), m.end(), NEGATED) for m in _NEGATED_RETURN.finditer(lowered))
    version = not present.isdisjoint(_SUFFIX_TOKENS) and bool(_VERSION.search(lowered))
    if version:
        extra.extend((m.start(), m.end(), RELAUNCH) for m in _VERSION.finditer(lowered))
    return Scan(found, extra, "?" in lowered and bool(_QUESTION.search(lowered)), version,
                "%" in lowered and bool(_PERCENT.search(lowered)), tokens, words, present)


_NEGATION_TOKENS = frozenset(("not", "never", "neither", "nor", "longer", "t"))
_SUFFIX_TOKENS = frozenset(("0", *(f"v{d}" for d in range(2, 10))))


class Tokens(Sequence[tuple[int, int, str]]):
    """The words of a text as (start, end, word), made on access: most texts need the
    offsets of only a few words (those that start a cue or a name), and building a tuple
    for every word cost more than the rest of the scan's bookkeeping.

    `parts` is the text split into pieces that are words or not (gaps), `index` says which
    pieces are the words, and a word's end is the running length of the pieces up to it,
    plus `sep` characters per piece before it (the split character, when one was dropped).
    The running lengths (and an `index` of None) are worked out on the first offset asked
    for: most texts need none.
    """

    __slots__ = ("_ends", "_index", "_parts", "_sep", "words")

    def __init__(self, parts: list[str], index: Sequence[int] | None, sep: int) -> None:
        self.words = list(filter(None, parts)) if sep else parts[1::2]
        self._parts = parts
        self._ends: list[int] | None = None
        self._index = index
        self._sep = sep

    def end(self, i: int) -> int:
        """The offset just past word i."""
        ends = self._ends
        if ends is None:
            parts = self._parts
            if self._index is None:
                self._index = list(itertools.compress(range(len(parts)), parts))
            ends = self._ends = list(itertools.accumulate(map(len, parts)))
        j = self._index[i]
        return ends[j] + j * self._sep

    def __len__(self) -> int:
        return len(self.words)

    @overload
    def __getitem__(self, i: int) -> tuple[int, int, str]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[int, int, str]]: ...

    def __getitem__(self, i: int | slice) -> tuple[int, int, str] | list[tuple[int, int, str]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self.words)))]
        word = self.words[i]  # (raises IndexError past the end)
        end = self.end(i if i >= 0 else i + len(self.words))
        return end - len(word), end, word

    def __iter__(self) -> Iterator[tuple[int, int, str]]:
        return map(self.__getitem__, range(len(self.words)))


def _tokens(lowered: str) -> Tokens:
    """The words of a text, as _WORD finds them. An ASCII text (after the usual non-ASCII
    punctuation is blanked, which moves no offset) is cut by mapping every non-word
    character to a space and splitting at spaces, which costs far less than the regular
    expression; other texts are split by the expression, into gaps and words alternately.
    Either way a word's offsets are running sums of lengths: no Python step per word."""
    if not lowered.isascii():
        for mark in _PUNCTUATION:
            if mark in lowered:
                lowered = lowered.replace(mark, " ")
    if lowered.isascii():
        parts = lowered.translate(_GAPS_TO_SPACES).split(" ")
        return Tokens(parts, None, 1)
    parts = _WORD_PARTS.split(lowered)
    return Tokens(parts, range(1, len(parts), 2), 0)


# Frequent in news and never part of a word: a dash, quotes, a non-breaking space.
_PUNCTUATION = "\u2014\u2013\u2018\u2019\u201c\u201d\u00a0\u2026"
_GAPS_TO_SPACES = str.maketrans({chr(c): " " for c in range(128)
                                 if not re.fullmatch(r"[^\W_]", chr(c))})
_WORD_PARTS = re.compile(f"({_WORD.pattern})")


# Word -> (categories of one-word cues it is, phrases that may start with it keyed by their
# second word, phrases whose second word is a prefix), or () for a word that starts no cue.
# Words repeat across texts, so each is resolved once; the cache stops growing at a size
# that costs a few megabytes.
_CACHE: dict[str, tuple] = {}
_CACHE_MAX = 200_000


def _candidates(word: str) -> tuple:
    found = list(_INDEX.exact.get(word, ()))
    for length in _INDEX.lengths:
        if length > len(word):
            break
        found.extend(_INDEX.prefix.get(word[:length], ()))
    singles = tuple(category for rest, category in found if not rest)
    by_second: dict[str, list] = {}
    others = []
    for rest, category in found:
        if not rest:
            continue
        text, is_prefix = rest[0]
        if is_prefix:
            others.append((rest, category))
        else:
            by_second.setdefault(text, []).append((rest, category))
    result = (singles, by_second, tuple(others)) if found else ()
    if len(_CACHE) < _CACHE_MAX:
        _CACHE[word] = result
    return result


def any_succession(lowered: str) -> bool:
    return scan(lowered).succession()


def count(pattern: re.Pattern[str], text: str) -> int:
    return len(pattern.findall(text))
