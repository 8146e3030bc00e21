"""Memory: the daemon's resident set over many cycles, against its size after warming up.

    python -m bench memory [--cycles 1000] [--feeds 50] [--every 10] [--quick]

A `Daemon` (monitor.daemon) opened as `monitor run` opens it, whose jobs are then called
directly, cycle after cycle, as its scheduler would call them: each source's collect job (in
a thread pool as large as the scheduler's), the heartbeat, and every tenth cycle the backlog
job. Calling them directly makes 1,000 cycles take minutes rather than the weeks the
intervals would; the per-host pause is 1 ms for the same reason. The feeds (a local server in
another process) answer 304 except one in ten per cycle, which has three new entries; those
are stored, scored and passed through the successor intelligence, so the database grows.

The resident set is read every `--every` cycles. Warm-up is the first tenth of the cycles
(imports, the model, the extractor's caches, SQLite's page cache filling). The baseline is
the resident set at the end of warm-up; the figures are the peak, and the growth after
warm-up (the largest reading after warm-up less the baseline, and a least-squares slope).
"""

from __future__ import annotations

import argparse
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._common import Report, peak_rss_mb, quiet_logs, rss_mb, timed, workdir
from ._feeds import FeedServer, FeedSpec, config_text

GOAL_PEAK_MB = 250.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--every", type=int, default=10, help="cycles between readings")
    parser.add_argument("--quick", action="store_true", help="a tiny run, for the tests")
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cycles, args.feeds, args.every = 20, 10, 2
    run(args.cycles, feeds=args.feeds, every=args.every, directory=args.dir)
    return 0


def run(cycles: int, *, feeds: int = 50, every: int = 10,
        directory: str | None = None) -> Report:
    from monitor import store
    from monitor.config import load_config
    from monitor.daemon import Daemon

    quiet_logs()
    report = Report("memory")
    spec = FeedSpec(feeds=feeds, entries=20, hosts=max(1, feeds // 2))
    print(f"memory: {cycles} daemon cycles over {feeds} feeds", flush=True)
    samples: list[tuple[int, float]] = []
    with workdir(directory, "bench-memory-") as work, FeedServer(spec) as server:
        db_path = work / "memory.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        config_path = work / "memory.toml"
        config_path.write_text(config_text(server, db_path, per_host_delay="0.001s"))
        config = load_config(config_path, env={})
        daemon = Daemon(config, signals=False)
        start_rss = rss_mb()
        daemon._open("daemon")  # what run() does before its scheduler starts
        names = list(daemon._sources)
        workers = max(2, config.http.concurrency)  # the scheduler's collect executor
        peak = _PeakSampler()
        try:
            with peak, ThreadPoolExecutor(workers) as pool, timed() as t:
                for cycle in range(cycles + 1):
                    server.set_cycle(cycle)
                    for results in pool.map(daemon._collect_job, names):
                        failed = [r for r in results if r.status == "error"]
                        if failed:
                            raise RuntimeError(f"memory: {failed[0].name}: {failed[0].error}")
                    daemon._heartbeat()
                    if cycle % 10 == 0:
                        daemon._backlog_job()
                    if cycle % every == 0:
                        samples.append((cycle, rss_mb()))
        finally:
            daemon._finish()
        db = store.open_db(db_path)
        items = store.count_items(db)
        scored = db.execute("SELECT count(DISTINCT item_id) FROM classifications").fetchone()[0]
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        db.close()

    warm_end = max(1, cycles // 10)
    baseline = next(rss for cycle, rss in samples if cycle >= warm_end)
    after = [(c, r) for c, r in samples if c >= warm_end]
    growth = max(r for _, r in after) - baseline
    slope = _slope(after) * 100
    report.fact("cycles", cycles)
    report.fact("seconds_per_cycle", round(t.wall / (cycles + 1), 3))
    report.fact("items_stored", items)
    report.fact("items_scored", scored)
    report.fact("runs_recorded", runs)
    report.fact("rss_before_open_mb", round(start_rss, 1))
    report.fact("rss_samples_mb", [(c, round(r, 1)) for c, r in samples], show=False)
    report.fact("process_peak_rss_mb", round(peak_rss_mb(), 1))
    report.add("peak RSS", max(peak.peak, *(r for _, r in samples)), "MB", baseline=baseline,
               baseline_name=f"RSS after warm-up (cycle {warm_end})", goal=GOAL_PEAK_MB,
               goal_of="value", note="read every 50 ms while the cycles ran")
    report.add("growth after warm-up", growth, "MB", baseline=baseline,
               baseline_name="RSS after warm-up",
               note=f"slope {slope:+.2f} MB per 100 cycles; final {samples[-1][1]:.1f} MB")
    return report


class _PeakSampler:
    """The highest resident set while the block runs, read every 50 ms in a thread (the
    process's own peak would include whatever ran in it before)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> _PeakSampler:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MB) per cycle."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(c for c, _ in points) / n
    my = sum(r for _, r in points) / n
    var = sum((c - mx) ** 2 for c, _ in points)
    return sum((c - mx) * (r - my) for c, r in points) / var if var else 0.0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
