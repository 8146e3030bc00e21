"""Load config.toml into frozen dataclasses.

Every section is described by a dataclass; `_build` checks each table against the fields of
its dataclass (unknown keys, types, intervals) so that an error names the file and the key.
Secrets never come from the file, only from the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

ENV_CONFIG = "MONITOR_CONFIG"
ENV_REDDIT_ID = "MONITOR_REDDIT_CLIENT_ID"
ENV_REDDIT_SECRET = "MONITOR_REDDIT_CLIENT_SECRET"
ENV_SMTP_PASSWORD = "MONITOR_SMTP_PASSWORD"

# Keys that look like secrets: refused in the file, with a pointer to the environment.
_SECRET_KEYS = {
    "password": ENV_SMTP_PASSWORD,
    "client_secret": ENV_REDDIT_SECRET,
    "client_id": ENV_REDDIT_ID,
}

_INTERVAL_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_INTERVAL = 366 * 86400.0  # longer is a typo; far longer overflows the scheduler's clock
# Control characters (CR and LF above all) in a value that ends up in a URL, an HTTP or SMTP
# header or a log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Interval(float):
    """Seconds, written in the file as "90s", "15m", "2h", "1d" or "1h30m"."""


class Secret(str):
    """A string from the environment; its repr never shows the value."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


def parse_interval(text: str) -> float:
    """'90s' -> 90.0, '1h30m' -> 5400.0; ValueError for anything else."""
    compact = text.strip().lower()
    pos = 0
    total = 0.0
    for match in _INTERVAL_RE.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not compact or pos != len(compact) or total <= 0:
        raise ValueError(f"bad interval {text!r} (write e.g. \"90s\", \"15m\", \"2h\", \"1d\")")
    if total > MAX_INTERVAL:
        raise ValueError(f"interval {text!r} is longer than a year")
    return total


@dataclass(frozen=True)
class DatabaseConfig:
    path: Path = Path("data/monitor.db")
    # Collection runs older than this are deleted once a day (500 sources polled every 30
    # minutes add 24,000 rows a day); 0 keeps them all. Items are never deleted.
    keep_runs_days: int = 90


@dataclass(frozen=True)
class HttpConfig:
    """Limits for every fetch: one slow or huge source must not hold a collector."""

    connect_timeout: Interval = Interval(10)
    read_timeout: Interval = Interval(30)
    deadline: Interval = Interval(60)
    max_bytes: int = 10 * 1024 * 1024
    retries: int = 2
    # Fetches wait on the network, not the CPU: 500 feeds at 0.2 s each take 3 s with 32
    # at once, 12 s with 8 (bench/steady.py); the per-host pause still holds.
    concurrency: int = 32
    per_host_delay: Interval = Interval(1)
    user_agent: str = ""
    # Worker processes that parse when a cycle has much to parse (a first backfill); 0
    # parses in the fetch threads only (best on a single CPU). See collect/parse_pool.py.
    parse_processes: int = 2


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    interval: Interval = Interval(1800)
    enabled: bool = True


@dataclass(frozen=True)
class RedditConfig:
    subreddits: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    comments: bool = True
    interval: Interval = Interval(600)
    user_agent: str = "linux:monitor:0.1 (by /u/monitor-bot)"
    oauth_url: str = "https://oauth.reddit.com"
    reddit_url: str = "https://www.reddit.com"
    batch_size: int = 25
    max_pages: int = 10
    backfill: int = 1000
    restrict_searches: bool = False        # true: searches only inside `subreddits`
    keyless_pause: Interval = Interval(6)  # between feed requests without API keys
    client_id: Secret = field(default=Secret(""), repr=False)
    client_secret: Secret = field(default=Secret(""), repr=False)

    @property
    def use_api(self) -> bool:
        return bool(self.client_id and self.client_secret)


@dataclass(frozen=True)
class ClassifierConfig:
    threshold: float = 0.5


@dataclass(frozen=True)
class DigestConfig:
    weekday: str = "mon"
    time: str = "07:00"
    timezone: str = "UTC"
    recipients: tuple[str, ...] = ()
    sender: str = "monitor@localhost"
    subject: str = "monitor digest {week}"
    top_items: int = 20           # flagged items listed, at most
    unsure_margin: float = 0.1    # |score - threshold| at or below this: "unsure"
    catch_up_weeks: int = 4       # missed weeks sent after downtime, at most


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    timeout: Interval = Interval(30)
    ca_file: str = ""             # PEM file of CAs to trust instead of the system's
    password: Secret = field(default=Secret(""), repr=False)


