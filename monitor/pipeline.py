"""One collection cycle: fetch due sources concurrently, store each result in one transaction,
record the run, and hand the new items on (to the classifier).

Fetching runs in a bounded thread pool (network I/O only); everything that touches the
database happens in the calling thread, so SQLite sees a single writer.
"""

from __future__ import annotations

import logging
import queue
import random
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlite_utils import Database

from . import store
from .collect import parse_pool
from .collect.base import Fetched, Source
from .collect.feeds import FeedSource
from .config import Config
from .errors import SourceError
from .http import HostGate, make_session
from .timeutil import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

BACKOFF_BASE = 60.0
BACKOFF_CAP = 6 * 3600.0
# New items of several sources go to on_new together, up to about this many: its fixed cost
# per call (the model's calibrated predict, the intelligence queries) is then paid per batch
# rather than per source (bench/steady.py, bench/ingest.py).
HOOK_BATCH = 1000

NewItemsHook = Callable[[Database, list[str], datetime], None]


@dataclass
class SourceResult:
    name: str
    kind: str
    status: str  # "new", "not_modified", "error", "skipped"
    seen: int = 0
    new: int = 0
    error: str | None = None
    new_ids: list[str] = field(default_factory=list)
    next_attempt_at: str | None = None


def backoff_delay(failures: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait after `failures` consecutive failures: doubling, capped, jittered."""
    if failures <= 0:
        return 0.0
    delay = min(cap, base * 2 ** (failures - 1))
    jitter = (rng or random).uniform(0.9, 1.1)
    return min(cap, delay * jitter)


def in_backoff(state: dict, now: datetime) -> bool:
    nxt = state.get("next_attempt_at")
    return bool(nxt) and parse_iso(nxt) > now


def build_sources(config: Config, *, gate: HostGate | None = None) -> list[Source]:
    """Every source the config names, sharing one HTTP session and politeness gate."""
    hosts = {urlsplit(feed.url).netloc.lower() for feed in config.feeds if feed.enabled}
    session = make_session(config.http.user_agent, pool_size=max(10, config.http.concurrency),
                           hosts=len(hosts) + 1)  # one more for Reddit
    gate = gate or HostGate(delay=config.http.per_host_delay)
    processes = config.http.parse_processes
    parser = parse_pool.ParsePool(processes) if processes else None
    sources: list[Source] = [FeedSource(feed, session, config.http, gate, parser=parser)
                             for feed in config.feeds if feed.enabled]
    if config.reddit is not None:
        from .collect.reddit import reddit_sources

        sources.extend(reddit_sources(config.reddit, config.http, session=session, gate=gate))
    return sources


def register(db: Database, sources: Iterable[Source]) -> None:
    rows = []
    for s in sources:
        rows.append((s.name, s.kind, s.target))
        # A source may report on parts it does not fetch alone (a Reddit listing: one row per
        # subreddit of its batch); they stay active while the config names them.
        rows.extend(getattr(s, "members", ()))
    store.register_sources(db, list(dict.fromkeys(rows)))


def collect(db: Database, sources: Sequence[Source], *, now: datetime | None = None,
            force: bool = False, concurrency: int = 8, on_new: NewItemsHook | None = None,
            progress: Callable[[SourceResult], None] | None = None) -> list[SourceResult]:
    """Run one cycle over `sources`; one failing source never stops the others."""
    now = now or utcnow()
    register_missing(db, sources)
    results: list[SourceResult] = []
    due: list[tuple[Source, dict]] = []
    states = store.source_states(db, (source.name for source in sources))
    for source in sources:
        state = states[source.name]
        if not force and in_backoff(state, now):
            result = SourceResult(source.name, source.kind, "skipped",
                                  error=state.get("last_error"),
                                  next_attempt_at=state.get("next_attempt_at"))
            results.append(result)
            if progress:
                progress(result)
        else:
            due.append((source, state))
    if not due:
        return results
    handed: list[tuple[SourceResult, int]] = []  # stored, waiting for on_new
    try:
        _run_due(db, due, now, concurrency, on_new, progress, results, handed)
    finally:
        # Parsing workers live for one cycle: between cycles no processes wait around.
        parse_pool.release_all(source for source, _ in due)
    if on_new:
        _hand_on(db, handed, on_new, now)
    return results


def _run_due(db: Database, due: list[tuple[Source, dict]], now: datetime, concurrency: int,
             on_new: NewItemsHook | None, progress: Callable[[SourceResult], None] | None,
             results: list[SourceResult], handed: list[tuple[SourceResult, int]]) -> None:
    """Fetch the due sources concurrently; store each as it arrives, in this thread."""
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(due))),
                            thread_name_prefix="fetch") as pool:
        pending: dict[Future, tuple[Source, dict, int]] = {}
        # Each fetch reports its end here: wait(FIRST_COMPLETED) would install and remove a
        # waiter on every pending future each time, quadratic in the number of sources.
        finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
        with db.atomic():  # one commit for all the run rows, not one each
            run_ids = [store.start_run(db, f"collect:{s.name}", now) for s, _ in due]
        for (source, state), run_id in zip(due, run_ids, strict=True):
            future = pool.submit(source.fetch, state, now)
            pending[future] = (source, state, run_id)
            future.add_done_callback(finished.put)
        waiting = 0  # new items handed, not yet given to on_new
        while pending:
            future = finished.get()
            source, state, run_id = pending.pop(future)
            result = _settle(db, source, state, future, now, run_id, on_new, handed)
            results.append(result)
            if progress:
                progress(result)
            if on_new:
                waiting += result.new  # with on_new, a result with new items was handed
                if waiting >= HOOK_BATCH:
                    _hand_on(db, handed, on_new, now)
                    handed.clear()
                    waiting = 0


def register_missing(db: Database, sources: Iterable[Source]) -> None:
    with db.atomic():  # one commit, not one per source
        for source in sources:
            store.ensure_source(db, source.name, source.kind, source.target)


def _settle(db: Database, source: Source, state: dict, future: Future, now: datetime,
            run_id: int, on_new: NewItemsHook | None,
            handed: list[tuple[SourceResult, int]]) -> SourceResult:
    try:
        fetched: Fetched = future.result()
    except SourceError as exc:
        return _fail(db, source, state, now, run_id, str(exc), gap=exc.gap,
                     retry_after=exc.retry_after)
    except Exception as exc:  # a bug in a collector must not stop the cycle
        log.exception("%s: collector crashed", source.name)
        return _fail(db, source, state, now, run_id,
                     f"internal error: {type(exc).__name__}: {exc}")
    seen = fetched.seen if fetched.seen is not None else (
        len(fetched.items) + len(fetched.pending))
    try:
        new_ids = store.record_fetch(
            db, source.name, fetched.items, now, etag=fetched.etag, modified=fetched.modified,
            cursor=fetched.cursor, pending=fetched.pending)
    except sqlite3.Error as exc:
        # Nothing was committed, validators included: the next cycle fetches it all again.
        log.error("%s: could not store %d items: %s", source.name,
                  len(fetched.items) + len(fetched.pending), exc)
        _finish(db, run_id, now, ok=False, seen=seen, error=f"database: {exc}")
        return SourceResult(source.name, source.kind, "error", seen=seen,
                            error=f"database: {exc}")
    except Exception as exc:  # making the pending items failed (rolled back): a collector bug
        log.exception("%s: collector crashed", source.name)
        return _fail(db, source, state, now, run_id,
                     f"internal error: {type(exc).__name__}: {exc}")
    after_store = getattr(fetched, "after_store", None)
    if after_store is not None:
        # Optional: what the fetch learnt beyond its items (Reddit: each subreddit's health),
        # recorded here because only this thread writes.
        try:
            after_store(db, now)
        except sqlite3.Error as exc:
            log.error("%s: could not record the state of its parts: %s", source.name, exc)
    for warning in fetched.warnings:
        log.warning("%s: %s", source.name, warning)
    if new_ids and on_new:
        # The run finishes once on_new has seen the items, with other sources' (_hand_on).
        result = SourceResult(source.name, source.kind, "new", seen, len(new_ids),
                              new_ids=new_ids)
        handed.append((result, run_id))
        return result
    _finish(db, run_id, now, ok=True, seen=seen, new=len(new_ids))
    status = "not_modified" if fetched.not_modified else "new"
    log.info("%s: %s, %d seen, %d new", source.name, status.replace("_", " "), seen,
             len(new_ids))
    return SourceResult(source.name, source.kind, status, seen, len(new_ids), new_ids=new_ids)


def _hand_on(db: Database, handed: list[tuple[SourceResult, int]], on_new: NewItemsHook,
             now: datetime) -> None:
    """Call on_new once for the new items of several sources, then finish their runs."""
    if not handed:
        return
    ids = [item_id for result, _ in handed for item_id in result.new_ids]
    error = None
    try:
        on_new(db, ids, now)
    except Exception as exc:
        # The items are stored; the classifier catches up on the next `classify`.
        log.exception("processing the new items of %d sources failed", len(handed))
        error = exc
    for result, run_id in handed:
        if error is None:
            _finish(db, run_id, now, ok=True, seen=result.seen, new=result.new)
            log.info("%s: new, %d seen, %d new", result.name, result.seen, result.new)
        else:
            result.error = str(error)
            _finish(db, run_id, now, ok=False, seen=result.seen, new=result.new,
                    error=f"after storing: {type(error).__name__}: {error}")


def _fail(db: Database, source: Source, state: dict, now: datetime, run_id: int, error: str,
          *, gap: str | None = None, retry_after: float | None = None) -> SourceResult:
    failures = int(state.get("consecutive_failures") or 0) + 1
    delay = backoff_delay(failures)
    if retry_after:
        delay = max(delay, min(retry_after, BACKOFF_CAP))
    next_at = now + timedelta(seconds=delay)
    log.warning("%s: %s (failure %d, next attempt after %s)", source.name, error, failures,
                iso(next_at))
    try:
        store.record_failure(db, source.name, now, error, next_attempt_at=next_at, gap=gap)
    except sqlite3.Error as exc:
        log.error("%s: could not record the failure: %s", source.name, exc)
    _finish(db, run_id, now, ok=False, error=error)
    return SourceResult(source.name, source.kind, "error", error=error,
                        next_attempt_at=iso(next_at))


def _finish(db: Database, run_id: int, started: datetime, *, ok: bool, seen: int = 0,
            new: int = 0, error: str | None = None) -> None:
    # A replayed or test clock may be far from the wall clock: never finish before starting.
    finished = max(utcnow(), started)
    try:
        store.finish_run(db, run_id, finished, ok=ok, items_seen=seen, items_new=new,
                         error=error)
    except sqlite3.Error as exc:
        log.error("could not record run %d: %s", run_id, exc)
