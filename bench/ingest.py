"""Ingest: N feed entries through the real collect path, against the least it can cost.

    python -m bench ingest [--n 10000 --n 100000] [--per-feed 100] [--quick] [--dir D]

The pipeline: `pipeline.collect` over generated feeds served from 127.0.0.1 (another
process), with the classifier's hook, exactly as `monitor collect` runs it: conditional GET,
feedparser, normalising to items, dedupe, one transaction per feed, scoring, market
mentions and the successor intelligence. Process start-up, imports and model loading are
left out: the model is trained (or loaded) and one warm-up feed collected before the clock
starts. The politeness pause is set to 1 ms here (it is the steady-state benchmark's subject).

The baseline, in the same run: `feedparser.parse` of the same bytes plus a raw `sqlite3`
`executemany` of the same rows (id, source, url, title, body, published) into a plain table,
in one transaction: what any pipeline that parses feeds and keeps their entries must pay.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import feedparser

from ._common import Report, Timing, quiet_logs, timed, workdir
from ._feeds import FeedServer, FeedSpec, config_text, render

if TYPE_CHECKING:
    from monitor.collect.feeds import FeedSource
    from monitor.config import Config
    from monitor.pipeline import NewItemsHook

GOAL_RATIO = 1.5


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ingest")
    parser.add_argument("--n", type=int, action="append",
                        help="entries to ingest (repeatable; default 10000 and 100000)")
    parser.add_argument("--per-feed", type=int, default=100, help="entries in each feed")
    parser.add_argument("--quick", action="store_true", help="a tiny N, for the tests")
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = args.n or ([300] if args.quick else [10_000, 100_000])
    per_feed = min(args.per_feed, 50) if args.quick else args.per_feed
    reports = [run(n, per_feed=per_feed, directory=args.dir) for n in sizes]
    return 0 if reports else 1


def run(n: int, *, per_feed: int = 100, directory: str | None = None) -> Report:
    from monitor import pipeline, store
    from monitor.classify import make_hook
    from monitor.classify.apply import current_classifier
    from monitor.config import load_config

    quiet_logs()
    report = Report("ingest")
    feeds = max(1, -(-n // per_feed))
    per_feed = -(-n // feeds)
    print(f"ingest: {feeds * per_feed:,} entries in {feeds} feeds of {per_feed}", flush=True)
    # One more feed than measured: the last one warms the path up before the clock starts.
    spec = FeedSpec(feeds=feeds + 1, entries=per_feed, hosts=min(feeds + 1, 16))
    with workdir(directory, "bench-ingest-") as work, FeedServer(spec) as server:
        db_path = work / f"ingest-{n}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        config_path = work / f"ingest-{n}.toml"
        config_path.write_text(config_text(server, db_path, per_host_delay="0.001s"))
        config = load_config(config_path, env={})
        db = store.open_db(db_path)
        sources = pipeline.build_sources(config)
        pipeline.register(db, sources)
        hook = make_hook(config)

        # Warm-up, not timed: train or load the model, import everything, build the
        # extractor, and collect the warm-up feed through the whole path.
        current_classifier(db, db_path)
        pipeline.collect(db, sources[-1:], concurrency=1, on_new=hook)
        measured = sources[:-1]
        stored_before = store.count_items(db)

        hook_time = [0.0]

        def timed_hook(db, ids, now):  # the pipeline's hook, timed
            with timed() as t:
                hook(db, ids, now)
            hook_time[0] += t.wall

        with timed() as pipe:
            results = pipeline.collect(db, measured, concurrency=config.http.concurrency,
                                       on_new=timed_hook)
        stored = store.count_items(db) - stored_before
        scored = db.execute("SELECT count(*) FROM classifications").fetchone()[0]
        failed = [r for r in results if r.status == "error"]
        db.close()
        if failed:
            raise RuntimeError(f"ingest: {len(failed)} feeds failed: {failed[0].error}")
        entries = feeds * per_feed

        # The baseline: parse the same bytes, then one executemany of the same rows.
        documents = [(f"bench-{i:06d}", render(spec, i, 0)) for i in range(feeds)]
        base_db = work / f"baseline-{n}.db"
        base_db.unlink(missing_ok=True)
        parse, rows = Timing(), []
        for name, body in documents:  # one document at a time, as a pipeline would
            with timed() as one:
                doc = feedparser.parse(body)
            parse.wall, parse.cpu = parse.wall + one.wall, parse.cpu + one.cpu
            with timed() as one:
                rows += [(f"{name}:{e.get('id')}", name, e.get("link"), e.get("title"),
                          (e.get("content") or [{}])[0].get("value") or e.get("summary"),
                          e.get("published") or e.get("updated")) for e in doc.entries]
            parse.wall, parse.cpu = parse.wall + one.wall, parse.cpu + one.cpu
        with timed() as insert:
            conn = sqlite3.connect(base_db)
            conn.execute("CREATE TABLE items (id TEXT PRIMARY KEY, source TEXT, url TEXT, "
                         "title TEXT, body TEXT, published TEXT)")
            with conn:
                conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.close()
        base_db.unlink(missing_ok=True)
        baseline = parse.wall + insert.wall
        stages = _stages(config, work / f"stages-{n}.db", sources[:min(10, feeds)], hook)

    report.fact("entries", entries)
    report.fact("items_stored", stored)
    report.fact("items_scored", scored)
    report.fact("baseline_rows", len(rows))
    report.add(f"pipeline, {entries:,} entries (wall)", pipe.wall, "s", baseline=baseline,
               baseline_name="feedparser.parse + sqlite3 executemany", goal=GOAL_RATIO)
    report.add(f"pipeline, {entries:,} entries (CPU)", pipe.cpu, "s",
               baseline=parse.cpu + insert.cpu, baseline_name="same, CPU")
    report.add("throughput", entries / pipe.wall, "entries/s",
               baseline=entries / baseline, baseline_name="feedparser.parse + executemany")
    report.add("classifier hook (scoring, mentions, intelligence)", hook_time[0], "s",
               note=f"{hook_time[0] / pipe.wall:.0%} of the pipeline")
    report.add("baseline parse (and taking the rows out)", parse.wall, "s",
               note=f"executemany {insert.wall:.3f}s")
    report.fact("cpu_ms_per_entry_by_stage", stages)
    return report


def _stages(config: Config, db_path: Path, sources: list[FeedSource], hook: NewItemsHook
            ) -> dict[str, float]:
    """CPU milliseconds per entry of each stage, one feed after another in this thread,
    with the product's own functions: where the pipeline's time goes."""
    from monitor import store
    from monitor.collect.feeds import entries_to_items, parse_feed
    from monitor.http import fetch
    from monitor.timeutil import utcnow

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db = store.open_db(db_path)
    spent = dict.fromkeys(("fetch", "parse", "normalise", "store", "classify_and_intel"), 0.0)
    now, entries, new_ids = utcnow(), 0, []
    for source in sources:
        store.ensure_source(db, source.name, source.kind, source.target)
        with timed() as t:
            resp = fetch(source.session, source.target, config.http)
        spent["fetch"] += t.cpu
        with timed() as t:
            parsed = parse_feed(resp.body, resp.headers)
        spent["parse"] += t.cpu
        with timed() as t:
            items = entries_to_items(parsed, source=source.name, base_url=resp.url, now=now)
        spent["normalise"] += t.cpu
        with timed() as t:
            new_ids += store.record_fetch(db, source.name, items, now)
        spent["store"] += t.cpu
        entries += len(parsed.entries)
    with timed() as t:
        hook(db, new_ids, now)
    spent["classify_and_intel"] += t.cpu
    db.close()
    return {stage: round(1000 * cpu / max(1, entries), 3) for stage, cpu in spent.items()}


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
