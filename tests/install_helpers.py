"""Installing and running monitor the way a newcomer does, for tests/test_wheel.py and
tests/test_readme.py: a clean copy of the checkout, a wheel built from it with
`python -m build`, a fresh virtualenv with the wheel installed (dependencies from the package
registry), and `monitor demo` run from it in an empty directory.

Everything that needs the installed wheel is run and recorded once, in `install_wheel`,
because the README test then turns the same virtualenv into an editable install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.analyst_helpers import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[1]
# What a clean checkout does not hold, for when git cannot say (an unpacked source archive).
_NOT_IN_CHECKOUT = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache",
                    ".hypothesis", "dist", "build", "models"}


def checkout_files(root: Path = ROOT) -> list[Path]:
    """The files of a clean checkout: tracked and new ones, none that git ignores."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return [p.relative_to(root) for p in root.rglob("*") if p.is_file()
                and not _NOT_IN_CHECKOUT & set(p.relative_to(root).parts)
                and not p.name.endswith((".db", ".db-wal", ".db-shm", ".pyc"))
                and p.name not in ("config.toml", "demo.toml", "demo-digest.html")]
    names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
    return [Path(n) for n in names if (root / n).is_file()]  # deleted files are still listed


def copy_checkout(dest: Path, root: Path = ROOT) -> Path:
    for rel in checkout_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return dest


def clean_env() -> dict[str, str]:
    """This environment without the test run's virtualenv and monitor's own settings, so
    that commands find the system's python3 and a fresh venv's monitor behaves as for a
    newcomer. The package registry settings (PIP_*) stay."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
           and not k.startswith("MONITOR_")}
    if sys.prefix != sys.base_prefix:
        ours = str(Path(sys.prefix) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if p and p != ours)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the copied checkout clean
    return env


def run(cmd: list[str] | str, cwd: Path, *, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command (a list, or a string for bash); fail with its output if it fails."""
    shell = isinstance(cmd, str)
    args = ["bash", "-euo", "pipefail", "-c", cmd] if shell else cmd
    try:
        done = subprocess.run(args, cwd=cwd, env=env or clean_env(), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{cmd!r} did not finish within {timeout:.0f}s\n"
                             f"{_tail(exc.stdout)}{_tail(exc.stderr)}") from None
    if done.returncode != 0:
        raise AssertionError(f"{cmd!r} exited with {done.returncode} in {cwd}\n"
                             f"--- stdout\n{_tail(done.stdout)}\n--- stderr\n"
                             f"{_tail(done.stderr)}")
    return done


def _tail(text: str | bytes | None, lines: int = 60) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


# --- the wheel, installed and run once -----------------------------------------------------

_PROBE = """
import json, sys
import monitor
from monitor import digest_render, resources, serve
from monitor.classify import dataset, markets
from monitor.sample import load_scenario, sample_dir
print(json.dumps({
    "module": monitor.__file__,
    "prefix": sys.prefix,
    "data_dir": str(resources.data_dir()),
    "example_config": str(resources.example_config()),
    "gazetteer": str(markets.gazetteer_path()),
    "markets": len(markets.load_gazetteer().markets),
    "training": sorted(p.name for p in dataset.training_dir().glob("*.jsonl")),
    "examples": len(dataset.training_set()),
    "templates": sorted(p.name for p in digest_render.TEMPLATES.iterdir()),
    "templates_dir": str(digest_render.TEMPLATES),
    "datasette_tables": sorted(serve.load_metadata("demo")["databases"]["demo"]["tables"]),
    "sample": str(sample_dir()),
    "sample_feeds": [f.name for f in load_scenario().feeds],
}))
"""


@dataclass
class WheelRun:
    checkout: Path  # a clean copy of the checkout; its .venv has the wheel installed
    wheel: Path
    wheel_names: list[str]
    venv: Path
    run_dir: Path  # where `monitor demo` ran
    install_seconds: float
    demo_seconds: float
    version: str
    probe: dict
    demo_out: str
    demo_err: str
    served: dict = field(default_factory=dict)


def install_wheel(base: Path) -> WheelRun:
    """Copy the checkout, build its wheel, install it in a fresh venv and run it."""
    checkout = copy_checkout(base / "checkout")
    dist = base / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(checkout)],
        cwd=base, timeout=300)
    [wheel] = dist.glob("monitor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    venv = checkout / ".venv"  # where the README's commands put it, so they can reuse it
    started = time.monotonic()
    run([sys.executable, "-m", "venv", str(venv)], cwd=base)
    run([str(venv / "bin" / "pip"), "install", "--no-compile", str(wheel)], cwd=base,
        timeout=600)
    install_seconds = time.monotonic() - started
    run_dir = base / "run"
    run_dir.mkdir()
    monitor = str(venv / "bin" / "monitor")
    version = run([monitor, "--version"], cwd=run_dir).stdout.strip()
    probe = json.loads(run([str(venv / "bin" / "python"), "-c", _PROBE], cwd=run_dir).stdout)
    started = time.monotonic()
    demo = run([monitor, "demo"], cwd=run_dir, timeout=180)
    demo_seconds = time.monotonic() - started
    result = WheelRun(checkout, wheel, names, venv, run_dir, install_seconds, demo_seconds,
                      version, probe, demo.stdout, demo.stderr)
    result.served = _serve_demo(monitor, run_dir)
    return result


def _serve_demo(monitor: str, run_dir: Path) -> dict:
    """`monitor serve --config demo.toml` from the wheel: ask it a view and a canned query."""
    port = free_port()
    process = subprocess.Popen([monitor, "serve", "--config", "demo.toml", "--port", str(port)],
                               cwd=run_dir, env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/-/versions.json", process, timeout=60)
        answers = {}
        for key, path in (("flagged", "/demo/flagged_items.json?_shape=array"),
                          ("over_time", "/demo/market_over_time.json?market=Cormorant"
                                        "&_shape=array"),
                          ("metadata", "/-/metadata.json")):
            with urllib.request.urlopen(base + path, timeout=30) as response:
                answers[key] = json.loads(response.read())
        return answers
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as the docs say
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