@dataclass(frozen=True)
class DaemonConfig:
    """How `monitor run` paces itself."""

    heartbeat: Interval = Interval(30)     # how often it records that it is alive
    jitter: float = 0.1                    # polls move by up to this fraction of the interval
    stop_timeout: Interval = Interval(5)   # on SIGTERM, the wait for a running write


@dataclass(frozen=True)
class AlertsConfig:
    """Rising-name alerts (the spike rule is in monitor/intel/alerts.py) and corroboration."""

    enabled: bool = True                   # detect rising names and store alerts
    email: bool = False                    # also mail each new alert at once
    recipients: tuple[str, ...] = ()       # for those mails; empty: the digest's recipients
    baseline_days: int = 28                # trailing days the baseline is taken from
    min_baseline_days: int = 7             # days of coverage needed before any alert
    min_count: int = 5                     # mentions in the last 24 hours, at least
    z_threshold: float = 4.0               # robust z-score of those 24 hours, at least
    new_days: int = 30                     # a name first seen this recently is "new"
    cooldown: Interval = Interval(3 * 86400)  # no second alert for a market within this
    corroboration_window: Interval = Interval(3 * 86400)  # Reddit and news this close


@dataclass(frozen=True)
class Config:
    path: Path
    database: DatabaseConfig = DatabaseConfig()
    http: HttpConfig = HttpConfig()
    feeds: tuple[FeedConfig, ...] = ()
    reddit: RedditConfig | None = None
    classifier: ClassifierConfig = ClassifierConfig()
    digest: DigestConfig = DigestConfig()
    smtp: SmtpConfig = SmtpConfig()
    daemon: DaemonConfig = DaemonConfig()
    alerts: AlertsConfig = AlertsConfig()

    @property
    def db_path(self) -> Path:
        return self.database.path

    def secrets(self) -> list[str]:
        """Every secret value in use, so that logs can redact them."""
        values = [self.smtp.password]
        if self.reddit:
            values += [self.reddit.client_secret, self.reddit.client_id]
        return [v for v in values if v]


def default_config_path() -> Path:
    return Path(os.environ.get(ENV_CONFIG) or "config.toml")


