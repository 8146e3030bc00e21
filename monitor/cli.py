"""The `monitor` command line: parse arguments, call the functions below, print.

Every command takes --config/-v/-q after the verb, and they may also stand before it.
"""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from sqlite_utils import Database

from . import __version__, pipeline, store
from .config import Config, default_config_path, load_config
from .errors import MonitorError
from .logs import setup_logging
from .resources import example_config
from .tables import render_table, short_time


class App:
    """What a command needs, built lazily: the config, the database, logging."""

    def __init__(self, config_path: Path | None, verbosity: int) -> None:
        self.config_path = config_path or default_config_path()
        self.verbosity = verbosity

    @cached_property
    def config(self) -> Config:
        config = load_config(self.config_path)
        setup_logging(self.verbosity, config.secrets())
        return config

    @cached_property
    def db(self) -> Database:
        return store.open_db(self.config.db_path)

    def echo(self, message: str = "", err: bool = False) -> None:
        if self.verbosity >= 0 or err:
            click.echo(message, err=err)


def _common_options(fn: Callable) -> Callable:
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                      default=None, help="Config file (default: $MONITOR_CONFIG, then "
                      "./config.toml).")(fn)
    fn = click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")(fn)
    fn = click.option("-q", "--quiet", is_flag=True, help="Only errors.")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="monitor")
@_common_options
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool) -> None:
    """Watch news feeds and Reddit for darknet-market successor chatter.

    \b
    Example:
      monitor init && monitor collect && monitor status
    """
    ctx.obj = {"config_path": config_path, "verbose": verbose, "quiet": quiet}


def command(*args: Any, **kwargs: Any) -> Callable:
    """A subcommand with the common options, called with an App instead of a click context."""

    def decorate(fn: Callable) -> Callable:
        @cli.command(*args, **kwargs)
        @_common_options
        @click.pass_context
        @functools.wraps(fn)
        def wrapper(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool,
                    **params: Any) -> Any:
            outer = ctx.obj or {}
            verbosity = -1 if (quiet or outer.get("quiet")) else (
                verbose or outer.get("verbose") or 0)
            app = App(config_path or outer.get("config_path"), verbosity)
            setup_logging(verbosity)
            try:
                return fn(app, **params)
            except MonitorError as exc:
                raise click.ClickException(str(exc)) from None

        return wrapper

    return decorate


@command()
def init(app: App) -> None:
    """Write config.toml from the example and create the database.

    \b
    Example:
      monitor init --config /etc/monitor/config.toml
    """
    path = app.config_path
    if path.exists():
        app.echo(f"{path} exists; left as it is.")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(example_config(), path)
        app.echo(f"Wrote {path}: edit the feeds, subreddits and digest recipients there.")
    db = app.db
    app.echo(f"Database ready: {app.config.db_path} (schema version {store.schema_version(db)})")


@command()
@click.option("--source", "only", multiple=True, metavar="NAME",
              help="Collect only this source (repeatable).")
@click.option("--force", is_flag=True, help="Include sources that are in backoff.")
def collect(app: App, only: tuple[str, ...], force: bool) -> None:
    """Fetch every source once, store what is new, then classify it.

    \b
    Example:
      monitor collect --source darknetlive -v
    """
    sources = pipeline.build_sources(app.config)
    pipeline.register(app.db, sources)
    if only:
        names = {s.name for s in sources}
        unknown = [n for n in only if n not in names]
        if unknown:
            raise MonitorError(f"no source named {unknown[0]!r} in {app.config_path} "
                               "(`monitor status` lists the sources)")
        sources = [s for s in sources if s.name in only]
    if not sources:
        app.echo(f"No sources configured in {app.config_path}: add [[feeds]] or [reddit].")
        return
    show_bar = sys.stderr.isatty() and app.verbosity == 0
    bar = click.progressbar(length=len(sources), label="collecting", file=sys.stderr) \
        if show_bar else nullcontext()
    with bar as progress:
        results = pipeline.collect(
            app.db, sources, force=force, concurrency=app.config.http.concurrency,
            on_new=_classify_hook(app),
            progress=(lambda _r: progress.update(1)) if show_bar else None)
    rows = [[r.name, r.status.replace("_", " "), r.seen, r.new,
             r.error or (f"until {short_time(r.next_attempt_at)}" if r.next_attempt_at else "")]
            for r in sorted(results, key=lambda r: r.name)]
    app.echo(render_table(["source", "result", "seen", "new", "error"], rows,
                          widths={"error": 38}))
    total_new = sum(r.new for r in results)
    failed = sum(r.status == "error" for r in results)
    app.echo(f"{total_new} new items from {len(results)} sources; {failed} failed.")


def _classify_hook(app: App) -> pipeline.NewItemsHook | None:
    return None


@command()
@click.option("--runs", "n_runs", default=10, show_default=True, help="How many recent runs.")
def status(app: App, n_runs: int) -> None:
    """Sources' health and the last runs. Exits 0 whenever the database can be read.

    \b
    Example:
      monitor status --runs 20
    """
    db = app.db
    rows = []
    for s in store.source_rows(db):
        state = "ok"
        if s["gap"]:
            state = s["gap"]
        elif s["consecutive_failures"]:
            state = f"failing x{s['consecutive_failures']}"
        elif not s["last_success_at"]:
            state = "never run"
        rows.append([s["name"], s["kind"], s["items"], short_time(s["last_success_at"]), state,
                     short_time(s["next_attempt_at"]) if s["next_attempt_at"] else "",
                     s["last_error"] or ""])
    app.echo(f"Database: {app.config.db_path} ({store.count_items(db)} items)")
    app.echo()
    app.echo(render_table(["source", "kind", "items", "last success", "state", "backoff until",
                           "last error"], rows, widths={"last error": 40, "source": 24}))
    runs = store.recent_runs(db, n_runs)
    if runs:
        app.echo()
        app.echo(render_table(
            ["run", "job", "started", "ok", "seen", "new", "error"],
            [[r["id"], r["job"], short_time(r["started_at"]),
              {1: "yes", 0: "no"}.get(r["ok"], "running"), r["items_seen"] or 0,
              r["items_new"] or 0, r["error"] or ""] for r in runs],
            widths={"error": 36, "job": 30}))


def main() -> None:
    cli(prog_name="monitor")
