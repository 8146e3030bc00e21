"""Write replay_timeline.jsonl: six weeks of invented chatter around a takedown.

Run it from anywhere: `python tests/data/make_timeline.py` (deterministic: same seed, same
file). Every text is made up for the tests; the takedown is the gazetteer's event
`archetyp-deep-sentinel-2025` (2025-06-16), the rest is fiction:

- background noise all along: Reddit talk about DrugHub and Vice City at a steady rate,
  opsec questions, crypto and Tor news, arrests, other senses of market names;
- 2025-06-16: Archetyp Market is seized (news and Reddit);
- a successor, "Quillon" (a name no gazetteer knows), first named 2025-06-17 08:41, then
  two a day until it takes off on 2025-06-19 (RISE_STARTS) at 8 to 14 items a day;
- a scam clone, "Archetyp Reloaded", launched 2025-06-18 and called a phishing clone and
  an LE honeypot from then on;
- a smaller share of users moving to Vice City;
- a news story on Quillon (2025-06-20), so that Reddit and news corroborate it.

The constants below are what tests/test_replay.py checks against.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20250616
START = datetime(2025, 5, 19, tzinfo=UTC)          # a Monday; six weeks to 2025-06-29
DAYS = 42
TAKEDOWN = datetime(2025, 6, 16, tzinfo=UTC)
FIRST_SUCCESSOR_AT = datetime(2025, 6, 17, 8, 41, tzinfo=UTC)
RISE_STARTS = datetime(2025, 6, 19, tzinfo=UTC)
CLONE_LAUNCH_AT = datetime(2025, 6, 18, 3, 12, tzinfo=UTC)
SUCCESSOR = "Quillon"
CLONE_SURFACE = "Archetyp Reloaded"
NOISE_MARKETS = ("DrugHub", "Vice City")

OUT = Path(__file__).resolve().parent / "replay_timeline.jsonl"

VENDORS = ["GreenLeafNL", "BerlinBakery", "NordicFrost", "PharmaKing", "SilentPost",
           "TulipExpress", "AlpineDirect", "CaptainCanna", "StealthyUK", "MoonMeds"]
PRODUCTS = ["MDMA", "ketamine", "hash", "LSD tabs", "weed", "speed", "2C-B", "xanax"]
SUBS = ["reddit/r/darknet", "reddit/r/onions", "reddit/r/deepweb"]
NEWS = ["darknetlive", "therecord", "bleepingcomputer"]


class Timeline:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: list[dict] = []
        self.count = 0

    def at(self, day: int, hour_lo: int = 0, hour_hi: int = 23) -> datetime:
        hour = self.rng.randint(hour_lo, hour_hi)
        return START + timedelta(days=day, hours=hour, minutes=self.rng.randint(0, 59))

    def reddit(self, when: datetime, title: str, body: str, *, comment: bool = False,
               sub: str | None = None) -> None:
        self.count += 1
        sub = sub or self.rng.choice(SUBS)
        base36 = _base36(0x1A2B3C + self.count * 7919)
        kind = "reddit_comment" if comment else "reddit_post"
        prefix = "t1" if comment else "t3"
        self.items.append({
            "id": f"reddit:{prefix}_{base36}", "source": sub, "kind": kind,
            "title": "" if comment else title, "body": body,
            "url": f"https://www.reddit.com/{sub.removeprefix('reddit/')}/comments/{base36}/",
            "published_at": when.isoformat()})

    def news(self, when: datetime, title: str, body: str, source: str | None = None) -> None:
        self.count += 1
        source = source or self.rng.choice(NEWS)
        digest = hashlib.sha256(f"{source}\x00{self.count}".encode()).hexdigest()[:24]
        slug = "-".join(title.lower().replace(",", "").replace(":", "").split()[:8])
        self.items.append({
            "id": f"feed:{digest}", "source": source, "kind": "news", "title": title,
            "body": body, "url": f"https://news.example.org/{source}/{slug}",
            "published_at": when.isoformat()})


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def background(t: Timeline) -> None:
    """Steady chatter that must never raise an alert."""
    r = t.rng
    drughub = [
        ("DrugHub review", "Ordered {p} from {v} on DrugHub, arrived in {n} days, stealth was "
         "fine. Monero only takes some getting used to."),
        ("", "DrugHub escrow worked for me again this week, {v} is reliable."),
        ("DrugHub login slow?", "Anyone else getting timeouts on the DrugHub login page "
         "tonight? The captcha loops for me."),
        ("", "I keep most of my orders on DrugHub because of the Monero-only policy."),
        ("Question about DrugHub vendor bonds", "How much is the vendor bond on DrugHub these "
         "days? Thinking of opening a small {p} shop."),
        ("", "{v} restocked {p} on DrugHub, prices went up a bit though."),
        ("DrugHub dispute took a week", "My dispute on DrugHub with {v} took a week but the "
         "mods refunded half. Fair enough."),
    ]
    vicecity = [
        ("Vice City market experiences?", "Has anyone used Vice City market recently? "
         "Wondering how their multisig works."),
        ("", "Vice City market has a decent {p} selection, {v} ships from the EU."),
        ("", "The Vice City market forum is pretty quiet compared to Dread."),
        ("Vice City withdrawal fees", "Withdrawal fees on Vice City market seem high this "
         "month, anyone compared?"),
    ]
    opsec = [
        ("PGP key question", "Should I make a new PGP key for every market account or keep "
         "one? Trying to keep my opsec tight."),
        ("Tails or Whonix?", "New here. Tails on a USB stick or Whonix in a VM for browsing "
         "onion sites?"),
        ("", "Never keep coins on a market wallet longer than you need to, withdraw to your "
         "own wallet."),
        ("Monero wallet recommendations", "Feather or Cake wallet for XMR? I just want "
         "something simple."),
        ("", "Always check the PGP-signed mirror list before you log in anywhere."),
        ("How do you verify onion links?", "Where do people get verified links these days? "
         "I only trust signed messages."),
        ("Shipping to Canada", "Are there any vendors that still ship {p} to Canada without "
         "a customs seizure every other time?"),
    ]
    news = [
        ("Tor Browser 14.5 released with security fixes", "The Tor Project shipped a new "
         "stable release of Tor Browser with updated Firefox ESR fixes and onion service "
         "improvements."),
        ("Bitcoin slips below {k}k as traders await rate decision", "Cryptocurrency markets "
         "fell on Tuesday; analysts pointed to uncertainty ahead of the central bank "
         "meeting."),
        ("Man sentenced for selling counterfeit pills online", "A {a}-year-old was sentenced "
         "to {y} years in prison after investigators traced bitcoin payments for "
         "counterfeit pills sold to customers across several states."),
        ("Police seize cannabis farm in warehouse raid", "Officers found more than {n}00 "
         "plants in an industrial unit; two men were arrested at the scene."),
        ("Ransomware gang leaks data of regional hospital", "Attackers published files "
         "stolen from a hospital network after a ransom deadline passed."),
        ("Study: onion services still used mostly for forums", "Researchers crawled "
         "thousands of onion addresses and found discussion boards outnumber shops."),
        ("Silk Road exhibition opens at city museum", "The exhibition follows the ancient "
         "Silk Road trade route through caravan cities, with textiles and ceramics on show."),
        ("Empire State Building lights up for anniversary", "The landmark changed its "
         "colours for the evening as part of the city's celebrations."),
        ("Founders chase a dream market for plant-based snacks", "The startup hopes its "
         "new range will open a dream market among health-conscious shoppers."),
        ("Vendor arrested after package interception", "Customs officers intercepted "
         "parcels of {p}; the alleged darknet vendor was arrested at his home."),
    ]
    for day in range(DAYS):
        for _ in range(r.randint(2, 4)):
            title, body = r.choice(drughub)
            _emit(t, day, title, body)
        for _ in range(r.choice((0, 1, 1, 2))):
            title, body = r.choice(vicecity)
            _emit(t, day, title, body)
        for _ in range(r.randint(0, 2)):
            title, body = r.choice(opsec)
            _emit(t, day, title, body)
        if r.random() < 0.7:
            title, body = r.choice(news)
            t.news(t.at(day, 6, 20), _fill(r, title), _fill(r, body))


def _fill(r: random.Random, text: str) -> str:
    return text.format(p=r.choice(PRODUCTS), v=r.choice(VENDORS), n=r.randint(2, 9),
                       k=r.randint(58, 71), a=r.randint(24, 51), y=r.randint(3, 12))


def _emit(t: Timeline, day: int, title: str, body: str, *, hours: tuple[int, int] = (0, 23)
          ) -> None:
    r = t.rng
    when = t.at(day, *hours)
    t.reddit(when, _fill(r, title), _fill(r, body), comment=not title)


def archetyp_before(t: Timeline) -> None:
    """Archetyp as an ordinary market before the takedown: one or two items a day."""
    r = t.rng
    texts = [
        ("Archetyp Market vendor recommendations?", "Looking for a {p} vendor on Archetyp "
         "Market that ships within Germany."),
        ("", "Archetyp Market support answered my ticket in a day, good experience."),
        ("", "{v} on Archetyp has the best {p} I've tried this year."),
        ("Archetyp Market fees", "Does Archetyp Market still charge the same commission on "
         "{p} listings?"),
        ("", "The Archetyp Market forum has a good thread on packaging."),
    ]
    for day in range(28):
        for _ in range(r.randint(1, 2)):
            title, body = r.choice(texts)
            _emit(t, day, title, body)


def takedown(t: Timeline) -> None:
    """2025-06-16: the seizure, in the news and on Reddit."""
    r = t.rng
    day = 28
    t.news(START + timedelta(days=day, hours=9, minutes=5),
           "Europol: Archetyp Market taken down in Operation Deep Sentinel",
           "Police in several countries took down Archetyp Market, a long-running darknet "
           "drug market. Its administrator was arrested in Spain and servers in the "
           "Netherlands were seized.", "therecord")
    t.news(START + timedelta(days=day, hours=10, minutes=40),
           "Archetyp darknet market seized, admin arrested",
           "Law enforcement agencies seized the infrastructure of Archetyp Market; the site "
           "now shows a seizure banner.", "bleepingcomputer")
    t.news(START + timedelta(days=day, hours=13, minutes=2),
           "Archetyp Market seizure: what we know",
           "The seizure of Archetyp Market ends one of the oldest drug markets on Tor. "
           "Investigators say they collected data on vendors.", "darknetlive")
    posts = [
        ("Archetyp down?", "Archetyp Market shows a seizure banner. Is this real?"),
        ("", "Archetyp Market is gone, the banner has Europol logos on it."),
        ("", "Glad I withdrew from Archetyp last week. Feel bad for everyone with funds "
         "there."),
        ("Archetyp Market seized", "Confirmed by the Europol press release. Archetyp is "
         "seized and the admin arrested."),
        ("", "Wipe everything you ever sent to Archetyp vendors, they have the database."),
        ("Archetyp gone - wallets?", "My Archetyp Market wallet had 0.4 XMR. Any chance "
         "of getting that back?"),
        ("", "RIP Archetyp. Eight years is a long run for a market."),
    ]
    for title, body in posts:
        t.reddit(t.at(day, 11, 23), title, body, comment=not title)
    for day in (29, 30):
        for _ in range(2):
            title, body = r.choice(posts[1:])
            t.reddit(t.at(day), title, body, comment=not title)


def successor(t: Timeline) -> None:
    """Quillon: named first on 06-17 08:41, two a day, then the rise from 06-19."""
    r = t.rng
    t.reddit(FIRST_SUCCESSOR_AT, "Archetyp refugees: where now?",
             "Archetyp is gone. A new market called Quillon opened a few weeks ago and some "
             "Archetyp vendors are moving there.", sub="reddit/r/darknet")
    t.reddit(datetime(2025, 6, 17, 19, 30, tzinfo=UTC), "",
             "After Archetyp went down I signed up on Quillon Market, looks clean so far.",
             comment=True)
    t.reddit(datetime(2025, 6, 18, 10, 5, tzinfo=UTC), "",
             "Quillon Market is where the Archetyp vendors I followed went.", comment=True)
    t.reddit(datetime(2025, 6, 18, 21, 47, tzinfo=UTC), "Quillon?",
             _fill(r, "Is Quillon Market legit? Saw {v} moved there after Archetyp got "
                   "seized."))
    posts = [
        ("Moved to Quillon", "Everyone from Archetyp seems to be moving to Quillon Market. "
         "{v} already has {p} listed there."),
        ("", "Quillon Market is the new Archetyp, same vendors, lower fees."),
        ("", "Switched to Quillon Market after the Archetyp seizure, the escrow works."),
        ("Quillon Market guide", "Quick guide for Archetyp refugees: how to sign up on "
         "Quillon Market and set up PGP 2FA."),
        ("", "{v} confirmed on Dread that they moved to Quillon Market."),
        ("Quillon vs Vice City", "With Archetyp gone, Quillon Market looks better than Vice "
         "City for {p}, more vendors moved there."),
        ("", "Quillon Market took over most of the Archetyp vendors, the listings keep "
         "growing."),
        ("First order on Quillon", "Got my first {p} order from Quillon Market, the "
         "replacement for Archetyp works fine."),
        ("", "Migrated my vendor shop from Archetyp to Quillon Market this week."),
        ("Quillon Market onboarding", "Quillon Market is where everyone went after Archetyp, "
         "the signup queue took an hour."),
        ("", "Honestly Quillon Market filled the gap Archetyp left faster than anyone "
         "expected."),
    ]
    per_day = {19: 9, 20: 14, 21: 12, 22: 11, 23: 10, 24: 9, 25: 10, 26: 8, 27: 9, 28: 8,
               29: 9}
    for date, count in per_day.items():
        day = (datetime(2025, 6, date, tzinfo=UTC) - START).days
        for _ in range(count):
            title, body = r.choice(posts)
            # From 06:00 on the first day of the rise, so that RISE_STARTS is its start.
            _emit(t, day, title, body, hours=(6, 23) if date == 19 else (0, 23))
    t.news(datetime(2025, 6, 20, 14, 20, tzinfo=UTC),
           "Archetyp users flock to Quillon Market after takedown",
           "Days after Archetyp Market was seized, researchers see its vendors migrating to "
           "a newer darknet market called Quillon, which has doubled its listings.",
           "darknetlive")


def clone(t: Timeline) -> None:
    """Archetyp Reloaded: a phishing clone, and the warnings about it."""
    t.reddit(CLONE_LAUNCH_AT, "Archetyp Reloaded is live",
             "Archetyp Reloaded is live! Same vendors, same escrow, link in my profile.")
    warnings = [
        (datetime(2025, 6, 18, 9, 40, tzinfo=UTC), "PSA: Archetyp Reloaded is a phishing "
         "clone", "Archetyp Reloaded is a phishing clone. It stole my deposit, stay away."),
        (datetime(2025, 6, 18, 16, 3, tzinfo=UTC), "",
         "That Archetyp Reloaded link steals your coins, do not deposit anything."),
        (datetime(2025, 6, 19, 8, 15, tzinfo=UTC), "Archetyp Reloaded = LE honeypot?",
         "Mods on Dread say Archetyp Reloaded is run by the feds. Don't use it."),
        (datetime(2025, 6, 19, 22, 50, tzinfo=UTC), "",
         "Lost 0.2 XMR to Archetyp Reloaded. It's a scam, the withdraw button does nothing."),
        (datetime(2025, 6, 20, 12, 30, tzinfo=UTC), "Warning about Archetyp Reloaded",
         "Archetyp Reloaded is a phishing site that harvests your login and PGP key."),
        (datetime(2025, 6, 21, 7, 45, tzinfo=UTC), "",
         "Whoever runs Archetyp Reloaded is a scammer. Stay away from Archetyp Reloaded."),
        (datetime(2025, 6, 22, 18, 5, tzinfo=UTC), "Archetyp Reloaded still up",
         "People still fall for Archetyp Reloaded. It is a phishing clone, not a relaunch."),
        (datetime(2025, 6, 24, 11, 20, tzinfo=UTC), "",
         "Reminder: Archetyp Reloaded is an LE honeypot, never log in there."),
    ]
    for when, title, body in warnings:
        t.reddit(when, title, body, comment=not title)
    t.news(datetime(2025, 6, 21, 15, 0, tzinfo=UTC),
           "Phishing clones target Archetyp users after seizure",
           "Researchers warn that a site calling itself Archetyp Reloaded is a phishing "
           "clone that harvests the logins of former Archetyp Market users.", "therecord")


def vice_city_share(t: Timeline) -> None:
    """A smaller part of the Archetyp users moving to Vice City."""
    r = t.rng
    texts = [
        ("", "After Archetyp went down I moved to Vice City market, fewer vendors though."),
        ("Archetyp vendors on Vice City", "A few Archetyp vendors moved to Vice City market "
         "this week, mostly the German ones."),
        ("", "Vice City market picked up some Archetyp refugees this week."),
    ]
    for date in (17, 18, 20, 22, 24, 26):
        day = (datetime(2025, 6, date, tzinfo=UTC) - START).days
        title, body = r.choice(texts)
        _emit(t, day, title, body)


def build() -> list[dict]:
    t = Timeline(random.Random(SEED))
    background(t)
    archetyp_before(t)
    takedown(t)
    successor(t)
    clone(t)
    vice_city_share(t)
    return sorted(t.items, key=lambda i: (i["published_at"], i["id"]))


def main() -> None:
    items = build()
    with OUT.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} items to {OUT}")


if __name__ == "__main__":
    main()
