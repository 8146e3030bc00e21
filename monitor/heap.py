"""The daemon's C heap: at most a few glibc malloc arenas, however many threads it runs.

glibc gives each thread that allocates an arena of its own, up to eight per core. The
daemon's fetch threads (32 by default) put response bodies and parsed documents in theirs,
and memory freed in one arena cannot serve another, so the resident set crept up for days
(11 MB over 900 cycles of `python -m bench memory` on 2 cores; more cores allow more arenas).
Capped at two it grew 2.7 MB, levelling off. An operator's MALLOC_ARENA_MAX wins.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number for the arena cap (glibc's malloc.h)


def cap_malloc_arenas(arenas: int = ARENAS) -> int | None:
    """Cap this process's malloc arenas; call before the threads start (arenas already made
    stay). Returns the cap, or None when glibc is not the C library, MALLOC_ARENA_MAX is set
    (glibc reads it itself), or mallopt refused."""
    if "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(_M_ARENA_MAX, arenas) != 1:
        return None
    log.debug("malloc arenas capped at %d", arenas)
    return arenas
