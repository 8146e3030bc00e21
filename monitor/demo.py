"""`monitor demo`: the whole pipeline offline, on the bundled sample (monitor.sample).

The sample is served from 127.0.0.1 and collected through the real collectors (the feed
collector, and the Reddit collector in its keyless mode) into a fresh database, as if monitor
had been running for the past weeks: the demo's clock steps through them, collecting every
`step`, and each collection is classified and analysed (warnings, lineage, corroboration,
rising-name alerts) at its own time. Then it writes the digest preview of the last complete
week and a config for exploring the result with the other commands.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from . import pipeline, store
from .collect.base import Source
from .config import Config, config_from_dict
from .errors import MonitorError
from .sample import Playback, SampleServer, Scenario, load_scenario, week_shift
from .timeutil import iso, utcnow

if TYPE_CHECKING:
    from .classify.model import Classifier

log = logging.getLogger(__name__)

DB_NAME = "demo.db"
CONFIG_NAME = "demo.toml"
DIGEST_NAME = "demo-digest.html"
TIMEZONE = "UTC"
RECIPIENTS = ["analysts@example.org"]
SENDER = "monitor@example.org"

_CONFIG_TEXT = """\
# Written by `monitor demo`: a config for exploring the demo database, e.g.
#   monitor serve --config {config}
#   monitor report --config {config}
#   monitor markets --config {config}
#   monitor events --config {config}
#   monitor digest --config {config} --preview digest.html
# The database holds an invented story (data/sample/ in the package). The sample's sources
# were served by the demo itself and are gone, so there are no [[feeds]] or [reddit] here:
# for real collection start from config.example.toml (`monitor init`).

[database]
path = "{db}"

[digest]
timezone = "{timezone}"
recipients = {recipients}
sender = "{sender}"
"""


@dataclass
class DemoResult:
    db_path: Path
    config_path: Path
    digest_path: Path
    week: str
    collections: int
    requests: int
    counts: dict[str, int]
    successors: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    failing: list[dict[str, Any]]
    report: str
    events: str
    trained: bool
    seconds: float
    first_at: datetime
    last_at: datetime


def paths(directory: Path) -> tuple[Path, Path, Path]:
    """(database, config, digest preview) that the demo writes in `directory`."""
    return directory / DB_NAME, directory / CONFIG_NAME, directory / DIGEST_NAME


def run_demo(directory: Path, *, now: datetime | None = None,
             progress: Callable[[int, int], None] | None = None,
             hush_logs: bool = True) -> DemoResult:
    """Fill a fresh demo database in `directory` from the sample, as of `now`.

    `progress(done, total)` is called after each collection. With `hush_logs`, the warnings
    the sample provokes on purpose (a failing feed, Reddit without API keys) stay out of the
    log; they are in the result, the report and the digest.
    """
    started = time.monotonic()
    now = (now or utcnow()).astimezone(UTC)
    directory = directory.resolve()
    db_path, config_path, digest_path = paths(directory)
    scenario = load_scenario()
    playback = Playback(scenario, week_shift(scenario, now))
    _clear(db_path)
    times = collection_times(scenario, playback, now)
    with SampleServer(playback, times[0]) as server, _hushed(hush_logs):
        config = demo_config(scenario, server, db_path, config_path)
        db = store.open_db(db_path)
        try:
            store.set_meta(db, store.DEMO_META_KEY, json.dumps(
                {"anchor": iso(playback.real(scenario.anchor)), "made_at": iso(now)}))
            classifier, trained = _prepare(db, config, scenario, playback)
            sources = pipeline.build_sources(config)
            pipeline.register(db, sources)
            for done, moment in enumerate(times, start=1):
                server.clock = moment
                _collect_once(db, config, sources, classifier, moment)
                if progress:
                    progress(done, len(times))
            result = _finish(db, config, scenario, now)
        finally:
            db.close()
    _write(digest_path, result.pop("html"))
    write_config(config_path, db_path)
    return DemoResult(db_path=db_path, config_path=config_path, digest_path=digest_path,
                      collections=len(times), requests=server.requests, trained=trained,
                      seconds=time.monotonic() - started, first_at=times[0], last_at=now,
                      **result)


def collection_times(scenario: Scenario, playback: Playback, now: datetime) -> list[datetime]:
    """Every `step` from the sample's start (moved to this week) up to now, and now."""
    moment = playback.real(scenario.start)
    times = []
    while moment < now:
        times.append(moment)
        moment += scenario.step
    return [*times, now]


