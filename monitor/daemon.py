"""`monitor run`: each source polled on its own schedule, the weekly digest on time, a
heartbeat in the database, a clean stop on SIGTERM/SIGINT and a config reload on SIGHUP.

Threads and the database: a collect job fetches in its own worker thread without holding
anything, then takes the daemon's database lock and stores the result through
`pipeline.collect` on the one shared connection. SQLite therefore sees one writer from this
process, and a slow or hanging feed delays nobody's writes. The heartbeat has a connection of
its own, so it keeps ticking while a long write holds the lock.

Crash safety comes from the store: new items and the source state that says they were seen
commit in one transaction, so after kill -9 a fetch is either wholly stored or repeated.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import random
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures import ThreadPoolExecutor as FuturesPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlite_utils import Database

from . import __version__, heap, lock, pipeline, store
from .collect import parse_pool
from .collect.base import Fetched, Source
from .config import Config, DigestConfig, load_config
from .errors import MonitorError
from .logs import setup_logging
from .tables import short_time
from .timeutil import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

# Sources overdue at start are spread over at most this many seconds instead of all at once.
STARTUP_SPREAD = 15.0
# A digest late by up to a day (machine asleep at the hour) is still sent.
DIGEST_GRACE = 24 * 3600
DIGEST_EVERY = 7 * 24 * 3600.0
# Items stored but never classified (the daemon died between the two commits, or the
# classifier failed) are handed to the classifier at start and then hourly, in batches.
BACKLOG_EVERY = 3600.0
BACKLOG_BATCH = 1000
PRUNE_EVERY = 24 * 3600.0
PRUNE_BATCH = 5000
ABANDONED = "abandoned: the daemon stopped before this run finished"

SourcesFactory = Callable[[Config], list[Source]]
HookFactory = Callable[[Config], "pipeline.NewItemsHook | None"]
DigestSender = Callable[[Database, Config, datetime], int]


# --- schedule arithmetic (pure) ------------------------------------------------------------

def first_run(state: dict[str, Any], interval: float, now: datetime, *, jitter: float = 0.1,
              rng: random.Random | None = None) -> datetime:
    """When a source's first poll after a (re)start is due.

    One interval after its last attempt and not before its backoff ends, so a restart does
    not refetch everything; sources already due are spread over a short window.
    """
    due = now
    if state.get("last_attempt_at"):
        due = max(due, parse_iso(state["last_attempt_at"]) + timedelta(seconds=interval))
    if state.get("next_attempt_at"):
        due = max(due, parse_iso(state["next_attempt_at"]))
    if due <= now:
        spread = min(interval * jitter, STARTUP_SPREAD)
        due = now + timedelta(seconds=(rng or random).uniform(0, spread))
    return due


def is_due(state: dict[str, Any], interval: float, now: datetime, *, slack: float = 0.1
           ) -> bool:
    """For `run --once`: not in backoff and (almost) an interval since the last attempt.

    The slack (a fraction of the interval) absorbs cron firing a little early.
    """
    if pipeline.in_backoff(state, now):
        return False
    last = state.get("last_attempt_at")
    return not last or parse_iso(last) + timedelta(seconds=interval * (1 - slack)) <= now


def digest_trigger(digest: DigestConfig) -> CronTrigger:
    hour, minute = (int(part) for part in digest.time.split(":"))
    return CronTrigger(day_of_week=digest.weekday.lower()[:3], hour=hour, minute=minute,
                       timezone=ZoneInfo(digest.timezone))


# --- what `monitor status` shows -----------------------------------------------------------

@dataclass
class DaemonReport:
    state: str        # never, starting, running, unresponsive, stopped, dead
    summary: str      # one line for the terminal
    jobs: list[dict[str, Any]] = field(default_factory=list)


def report(db: Database, db_path: Path, now: datetime | None = None) -> DaemonReport:
    """The daemon's health as recorded in the database and shown by the lock file."""
    try:
        holder, probed = lock.holder(db_path), True
    except OSError:
        holder, probed = None, False  # e.g. not allowed to read it: trust the heartbeat
    return describe(store.daemon_state(db), holder, now or utcnow(), lock_probed=probed)