def load_config(path: Path | str | None = None, env: typing.Mapping[str, str] | None = None
                ) -> Config:
    """Read and validate a config file; raise ConfigError naming the file and key."""
    path = Path(path) if path else default_config_path()
    env = os.environ if env is None else env
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (run `monitor init` to create one, "
            f"or pass --config)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        # utf-8-sig: editors on Windows start the file with a byte-order mark.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return config_from_dict(data, path, env)


def config_from_dict(data: dict, path: Path, env: typing.Mapping[str, str]) -> Config:
    where = str(path)
    known = {"database", "http", "feeds", "reddit", "classifier", "digest", "smtp", "daemon",
             "alerts"}
    _reject_unknown(data, known, where, "")
    if "database" not in data:
        raise ConfigError(f"{where}: missing section [database] (it needs path = \"...\")")

    database = _build(DatabaseConfig, data["database"], where, "database")
    db_path = database.path.expanduser()
    if not db_path.is_absolute():
        db_path = path.resolve().parent / db_path
    if database.keep_runs_days < 0:
        raise ConfigError(f"{where}: database.keep_runs_days: must be 0 (keep every run) or "
                          "more")
    database = dataclasses.replace(database, path=db_path)

    feeds = tuple(_build(FeedConfig, table, where, f"feeds[{i}]")
                  for i, table in enumerate(_table_list(data.get("feeds", []), where, "feeds")))
    seen: set[str] = set()
    for i, feed in enumerate(feeds):
        if not feed.name.strip() or _CONTROL.search(feed.name):
            raise ConfigError(f"{where}: feeds[{i}].name: {feed.name!r} is not a name (it "
                              "names the source in the database and the reports: not empty, "
                              "no line breaks)")
        if feed.name in seen:
            raise ConfigError(f"{where}: feeds[{i}].name: duplicate feed name {feed.name!r}")
        seen.add(feed.name)
        _check_url(feed.url, where, f"feeds[{i}].url")

    reddit = None
    if "reddit" in data:
        reddit = _build(RedditConfig, data["reddit"], where, "reddit", env={
            "client_id": env.get(ENV_REDDIT_ID, ""),
            "client_secret": env.get(ENV_REDDIT_SECRET, ""),
        })
        _check_url(reddit.oauth_url, where, "reddit.oauth_url")
        _check_url(reddit.reddit_url, where, "reddit.reddit_url")
        _check_text(reddit.user_agent, where, "reddit.user_agent")
        for i, sub in enumerate(reddit.subreddits):
            if not re.fullmatch(r"[A-Za-z0-9_]{2,21}", sub):
                raise ConfigError(f"{where}: reddit.subreddits[{i}]: {sub!r} is not a subreddit "
                                  "name (letters, digits and _ only, no r/ prefix)")
        if reddit.batch_size < 1 or reddit.max_pages < 1 or reddit.backfill < 0:
            raise ConfigError(f"{where}: reddit: batch_size and max_pages must be at least 1, "
                              "backfill at least 0")

    classifier = _build(ClassifierConfig, data.get("classifier", {}), where, "classifier")
    if not 0.0 < classifier.threshold < 1.0:
        raise ConfigError(f"{where}: classifier.threshold: must be between 0 and 1")

    digest = _build(DigestConfig, data.get("digest", {}), where, "digest")
    _check_digest(digest, where)

    smtp = _build(SmtpConfig, data.get("smtp", {}), where, "smtp",
                  env={"password": env.get(ENV_SMTP_PASSWORD, "")})
    if smtp.security not in ("starttls", "ssl", "none"):
        raise ConfigError(f"{where}: smtp.security: must be \"starttls\", \"ssl\" or \"none\", "
                          f"not {smtp.security!r}")
    if not 0 < smtp.port < 65536:
        raise ConfigError(f"{where}: smtp.port: {smtp.port} is not a port number")
    if not smtp.host.strip() or re.search(r"[\s\x00-\x1f\x7f/]", smtp.host):
        raise ConfigError(f"{where}: smtp.host: {smtp.host!r} is not a host name")
    _check_text(smtp.username, where, "smtp.username")
    if smtp.ca_file:
        # Like the database path: relative to the config file.
        ca_file = Path(smtp.ca_file).expanduser()
        ca_file = ca_file if ca_file.is_absolute() else path.resolve().parent / ca_file
        if not ca_file.is_file():
            raise ConfigError(f"{where}: smtp.ca_file: {ca_file} is not a file")
        smtp = dataclasses.replace(smtp, ca_file=str(ca_file))

    http = _build(HttpConfig, data.get("http", {}), where, "http")
    if http.max_bytes < 1024 or http.concurrency < 1 or http.retries < 0:
        raise ConfigError(f"{where}: http: max_bytes must be at least 1024, concurrency "
                          "at least 1 and retries at least 0")
    if not 0 <= http.parse_processes <= 64:
        raise ConfigError(f"{where}: http.parse_processes: must be between 0 (parse in the "
                          "fetch threads) and 64")
    _check_text(http.user_agent, where, "http.user_agent")

    daemon = _build(DaemonConfig, data.get("daemon", {}), where, "daemon")
    if not 0.0 <= daemon.jitter <= 0.5:
        raise ConfigError(f"{where}: daemon.jitter: must be between 0 and 0.5 (a fraction of "
                          "each source's interval)")

    alerts = _build(AlertsConfig, data.get("alerts", {}), where, "alerts")
    _check_alerts(alerts, digest, where)

    return Config(path=path, database=database, http=http, feeds=feeds, reddit=reddit,
                  classifier=classifier, digest=digest, smtp=smtp, daemon=daemon,
                  alerts=alerts)


def _check_alerts(alerts: AlertsConfig, digest: DigestConfig, where: str) -> None:
    if alerts.baseline_days < 1 or not 0 <= alerts.min_baseline_days <= alerts.baseline_days:
        raise ConfigError(f"{where}: alerts: baseline_days must be at least 1 and "
                          "min_baseline_days between 0 and baseline_days")
    if alerts.min_count < 1 or alerts.new_days < 0:
        raise ConfigError(f"{where}: alerts: min_count must be at least 1 and new_days "
                          "at least 0")
    if alerts.z_threshold <= 0:
        raise ConfigError(f"{where}: alerts.z_threshold: must be above 0")
    for i, address in enumerate(alerts.recipients):
        if "@" not in address or any(c in address for c in "\r\n<>,;"):
            raise ConfigError(f"{where}: alerts.recipients[{i}]: {address!r} is not an "
                              "email address")
    if alerts.email and not (alerts.recipients or digest.recipients):
        raise ConfigError(f"{where}: alerts.email: true, but neither alerts.recipients nor "
                          "digest.recipients names anyone to mail")


def _check_digest(digest: DigestConfig, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if digest.weekday.lower()[:3] not in _WEEKDAYS:
        raise ConfigError(f"{where}: digest.weekday: {digest.weekday!r} is not a weekday "
                          "(mon, tue, ... sun)")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", digest.time):
        raise ConfigError(f"{where}: digest.time: {digest.time!r} is not HH:MM (24-hour)")
    try:
        ZoneInfo(digest.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: digest.timezone: unknown time zone {digest.timezone!r} "
                          "(use an IANA name such as \"Europe/Berlin\" or \"UTC\")") from None
    for i, address in enumerate((*digest.recipients, digest.sender)):
        if "@" not in address or any(c in address for c in "\r\n<>,;"):
            key = f"digest.recipients[{i}]" if i < len(digest.recipients) else "digest.sender"
            raise ConfigError(f"{where}: {key}: {address!r} is not an email address")
    if digest.top_items < 1 or digest.catch_up_weeks < 1:
        raise ConfigError(f"{where}: digest: top_items and catch_up_weeks must be at least 1")
    if not 0.0 <= digest.unsure_margin < 0.5:
        raise ConfigError(f"{where}: digest.unsure_margin: must be between 0 and 0.5")


def _check_url(url: str, where: str, key: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or re.search(r"[\s\x00-\x1f\x7f]", url):
        raise ConfigError(f"{where}: {key}: {url!r} is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        # They would be stored and logged with the URL; secrets belong in the environment.
        raise ConfigError(f"{where}: {key}: a user name or password in the URL is not "
                          "allowed (it would be stored and logged with the URL)")


def _check_text(value: str, where: str, key: str) -> None:
    if _CONTROL.search(value):
        raise ConfigError(f"{where}: {key}: control characters (such as line breaks) are "
                          "not allowed")


def _table_list(value: object, where: str, key: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: {key}: write each one as a [[{key}]] table")
    return value


def _reject_unknown(table: dict, known: set[str], where: str, prefix: str) -> None:
    for key in table:
        if key in known:
            continue
        full = f"{prefix}{key}"
        if key in _SECRET_KEYS:
            raise ConfigError(f"{where}: {full}: secrets do not belong in the config file; "
                              f"set the environment variable {_SECRET_KEYS[key]} instead")
        hint = _closest(key, known)
        raise ConfigError(f"{where}: {full}: unknown key" + (f" (did you mean {hint!r}?)"
                                                             if hint else ""))


def _closest(key: str, known: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


T = typing.TypeVar("T")


def _build(cls: type[T], table: object, where: str, section: str,
           env: dict[str, str] | None = None) -> T:
    """Check `table` against the fields of dataclass `cls` and build it."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {section}: must be a table ([{section}])")
    hints = typing.get_type_hints(cls)
    env = env or {}
    settable = {f.name for f in dataclasses.fields(cls) if f.name not in env}
    _reject_unknown(table, settable, where, f"{section}.")
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name in env:
            values[f.name] = Secret(env[f.name])
        elif f.name in table:
            values[f.name] = _convert(table[f.name], hints[f.name], where, f"{section}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: {section}.{f.name}: missing (required)")
    return cls(**values)


def _convert(value: object, hint: object, where: str, key: str) -> object:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is Interval:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key}: write the interval as a string such as "
                              f"\"15m\", not {value!r}")
        try:
            return Interval(parse_interval(value))
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {key}: must be a non-empty path string")
        return Path(value)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key}: must be a list of strings")
        return tuple(value)
    expected = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    ok = (isinstance(value, hint) and not (hint is int and isinstance(value, bool))) or (
        hint is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where}: {key}: must be {expected.get(hint, hint)}, "
                          f"not {value!r}")
    if hint is float and not math.isfinite(value):
        raise ConfigError(f"{where}: {key}: must be a finite number, not {value!r}")
    return float(value) if hint is float else value
