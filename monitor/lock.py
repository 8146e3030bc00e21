"""One daemon per database: an exclusive flock on a file beside the database.

The kernel drops a flock when its holder dies, kill -9 included, so a lock file left behind
by a dead daemon never blocks a restart. The file holds the holder's pid, host and start time
so that a refused second daemon can name the running one.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from .errors import MonitorError
from .tables import short_time
from .timeutil import iso, utcnow

# A `monitor status` probing the lock holds it (shared) for an instant; a daemon starting in
# that instant waits this long before it concludes that another daemon runs.
ACQUIRE_WAIT = 1.0


class AlreadyRunning(MonitorError):
    """Another daemon holds the database's lock."""


def lock_path(db_path: Path) -> Path:
    """`data/monitor.db` -> `data/monitor.db-lock` (beside SQLite's -wal and -shm files)."""
    return db_path.with_name(db_path.name + "-lock")


class InstanceLock:
    """The single-instance lock for one database; hold it for the life of the daemon."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = lock_path(db_path)
        self._fd: int | None = None

    def acquire(self, wait: float = ACQUIRE_WAIT) -> None:
        """Take the lock or raise AlreadyRunning naming the daemon that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Readable by all: it names a pid and a host, and `monitor status` run by an
            # analyst probes it to tell a live daemon from a dead one.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise MonitorError(f"{self.path}: cannot create the lock file: {exc.strerror}"
                               ) from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise AlreadyRunning(_refusal(self.db_path, self.path, holder)) from None
                time.sleep(0.05)
            except OSError as exc:
                os.close(fd)
                raise MonitorError(f"{self.path}: cannot lock: {exc.strerror}") from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": iso(utcnow())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Emptied first, so that a reader never takes a released lock's pid for a live one.
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(db_path: Path) -> dict[str, Any] | None:
    """Who holds the database's lock: {"pid", "host", "started_at"} ({} when unreadable),
    or None when no daemon on this machine holds it. OSError when it cannot be probed."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        found = _read_holder(fd)
        os.close(fd)
        return found
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _refusal(db_path: Path, path: Path, holder: dict[str, Any]) -> str:
    who = f"pid {holder['pid']}" if holder.get("pid") else "another process"
    if holder.get("host"):
        who += f" on {holder['host']}"
    if holder.get("started_at"):
        who += f", running since {short_time(holder['started_at'])} UTC"
    return (f"another monitor daemon already runs on {db_path} ({who}); stop it first "
            f"(lock file {path})")
