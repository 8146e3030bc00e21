"""`python -m bench [NAME ...] [--quick] [--dir D] [--json FILE] [options]`.

Runs the named benchmarks (bench/NAME.py, each module's main(argv)), or all of them in the
order below; each prints its figures beside the baseline it measured in the same run.
`--quick` runs each with a tiny size (what tests/test_bench.py does); `--dir` keeps the work
files (databases, the trained model) in D; `--json` also writes every figure to FILE. Other
options go to the benchmark, so they make sense with one name: `python -m bench ingest --n
100000`.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORDER = ("ingest", "steady", "classify", "queries", "memory")
_CHILD = "MONITOR_BENCH_CHILD"


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    found = {m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def main(argv: list[str]) -> int:
    from . import _common

    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip() + f"\n\nNAME is one of: {', '.join(names)}")
        return 0
    chosen = []
    while argv and not argv[0].startswith("-"):
        if argv[0] not in names:
            print(f"python -m bench: no benchmark {argv[0]!r}; choose from: "
                  f"{', '.join(names)}", file=sys.stderr)
            return 2
        chosen.append(argv.pop(0))
    rest, json_path = [], None
    while argv:
        arg = argv.pop(0)
        if arg == "--json" and argv:
            json_path = argv.pop(0)
        else:
            rest.append(arg)
    child = os.environ.get(_CHILD) == "1"  # started by a full run, which printed all this
    if not child:
        info = _common.machine()
        print(f"machine: {info.get('cpu', '?')}, {info['cpus']} CPUs, {info['memory']}; "
              f"Python {info['python']}, SQLite {info['sqlite']}; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    chosen = chosen or names
    # A full run gives each benchmark a process of its own, so that one's memory and caches
    # do not colour the next (the memory benchmark reads the resident set).
    alone = len(chosen) > 1 and "--quick" not in rest
    status, merged = 0, []
    for name in chosen:
        started = time.perf_counter()
        if not child:
            print(f"\n== {name}", flush=True)
        if alone:
            code, reports = _in_child(name, rest)
            status, merged = max(status, code), merged + reports
        else:
            module = importlib.import_module(f"bench.{name}")
            status = max(status, int(module.main(list(rest)) or 0))
        if not child:
            print(f"({name}: {time.perf_counter() - started:.1f}s)", flush=True)
    if json_path:
        _common.write_json(json_path, _common.REPORTS, merged)
    return status


def _in_child(name: str, options: list[str]) -> tuple[int, list[dict]]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "figures.json"
        code = subprocess.run([sys.executable, "-m", "bench", name, *options, "--json",
                               str(out)], cwd=Path(__file__).resolve().parents[1],
                              env={**os.environ, _CHILD: "1"}).returncode
        reports = json.loads(out.read_text())["reports"] if out.exists() else []
    return code, reports


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