def demo_config(scenario: Scenario, server: SampleServer, db_path: Path,
                config_path: Path) -> Config:
    """The config the demo collects with: the sample's sources on the local server.

    Politeness pauses shrink to almost nothing (the server is ours and local), and a failed
    fetch is not retried within a collection: the next one tries again, as the daemon would.
    """
    data: dict[str, Any] = {
        "database": {"path": str(db_path)},
        "http": {"retries": 0, "per_host_delay": "0.001s", "deadline": "30s",
                 "concurrency": 4},
        "feeds": [{"name": f.name, "url": server.feed_url(f.name), "interval": f.interval}
                  for f in scenario.feeds],
        "reddit": {"subreddits": list(scenario.subreddits), "searches": list(scenario.searches),
                   "comments": True, "reddit_url": server.url, "oauth_url": server.url,
                   "user_agent": "demo:monitor-demo:0.1 (by /u/monitor-demo)",
                   "keyless_pause": "0.001s"},
        "digest": {"timezone": TIMEZONE, "recipients": RECIPIENTS, "sender": SENDER},
    }
    # No environment: the demo reads Reddit keylessly even where API keys are set.
    return config_from_dict(data, config_path, {})


def write_config(config_path: Path, db_path: Path) -> None:
    """demo.toml: the demo database for the other commands (no sources: they were local)."""
    db = db_path.name if db_path.parent == config_path.parent else str(db_path)
    _write(config_path, _CONFIG_TEXT.format(config=config_path.name, db=db, timezone=TIMEZONE,
                                            recipients=json.dumps(RECIPIENTS), sender=SENDER))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MonitorError(f"{path}: cannot write: {exc.strerror}") from None


# --- what the demo prints ------------------------------------------------------------------

def render_summary(result: DemoResult) -> str:
    """What was collected and found, before the report."""
    from .intel.alerts import describe
    from .tables import short_time

    c = result.counts
    model = "trained the model" if result.trained else "used the cached model"
    lines = [
        f"Collected {c['items']} items from the sample in {result.collections} collections "
        f"({short_time(iso(result.first_at))} to {short_time(iso(result.last_at))} UTC, "
        f"{result.requests} requests to the local sample server); {model}.",
        f"{c['flagged']} items flagged as successor chatter, {c['mentions']} market mentions "
        f"({c['warnings']} warnings of scams or phishing), {c['discovered_markets']} market "
        "names discovered.",
    ]
    if result.successors:
        lines.append("Successors discovered in the chatter: " + "; ".join(
            f"{s['predecessor']} -> {s['successor']} ({s['kind']}, "
            f"{_plural(s['count'], 'item')})"
            for s in result.successors) + ".")
    for alert in result.alerts:
        lines.append(f"Alert {short_time(alert['raised_at'])}: {describe(alert)}")
    for source in result.failing:
        lines.append(f"Failing source (on purpose): {source['source']}, "
                     f"{source['last_error'] or source['gap_reason']} since "
                     f"{short_time(source['gap_since'] or source['last_success_at'])}.")
    return "\n".join(lines)


