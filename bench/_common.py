"""What every benchmark shares: timers, figures with their baseline ratio, memory readings."""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One measured figure beside the baseline measured in the same run.

    `ratio` is figure / baseline: for times, how many times the baseline it costs; `goal` is
    the highest acceptable ratio or value (see `goal_of`), None when there is none.
    """

    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    goal: float | None = None
    goal_of: str = "ratio"  # "ratio": ratio <= goal; "value": value <= goal; "min": >= goal
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        if self.goal_of == "ratio":
            return self.ratio is not None and self.ratio <= self.goal
        if self.goal_of == "min":
            return self.value >= self.goal
        return self.value <= self.goal

    def line(self) -> str:
        text = f"  {self.name}: {_num(self.value)} {self.unit}"
        if self.baseline is not None:
            text += f"; baseline ({self.baseline_name}) {_num(self.baseline)} {self.unit}"
            if self.ratio is not None:
                text += f"; ratio {self.ratio:.2f}x"
        if self.goal is not None:
            bound = {"ratio": f"ratio <= {self.goal:g}x", "value": f"<= {self.goal:g}",
                     "min": f">= {_num(self.goal)}"}[self.goal_of]
            text += f"  [goal {bound}: {'met' if self.met else 'MISSED'}]"
        if self.note:
            text += f"  ({self.note})"
        return text

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def _num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


@dataclass
class Report:
    """The figures of one benchmark, printed as they come."""

    bench: str
    figures: list[Figure] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        REPORTS.append(self)

    def add(self, name: str, value: float, unit: str, **kw: object) -> Figure:
        figure = Figure(self.bench, name, value, unit, **kw)  # type: ignore[arg-type]
        self.figures.append(figure)
        print(figure.line(), flush=True)
        return figure

    def fact(self, key: str, value: object, show: bool = True) -> None:
        self.facts[key] = value
        if show:
            print(f"  {key}: {value}", flush=True)

    def as_dict(self) -> dict:
        return {"bench": self.bench, "figures": [f.as_dict() for f in self.figures],
                "facts": self.facts}


REPORTS: list[Report] = []  # every report of this process, for --json


@dataclass
class Timing:
    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Wall time and CPU time of the block: this process's (all threads), plus that of the
    child processes that ended within it (the parsing workers stop with their cycle)."""
    result = Timing()
    wall, cpu = time.perf_counter(), time.process_time() + _children_cpu()
    try:
        yield result
    finally:
        result.wall = time.perf_counter() - wall
        result.cpu = time.process_time() + _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """Resident set size now, in MiB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """The highest resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def workdir(path: str | None, prefix: str) -> Iterator[Path]:
    """`path` if given (kept afterwards), else a temporary directory under /tmp."""
    if path:
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def quiet_logs() -> None:
    """Benchmarks print their figures; the product's info logs would drown them."""
    import logging

    logging.getLogger().setLevel(logging.WARNING)


def machine() -> dict[str, str]:
    """What the figures came from."""
    info = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(), "cpus": str(os.cpu_count())}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    with open("/proc/meminfo") as fh:
        info["memory"] = f"{int(fh.readline().split()[1]) / 2**20:.1f} GiB"
    return info


def write_json(path: str, reports: list[Report], more: list[dict] = ()) -> None:
    """Every figure, with the machine it came from."""
    payload = {"machine": machine(), "load_average": os.getloadavg(), "argv": sys.argv,
               "reports": [r.as_dict() for r in reports] + list(more)}
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