def describe(state: dict[str, str], holder: dict[str, Any] | None, now: datetime, *,
             this_host: str | None = None, lock_probed: bool = True) -> DaemonReport:
    """Pure: the daemon.* meta keys plus the lock holder (None: nobody on this machine).

    On the daemon's own machine the lock says for certain whether it lives; elsewhere (or
    when the lock cannot be probed) a heartbeat older than three beats means it is dead.
    """
    this_host = this_host or socket.gethostname()
    started = state.get("started_at")
    if not started:
        if holder is not None:
            return DaemonReport("starting", f"Daemon: starting ({_who(holder)})")
        return DaemonReport("never", "Daemon: never run on this database "
                                     "(`monitor run` starts it)")
    once = state.get("mode") == "once"
    who = _who(state)
    stopped = state.get("stopped_at")
    if stopped and stopped >= started and holder is None:
        what = "`monitor run --once` last finished" if once else "stopped cleanly"
        return DaemonReport("stopped", f"Daemon: not running; {what} at {short_time(stopped)} "
                                       f"UTC ({who})")
    beat = state.get("heartbeat_at") or started
    age = max(0.0, (now - parse_iso(beat)).total_seconds())
    every = float(state.get("heartbeat_every") or 30)
    stale = age > 3 * every + 30  # a heartbeat may wait out one busy write
    local = lock_probed and state.get("host") == this_host
    if holder is None and (local or stale):
        return DaemonReport("dead", f"Daemon: NOT RUNNING: {who} ended without a clean stop "
                                    f"(killed or crashed); last heartbeat {ago(age)} ago")
    jobs = _running_jobs(state.get("jobs"), now)
    if stale:
        return DaemonReport("unresponsive", f"Daemon: NOT RESPONDING: {who} holds the lock "
                                            f"but its last heartbeat was {ago(age)} ago", jobs)
    kind = "running `monitor run --once`" if once else "running"
    return DaemonReport("running", f"Daemon: {kind}, {who}, up since {short_time(started)} UTC, "
                                   f"heartbeat {ago(age)} ago", jobs)


def _who(record: dict[str, Any]) -> str:
    pid = record.get("pid") or "?"
    return f"pid {pid} on {record['host']}" if record.get("host") else f"pid {pid}"


def _running_jobs(raw: str | None, now: datetime) -> list[dict[str, Any]]:
    try:
        jobs = json.loads(raw or "[]")
    except ValueError:
        return []
    rows = []
    for job in jobs if isinstance(jobs, list) else []:
        try:
            running = max(0.0, (now - parse_iso(job["started_at"])).total_seconds())
        except (KeyError, TypeError, ValueError):
            continue
        interval = job.get("interval")
        rows.append({**job, "running_for": running,
                     "overdue": bool(interval) and running > float(interval)})
    return rows


def ago(seconds: float) -> str:
    """A duration the way status prints it: 45s, 12m, 3h 5m, 2d 4h."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h {minutes % 60}m" if hours < 48 else f"{hours // 24}d {hours % 24}h"


# --- logging for a service -----------------------------------------------------------------

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """Lines for journald: a <N> syslog priority on every line, so each entry (traceback
    lines included) keeps its level; journald adds the time and the unit itself."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def stderr_is_journal() -> bool:
    """True when systemd connected stderr to the journal ($JOURNAL_STREAM names it)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def configure_logging(verbosity: int, secrets: list[str]) -> None:
    setup_logging(verbosity, secrets)
    if stderr_is_journal():
        for handler in logging.getLogger().handlers:
            if getattr(handler, "_monitor", False):
                handler.setFormatter(JournalFormatter())


def exit_now(code: int = 0) -> None:
    """Leave without joining worker threads stuck in network reads: what they fetched was
    never committed and is fetched again after the restart."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(code)


# --- collaborators, imported when needed ---------------------------------------------------

def classify_hook(config: Config) -> pipeline.NewItemsHook | None:
    """The classifier's hook for new items (scores, market mentions, alerts)."""
    from .classify import make_hook

    return make_hook(config)


