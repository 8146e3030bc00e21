"""A generated monitor database of a given size, for the query benchmark.

The schema is the product's (store.open_db runs the migrations, the gazetteer is loaded by
the classifier's own function); rows go in with executemany, in large transactions, through
the product's FTS triggers. Two years of items ending now, busier lately:

- 30% news (450 feeds), 20% Reddit posts, 50% Reddit comments (50 subreddits), comments
  pointing at recent posts; 1% of news items are syndicated copies (duplicate_of);
- every item scored by the current model (meta model_version), those older than a year also
  by an earlier model; 3% flagged by the current one;
- market mentions on 5% of items (one to three markets, Zipf-like popularity over the
  gazetteer and 60 discovered names; roles mention 60%, successor 20%, predecessor 15%,
  warning 5%), the names also in the text so full-text search finds them;
- 3,000 analyst labels, alerts, corroborations, lineage with evidence, 12 takedown events
  inside the window, and `runs` rows for the last `run_days` days at each source's interval
  (30 minutes for feeds, 10 for Reddit listings), as the daemon writes them.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ._feeds import _AGENCIES, _COINS, _GOODS, _PLACES, _SENTENCES_PLAIN, _TITLES_PLAIN

GENERATOR = 2  # bump when the generated data changes: a kept database is then remade
MODEL = "bench-model-2"
OLD_MODEL = "bench-model-1"
DAYS = 730
_SUBREDDITS = [f"sub{i:02d}" for i in range(50)]
_COMMENTS = [
    "Anyone know if {market} is still up? Getting timeouts all day.",
    "Been using it for months, never had a problem with escrow.",
    "Don't click links from DMs, they are all phishing.",
    "Prices went up again, {goods} is getting hard to find.",
    "PGP or it didn't happen.",
    "Mods please pin the mirror list, people keep asking.",
    "Stay safe everyone, use {coin} and never finalize early.",
    "Is the new one legit or another exit scam waiting to happen?",
    "My order from {place} arrived after two weeks, stealth was good.",
    "{market} support answered in a day, solid.",
]
_SUCCESSOR = [
    " After {fallen} went down, most vendors moved to {market}.",
    " {market} looks like the new home for {fallen} buyers.",
]
_WARNING = [" Careful: the {market} link going around is a phishing clone."]


def _hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def generate(path: Path, items: int, *, run_days: int = 90, seed: int = 0,
             now: datetime | None = None, show: Callable[[str], None] | None = None) -> dict:
    """Write the database at `path` (which must not exist); return what was generated."""
    from monitor import store
    from monitor.classify.apply import ensure_gazetteer

    show = show or (lambda _text: None)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    rng = random.Random(seed)
    db = store.open_db(path)
    ensure_gazetteer(db)
    store.set_meta(db, "model_version", MODEL)
    conn = db.conn
    known = [r[0] for r in conn.execute("SELECT name FROM markets ORDER BY name")]
    discovered = [f"Newmarket {i:02d}" for i in range(60)]
    names = known + discovered
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(names))]
    rng.shuffle(names)
    # Chatter about a successor names the same one or two fallen markets again and again.
    fallen_of = {m: rng.sample(names[:40], 2) for m in names}

    with db.atomic():
        feeds = [(f"feed-{i:03d}", "feed", f"https://news{i}.example.net/feed.xml")
                 for i in range(450)]
        subs = [(f"reddit/r/{s}", "reddit", f"https://www.reddit.com/r/{s}")
                for s in _SUBREDDITS]
        conn.executemany(
            "INSERT INTO sources (name, kind, target, last_attempt_at, last_success_at, "
            "consecutive_failures, last_error, active) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            [(n, k, t, _iso(now), _iso(now - timedelta(hours=3 if i % 40 == 0 else 0)),
              3 if i % 40 == 0 else 0, "HTTP 503 Service Unavailable" if i % 40 == 0 else None)
             for i, (n, k, t) in enumerate(feeds + subs)])
        for number, name in enumerate(discovered):
            conn.execute("INSERT INTO markets (name, aliases, status, first_seen_at, origin) "
                         "VALUES (?, '[]', 'unknown', ?, 'discovered')",
                         [name, _iso(start + timedelta(days=12 * number + 5))])
        events = []
        for number in range(12):
            fallen = rng.choice(names[:40])
            events.append((f"bench-event-{number}", f"{fallen} takedown",
                           _iso(start + timedelta(days=60 * number + 20)), "takedown",
                           json.dumps([fallen])))
        conn.executemany("INSERT OR REPLACE INTO events (id, name, happened_at, kind, markets) "
                         "VALUES (?, ?, ?, ?, ?)", events)

    # Items, classifications and mentions, in chunks of one transaction each.
    moments = sorted(start + timedelta(seconds=DAYS * 86400 * rng.random() ** 0.8)
                     for _ in range(items))
    posts: list[str] = []
    news_by_source: list[tuple[str, str, str]] = []
    flagged_ids: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []  # unflagged items an analyst looked at
    mention_items: list[tuple[str, str, str, str]] = []  # item, market, role, published
    moves: list[tuple[str, str, str, str]] = []  # fallen, successor, item, published
    counts = {"items": 0, "mentions": 0, "flagged": 0, "duplicates": 0, "classifications": 0}
    chunk = 50_000
    for first in range(0, items, chunk):
        item_rows, class_rows, mention_rows = [], [], []
        for number in range(first, min(items, first + chunk)):
            published = moments[number]
            roll = rng.random()
            fill = {"agency": rng.choice(_AGENCIES), "place": rng.choice(_PLACES),
                    "goods": rng.choice(_GOODS), "coin": rng.choice(_COINS),
                    "n": str(rng.randint(2, 60))}
            markets = []
            if rng.random() < 0.05:
                markets = list(dict.fromkeys(rng.choices(names, weights, k=rng.choice(
                    (1, 1, 1, 2, 2, 3)))))
            fill["market"] = markets[0] if markets else rng.choice(names)
            parent = duplicate = None
            if roll < 0.3:
                kind, source = "news", f"feed-{int(450 * rng.random() ** 1.5):03d}"
                item_id = f"feed:{_hex(str(number))}"
                title = rng.choice(_TITLES_PLAIN).format(**fill)
                body = " ".join(rng.choice(_SENTENCES_PLAIN).format(**fill)
                                for _ in range(rng.randint(3, 7)))
                url = f"https://news.example.net/{number}"
            elif roll < 0.5:
                kind, source = "reddit_post", f"reddit/r/{rng.choice(_SUBREDDITS)}"
                item_id = f"reddit:t3_{_b36(number)}"
                title = rng.choice(_COMMENTS).format(**fill)[:90]
                body = " ".join(rng.choice(_COMMENTS).format(**fill)
                                for _ in range(rng.randint(0, 4)))
                url = f"https://www.reddit.com/comments/{_b36(number)}"
                posts.append(item_id)
            else:
                kind, source = "reddit_comment", f"reddit/r/{rng.choice(_SUBREDDITS)}"
                item_id = f"reddit:t1_{_b36(number)}"
                title = ""
                body = " ".join(rng.choice(_COMMENTS).format(**fill)
                                for _ in range(rng.randint(1, 3)))
                url = f"https://www.reddit.com/comments/x/{_b36(number)}"
                parent = posts[-1 - int(rng.random() * min(len(posts), 200))] if posts else None
            roles = []
            for position, market in enumerate(markets):
                role = rng.choices(("mention", "successor", "predecessor", "warning"),
                                   (60, 20, 15, 5))[0]
                if role == "successor" and len(markets) == 1:
                    fallen = fallen_of[market][0 if rng.random() < 0.8 else 1]
                    body += rng.choice(_SUCCESSOR).format(market=market, fallen=fallen)
                    roles.append((fallen, "predecessor"))
                    if fallen != market:
                        moves.append((fallen, market, item_id, _iso(published)))
                elif role == "warning":
                    body += rng.choice(_WARNING).format(market=market)
                elif position:
                    body += f" Also {market}."
                roles.append((market, role))
            content = f"{title}\n{body}".lower()
            digest = hashlib.sha256(content.encode()).hexdigest()[:32]
            if kind == "news":
                if news_by_source and rng.random() < 0.01:
                    other_id, other_source, other_hash = rng.choice(news_by_source[-500:])
                    if other_source != source:
                        duplicate, digest = other_id, other_hash
                        counts["duplicates"] += 1
                news_by_source.append((item_id, source, digest))
            when = _iso(published)
            collected = _iso(published + timedelta(minutes=rng.randint(1, 45)))
            item_rows.append((item_id, source, kind, url, title, body, "someone", when,
                              collected, digest, parent, duplicate))
            flagged = (rng.random() < 0.4) if markets else (rng.random() < 0.0105)
            score = 0.5 + rng.random() / 2 if flagged else rng.random() ** 3 / 2
            class_rows.append((item_id, MODEL, round(score, 6), int(flagged), collected))
            if published < now - timedelta(days=365):
                class_rows.append((item_id, OLD_MODEL, round(score * 0.9, 6),
                                   int(score * 0.9 >= 0.5), collected))
            if flagged:
                flagged_ids.append((item_id, when))
            elif rng.random() < 1500 / items:
                others.append((item_id, when))
            for market, role in dict.fromkeys(roles):
                mention_rows.append((item_id, market, market, role))
                mention_items.append((item_id, market, role, when))
        with db.atomic():
            conn.executemany(
                "INSERT INTO items (id, source, kind, url, title, body, author, published_at, "
                "collected_at, content_hash, parent_id, duplicate_of) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", item_rows)
            conn.executemany("INSERT INTO classifications (item_id, model_version, score, "
                             "flagged, classified_at) VALUES (?, ?, ?, ?, ?)", class_rows)
            conn.executemany("INSERT OR IGNORE INTO mentions (item_id, market, surface, role) "
                             "VALUES (?, ?, ?, ?)", mention_rows)
        counts["items"] += len(item_rows)
        counts["classifications"] += len(class_rows)
        counts["mentions"] += len(mention_rows)
        show(f"items: {counts['items']:,} of {items:,}")
    counts["flagged"] = len(flagged_ids)

    with db.atomic():
        labeled = rng.sample(flagged_ids, min(1500, len(flagged_ids)))
        conn.executemany(
            "INSERT OR IGNORE INTO labels (item_id, label, analyst, labeled_at, note) "
            "VALUES (?, ?, 'analyst', ?, NULL)",
            [(i, int(rng.random() < 0.8), w) for i, w in labeled])
        conn.executemany(
            "INSERT OR IGNORE INTO labels (item_id, label, analyst, labeled_at, note) "
            "VALUES (?, 0, 'analyst', ?, NULL)",
            others)
        edges: dict[tuple[str, str], list] = {}
        for fallen, market, item_id, when in moves:
            edges.setdefault((fallen, market), []).append((item_id, when))
        conn.executemany(
            "INSERT OR IGNORE INTO lineage (predecessor, successor, kind, origin, count, "
            "first_seen_at, last_seen_at, first_item_id, last_item_id) "
            "VALUES (?, ?, 'successor', 'discovered', ?, ?, ?, ?, ?)",
            [(p, s, len(ev), ev[0][1], ev[-1][1], ev[0][0], ev[-1][0])
             for (p, s), ev in edges.items()])
        conn.executemany(
            "INSERT OR IGNORE INTO lineage_evidence (predecessor, successor, item_id, kind, "
            "seen_at) VALUES (?, ?, ?, 'successor', ?)",
            [(p, s, i, w) for (p, s), ev in edges.items() for i, w in ev])
        spread = [mention_items[int(len(mention_items) * rng.random())]
                  for _ in range(min(500, len(mention_items)))]
        conn.executemany(
            "INSERT INTO alerts (market, kind, raised_at, detail, notified_at) "
            "VALUES (?, 'rising', ?, '{}', ?)", [(m, w, w) for _i, m, _r, w in spread[:400]])
        conn.executemany(
            "INSERT INTO corroborations (market, corroborated_at, news_item_id, "
            "reddit_item_id) VALUES (?, ?, ?, ?)", [(m, w, i, i) for i, m, _r, w in spread])

    runs = 0
    run_start = now - timedelta(days=run_days)
    for name, every in [(n, 1800) for n, _, _ in feeds] + [(n, 600) for n, _, _ in subs]:
        rows = []
        moment = run_start + timedelta(seconds=rng.randrange(every))
        while moment < now:
            ok = rng.random() > 0.01
            rows.append((f"collect:{name}", _iso(moment), _iso(moment + timedelta(seconds=2)),
                         int(ok), 20, int(rng.random() < 0.1), None if ok else "timed out"))
            moment += timedelta(seconds=every)
        with db.atomic():
            conn.executemany("INSERT INTO runs (job, started_at, finished_at, ok, items_seen, "
                             "items_new, error) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        runs += len(rows)
    show(f"runs: {runs:,}")
    counts["runs"] = runs
    counts["now"] = _iso(now)
    db.close()
    return counts


def progress_printer() -> Callable[[str], None]:
    """Progress on a terminal only."""
    if not sys.stderr.isatty():
        return lambda _text: None
    return lambda text: print(f"\r  generating: {text}   ", end="", file=sys.stderr, flush=True)
