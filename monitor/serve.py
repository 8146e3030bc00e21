"""`monitor serve`: Datasette over the live database, in this process.

The file is served as a mutable database, which Datasette opens with SQLite's `mode=ro`: it
sees each write the daemon commits (WAL mode lets readers and the writer proceed together)
and can never write itself. Immutable mode would be wrong here: it assumes the file never
changes and would serve stale or torn pages while the daemon writes.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import MonitorError

METADATA_FILE = "datasette_metadata.json"
_METADATA_DB = "monitor"  # the database key the shipped metadata is written for

# Analysts' queries join views; give them longer than Datasette's default second.
SETTINGS = {"sql_time_limit_ms": 5000, "facet_time_limit_ms": 500, "default_page_size": 50}


def database_name(db_path: Path) -> str:
    """The name Datasette gives a database file (its stem), which keys the metadata."""
    return Path(db_path).stem


def load_metadata(db_name: str = _METADATA_DB) -> dict[str, Any]:
    """The shipped metadata, with its database section under `db_name`."""
    text = resources.files("monitor").joinpath(METADATA_FILE).read_text(encoding="utf-8")
    metadata = json.loads(text)
    metadata["databases"] = {db_name: metadata["databases"][_METADATA_DB]}
    return metadata


def make_datasette(db_path: Path) -> Any:
    """A Datasette instance over `db_path` (mutable, so opened read-only and never cached)."""
    from datasette.app import Datasette

    return Datasette([str(db_path)], metadata=load_metadata(database_name(db_path)),
                     settings=SETTINGS)


def check_port(host: str, port: int) -> None:
    """Fail with one line, before Datasette starts, when the address cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise MonitorError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            hint = " (another server is using it: pick one with --port)" \
                if exc.errno == errno.EADDRINUSE else ""
            raise MonitorError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None


def serve(db_path: Path, *, host: str = "127.0.0.1", port: int = 8001,
          verbosity: int = 0) -> None:
    """Run Datasette until interrupted."""
    import uvicorn

    check_port(host, port)
    datasette = make_datasette(db_path)
    asyncio.run(datasette.invoke_startup())
    level = "warning" if verbosity <= 0 else ("info" if verbosity == 1 else "debug")
    logging.getLogger(__name__).info("Datasette on http://%s:%d/ over %s", host, port, db_path)
    uvicorn.run(datasette.app(), host=host, port=port, log_level=level, lifespan="on",
                workers=1)
