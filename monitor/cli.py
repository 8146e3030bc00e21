"""The `monitor` command line: parse arguments, call the functions below, print.

Every command takes --config/-v/-q after the verb, and they may also stand before it.
"""

from __future__ import annotations

import functools
import shutil
import sqlite3
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
from .text import is_loopback


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
            except sqlite3.DatabaseError as exc:
                # The file, not the code: read-only, full, locked, damaged. One line.
                path = app.config.db_path if "config" in app.__dict__ else app.config_path
                reason = store.describe_error(exc, path)
                if reason is None:
                    raise
                raise click.ClickException(f"{path}: {reason}") from None

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
    from .classify import make_hook

    return make_hook(app.config)


# --- the classifier: train, eval, classify -------------------------------------------------

@command("train")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20),
              help="Folds for the cross-validated precision, recall and F1.")
@click.option("--no-cv", "no_cv", is_flag=True, help="Skip cross-validation (faster).")
def train_command(app: App, folds: int, no_cv: bool) -> None:
    """Train the classifier from data/training plus analysts' labels.

    Reports the training set (size, hard negatives, distinct word 3-grams, near-duplicate
    pairs), cross-validated precision, recall and F1, and saves the model next to the
    database. Items are rescored with it by `monitor classify`.

    \b
    Example:
      monitor train --folds 10
    """
    from .classify import apply, dataset, model

    db = app.db
    apply.ensure_gazetteer(db)
    examples = dataset.training_set(db)
    summary = dataset.describe(examples)
    kinds = ", ".join(f"{k} {n}" for k, n in summary.by_kind.items())
    app.echo(f"Training set: {summary.examples} examples ({summary.positives} positive, "
             f"{summary.negatives} negative, of which {summary.hard_negatives} hard "
             f"negatives); {kinds}.")
    app.echo(f"Variety: {summary.distinct_trigrams} distinct word 3-grams; "
             f"{len(summary.near_duplicate_pairs)} near-duplicate pairs.")
    for a, b, score in summary.near_duplicate_pairs[:10]:
        app.echo(f"  {score:.2f}  {examples[a].source}  ~  {examples[b].source}")
    if not no_cv:
        cv = model.cross_validate(examples, folds=folds, threshold=app.config.classifier.threshold)
        app.echo(f"Cross-validated ({folds} folds, threshold {app.config.classifier.threshold:g})"
                 f": precision {cv['precision']:.3f}, recall {cv['recall']:.3f}, "
                 f"F1 {cv['f1']:.3f}")
    classifier, _ = model.load_or_train(model.models_dir(app.config.db_path), examples,
                                        force=True)
    path = model.model_path(model.models_dir(app.config.db_path), classifier.version)
    app.echo(f"Model {classifier.version} trained on {classifier.examples} examples in "
             f"{classifier.seconds:.1f}s: {path}")


@command("eval")
@click.option("--data", "data_path", default=None, metavar="FILE.jsonl",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='Labeled texts, one JSON object a line: {"text", "label", "markets"}.')
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Flag at this score (default: [classifier] threshold).")
@click.option("--errors", "show_errors", is_flag=True, help="List the misclassified texts.")
@click.option("--labels", "on_labels", is_flag=True,
              help="Instead of --data: how the current model's verdicts agree with the "
              "analysts' labels (monitor label).")
def eval_command(app: App, data_path: Path | None, threshold: float | None, show_errors: bool,
                 on_labels: bool) -> None:
    """Precision, recall and F1 of the model on labeled data, beside a keyword baseline.

    Also the confusion matrix, the keyword rule's figures (a market name plus a relaunch
    word) and market-name recall.

    \b
    Example:
      monitor eval --data ../shared/eval/dev.jsonl --errors
      monitor eval --labels --errors
    """
    from .classify import apply, dataset, evaluate

    if on_labels:
        from . import labels

        app.echo(labels.render_label_report(labels.label_report(app.db), errors=show_errors))
        return
    if data_path is None:
        raise MonitorError("give --data FILE.jsonl (labeled texts) or --labels")
    examples = dataset.read_jsonl(data_path)
    if not any(e.label in (0, 1) for e in examples):
        raise MonitorError(f"{data_path}: no labeled lines (\"label\": 0 or 1)")
    db = app.db
    apply.ensure_gazetteer(db)
    classifier, trained = apply.current_classifier(db, app.config.db_path)
    if trained:
        app.echo(f"(trained model {classifier.version} first)", err=True)
    report = evaluate.evaluate(classifier, examples,
                               threshold if threshold is not None
                               else app.config.classifier.threshold)
    app.echo(f"Model {classifier.version} on {data_path}")
    app.echo(evaluate.render(report, errors=show_errors))


