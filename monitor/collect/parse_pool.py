"""Parse feed documents on the machine's other cores when a cycle has a lot to parse.

feedparser is pure Python, so the fetch threads parse one document at a time under the GIL:
a first backfill of many big feeds runs on one core however many the machine has. Once the
documents being parsed in this process add up to more than `backlog_bytes`, parsing (and the
making of items) moves to worker processes until the parsing stops. The workers stop at the
end of a `monitor collect` cycle, or in the daemon once they have been idle for `idle`
seconds: a steady daemon, whose few changed feeds parse in moments, starts none.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ..errors import SourceError
from .feeds import entries_to_items, log_problems, parse_feed, readable_problems

log = logging.getLogger(__name__)

# About a second of feedparser's work on one core (~1.2 MB/s): a worker's start-up (~0.3 s,
# on another core) pays for itself.
BACKLOG_BYTES = 1 << 20
# Idle workers are stopped after this long (the daemon's sources come due one by one).
IDLE_SECONDS = 30.0

# What a worker sends back: (entries seen, items, the parser's complaint) or, when the
# document is not a feed, (None, the reason, whether trying again can help).
WorkerResult = tuple[int, list[dict[str, Any]], str | None] | tuple[None, str, bool]


class ParsePool:
    """Worker processes for parsing, started on demand and stopped by `release`.

    Thread-safe: every fetch thread of a cycle shares one.
    """

    def __init__(self, processes: int, *, backlog_bytes: int = BACKLOG_BYTES,
                 idle: float = IDLE_SECONDS,
                 work: Callable[..., WorkerResult] | None = None) -> None:
        self.processes = processes
        self.work = work or parse_in_worker  # what a worker runs (a module-level function)
        self.backlog_bytes = backlog_bytes
        self.idle = idle
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._parsing_here = 0  # bytes the fetch threads are parsing in this process now
        self._in_workers = 0  # documents handed to the workers and not back yet
        self._handed = 0  # documents ever handed: tells an idle timer it is out of date
        self._timer: threading.Timer | None = None

    @property
    def running(self) -> bool:
        return self._executor is not None

    @contextmanager
    def claim(self, size: int) -> Iterator[bool]:
        """Whether a document of `size` bytes goes to the workers (True) or is parsed here,
        in which case it counts in the backlog until the block ends."""
        with self._lock:
            if self.processes > 0 and self._executor is None \
                    and self._parsing_here + size > self.backlog_bytes:
                log.info("much to parse: parsing moves to %d worker processes",
                         self.processes)
                self._executor = _start(self.processes)
            offload = self._executor is not None
            if not offload:
                self._parsing_here += size
        try:
            yield offload
        finally:
            if not offload:
                with self._lock:
                    self._parsing_here -= size

    def items(self, body: bytes, headers: dict[str, str], *, source: str, base_url: str,
              now: datetime, kind: str) -> tuple[int, list[dict[str, Any]]]:
        """Parse in a worker: (entries seen, items), as parse_feed + entries_to_items give.

        Raises SourceError as parse_feed does. A worker that dies (a document that crashes
        the parser, the OOM killer) fails this one source, not the daemon. Every document
        in the workers then fails with it, so each is tried again alone in a worker of its
        own: only the one that kills that worker too is given up.
        """
        args = (body, headers, source, base_url, now, kind)
        with self._lock:
            self._in_workers += 1
            self._handed += 1
        try:
            executor = self._current()
            try:
                result = executor.submit(self.work, *args).result()
            except BrokenProcessPool:
                self._replace(executor)
                result = self._alone(args)
        finally:
            self._done()
        seen, payload, extra = result
        if seen is None:
            raise SourceError(payload, retryable=bool(extra))
        if extra:
            log_problems(extra)
        return seen, payload

    def release(self) -> None:
        """Stop the workers (the cycle is over); the next backlog starts new ones."""
        with self._lock:
            executor, self._executor = self._executor, None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if executor is not None:
            executor.shutdown(wait=True)

    def _alone(self, args: tuple) -> WorkerResult:
        executor = _start(1)
        try:
            return executor.submit(self.work, *args).result()
        except BrokenProcessPool:
            raise SourceError("not readable: the parser's worker process died on this "
                              "document", retryable=True) from None
        finally:
            executor.shutdown(wait=True)

    def _done(self) -> None:
        with self._lock:
            self._in_workers -= 1
            if not self._in_workers and self._executor is not None and self._timer is None:
                self._timer = self._arm(self._handed)

    def _arm(self, handed: int) -> threading.Timer:
        # One timer at a time (under the lock): a backfill hands documents over by the
        # hundred, and a sleeping thread for each would be wasted.
        timer = threading.Timer(self.idle, self._stop_if_idle, args=(handed,))
        timer.daemon = True
        timer.start()
        return timer

    def _stop_if_idle(self, handed: int) -> None:
        with self._lock:
            self._timer = None
            if self._in_workers:
                return  # the next document to come back arms a new timer
            if self._handed != handed:
                self._timer = self._arm(self._handed)  # parsing went on: idle from now
                return
            executor, self._executor = self._executor, None
        if executor is not None:
            log.debug("parsing workers idle for %.0f s: stopped", self.idle)
            executor.shutdown(wait=True)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = _start(self.processes)
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False)


def release_all(sources: Iterable[object]) -> None:
    """Stop the parsing workers of these sources (a cycle or the daemon is over)."""
    for parser in {getattr(source, "parser", None) for source in sources} - {None}:
        parser.release()


def _start(processes: int) -> ProcessPoolExecutor:
    # spawn, not fork: the daemon has threads (scheduler, fetches) that fork would copy
    # mid-flight; and spawned workers are our children, so their CPU time is accounted.
    return ProcessPoolExecutor(max_workers=processes,
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_interrupts)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the parent decides what stops, and a
    # traceback from every worker would bury its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def parse_in_worker(body: bytes, headers: dict[str, str], source: str, base_url: str,
                    now: datetime, kind: str) -> WorkerResult:
    """What a worker runs. Exceptions with keyword arguments do not survive pickling, so a
    document that is not a feed comes back as a value."""
    try:
        parsed = parse_feed(body, headers)
    except SourceError as exc:
        return None, str(exc), exc.retryable
    return (len(parsed.entries),
            entries_to_items(parsed, source=source, base_url=base_url, now=now, kind=kind),
            readable_problems(parsed))