def render_next_steps(result: DemoResult, cwd: Path) -> str:
    """Where the files are and how to open them."""
    db, config, digest = (_shown(p, cwd) for p in (result.db_path, result.config_path,
                                                    result.digest_path))
    flag = f"--config {config}"
    return "\n".join([
        "Wrote:",
        f"  {db:<24} the database (SQLite): sqlite3 {db} \"SELECT * FROM flagged_items\"",
        f"  {digest:<24} the digest of {result.week} as it would be mailed: open "
        f"{result.digest_path.as_uri()}",
        f"  {config:<24} a config for the demo database",
        f"  {_shown(result.db_path.parent / 'models', cwd) + '/':<24} the trained classifier, "
        "reused by the next run",
        "Explore it:",
        f"  monitor serve {flag}       Datasette at http://127.0.0.1:8001/ (Ctrl-C stops)",
        f"  monitor report {flag}      the report above",
        f"  monitor markets {flag}     lineage trees, warnings",
        f"  monitor events {flag}      the takedown and the successor chatter after it",
        f"  monitor status {flag}      sources, runs and alerts",
        f"Done in {result.seconds:.0f}s. Run `monitor init` to set up real collection.",
    ])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _shown(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd.resolve()))
    except ValueError:
        return str(path)


# --- steps ---------------------------------------------------------------------------------

def _clear(db_path: Path) -> None:
    """Remove an earlier demo database; refuse to touch any other database."""
    if db_path.exists() and not store.is_demo_database(db_path):
        raise MonitorError(f"{db_path} exists and was not made by `monitor demo`; move it "
                           "away or run the demo in another directory (--dir)")
    for suffix in ("", "-wal", "-shm"):
        target = db_path.with_name(db_path.name + suffix)
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            raise MonitorError(f"{target}: cannot remove the old demo database: "
                               f"{exc.strerror}") from None


def _prepare(db: Database, config: Config, scenario: Scenario, playback: Playback
             ) -> tuple[Classifier, bool]:
    """The gazetteer, the sample's own (invented) events, and the model: loaded from next to
    the database, or trained now. Returns (classifier, trained)."""
    from .classify import apply

    apply.ensure_gazetteer(db)
    # The sample's takedown is invented, so the real gazetteer cannot hold it; the demo
    # database gets it as the gazetteer would give it.
    store.load_gazetteer(db, [], [{
        "id": e["id"], "name": e["name"], "happened_at": iso(playback.real(e["happened_at"])),
        "kind": e["kind"], "markets": json.dumps(e["markets"], ensure_ascii=False),
    } for e in scenario.events])
    return apply.current_classifier(db, config.db_path)


def _collect_once(db: Database, config: Config, sources: list[Source], classifier: Classifier,
                  moment: datetime) -> None:
    """One collection at `moment`, then what the pipeline's hook does with the new items:
    classify them and run the successor intelligence, all at that moment."""
    from . import intel
    from .classify import apply

    new_ids: list[str] = []
    pipeline.collect(db, sources, now=moment, concurrency=config.http.concurrency,
                     on_new=lambda _db, ids, _now: new_ids.extend(ids))
    log.debug("demo collection at %s: %d new items", iso(moment), len(new_ids))
    if new_ids:
        apply.classify_items(db, new_ids, classifier, threshold=config.classifier.threshold,
                             now=moment)
        intel.after_classify(db, new_ids, moment, config.alerts)


def _finish(db: Database, config: Config, scenario: Scenario, now: datetime) -> dict[str, Any]:
    from . import digest
    from . import report as reporting
    from .intel import takedown

    week = digest.parse_week(None, config, now)
    rendered = digest.preview(db, config, week, now)
    report = reporting.build_report(db, days=7, timezone=config.digest.timezone, now=now)
    ids = [e["id"] for e in scenario.events]
    events = takedown.responses(db, ids)
    return {
        "html": rendered.html,
        "week": week.label,
        "counts": store.demo_counts(db),
        "successors": store.discovered_successors(db),
        "alerts": store.recent_alerts(db, 20)[::-1],
        "failing": store.failing_sources(db),
        "report": reporting.render_report(report),
        # Compared with nothing else: the other events are real, the sample's is invented.
        "events": takedown.render(events, events) if events else "",
    }


@contextlib.contextmanager
def _hushed(enabled: bool) -> Iterator[None]:
    """Only errors from monitor's loggers while the sample plays (see run_demo)."""
    logger = logging.getLogger("monitor")
    before = logger.level
    if enabled:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)
