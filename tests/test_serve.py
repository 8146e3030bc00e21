"""`monitor serve`: Datasette started as a real server on 127.0.0.1 over the fixture database.

The JSON API answers the canned queries and full-text search; it keeps answering, and sees
new rows, while another process writes; and it never writes to the file itself.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import serve as serving
from tests.analyst_helpers import (
    Built,
    free_port,
    item_id,
    monitor_command,
    wait_for_http,
)


class Server:
    def __init__(self, built: Built) -> None:
        self.built = built
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = serving.database_name(built.db_path)

    def get(self, path: str, **params: str) -> tuple[int, object]:
        """GET a path under the database (or, starting with /, under the root)."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        where = path if path.startswith("/") else f"/{self.db}/{path}"
        url = f"{self.base}{where}{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def rows(self, path: str, **params: str) -> list[dict]:
        status, data = self.get(path, _shape="array", **params)
        assert status == 200, data
        return data


@pytest.fixture
def server(built: Built) -> Iterator[Server]:
    srv = Server(built)
    process = subprocess.Popen(
        monitor_command("serve", "--config", str(built.config_path), "--port", str(srv.port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"{srv.base}/-/versions.json", process)
        yield srv
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_canned_queries_and_full_text_search(server: Server):
    rows = server.rows("search_flagged.json", q="Zorblax")
    assert [r["item_id"] for r in rows] == [item_id("zorblax")]
    assert "Nemesis Market" in rows[0]["markets"].split(", ")
    # Search words are escaped, not FTS syntax: a stray quote or operator is no error.
    assert isinstance(server.rows("search_flagged.json", q='zorblax" OR ('), list)
    assert server.rows("search_flagged.json", q="fentanyl") == []  # not flagged
    everything = server.rows("search_flagged.json", q="")
    assert item_id("kraken") in {r["item_id"] for r in everything}

    # Full-text search on the items table and on the flagged_items view.
    found = server.rows("items.json", _search="fentanyl")
    assert [r["id"] for r in found] == [item_id("sentenced")]
    flagged = server.rows("flagged_items.json", _search="Kraken")
    assert {r["item_id"] for r in flagged} == {item_id("kraken"), item_id("copy", "mirror")}

    daily = server.rows("market_over_time.json", market="hydra")  # an alias, any case
    assert {r["market"] for r in daily} == {"Hydra Market"}
    assert [r["day"] for r in daily] == sorted(r["day"] for r in daily)
    new = server.rows("new_this_week.json")
    names = {r["market"] for r in new}
    assert "Kraken" in names and any(n.startswith("Zorblax") for n in names)
    after = server.rows("after_takedown.json", event="Hydra")
    mega = [r for r in after if r["successor"] == "Mega"]
    assert mega and mega[0]["event_id"] == "hydra-seizure-2022"
    assert mega[0]["mentions_30d"] == 2


def test_metadata_and_read_only_mutable_database(server: Server, built: Built):
    status, meta = server.get("/-/metadata.json")
    assert status == 200
    assert meta["title"].startswith("monitor")
    tables = meta["databases"][server.db]["tables"]
    for view in ("flagged_items", "market_daily", "new_markets", "takedown_response",
                 "source_health"):
        assert tables[view]["description"]
    status, databases = server.get("/-/databases.json")
    (db,) = [d for d in databases if d["name"] == server.db]
    # Mutable (not immutable mode), so each request sees what the daemon committed.
    assert db["is_mutable"] is True


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_serving_never_writes_to_the_file(server: Server, built: Built):
    before = _digest(built.db_path)
    for path in ("flagged_items.json", "market_daily.json", "new_markets.json",
                 "takedown_response.json", "source_health.json", "items.json"):
        server.rows(path)
    server.rows("search_flagged.json", q="market")
    assert _digest(built.db_path) == before


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from monitor import store
    from monitor.timeutil import utcnow, iso
    db = store.open_db(sys.argv[1])
    stop = Path(sys.argv[2])
    written = 0
    start = time.monotonic()
    # Bounded: at most 40 s or 20,000 items, whichever comes first.
    while not stop.exists() and written < 20000 and time.monotonic() - start < 40:
        now = iso(utcnow())
        batch = [{"id": f"load:{written + i}", "source": "loadtest", "kind": "news",
                  "title": f"load item {written + i}", "body": "darknet market " * 50,
                  "published_at": now, "collected_at": now} for i in range(25)]
        store.save_items(db, batch)
        written += len(batch)
        if written == 25:
            print("started", flush=True)
    print(written, flush=True)
""")


def test_keeps_answering_while_another_process_writes(server: Server, built: Built,
                                                      tmp_path: Path):
    count_sql = "SELECT count(*) AS n FROM items WHERE source = 'loadtest'"
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(built.db_path), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "started"
        seen = []
        for _ in range(40):
            seen.append(server.rows(f"/{server.db}.json", sql=count_sql)[0]["n"])
            # The views and canned queries answer while the writer holds its transactions.
            assert server.rows("search_flagged.json", q="Kraken")
            assert server.rows("source_health.json")
        stop.touch()
        written = int(writer.stdout.readline())
        assert writer.wait(timeout=30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert seen == sorted(seen)
    assert len(set(seen)) > 1, f"no new rows seen while writing: {seen}"
    assert server.rows(f"/{server.db}.json", sql=count_sql)[0]["n"] == written


def test_port_in_use_is_one_line(built: Built):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            monitor_command("serve", "--config", str(built.config_path), "--port", str(port)),
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use (another server "
        "is using it: pick one with --port)"]