class _LazyHook:
    """The new-items hook, built on first use: the classifier imports scikit-learn, which
    takes seconds that start-up (and a daemon with nothing new) need not wait for. Called
    only under the daemon's database lock, so it is built once."""

    def __init__(self, factory: HookFactory, config: Config) -> None:
        self._factory, self._config = factory, config
        self._hook: pipeline.NewItemsHook | None = None
        self._built = False

    def available(self) -> bool:
        if not self._built:
            self._hook = self._factory(self._config)
            self._built = True
        return self._hook is not None

    def __call__(self, db: Database, item_ids: list[str], now: datetime) -> None:
        if self.available() and self._hook is not None:
            self._hook(db, item_ids, now)


def send_due_digests(db: Database, config: Config, now: datetime) -> int:
    from .digest import send_due  # jinja2 and smtplib only when a digest may be due

    return send_due(db, config, now)


# --- the daemon ----------------------------------------------------------------------------

class _Abandoned(Exception):
    """Raised instead of touching the database once a stop was requested."""


@dataclass
class _Running:
    job: str
    started: datetime
    interval: float | None
    phase: str = "starting"
    warned: bool = False


@dataclass
class _Prefetched:
    """A source whose fetch already happened: hands the pipeline that result, or raises the
    error it ended with so that the pipeline records and backs off exactly as usual."""

    source: Source
    outcome: Fetched | Exception

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def target(self) -> str:
        return self.source.target

    @property
    def interval(self) -> float:
        return self.source.interval

    def fetch(self, state: dict[str, Any], now: datetime) -> Fetched:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@dataclass
class OnceSummary:
    results: list[pipeline.SourceResult]
    not_due: int
    digests: int
    clean: bool

    def text(self) -> str:
        new = sum(r.new for r in self.results)
        failed = sum(r.status == "error" for r in self.results)
        line = (f"{len(self.results)} sources collected ({self.not_due} not due yet): "
                f"{new} new items, {failed} failed")
        return line + (f"; {self.digests} digest(s) sent" if self.digests else "")


