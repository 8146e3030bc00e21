"""The daemon (`monitor run`): schedules, runs, signals, the single-instance lock, crash
safety and what `monitor status` says about it.

The end-to-end tests start `monitor run` as a real subprocess against a local feed server,
with intervals of a second or two, and poll the database instead of sleeping.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import daemon, lock, pipeline, store
from monitor.cli import cli
from monitor.collect.base import Fetched
from monitor.config import DigestConfig
from monitor.timeutil import iso, utcnow

from .daemon_helpers import (
    Feed,
    FeedServer,
    monitor_command,
    query,
    rss,
    wait_for,
)
from .daemon_helpers import (
    daemon as start_daemon,
)
from .daemon_helpers import write_config as write_daemon_config

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def runs(db: Path, job: str) -> list[tuple]:
    return query(db, "SELECT ok, items_seen, items_new, error, finished_at FROM runs "
                     "WHERE job = ? ORDER BY id", (job,))


def integrity(db: Path) -> str:
    return query(db, "PRAGMA integrity_check")[0][0]


# --- schedule arithmetic -------------------------------------------------------------------

def test_first_run_resumes_the_schedule_from_the_database():
    never = daemon.first_run({}, 600, NOW, jitter=0.1)
    assert NOW <= never <= NOW + timedelta(seconds=60)  # due now, spread over <= 10%
    recent = {"last_attempt_at": iso(NOW - timedelta(seconds=100))}
    assert daemon.first_run(recent, 600, NOW) == NOW + timedelta(seconds=500)
    backoff = {**recent, "next_attempt_at": iso(NOW + timedelta(hours=2))}
    assert daemon.first_run(backoff, 600, NOW) == NOW + timedelta(hours=2)
    long_ago = {"last_attempt_at": iso(NOW - timedelta(days=3))}
    spread = daemon.first_run(long_ago, 7200, NOW, jitter=0.1)
    assert NOW <= spread <= NOW + timedelta(seconds=daemon.STARTUP_SPREAD)


def test_is_due_for_run_once():
    assert daemon.is_due({}, 600, NOW)
    assert not daemon.is_due({"last_attempt_at": iso(NOW - timedelta(seconds=300))}, 600, NOW)
    # cron firing a few seconds early still counts as due
    assert daemon.is_due({"last_attempt_at": iso(NOW - timedelta(seconds=590))}, 600, NOW)
    assert not daemon.is_due({"next_attempt_at": iso(NOW + timedelta(minutes=5))}, 600, NOW)


def test_digest_trigger_fires_at_the_local_weekday_and_time():
    trigger = daemon.digest_trigger(DigestConfig(weekday="mon", time="07:00",
                                                 timezone="Europe/Berlin"))
    # Saturday 2026-11-28 -> Monday 2026-11-30 07:00 in Berlin (CET, UTC+1) = 06:00 UTC
    fire = trigger.get_next_fire_time(None, NOW)
    assert fire.astimezone(UTC) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    summer = trigger.get_next_fire_time(None, datetime(2026, 7, 1, tzinfo=UTC))
    assert summer.astimezone(UTC) == datetime(2026, 7, 6, 5, 0, tzinfo=UTC)  # CEST, UTC+2


# --- what status says ----------------------------------------------------------------------

def _state(**overrides: str) -> dict[str, str]:
    base = {"pid": "4242", "host": "box", "mode": "daemon", "heartbeat_every": "30.0",
            "started_at": iso(NOW - timedelta(hours=1)),
            "heartbeat_at": iso(NOW - timedelta(seconds=10)), "jobs": "[]"}
    return {**base, **overrides}


def test_describe_the_daemon_in_every_state():
    holder = {"pid": 4242, "host": "box"}
    never = daemon.describe({}, None, NOW, this_host="box")
    assert never.state == "never" and "monitor run" in never.summary
    running = daemon.describe(_state(), holder, NOW, this_host="box")
    assert running.state == "running"
    assert "pid 4242 on box" in running.summary and "heartbeat 10s ago" in running.summary
    hung = daemon.describe(_state(heartbeat_at=iso(NOW - timedelta(minutes=10))), holder, NOW,
                           this_host="box")
    assert hung.state == "unresponsive" and "10m ago" in hung.summary
    dead = daemon.describe(_state(), None, NOW, this_host="box")
    assert dead.state == "dead" and "killed or crashed" in dead.summary
    stopped = daemon.describe(_state(stopped_at=iso(NOW - timedelta(minutes=5))), None, NOW,
                              this_host="box")
    assert stopped.state == "stopped" and "stopped cleanly at 2026-11-28 11:55" in stopped.summary
    # Seen from another machine the lock says nothing: the heartbeat decides.
    assert daemon.describe(_state(), None, NOW, this_host="laptop").state == "running"
    old = _state(heartbeat_at=iso(NOW - timedelta(hours=2)))
    assert daemon.describe(old, None, NOW, this_host="laptop").state == "dead"
    assert daemon.describe(_state(), None, NOW, this_host="box",
                           lock_probed=False).state == "running"


def test_describe_flags_a_job_running_past_its_interval():
    jobs = [{"job": "collect:slow", "started_at": iso(NOW - timedelta(minutes=12)),
             "interval": 600.0, "phase": "fetching"},
            {"job": "collect:fine", "started_at": iso(NOW - timedelta(seconds=5)),
             "interval": 600.0, "phase": "storing"}]
    report = daemon.describe(_state(jobs=json.dumps(jobs)), {"pid": 4242}, NOW,
                             this_host="box")
    assert [(j["job"], j["overdue"]) for j in report.jobs] == [
        ("collect:slow", True), ("collect:fine", False)]
    assert report.jobs[0]["running_for"] == 720


def test_journald_lines_carry_the_priority_on_every_line():
    formatter = daemon.JournalFormatter()
    record = daemon.log.makeRecord("monitor.x", 40, __file__, 1, "boom\nsecond line", (), None)
    assert formatter.format(record) == "<3>monitor.x: boom\n<3>second line"


# --- the single-instance lock --------------------------------------------------------------

def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path):
    db_path = tmp_path / "m.db"
    first = lock.InstanceLock(db_path)
    first.acquire()
    try:
        holder = lock.holder(db_path)
        assert holder is not None and holder["pid"] > 0
        with pytest.raises(lock.AlreadyRunning, match=rf"pid {holder['pid']} on "):
            lock.InstanceLock(db_path).acquire(wait=0.1)
    finally:
        first.release()
    assert lock.holder(db_path) is None


def test_a_stale_lock_file_does_not_block(tmp_path: Path):
    db_path = tmp_path / "m.db"
    lock.lock_path(db_path).write_text('{"pid": 999999, "host": "gone"}\n')
    assert lock.holder(db_path) is None
    with lock.InstanceLock(db_path) as held:
        assert json.loads(held.path.read_text())["pid"] != 999999


# --- in-process daemon with fake sources ---------------------------------------------------

class FakeSource:
    """Returns one new item per fetch; `gate` (when set) holds the fetch until released."""

    kind = "feed"

    def __init__(self, name: str, interval: float, gate: threading.Event | None = None):
        self.name, self.interval, self.gate = name, interval, gate
        self.target = f"fake://{name}"
        self.calls = 0

    def fetch(self, state: dict, now: datetime) -> Fetched:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(20)
        item = {"id": f"fake:{self.name}:{self.calls}", "source": self.name, "kind": "news",
                "url": f"https://fake.example/{self.name}/{self.calls}", "title": "t",
                "body": f"{self.name} {self.calls}", "published_at": iso(now),
                "collected_at": iso(now), "content_hash": f"{self.name}{self.calls}"}
        return Fetched(items=[item])


def _start(config, sources, **kwargs) -> tuple[daemon.Daemon, threading.Thread, list]:
    runner = daemon.Daemon(config, build_sources=lambda _c: sources,
                           make_hook=lambda _c: None, signals=False,
                           send_digest=kwargs.pop("send_digest", lambda db, c, now: 0),
                           **kwargs)
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run()), daemon=True)
    thread.start()
    return runner, thread, outcome


def test_a_job_that_raises_does_not_stop_the_others(write_config, monkeypatch):
    config = write_config('[daemon]\nheartbeat = "0.2s"\n')
    real_collect = pipeline.collect

    def collect(db, sources, **kwargs):
        if sources[0].name == "bad":
            raise RuntimeError("collector exploded")
        return real_collect(db, sources, **kwargs)

    monkeypatch.setattr(pipeline, "collect", collect)
    good, bad = FakeSource("good", 0.3), FakeSource("bad", 0.3)
    runner, thread, outcome = _start(config, [good, bad])
    db_path = config.db_path
    try:
        wait_for(lambda: len(runs(db_path, "collect:bad")) >= 2
                 and len([r for r in runs(db_path, "collect:good") if r[0] == 1]) >= 3,
                 "failing and succeeding runs")
    finally:
        runner.stop()
        thread.join(10)
    assert outcome == [True]
    bad_runs = runs(db_path, "collect:bad")
    assert all(r[0] == 0 and r[3] == "internal error: RuntimeError: collector exploded"
               and r[4] for r in bad_runs)
    assert query(db_path, "SELECT count(*) FROM items WHERE source = 'good'")[0][0] >= 3
    db = store.open_db(db_path)
    assert store.daemon_state(db)["stopped_at"]
    db.close()


def test_a_job_running_past_its_interval_shows_in_status(write_config):
    config = write_config('[daemon]\nheartbeat = "0.2s"\n')
    gate = threading.Event()
    slow = FakeSource("slow", 0.5, gate=gate)
    runner, thread, outcome = _start(config, [slow])
    try:
        def overdue() -> bool:
            rows = query(config.db_path, "SELECT value FROM meta WHERE key = 'daemon.jobs'")
            jobs = [j for j in json.loads(rows[0][0] if rows else "[]")
                    if j["job"] == "collect:slow"]
            return bool(jobs) and (utcnow() - datetime.fromisoformat(jobs[0]["started_at"])
                                   ).total_seconds() > 1
        wait_for(overdue, "the slow job in the heartbeat", timeout=10)
        result = CliRunner().invoke(cli, ["status", "--config", str(config.path)])
        assert result.exit_code == 0, result.output
        assert "Daemon: running" in result.output
        line = next(x for x in result.output.splitlines() if x.startswith("collect:slow"))
        assert "fetching" in line and "OVERDUE" in line
    finally:
        gate.set()
        runner.stop()
        thread.join(10)
    assert outcome == [True]
    assert slow.calls == 1  # max_instances=1: never a second fetch while the first hangs


def test_stop_while_a_fetch_hangs_returns_promptly_and_stores_nothing(write_config):
    config = write_config('[daemon]\nheartbeat = "0.2s"\nstop_timeout = "1s"\n')
    gate = threading.Event()
    stuck = FakeSource("stuck", 5, gate=gate)
    runner, thread, outcome = _start(config, [stuck])
    try:
        wait_for(lambda: stuck.calls == 1, "the fetch to start")
        runner.stop()
        thread.join(5)
        assert not thread.is_alive() and outcome == [False]  # the caller exits hard
    finally:
        gate.set()
    thread.join(5)
    assert query(config.db_path, "SELECT count(*) FROM items")[0][0] == 0


def test_reload_reschedules_a_source_whose_interval_changed(write_config):
    config = write_config('[daemon]\njitter = 0.0\n[[feeds]]\nname = "a"\n'
                          'url = "http://127.0.0.1:9/a"\ninterval = "1h"\n')
    built: list[FakeSource] = []

    def build(cfg):
        fresh = [FakeSource(f.name, f.interval) for f in cfg.feeds]
        built.extend(fresh)
        return fresh

    runner = daemon.Daemon(config, build_sources=build, make_hook=lambda _c: None,
                           send_digest=lambda db, c, now: 0, signals=False)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sum(s.calls for s in built) == 1, "the first poll")
        config.path.write_text(config.path.read_text().replace('"1h"', '"0.3s"'))
        runner.reload()
        # Hourly before the reload; now three more polls come within seconds.
        wait_for(lambda: sum(s.calls for s in built) >= 4, "polls at the new interval",
                 timeout=10)
    finally:
        runner.stop()
        thread.join(10)
    assert runner.config.feeds[0].interval == 0.3


def test_run_once_collects_due_sources_and_records_the_digest(write_config):
    config = write_config()
    sent: list = []

    def send_digest(db, cfg, now):
        sent.append(now)
        return 1

    sources = [FakeSource("a", 3600), FakeSource("b", 3600)]
    runner = daemon.Daemon(config, build_sources=lambda _c: sources, make_hook=lambda _c: None,
                           send_digest=send_digest, signals=False)
    first = runner.run_once()
    assert first.text() == "2 sources collected (0 not due yet): 2 new items, 0 failed; " \
                           "1 digest(s) sent"
    again = daemon.Daemon(config, build_sources=lambda _c: sources, make_hook=lambda _c: None,
                          send_digest=lambda db, c, now: 0, signals=False).run_once()
    assert again.text() == "0 sources collected (2 not due yet): 0 new items, 0 failed"
    assert [r[:3] for r in runs(config.db_path, "digest")] == [(1, 0, 1), (1, 0, 0)]


def test_items_left_unclassified_are_classified_in_batches(write_config):
    config = write_config()
    db = store.open_db(config.db_path)
    store.save_items(db, [
        {"id": f"feed:{i:05d}", "source": "old", "kind": "news", "title": f"story {i}",
         "body": "", "published_at": iso(NOW), "collected_at": iso(NOW + timedelta(seconds=i))}
        for i in range(2500)])
    batches: list[list[str]] = []

    def hook(db, ids, now):
        batches.append(ids)
        db["classifications"].insert_all(
            [{"item_id": i, "model_version": "test", "score": 0.1, "flagged": 0,
              "classified_at": iso(now)} for i in ids], pk=("item_id", "model_version"))

    def once() -> daemon.OnceSummary:
        return daemon.Daemon(config, build_sources=lambda _c: [], make_hook=lambda _c: hook,
                             send_digest=lambda db, c, now: 0, signals=False).run_once()

    once()
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert batches[0][0] == "feed:00000"  # oldest first
    assert store.unclassified_item_ids(db, 10) == []
    once()  # nothing left: no second pass, no empty run
    assert len(batches) == 3
    assert [r[:3] for r in runs(config.db_path, "classify:backlog")] == [(1, 2500, 2500)]
    db.close()


def test_a_failing_digest_is_recorded_and_collection_goes_on(write_config):
    config = write_config()

    def send_digest(db, cfg, now):
        raise RuntimeError("template missing")

    runner = daemon.Daemon(config, build_sources=lambda _c: [FakeSource("a", 60)],
                           make_hook=lambda _c: None, send_digest=send_digest, signals=False)
    summary = runner.run_once()
    assert summary.results[0].new == 1
    assert runs(config.db_path, "digest")[0][:4] == (0, 0, 0, "RuntimeError: template missing")


def test_run_once_command_collects_what_is_due(tmp_path: Path):
    with FeedServer() as server:
        server.feeds["alpha.xml"] = Feed(rss(3, "alpha"), etag='"a"')
        config = write_daemon_config(tmp_path / "config.toml",
                                     {"alpha": (server.url("alpha.xml"), "1h")})
        runner = CliRunner()
        first = runner.invoke(cli, ["run", "--once", "--config", str(config)])
        second = runner.invoke(cli, ["run", "--once", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert "1 sources collected (0 not due yet): 3 new items, 0 failed" in first.output
    assert "0 sources collected (1 not due yet): 0 new items, 0 failed" in second.output
    assert server.hits("alpha.xml") == [None]
    status = runner.invoke(cli, ["status", "--config", str(config)])
    assert "`monitor run --once` last finished at" in status.output


# --- `monitor run` as a real subprocess ----------------------------------------------------

def test_daemon_collects_records_runs_and_exits_0_on_sigterm(tmp_path: Path):
    with FeedServer() as server:
        server.feeds["alpha.xml"] = Feed(rss(12, "alpha"), etag='"alpha-1"')
        server.feeds["hang.xml"] = Feed(b"", hang=True)
        config = write_daemon_config(tmp_path / "config.toml", {
            "alpha": (server.url("alpha.xml"), "2s"), "hang": (server.url("hang.xml"), "3s")},
            deadline="1s")
        db_path = tmp_path / "monitor.db"
        with start_daemon(config) as proc:
            # The ETag is stored and sent back: the second poll is a 304.
            wait_for(lambda: '"alpha-1"' in server.hits("alpha.xml"), "a conditional poll",
                     proc=proc)
            wait_for(lambda: any(r[0] == 0 for r in runs(db_path, "collect:hang")),
                     "the hanging feed to time out", proc=proc)
            status = CliRunner().invoke(cli, ["status", "--config", str(config)])
            assert status.exit_code == 0, status.output
            assert f"Daemon: running, pid {proc.pid} on " in status.output
            code, took = proc.stop()
            log = proc.log()
    assert code == 0 and took < 10, log
    assert "Traceback" not in log
    alpha = runs(db_path, "collect:alpha")
    assert alpha[0][:3] == (1, 12, 12)
    assert all(r[0] == 1 and r[4] for r in alpha)
    hang = runs(db_path, "collect:hang")
    assert hang[0][0] == 0 and "timed out" in hang[0][3]
    assert query(db_path, "SELECT count(*) FROM items WHERE source = 'alpha'") == [(12,)]
    assert query(db_path, "SELECT value FROM meta WHERE key = 'daemon.stopped_at'")
    status = CliRunner().invoke(cli, ["status", "--config", str(config)])
    assert "Daemon: not running; stopped cleanly at" in status.output


def test_kill_9_mid_collection_then_restart_completes_it(tmp_path: Path):
    entries = 2500
    with FeedServer() as server:
        big = Feed(rss(entries, "big"), etag='"big-1"', chunk_delay=0.03)
        server.feeds["big.xml"] = big
        config = write_daemon_config(tmp_path / "config.toml",
                              {"big": (server.url("big.xml"), "2s")}, deadline="30s")
        db_path = tmp_path / "monitor.db"

        # 1: killed while the feed is still downloading.
        with start_daemon(config) as proc:
            wait_for(big.streaming.is_set, "the download to start", proc=proc)
            proc.kill9()
        assert integrity(db_path) == "ok"
        assert query(db_path, "SELECT count(*) FROM items") == [(0,)]

        # 2: killed once the write has begun (its run row is there, unfinished).
        big.chunk_delay = 0.0
        with start_daemon(config) as proc:
            wait_for(lambda: query(db_path, "SELECT 1 FROM runs WHERE job = 'collect:big' "
                                            "AND finished_at IS NULL"),
                     "the write to begin", proc=proc, every=0.002)
            proc.kill9()
        assert integrity(db_path) == "ok"
        stored = query(db_path, "SELECT count(*) FROM items")[0][0]
        assert stored in (0, entries)  # all or nothing: one transaction

        # 3: the restart completes the collection and then polls conditionally.
        with start_daemon(config) as proc:
            wait_for(lambda: query(db_path, "SELECT etag FROM sources WHERE name = 'big'")
                     == [('"big-1"',)], "the feed to be stored", proc=proc, timeout=30)
            wait_for(lambda: '"big-1"' in server.hits("big.xml"), "a conditional poll",
                     proc=proc)
            # Whichever commit the kill fell between, every stored item gets classified.
            wait_for(lambda: query(db_path, "SELECT count(*) FROM items i WHERE NOT EXISTS "
                                            "(SELECT 1 FROM classifications c "
                                            "WHERE c.item_id = i.id)") == [(0,)],
                     "every item to be classified", proc=proc, timeout=30)
            code, _took = proc.stop()
            log = proc.log()
    assert code == 0, log
    assert integrity(db_path) == "ok"
    assert query(db_path, "SELECT count(*), count(DISTINCT url) FROM items") == [
        (entries, entries)]
    # The full-text index matches the table (FTS5's own consistency check).
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")
    conn.close()
    assert query(db_path, "SELECT count(*) FROM items_fts") == [(entries,)]
    # Runs the killed daemons left open are closed as failed, none stays "running".
    assert query(db_path, "SELECT count(*) FROM runs WHERE finished_at IS NULL") == [(0,)]
    abandoned = query(db_path, "SELECT count(*) FROM runs WHERE error = ?", (daemon.ABANDONED,))
    assert abandoned[0][0] >= 1
    assert "marked failed" in log


def test_second_daemon_refuses_and_a_new_one_starts_after_kill_9(tmp_path: Path):
    with FeedServer() as server:
        server.feeds["alpha.xml"] = Feed(rss(3, "alpha"))
        config = write_daemon_config(tmp_path / "config.toml",
                              {"alpha": (server.url("alpha.xml"), "1h")})
        db_path = tmp_path / "monitor.db"

        def heartbeat_pid() -> str | None:
            rows = query(db_path, "SELECT value FROM meta WHERE key = 'daemon.pid'")
            return rows[0][0] if rows else None

        with start_daemon(config) as first:
            wait_for(lambda: heartbeat_pid() == str(first.pid), "the first daemon", proc=first)
            refused = f"already runs on {db_path} (pid {first.pid} on "
            second = subprocess.run(monitor_command("run", "--config", str(config)),
                                    capture_output=True, text=True, timeout=30)
            assert second.returncode == 1
            assert refused in second.stderr and "Traceback" not in second.stderr
            once = CliRunner().invoke(cli, ["run", "--once", "--config", str(config)])
            assert once.exit_code == 1 and refused in once.output
            first.kill9()
        status = CliRunner().invoke(cli, ["status", "--config", str(config)])
        assert f"NOT RUNNING: pid {first.pid}" in status.output
        with start_daemon(config) as third:
            wait_for(lambda: heartbeat_pid() == str(third.pid), "the restarted daemon",
                     proc=third)
            third.signal(signal.SIGINT)
            assert third.wait(10) == 0, third.log()


def test_sighup_reloads_the_config_adding_and_removing_sources(tmp_path: Path):
    with FeedServer() as server:
        server.feeds["alpha.xml"] = Feed(rss(2, "alpha"))
        server.feeds["beta.xml"] = Feed(rss(3, "beta"))
        path = tmp_path / "config.toml"
        write_daemon_config(path, {"alpha": (server.url("alpha.xml"), "1s")})
        db_path = tmp_path / "monitor.db"
        with start_daemon(path) as proc:
            wait_for(lambda: runs(db_path, "collect:alpha"), "alpha to be collected", proc=proc)

            # A broken config is reported and the daemon carries on with the old one.
            good = path.read_text()
            path.write_text(good + "\n[[feeds]]\nname = 'x'\nurl = 'ftp://nope'\n")
            proc.signal(signal.SIGHUP)
            wait_for(lambda: "reload failed" in proc.log(), "the reload error", proc=proc)
            assert "feeds[1].url" in proc.log()

            write_daemon_config(path, {"beta": (server.url("beta.xml"), "1s")})
            proc.signal(signal.SIGHUP)
            wait_for(lambda: runs(db_path, "collect:beta"), "beta to be collected", proc=proc)
            alpha_then = len(server.hits("alpha.xml"))
            wait_for(lambda: len(server.hits("beta.xml")) >= 3, "beta polled again", proc=proc)
            alpha_now = len(server.hits("alpha.xml"))
            code, _took = proc.stop()
            log = proc.log()
    assert code == 0, log
    assert alpha_now <= alpha_then + 1  # at most a poll already under way at the reload
    assert "added: beta; removed: alpha" in log
    assert query(db_path, "SELECT name, active FROM sources ORDER BY name") == [
        ("alpha", 0), ("beta", 1)]
    assert query(db_path, "SELECT count(*) FROM items WHERE source = 'beta'") == [(3,)]


def test_systemd_unit_is_valid(tmp_path: Path):
    unit = Path(__file__).resolve().parents[1] / "deploy" / "monitor.service"
    text = unit.read_text()
    assert "Restart=on-failure" in text
    assert "ExecStart=" in text and " run --config " in text
    assert "User=monitor" in text
    analyze = subprocess.run(["systemd-analyze", "--version"], capture_output=True) \
        if _which("systemd-analyze") else None
    if analyze is None or analyze.returncode != 0:
        pytest.skip("systemd-analyze is not installed: only the unit's content was checked")
    # `verify` wants the ExecStart binary to exist: point it at one that does.
    probe = tmp_path / "monitor-unit-check.service"
    lines = [f"ExecStart={_which('true')}" if ln.startswith("ExecStart=") else ln
             for ln in text.splitlines()]
    probe.write_text("\n".join(lines))
    result = subprocess.run(["systemd-analyze", "verify", str(probe)], capture_output=True,
                            text=True, timeout=60)
    problems = [ln for ln in result.stderr.splitlines() if "monitor-unit-check" in ln]
    assert not problems, result.stderr


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def _add_runs(db, job: str, days_ago: list[int], now: datetime) -> None:
    for days in days_ago:
        started = now - timedelta(days=days)
        run_id = store.start_run(db, job, started)
        store.finish_run(db, run_id, started + timedelta(seconds=1), ok=days % 2 == 0)


def test_prune_runs_keeps_recent_runs_and_each_jobs_first(tmp_path: Path):
    db = store.open_db(tmp_path / "m.db")
    _add_runs(db, "collect:a", [400, 200, 100, 50, 1], NOW)
    _add_runs(db, "collect:b", [300, 95], NOW)
    _add_runs(db, "collect:c", [10], NOW)
    open_run = store.start_run(db, "collect:a", NOW - timedelta(days=120))  # never finished
    first = store.first_activity_at(db)
    cutoff = NOW - timedelta(days=90)
    assert store.prune_runs(db, cutoff, batch=1) == 1  # one short write per call
    while store.prune_runs(db, cutoff, batch=1):
        pass
    left = [(r["job"], r["started_at"][:10]) for r in db.query(
        "SELECT job, started_at FROM runs ORDER BY job, started_at")]
    day = lambda n: iso(NOW - timedelta(days=n))[:10]  # noqa: E731
    assert left == [("collect:a", day(400)), ("collect:a", day(120)), ("collect:a", day(50)),
                    ("collect:a", day(1)), ("collect:b", day(300)), ("collect:c", day(10))]
    assert db.execute("SELECT finished_at FROM runs WHERE id = ?", [open_run]).fetchone()[0] \
        is None
    assert store.first_activity_at(db) == first  # the digest's catch-up still starts there
    db.close()


def test_run_once_prunes_runs_past_keep_runs_days(tmp_path: Path):
    path = write_daemon_config(tmp_path / "config.toml", {})
    text = path.read_text().replace('path = "monitor.db"\n',
                                    'path = "monitor.db"\nkeep_runs_days = 30\n')
    path.write_text(text)
    from monitor.config import load_config

    config = load_config(path, env={})
    db = store.open_db(config.db_path)
    now = utcnow()
    _add_runs(db, "collect:a", [60, 45, 29, 2], now)
    db.close()
    daemon.Daemon(config, build_sources=lambda _c: [], make_hook=lambda _c: None,
                  send_digest=lambda db, c, now: 0, signals=False).run_once()
    kept = [row[0] for row in sqlite3.connect(config.db_path).execute(
        "SELECT round(julianday('now') - julianday(started_at)) FROM runs "
        "WHERE job = 'collect:a' ORDER BY started_at")]
    assert kept == [60, 29, 2]  # 45 days old: gone; 60: the job's first run, kept