@command("classify")
@click.option("--all", "rescore", is_flag=True,
              help="Rescore every item with the current model, not only the unscored ones.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many items.")
@click.option("--input", "input_path", metavar="FILE", default=None,
              help='Score texts from a file instead ("-" for stdin): JSON Lines {"id", "text"}.')
@click.option("--output", "output_path", metavar="FILE", default="-", show_default=True,
              help="With --input: where to write the JSON Lines results (\"-\" for stdout).")
def classify_command(app: App, rescore: bool, limit: int | None, input_path: str | None,
                     output_path: str) -> None:
    """Score the items the current model has not scored yet (--all: every item).

    With --input, score arbitrary texts instead and write one JSON object a line:
    {"id", "score", "flagged", "markets": [{"name", "role", "surface", "known"}]}.

    \b
    Examples:
      monitor classify
      monitor classify --all
      echo '{"id": "1", "text": "Empire 2.0 is up"}' | monitor classify --input -
    """
    from .classify import apply

    db = app.db
    threshold = app.config.classifier.threshold
    if input_path is not None:
        from .classify import textfile

        with textfile.open_in(input_path) as source, textfile.open_out(output_path) as sink:
            count = textfile.classify_stream(db, app.config.db_path, source, sink,
                                             threshold=threshold, name=input_path)
        app.echo(f"Scored {count} texts.", err=True)
        return
    show_bar = sys.stderr.isatty() and app.verbosity == 0
    state: dict[str, Any] = {}

    def start(total: int) -> None:
        if show_bar and total:
            state["bar"] = click.progressbar(length=total, label="classifying", file=sys.stderr)
            state["bar"].__enter__()

    def step(n: int) -> None:
        if "bar" in state:
            state["bar"].update(n)

    try:
        result = apply.classify_pending(db, app.config.db_path, threshold=threshold,
                                        rescore=rescore, limit=limit, progress=step,
                                        on_total=start)
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)
    if result.trained:
        app.echo(f"Trained model {result.model_version}.")
    app.echo(f"Classified {result.items} items with model {result.model_version}: "
             f"{result.flagged} flagged (threshold {threshold:g}).")
    if result.discovered:
        app.echo(f"New market names: {', '.join(result.discovered)}")


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
    _echo_daemon(app, db)
    app.echo()
    app.echo(render_table(["source", "kind", "items", "last success", "state", "backoff until",
                           "last error"], rows,
                           # 30 fits every per-subreddit row: reddit/r/ + 21 characters.
                           widths={"last error": 40, "source": 30}))
    runs = store.recent_runs(db, n_runs)
    if runs:
        app.echo()
        app.echo(render_table(
            ["run", "job", "started", "ok", "seen", "new", "error"],
            [[r["id"], r["job"], short_time(r["started_at"]),
              {1: "yes", 0: "no"}.get(r["ok"], "running"), r["items_seen"] or 0,
              r["items_new"] or 0, r["error"] or ""] for r in runs],
            widths={"error": 36, "job": 30}))
    _echo_alerts(app, db)


def _echo_alerts(app: App, db: Database) -> None:
    """The latest rising-name alerts, under the runs in `monitor status`."""
    from .intel import alerts as intel_alerts

    latest = store.recent_alerts(db, 10)
    if latest:
        app.echo()
        app.echo(render_table(
            ["alert raised", "kind", "alert", "mailed"],
            [[short_time(a["raised_at"]), a["kind"], intel_alerts.describe(a),
              short_time(a["notified_at"]) if a["notified_at"] else (
                  "failed" if a["notify_error"] else "")] for a in latest],
            widths={"alert": 70}))