class Daemon:
    """One daemon per database. `run()` blocks until stopped; `run_once()` runs what is due.

    The factories exist for tests; by default sources come from the config, new items go to
    the classifier and the digest job calls monitor.digest.send_due.
    """

    def __init__(self, config: Config, *, verbosity: int = 1,
                 build_sources: SourcesFactory = pipeline.build_sources,
                 make_hook: HookFactory = classify_hook,
                 send_digest: DigestSender = send_due_digests,
                 signals: bool = True) -> None:
        self.config = config
        self.verbosity = verbosity
        self._build_sources = build_sources
        self._make_hook = make_hook
        self._send_digest = send_digest
        self._want_signals = signals
        self._instance = lock.InstanceLock(config.db_path)
        self._db: Database | None = None
        self._db_lock = threading.Lock()
        self._beat_db: Database | None = None
        self._beat_lock = threading.Lock()
        self._sources: dict[str, Source] = {}
        self._hook = _LazyHook(make_hook, config)
        self._running: dict[str, _Running] = {}
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._ready = threading.Event()
        self._exited = threading.Event()
        self._signals: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._scheduler: BlockingScheduler | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def run(self) -> bool:
        """Run until stop() or a signal. True when every worker finished; False when a
        network fetch had to be abandoned (the caller should then leave with exit_now)."""
        restore = self._install_signals()  # first: a signal during start-up is not lost
        try:
            self._open("daemon")
        except BaseException:
            self._exited.set()
            restore()
            raise
        try:
            self._scheduler = self._new_scheduler()
            self._schedule_all(utcnow())
            self._ready.set()
            log.info("daemon started (pid %d): %d sources, digest %s %s %s, database %s",
                     os.getpid(), len(self._sources), self.config.digest.weekday,
                     self.config.digest.time, self.config.digest.timezone, self.config.db_path)
            if not self._sources:
                log.warning("no sources in %s: add [[feeds]] or [reddit]", self.config.path)
            if not self._stopping.is_set():
                self._scheduler.start()  # blocks until stop()
        except _Abandoned:
            pass  # stopped while starting
        finally:
            self._exited.set()
            clean = self._finish()
            restore()
        log.info("daemon stopped")
        return clean

    def run_once(self) -> OnceSummary:
        """Every due job once (collect the due sources, classify a backlog, send due
        digests), then return."""
        restore = self._install_signals()
        try:
            self._open("once")
        except BaseException:
            self._exited.set()
            restore()
            raise
        self._ready.set()
        results: list[pipeline.SourceResult] = []
        due: list[str] = []
        digests = 0
        try:
            now = utcnow()
            with self._db_phase() as db:
                states = store.source_states(db, self._sources)
            slack = self.config.daemon.jitter
            due = [name for name, source in self._sources.items()
                   if is_due(states[name], float(source.interval), now, slack=slack)]
            pool = FuturesPool(max_workers=max(1, min(self.config.http.concurrency, len(due))),
                               thread_name_prefix="job")
            pending = {pool.submit(self._collect_job, name) for name in due}
            every = float(self.config.daemon.heartbeat)
            next_beat = time.monotonic() + every
            while pending and not self._stopping.is_set():
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    results.extend(future.result())
                if time.monotonic() >= next_beat:  # a long pass still shows as alive
                    self._heartbeat()
                    next_beat = time.monotonic() + every
            pool.shutdown(wait=False, cancel_futures=True)
            if not self._stopping.is_set():
                self._backlog_job()
                digests = self._digest_job()
                self._prune_job()
        except _Abandoned:
            pass
        finally:
            clean = self._finish()
            restore()
        return OnceSummary(results, len(self._sources) - len(due), digests, clean)

    def stop(self) -> None:
        """Stop taking new work; run() then lets the running write finish and returns."""
        self._stopping.set()
        scheduler = self._scheduler
        if scheduler is None:
            return
        # A stop that arrives while the scheduler is still starting waits for it to run.
        while not self._started.wait(0.05):
            if self._exited.is_set():
                return
        with suppress(SchedulerNotRunningError):
            scheduler.shutdown(wait=False)

    def reload(self) -> None:
        """Re-read the config file: add, remove and reschedule sources; keep the database."""
        try:
            config = load_config(self.config.path)
            if config.db_path != self.config.db_path:
                log.warning("reload: database.path changed to %s; this daemon keeps %s until it "
                            "is restarted", config.db_path, self.config.db_path)
                config = dataclasses.replace(config, database=self.config.database)
            sources = {s.name: s for s in self._build_sources(config)}
            hook = _LazyHook(self._make_hook, config)
        except MonitorError as exc:
            log.error("reload failed, the previous config stays in force: %s", exc)
            return
        configure_logging(self.verbosity, config.secrets())
        try:
            with self._db_phase() as db:
                pipeline.register(db, sources.values())
                states = store.source_states(db, sources)
                store.set_daemon_state(db, {
                    "heartbeat_every": str(float(config.daemon.heartbeat))})
        except _Abandoned:
            return
        old = self._sources
        old_config = self.config
        self.config, self._hook, self._sources = config, hook, sources
        now = utcnow()
        scheduler = self._scheduler
        removed = sorted(old.keys() - sources.keys())
        added = sorted(sources.keys() - old.keys())
        changed = sorted(n for n in sources.keys() & old.keys()
                         if sources[n].interval != old[n].interval
                         or sources[n].target != old[n].target)
        if scheduler is not None:
            for name in removed:
                with suppress(JobLookupError):
                    scheduler.remove_job(f"collect:{name}")
            for name in added + changed:
                self._schedule_source(sources[name], states[name], now)
            if config.digest != old_config.digest:
                self._schedule_digest(now + timedelta(seconds=1))
            if config.daemon.heartbeat != old_config.daemon.heartbeat:
                self._schedule_heartbeat(now)
        log.info("reloaded %s: %d sources (added: %s; removed: %s; changed: %s)",
                 config.path, len(sources), ", ".join(added) or "none",
                 ", ".join(removed) or "none", ", ".join(changed) or "none")

    def _open(self, mode: str) -> None:
        heap.cap_malloc_arenas()  # before the pools' threads make arenas of their own
        self._instance.acquire()
        try:
            self._db = store.open_db(self.config.db_path)
            self._beat_db = store.open_db(self.config.db_path, migrate=False)
            now = utcnow()
            closed = store.close_unfinished_runs(self._db, now, ABANDONED)
            if closed:
                log.warning("%d run(s) left unfinished by a daemon that was killed are now "
                            "marked failed", closed)
            sources = self._build_sources(self.config)
            self._sources = {s.name: s for s in sources}
            pipeline.register(self._db, sources)
            store.set_daemon_state(self._db, {
                "pid": str(os.getpid()), "host": socket.gethostname(), "mode": mode,
                "version": __version__, "started_at": iso(now), "heartbeat_at": iso(now),
                "heartbeat_every": str(float(self.config.daemon.heartbeat)),
                "stopped_at": None, "jobs": "[]"})
            self._hook = _LazyHook(self._make_hook, self.config)
        except BaseException:
            self._close()
            self._instance.release()
            raise

    def _finish(self) -> bool:
        """After the scheduler stopped: wait (bounded) for the write in progress, record the
        stop, and say whether every job has left."""
        self._stopping.set()
        timeout = float(self.config.daemon.stop_timeout)
        deadline = time.monotonic() + timeout
        if not self._db_lock.acquire(timeout=timeout):
            log.warning("a database write still runs after %.0fs: abandoning it (SQLite rolls "
                        "it back; the next run repeats it)", timeout)
            return False
        try:
            if self._db is not None:
                now = iso(utcnow())
                try:
                    store.set_daemon_state(self._db, {"stopped_at": now, "heartbeat_at": now,
                                                      "jobs": "[]"})
                except sqlite3.Error as exc:
                    log.error("could not record the stop: %s", exc)
        finally:
            self._db_lock.release()
        # No job can write any more; those still fetching would only drop their result, so
        # they get a moment to notice the stop, not the whole timeout.
        with self._idle:
            self._idle.wait_for(lambda: not self._running,
                                timeout=max(0.0, min(deadline - time.monotonic(), 0.5)))
            busy = sorted(self._running)
        if busy:
            log.info("abandoning %s (a fetch in progress; nothing of it was stored)",
                     ", ".join(busy))
            return False
        self._close()
        self._instance.release()
        return True

    def _close(self) -> None:
        parse_pool.release_all(self._sources.values())
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        with self._beat_lock:
            if self._beat_db is not None:
                self._beat_db.close()
                self._beat_db = None

    # -- signals --------------------------------------------------------------------------

    def _install_signals(self) -> Callable[[], None]:
        if not self._want_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        control = threading.Thread(target=self._control_loop, name="signals", daemon=True)
        control.start()

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._signals.put(None)

        return restore

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Only a reentrant put here: the work happens in the control thread.
        self._signals.put(signum)

    def _control_loop(self) -> None:
        while (signum := self._signals.get()) is not None:
            name = signal.Signals(signum).name
            try:
                if signum == signal.SIGHUP:
                    # A reload waits until start-up has read the config and scheduled.
                    while not self._ready.wait(0.1):
                        if self._exited.is_set():
                            return
                    log.info("SIGHUP: reloading %s", self.config.path)
                    self.reload()
                elif self._stopping.is_set():
                    log.warning("%s again: exiting now", name)
                    exit_now(0)
                else:
                    log.info("%s: stopping", name)
                    self.stop()
            except Exception:
                log.exception("handling %s failed", name)

    # -- scheduling -----------------------------------------------------------------------

    def _new_scheduler(self) -> BlockingScheduler:
        scheduler = BlockingScheduler(
            executors={
                # Collect jobs spend their time in network I/O; writes queue on the lock.
                "default": ThreadPoolExecutor(max(2, self.config.http.concurrency)),
                "digest": ThreadPoolExecutor(1),
                "heartbeat": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC)
        scheduler.add_listener(lambda _event: self._started.set(), EVENT_SCHEDULER_STARTED)
        return scheduler

    def _schedule_all(self, now: datetime) -> None:
        with self._db_phase() as db:
            states = store.source_states(db, self._sources)
        for name, source in self._sources.items():
            self._schedule_source(source, states[name], now)
        # At start, catch up on a digest missed while the daemon was down (send_due sends
        # only what is due and never twice).
        self._schedule_digest(now + timedelta(seconds=1))
        self._schedule_heartbeat(now)
        if self._scheduler is not None:
            self._scheduler.add_job(
                self._backlog_job, IntervalTrigger(seconds=BACKLOG_EVERY, timezone=UTC),
                id="classify:backlog", name="classify:backlog", executor="digest",
                next_run_time=now + timedelta(seconds=2), replace_existing=True,
                misfire_grace_time=int(BACKLOG_EVERY))
            # Scheduled even with keep_runs_days = 0: a reload may set it.
            self._scheduler.add_job(
                self._prune_job, IntervalTrigger(seconds=PRUNE_EVERY, timezone=UTC),
                id="prune:runs", name="prune:runs", executor="digest",
                next_run_time=now + timedelta(seconds=60), replace_existing=True,
                misfire_grace_time=int(PRUNE_EVERY))

    def _schedule_source(self, source: Source, state: dict[str, Any], now: datetime) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return
        interval = float(source.interval)
        jitter = self.config.daemon.jitter
        first = first_run(state, interval, now, jitter=jitter)
        scheduler.add_job(
            self._collect_job, IntervalTrigger(seconds=interval, start_date=first,
                                               jitter=interval * jitter or None, timezone=UTC),
            args=[source.name], id=f"collect:{source.name}", name=f"collect:{source.name}",
            next_run_time=first, replace_existing=True,
            # Late by up to one interval: still worth running; later, the next run is due.
            misfire_grace_time=max(1, int(interval)))

    def _schedule_digest(self, first: datetime) -> None:
        if self._scheduler is None:
            return
        self._scheduler.add_job(
            self._digest_job, digest_trigger(self.config.digest), id="digest", name="digest",
            executor="digest", next_run_time=first, replace_existing=True,
            misfire_grace_time=DIGEST_GRACE)

    def _schedule_heartbeat(self, now: datetime) -> None:
        if self._scheduler is None:
            return
        every = float(self.config.daemon.heartbeat)
        self._scheduler.add_job(
            self._heartbeat, IntervalTrigger(seconds=every, timezone=UTC), id="heartbeat",
            name="heartbeat", executor="heartbeat", replace_existing=True,
            next_run_time=now + timedelta(seconds=every),
            # A missed beat is worthless later; the next one is what counts.
            misfire_grace_time=max(1, int(every)))

    # -- jobs -----------------------------------------------------------------------------

    def _collect_job(self, name: str) -> list[pipeline.SourceResult]:
        source = self._sources.get(name)
        if source is None or self._stopping.is_set():
            return []  # removed by a reload, or stopping
        job = f"collect:{name}"
        started = utcnow()
        with self._track(job, started, float(source.interval)) as running:
            try:
                with self._db_phase() as db:
                    state = store.source_state(db, name)
                if pipeline.in_backoff(state, started):
                    log.debug("%s: in backoff until %s", name, state.get("next_attempt_at"))
                    return []
                running.phase = "fetching"
                try:
                    outcome: Fetched | Exception = source.fetch(state, started)
                except Exception as exc:  # the pipeline records it and backs off
                    outcome = exc
                running.phase = "storing"
                with self._db_phase() as db:
                    return pipeline.collect(db, [_Prefetched(source, outcome)], now=started,
                                            force=True, concurrency=1, on_new=self._hook)
            except _Abandoned:
                log.info("%s: stopping, the fetched result is dropped", job)
                return []
            except Exception as exc:
                log.exception("%s: the job failed", job)
                error = f"internal error: {type(exc).__name__}: {exc}"
                self._record_failed_job(job, started, error)
                return [pipeline.SourceResult(name, source.kind, "error", error=error)]

    def _digest_job(self) -> int:
        if self._stopping.is_set():
            return 0
        started = utcnow()
        with self._track("digest", started, DIGEST_EVERY):
            try:
                with self._db_phase() as db:
                    run_id = store.start_run(db, "digest", started)
                    try:
                        sent = int(self._send_digest(db, self.config, started) or 0)
                    except Exception as exc:
                        if isinstance(exc, MonitorError):
                            log.error("digest: %s", exc)
                        else:
                            log.exception("digest: the job failed")
                        store.finish_run(db, run_id, max(utcnow(), started), ok=False,
                                         error=_describe_error(exc))
                        return 0
                    store.finish_run(db, run_id, max(utcnow(), started), ok=True,
                                     items_new=sent)
            except _Abandoned:
                return 0
            except sqlite3.Error as exc:
                log.error("digest: could not record the run: %s", exc)
                return 0
        if sent:
            log.info("digest: %d sent", sent)
        return sent

    def _backlog_job(self) -> int:
        """Classify the items no model has scored; a pass with nothing to do is no run."""
        if self._stopping.is_set():
            return 0
        started = utcnow()
        done: set[str] = set()
        run_id: int | None = None
        with self._track("classify:backlog", started, BACKLOG_EVERY):
            try:
                while True:
                    # The lock is let go between batches, so collection goes on meanwhile.
                    with self._db_phase() as db:
                        ids = [i for i in store.unclassified_item_ids(db, BACKLOG_BATCH)
                               if i not in done]
                        if not ids or not self._hook.available():
                            break
                        if run_id is None:
                            run_id = store.start_run(db, "classify:backlog", started)
                        self._hook(db, ids, utcnow())
                        done.update(ids)
            except _Abandoned:
                return len(done)
            except Exception as exc:
                log.exception("classify:backlog: the job failed")
                self._finish_run(run_id, started, ok=False, seen=len(done),
                                 error=_describe_error(exc))
                return len(done)
        if run_id is not None:
            log.info("classified %d items a crash or failure had left unclassified", len(done))
            self._finish_run(run_id, started, ok=True, seen=len(done), new=len(done))
        return len(done)

    def _prune_job(self) -> int:
        """Delete collection runs older than database.keep_runs_days, a batch per write so
        that collection is never held up for long."""
        days = self.config.database.keep_runs_days
        if not days or self._stopping.is_set():
            return 0
        before = utcnow() - timedelta(days=days)
        deleted = 0
        try:
            while True:
                with self._db_phase() as db:
                    n = store.prune_runs(db, before, batch=PRUNE_BATCH)
                deleted += n
                if n < PRUNE_BATCH:
                    break
        except _Abandoned:
            pass
        except sqlite3.Error as exc:
            log.warning("prune:runs: %s (tried again in a day)", exc)
        if deleted:
            log.info("pruned %d runs older than %d days", deleted, days)
        return deleted

    def _heartbeat(self) -> None:
        if self._stopping.is_set():
            return
        now = utcnow()
        jobs = []
        with self._idle:
            running = list(self._running.values())
        for job in running:
            elapsed = (now - job.started).total_seconds()
            if job.interval and elapsed > job.interval and not job.warned:
                job.warned = True
                log.warning("%s has run for %s (%s), longer than its interval of %s; it is "
                            "skipped until it ends", job.job, ago(elapsed), job.phase,
                            ago(job.interval))
            jobs.append({"job": job.job, "started_at": iso(job.started),
                         "interval": job.interval, "phase": job.phase})
        with self._beat_lock:
            if self._beat_db is None:
                return
            try:
                store.set_daemon_state(self._beat_db, {"heartbeat_at": iso(now),
                                                       "jobs": json.dumps(jobs)})
            except sqlite3.Error as exc:
                log.warning("heartbeat: cannot write to the database: %s", exc)

    # -- helpers --------------------------------------------------------------------------

    @contextmanager
    def _db_phase(self) -> Iterator[Database]:
        """The shared connection, for one thread at a time, and never once stopping."""
        with self._db_lock:
            if self._stopping.is_set() or self._db is None:
                raise _Abandoned
            yield self._db

    @contextmanager
    def _track(self, job: str, started: datetime, interval: float | None
               ) -> Iterator[_Running]:
        running = _Running(job, started, interval)
        with self._idle:
            self._running[job] = running
        try:
            yield running
        finally:
            with self._idle:
                self._running.pop(job, None)
                self._idle.notify_all()

    def _finish_run(self, run_id: int | None, started: datetime, *, ok: bool, seen: int = 0,
                    new: int = 0, error: str | None = None) -> None:
        if run_id is None:
            return
        try:
            with self._db_phase() as db:
                store.finish_run(db, run_id, max(utcnow(), started), ok=ok, items_seen=seen,
                                 items_new=new, error=error)
        except _Abandoned:
            pass  # left open; the next start closes it as abandoned
        except sqlite3.Error as exc:
            log.error("could not record run %d: %s", run_id, exc)

    def _record_failed_job(self, job: str, started: datetime, error: str) -> None:
        try:
            with self._db_phase() as db:
                run_id = store.start_run(db, job, started)
                store.finish_run(db, run_id, max(utcnow(), started), ok=False, error=error)
        except _Abandoned:
            pass
        except sqlite3.Error as exc:
            log.error("%s: could not record the failure: %s", job, exc)


def _describe_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, MonitorError) else f"{type(exc).__name__}: {exc}"
