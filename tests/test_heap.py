"""The malloc arena cap: counted in glibc's own report of a fresh process's heaps."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="malloc arenas are glibc's; this C library has none")

# Eight threads allocate at once (blocks above pymalloc's 512 bytes and below mmap's
# threshold, so they come from an arena); then glibc writes its heaps out as XML.
_SCRIPT = """
import ctypes, sys, threading
from monitor import heap
print(heap.cap_malloc_arenas() if sys.argv[1] == "cap" else None, flush=True)
start = threading.Barrier(8)
def work():
    start.wait()
    kept = [bytearray(20_000) for _ in range(200)]
    start.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
"""


def _heaps(tmp_path: Path, mode: str, **env: str) -> tuple[str, int]:
    """(what cap_malloc_arenas returned, the arenas glibc reports) in a new process."""
    report = tmp_path / f"{mode}.xml"
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", _SCRIPT, mode, str(report)], env=environ,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip(), len(re.findall(r'<heap nr="\d+">', report.read_text()))


def test_threads_share_two_arenas_once_capped(tmp_path: Path) -> None:
    returned, capped = _heaps(tmp_path, "cap")
    assert returned == str(heap.ARENAS)
    assert capped <= heap.ARENAS
    # The same threads without the cap spread over more, so a cap that did nothing fails.
    _, uncapped = _heaps(tmp_path, "free")
    assert uncapped > heap.ARENAS


def test_the_operators_malloc_arena_max_is_left_to_glibc(tmp_path: Path) -> None:
    returned, arenas = _heaps(tmp_path, "cap", MALLOC_ARENA_MAX="1")
    assert returned == "None"
    assert arenas == 1


def test_the_daemon_caps_arenas_before_it_collects(write_config, monkeypatch) -> None:
    import monitor.daemon as daemon

    order: list[str] = []
    monkeypatch.setattr(daemon.heap, "cap_malloc_arenas", lambda: order.append("cap"))

    def sources(_config: object) -> list:
        order.append("sources")
        return []

    daemon.Daemon(write_config(), build_sources=sources, make_hook=lambda _c: None,
                  send_digest=lambda db, c, now: 0, signals=False).run_once()
    assert order == ["cap", "sources"]