# --- the daemon: `monitor run` and its lines in `monitor status` ---------------------------

@command()
@click.option("--once", is_flag=True,
              help="Run every due job once (due sources, due digests), then exit: for cron.")
def run(app: App, once: bool) -> None:
    """The daemon: poll each source on its schedule and send the weekly digest, until stopped.

    SIGTERM or SIGINT stops it within seconds (a running write finishes first); SIGHUP
    re-reads the config (sources added, removed or changed). A second daemon on the same
    database refuses to start. Logs go to stderr: info by default, -v debug, -q warnings.

    \b
    Examples:
      monitor run --config /etc/monitor/config.toml
      monitor run --once -q          # from cron, instead of the daemon
    """
    from . import daemon

    # A daemon's log is its output: one level more than other commands by default.
    verbosity = app.verbosity if once else app.verbosity + 1
    config = app.config
    daemon.configure_logging(verbosity, config.secrets())
    runner = daemon.Daemon(config, verbosity=verbosity)
    if once:
        summary = runner.run_once()
        app.echo(summary.text())
        clean = summary.clean
    else:
        clean = runner.run()
    if not clean:
        daemon.exit_now(0)  # worker threads still wait on the network; nothing is pending


def _echo_daemon(app: App, db: Database) -> None:
    from . import daemon

    report = daemon.report(db, app.config.db_path)
    app.echo(report.summary)
    if report.jobs:
        app.echo(render_table(
            ["running job", "phase", "started", "for", "interval", "state"],
            [[j["job"], j.get("phase") or "", short_time(j["started_at"]),
              daemon.ago(j["running_for"]),
              daemon.ago(j["interval"]) if j.get("interval") else "",
              "OVERDUE" if j["overdue"] else "ok"] for j in report.jobs],
            widths={"running job": 30}))


# --- the analysts' surface: serve, report, markets, label, export --------------------------

@command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Datasette has no login: keep it on loopback.")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
def serve_command(app: App, host: str, port: int) -> None:
    """Datasette over the database (read-only) with the ready-made queries.

    It reads the live file while the daemon writes. Ctrl-C stops it.

    \b
    Example:
      monitor serve --port 8001
      then open http://127.0.0.1:8001/
    """
    from . import serve as serving

    app.db.close()  # creates the file, schema and views if needed; Datasette reads it
    path = app.config.db_path
    serving.check_port(host, port)
    if not is_loopback(host):
        app.echo(f"warning: serving on {host}: anyone who can reach it can read the database",
                 err=True)
    app.echo(f"Serving {path} read-only at http://{host}:{port}/ (Ctrl-C stops)")
    serving.serve(path, host=host, port=port, verbosity=app.verbosity)


@command("report")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="How many days back, today included (in the digest's time zone).")
def report_command(app: App, days: int) -> None:
    """A terminal summary: flagged items by day, top markets, new names, failing sources.

    \b
    Example:
      monitor report --days 14
    """
    from . import report as reporting

    result = reporting.build_report(app.db, days=days, timezone=app.config.digest.timezone)
    app.echo(reporting.render_report(result))


