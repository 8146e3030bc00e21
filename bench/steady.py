"""Steady state: one collection cycle over many feeds of which most answer 304.

    python -m bench steady [--feeds 500] [--hosts 250] [--latency 0.2] [--cycles 5] [--quick]

500 feeds on 250 sites (ports of a local server in another process; two feeds a site, so
the per-host pause of the config, 1 s by default, is kept and matters). Each response takes
`--latency` seconds, standing for the network and the far server. In each cycle one feed in
ten has three new entries (its 20-entry document changes) and the rest answer 304 to the
ETag. A cycle is `pipeline.collect` with the classifier's hook and the configured
concurrency, after a first cycle (not timed) has stored every feed's entries; each cycle gets
a fresh HTTP session and politeness gate, as a daemon polling every 30 minutes would (its
keep-alive connections are long closed by then). The process keeps malloc to the daemon's
arenas (monitor.heap), for the cycle and the baseline alike.

The baseline, in the same run: a bare client (requests, a thread pool of the same size, the
same conditional GETs, no pauses, no database) that also parses the changed documents with
feedparser. "CPU beyond parsing" is the cycle's CPU less the CPU its fetch threads spent in
`parse_feed` (their own thread time, read around each call), against the bare client's CPU
less its parsing. The cycle's CPU less the bare client's parsing is shown too: it was the
measure until the bare client's parsing of the same documents was seen to vary by a fifth
from one run to the next, while the cycle's CPU did not.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import feedparser
import requests

from ._common import Report, quiet_logs, timed, workdir
from ._feeds import FeedServer, FeedSpec, config_text

if TYPE_CHECKING:
    from collections.abc import Iterator

GOAL_WALL = 5.0
GOAL_CPU_BEYOND_PARSING = 1.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench steady")
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=None, help="sites (default feeds / 2)")
    parser.add_argument("--entries", type=int, default=20, help="entries in each feed")
    parser.add_argument("--latency", type=float, default=0.2,
                        help="seconds each response takes (network and far server)")
    parser.add_argument("--cycles", type=int, default=5, help="cycles measured")
    parser.add_argument("--quick", action="store_true", help="a tiny run, for the tests")
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.quick:  # one feed a site: no politeness pause to wait for
        args.feeds, args.entries, args.cycles, args.latency = 20, 5, 1, 0.01
        args.hosts = args.feeds
    run(args.feeds, hosts=args.hosts or max(1, args.feeds // 2), entries=args.entries,
        latency=args.latency, cycles=args.cycles, directory=args.dir)
    return 0


def run(feeds: int, *, hosts: int, entries: int = 20, latency: float = 0.2, cycles: int = 5,
        directory: str | None = None) -> Report:
    from monitor import heap, pipeline, store
    from monitor.classify import make_hook
    from monitor.classify.apply import current_classifier
    from monitor.config import load_config

    quiet_logs()
    heap.cap_malloc_arenas()  # as the daemon runs its cycles (the bare client shares it)
    report = Report("steady")
    spec = FeedSpec(feeds=feeds, entries=entries, hosts=hosts, latency=latency)
    print(f"steady: {feeds} feeds on {hosts} sites, {latency * 1000:.0f} ms a response, "
          f"{cycles} cycles", flush=True)
    with workdir(directory, "bench-steady-") as work, FeedServer(spec) as server:
        db_path = work / "steady.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        config_path = work / "steady.toml"
        config_path.write_text(config_text(server, db_path))
        config = load_config(config_path, env={})
        concurrency = config.http.concurrency
        db = store.open_db(db_path)
        hook = make_hook(config)
        current_classifier(db, db_path)
        # Cycle 0, not timed: every feed's entries are stored and scored.
        first = pipeline.collect(db, pipeline.build_sources(config), concurrency=concurrency,
                                 on_new=hook)
        failed = [r for r in first if r.status == "error"]
        if failed:
            raise RuntimeError(f"steady: {len(failed)} feeds failed: {failed[0].error}")
        bare = _BareClient([server.url(i) for i in range(feeds)], concurrency)
        bare.cycle()  # learns the ETags, as the pipeline's first cycle did

        walls, cpus, base_walls, base_cpus, parse_cpus, sent, new = [], [], [], [], [], [], []
        own_parse_cpus: list[float] = []
        for cycle in range(1, cycles + 1):
            server.set_cycle(cycle)
            sources = pipeline.build_sources(config)
            server.reset_stats()
            with _parse_meter() as own_parse, timed() as t:
                results = pipeline.collect(db, sources, concurrency=concurrency, on_new=hook)
            stats = server.stats()
            errors = [r for r in results if r.status == "error"]
            if errors:
                raise RuntimeError(f"steady: {len(errors)} feeds failed: {errors[0].error}")
            walls.append(t.wall)
            cpus.append(t.cpu)
            own_parse_cpus.append(sum(own_parse))
            sent.append(stats)
            new.append(sum(r.new for r in results))
            with timed() as b:
                parse_cpu = bare.cycle()
            base_walls.append(b.wall)
            base_cpus.append(b.cpu)
            parse_cpus.append(parse_cpu)
        db.close()

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    changed = [s.get("200", 0) for s in sent]
    report.fact("concurrency", concurrency)
    report.fact("per_host_delay_s", float(config.http.per_host_delay))
    report.fact("requests_per_cycle", [s["requests"] for s in sent])
    report.fact("answered_304_per_cycle", [s.get("304", 0) for s in sent])
    report.fact("answered_200_per_cycle", changed)
    report.fact("new_items_per_cycle", new)
    report.add(f"cycle of {feeds} sources (wall)", mean(walls), "s", baseline=mean(base_walls),
               baseline_name="bare conditional GETs + parse", goal=GOAL_WALL, goal_of="value",
               note=f"worst {max(walls):.2f}s")
    report.add(f"cycle of {feeds} sources (CPU)", mean(cpus), "s", baseline=mean(base_cpus),
               baseline_name="bare client CPU")
    bare_beyond = mean(base_cpus) - mean(parse_cpus)
    report.add("CPU beyond parsing the changed feeds", mean(cpus) - mean(own_parse_cpus), "s",
               baseline=bare_beyond, baseline_name="bare client, beyond its parsing",
               goal=GOAL_CPU_BEYOND_PARSING, goal_of="value",
               note=f"its parsing {mean(own_parse_cpus):.2f}s of {mean(changed):.0f} documents")
    report.add("CPU beyond the bare client's parsing", mean(cpus) - mean(parse_cpus), "s",
               baseline=bare_beyond, baseline_name="bare client, same",
               note=f"the bare client's parsing {mean(parse_cpus):.2f}s")
    report.add("requests sent per cycle", mean([s["requests"] for s in sent]), "requests",
               baseline=feeds, baseline_name="one per source")
    return report


@contextmanager
def _parse_meter() -> Iterator[list[float]]:
    """The thread CPU seconds of each parse_feed call of the fetch threads meanwhile (a
    document handed to the parsing workers would not be counted: the steady cycle never
    starts them)."""
    from monitor.collect import feeds

    spent: list[float] = []
    parse = feeds.parse_feed

    def metered(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return parse(*args, **kwargs)
        finally:
            spent.append(time.thread_time() - start)  # list.append is atomic

    feeds.parse_feed = metered
    try:
        yield spent
    finally:
        feeds.parse_feed = parse


class _BareClient:
    """The least a cycle can cost: conditional GETs in a thread pool, then parse what
    changed. Returns the CPU seconds spent parsing."""

    def __init__(self, urls: list[str], concurrency: int) -> None:
        self.urls = urls
        self.concurrency = concurrency
        self.etags: dict[str, str] = {}

    def cycle(self) -> float:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=self.concurrency,
                                                pool_maxsize=self.concurrency)
        session.mount("http://", adapter)

        def get(url: str) -> tuple[str, int, str | None, bytes]:
            headers = {"If-None-Match": self.etags[url]} if url in self.etags else {}
            resp = session.get(url, headers=headers, timeout=60)
            return url, resp.status_code, resp.headers.get("ETag"), resp.content

        with ThreadPoolExecutor(self.concurrency) as pool:
            answers = list(pool.map(get, self.urls))
        session.close()
        with timed() as parsing:
            for url, status, etag, body in answers:
                if status == 200:
                    feedparser.parse(body)
                if etag:
                    self.etags[url] = etag
        return parsing.cpu


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