@command("markets")
@click.argument("name", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Nested JSON, for tools.")
def markets_command(app: App, name: tuple[str, ...], as_json: bool) -> None:
    """Known and discovered markets as lineage trees (predecessor -> successor).

    With NAME (a name or alias), only the lineage that holds it.

    \b
    Examples:
      monitor markets
      monitor markets alphabay
      monitor markets --json > markets.json
    """
    import json

    from . import markets_tree
    from .classify import apply

    apply.ensure_gazetteer(app.db)  # the known markets, even before anything is classified
    rows = markets_tree.with_chatter_lineage(store.market_rows(app.db),
                                             store.lineage_edges(app.db))
    forest = markets_tree.build_forest(rows)
    if name:
        wanted = " ".join(name)
        forest = markets_tree.lineage_of(forest, wanted)
        if not forest:
            raise MonitorError(f"no market named {wanted!r} (`monitor markets` lists them all)")
    if as_json:
        click.echo(json.dumps(markets_tree.forest_json(forest), indent=2, ensure_ascii=False))
    else:
        app.echo(markets_tree.render_forest(forest) or "(no markets)")
        _echo_market_intel(app, forest if name else None)


def _echo_market_intel(app: App, forest: list | None) -> None:
    """Warnings per market and the lineage seen in the chatter (successor intelligence)."""
    from .intel import summary

    names: set[str] | None = None
    if forest is not None:
        names, stack = set(), list(forest)
        while stack:
            node = stack.pop()
            names.add(node.name)
            stack.extend(node.successors)
    text = summary.markets_text(app.db, names)
    if text:
        app.echo()
        app.echo(text)


@command("label")
@click.argument("item_id", required=False)
@click.argument("verdict", required=False, metavar="yes|no")
@click.option("--note", help="Why (kept with the label).")
@click.option("--analyst", help="Who is labeling (default: $MONITOR_ANALYST, then your login).")
@click.option("--queue", is_flag=True,
              help="List the unlabeled items the model is least sure about, to label next.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="With --queue: how many items.")
@click.option("--days", type=click.IntRange(1, 3660), default=None,
              help="With --queue: only items published in the last N days.")
def label_command(app: App, item_id: str | None, verdict: str | None, note: str | None,
                  analyst: str | None, queue: bool, limit: int, days: int | None) -> None:
    """Record whether an item is successor chatter (yes) or not (no); or show the queue.

    The next `monitor train` learns from the labels (they win over data/training).

    \b
    Examples:
      monitor label --queue --limit 10
      monitor label reddit:t3_abc123 yes --note "relaunch claim"
      monitor label feed:5f1c0e2a9b7d44e1a3c2b6f0 no
    """
    from . import labels

    if queue:
        if item_id or verdict:
            raise MonitorError("--queue takes no ITEM or yes|no")
        rows = labels.labeling_queue(app.db, threshold=app.config.classifier.threshold,
                                     limit=limit, days=days)
        if not rows:
            app.echo("Nothing to label: no unlabeled item has a score yet (run `monitor "
                     "classify`).")
            return
        app.echo(render_table(
            ["item", "score", "published", "title"],
            [[r["id"], f"{r['score']:.2f}", (r["published_at"] or "")[:10], r["title"] or ""]
             for r in rows], widths={"item": 32, "title": 26}))
        app.echo(f"Label one with: monitor label {rows[0]['id']} yes|no")
        return
    if not item_id or not verdict:
        raise MonitorError("give an item id and yes or no (`monitor label ITEM yes`), "
                           "or --queue")
    done = labels.record_label(app.db, item_id, verdict, analyst=analyst, note=note)
    model = ("no score from the current model" if done.item["score"] is None else
             f"model score {done.item['score']:.2f}, "
             + ("agrees" if done.agrees_with_model else "disagrees"))
    change = "" if done.previous is None or done.previous == done.label else \
        f" (was {'yes' if done.previous else 'no'})"
    app.echo(f"{item_id}: labeled {'yes' if done.label else 'no'}{change}; {model}. "
             "`monitor train` learns from it.")


@command("export")
@click.option("--since", metavar="DATE", help="Only items published at or after DATE "
              "(2026-11-01 or an ISO 8601 time, UTC). Default: all.")
@click.option("--until", metavar="DATE", help="Only items published before DATE.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True, help="CSV (mentions flattened) or JSON Lines.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def export_command(app: App, since: str | None, until: str | None, fmt: str,
                   output: Path | None) -> None:
    """Flagged items (current model) with their market mentions, oldest first.

    \b
    Examples:
      monitor export --since 2026-11-01 --format csv -o flagged.csv
      monitor export --since 2026-11-23 --format jsonl | jq .title
    """
    from . import export

    rows = export.flagged_with_mentions(
        app.db, export.parse_time(since, "--since") if since else None,
        export.parse_time(until, "--until") if until else None)
    if output is None:
        count = export.write_export(rows, sys.stdout, fmt)
    else:
        try:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = export.write_export(rows, out, fmt)
        except OSError as exc:
            raise MonitorError(f"{output}: cannot write: {exc.strerror}") from None
        app.echo(f"Wrote {count} flagged items to {output}.")


@command("digest")
@click.option("--week", metavar="YYYY-Www",
              help="ISO week, e.g. 2026-W48 (default: the last complete week).")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the HTML digest to FILE; sends nothing.")
@click.option("--send", is_flag=True,
              help="Mail it, unless this week's digest was sent already.")
@click.option("--to", "to", multiple=True, metavar="ADDRESS",
              help="With --send: these recipients instead of digest.recipients (repeatable).")
@click.option("--resend", is_flag=True,
              help="With --send: send again even if this week's digest went out.")
def digest_command(app: App, week: str | None, preview: Path | None, send: bool,
                   to: tuple[str, ...], resend: bool) -> None:
    """The weekly digest: print it, write an HTML preview, or mail it (once per week).

    Without --preview or --send, prints the plain-text digest. The daemon mails it on its
    own; --send is for a first try or a catch-up by hand.

    \b
    Examples:
      monitor digest --week 2026-W48 --preview digest.html
      monitor digest --send
      monitor digest --send --week 2026-W47 --to me@example.org --resend
    """
    from . import digest, mail
    from .timeutil import utcnow

    if preview and send:
        raise MonitorError("use either --preview FILE or --send, not both")
    if (to or resend) and not send:
        raise MonitorError("--to and --resend go with --send")
    try:
        recipients = [mail.check_address(a) for a in to]
    except ValueError as exc:
        raise MonitorError(f"--to: {exc}") from None
    now = utcnow()
    chosen = digest.parse_week(week, app.config, now)
    if not send:
        rendered = digest.preview(app.db, app.config, chosen, now)
        if preview is None:
            click.echo(rendered.text, nl=False)
            return
        try:
            preview.write_text(rendered.html, encoding="utf-8")
        except OSError as exc:
            raise MonitorError(f"{preview}: cannot write: {exc.strerror}") from None
        app.echo(f"Wrote the digest of {chosen.label} to {preview}.")
        return
    result = digest.send_week(app.db, app.config, chosen, now=now,
                              recipients=recipients or None, force=True, resend=resend)
    if result.status == "sent":
        app.echo(f"Sent the digest of {result.week} to {', '.join(result.recipients)} "
                 f"({result.message_id}).")
        if result.error:
            app.echo(f"warning: {result.error}", err=True)
    elif result.status == "already_sent":
        app.echo(f"The digest of {result.week} was sent at {short_time(result.sent_at)} "
                 f"to {', '.join(result.recipients) or 'its recipients'}; nothing sent "
                 "(--resend sends it again).")
    elif result.status == "busy":
        raise MonitorError(f"the digest of {result.week} is being sent by another process "
                           "right now")
    else:
        raise MonitorError(f"the digest of {result.week} was not sent: {result.error} "
                           "(recorded; the daemon retries it)")


# --- successor intelligence: replay (backtests) and events ---------------------------------

@command("replay")
@click.option("--input", "input_path", required=True, metavar="FILE.jsonl",
              type=click.Path(dir_okay=False, path_type=Path),
              help='JSON Lines: {"id", "source", "kind", "title", "body", "url", '
                   '"published_at"} per line.')
def replay_command(app: App, input_path: Path) -> None:
    """Ingest timestamped items in time order, as if collected live (backtests).

    Each item is classified and analysed at its own published time, so the alerts, the
    takedown response and `monitor digest --week` of a past week show what monitor would
    have reported then. Nothing is mailed during a replay. Items already stored are skipped.

    \b
    Example:
      monitor replay --input archetyp-2025.jsonl && monitor events
    """
    from . import replay
    from .intel import alerts as intel_alerts

    items = replay.read_items(input_path)
    show_bar = sys.stderr.isatty() and app.verbosity == 0
    bar = click.progressbar(length=len(items), label="replaying", file=sys.stderr) \
        if show_bar else nullcontext()
    with bar as progress:
        result = replay.replay(app.db, items, replay.make_hook(app.config, app.db, items),
                               job=f"replay:{input_path.name}",
                               progress=progress.update if show_bar else None)
    if not result.read:
        app.echo(f"{input_path}: no items.")
        return
    app.echo(f"Replayed {result.read} items from {short_time(result.first_at)} to "
             f"{short_time(result.last_at)}: {result.new} new, {result.skipped} already stored.")
    app.echo(f"{len(result.alerts)} alerts raised.")
    for alert in result.alerts:
        app.echo(f"  {short_time(alert['raised_at'])}  {intel_alerts.describe(alert)}")


@command("events")
@click.option("--event", "event_ids", multiple=True, metavar="ID",
              help="Only this event (repeatable); see the ids with --all.")
@click.option("--all", "show_all", is_flag=True,
              help="Also the events with no successor chatter recorded.")
def events_command(app: App, event_ids: tuple[str, ...], show_all: bool) -> None:
    """Takedowns and exit scams, and the successor chatter in the 30 days after each.

    Per event: when the first successor was named and after how long, how many successors,
    which one led and its share; per successor its first mention, counts, warnings and a
    daily sparkline; and how the event compares with the earlier ones.

    \b
    Examples:
      monitor events
      monitor events --event archetyp-deep-sentinel-2025
    """
    from .classify.apply import ensure_gazetteer
    from .intel import takedown

    db = app.db
    ensure_gazetteer(db)  # the events come from the gazetteer, even before any collection
    history = takedown.responses(db)
    chosen = takedown.responses(db, event_ids, include_quiet=show_all)
    unknown = sorted(set(event_ids) - {r.event_id for r in chosen})
    if unknown:
        raise MonitorError(f"no event with id {unknown[0]!r} (`monitor events --all` lists "
                           "them)")
    if not chosen:
        total = len(takedown.responses(db, include_quiet=True))
        app.echo(f"No successor chatter recorded after any of the {total} events "
                 "(`monitor events --all` lists them).")
        return
    app.echo(takedown.render(chosen, history))


# --- first run: the demo -------------------------------------------------------------------

@command("demo")
@click.option("--dir", "directory", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where to write demo.db, demo.toml and demo-digest.html.")
def demo_command(app: App, directory: Path) -> None:
    """The whole pipeline offline, on bundled sample data, in under a minute.

    Serves the sample news feeds and Reddit listing (an invented takedown, its successor, a
    scam clone and everyday noise) from 127.0.0.1, collects them with the real collectors
    into a fresh demo.db as if monitor had run for six weeks, classifies, builds the lineage
    and alerts, prints the report, and writes the digest preview and demo.toml. It needs no
    network, no API keys and no config file, and replaces only an earlier demo database.

    \b
    Example:
      monitor demo && monitor serve --config demo.toml
    """
    from . import demo

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(f"{directory}: cannot create: {exc.strerror}") from None
    show_bar = sys.stderr.isatty() and app.verbosity == 0
    app.echo("Playing back the bundled sample (an invented story) into a fresh demo "
             "database...")
    state: dict[str, Any] = {}

    def step(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = click.progressbar(length=total, label="collecting", file=sys.stderr)
            state["bar"].__enter__()
        state["bar"].update(1)

    try:
        result = demo.run_demo(directory, progress=step if show_bar else None,
                               hush_logs=app.verbosity < 1)
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)
    app.echo(demo.render_summary(result))
    app.echo()
    app.echo(result.report)
    if result.events:
        app.echo()
        app.echo(result.events)
    app.echo()
    app.echo(demo.render_next_steps(result, Path.cwd()))


def main() -> None:
    cli(prog_name="monitor")
