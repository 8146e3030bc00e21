"""Config loading: valid files, and one clear error per kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.config import ConfigError, load_config, parse_interval
from monitor.resources import example_config


@pytest.mark.parametrize("text,seconds", [
    ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0.5m", 30),
    (" 10M ", 600),
])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "m", "10x", "-5m", "0s", "5m3", "h1"])
def test_bad_intervals(text):
    with pytest.raises(ValueError, match="bad interval"):
        parse_interval(text)


def test_example_config_loads_with_every_section():
    config = load_config(example_config(), env={})
    assert config.feeds and all(f.url.startswith("https://") for f in config.feeds)
    assert config.reddit is not None and config.reddit.subreddits
    assert not config.reddit.use_api
    assert config.smtp.security == "starttls"
    assert config.db_path.is_absolute()
    assert config.db_path.parent == example_config().parent.resolve() / "data"


def test_relative_db_path_is_relative_to_the_config_file(tmp_path, write_config):
    config = write_config('[database]\npath = "sub/x.db"\n')
    assert config.db_path == tmp_path / "sub" / "x.db"


def test_secrets_come_from_the_environment_and_stay_out_of_repr(write_config):
    config = write_config('[reddit]\nsubreddits = ["darknet"]\n[smtp]\nusername = "bot"\n',
                          env={"MONITOR_REDDIT_CLIENT_ID": "id-123456",
                               "MONITOR_REDDIT_CLIENT_SECRET": "s3cret-value",
                               "MONITOR_SMTP_PASSWORD": "pw-987654"})
    assert config.reddit.use_api
    assert config.smtp.password == "pw-987654"
    text = repr(config)
    for secret in ("s3cret-value", "pw-987654", "id-123456"):
        assert secret not in text
    assert set(config.secrets()) == {"s3cret-value", "pw-987654", "id-123456"}


ERRORS = [
    # (toml, words that must be in the message)
    ('[database]\npath = "x.db"\n[[feeds]]\nname = "a"\nurl = "https://a.test/f"\nintervall = "5m"\n',
     ["feeds[0].intervall", "unknown key", "interval"]),
    ('[database]\npath = "x.db"\n[[feeds]]\nname = "a"\nurl = "https://a.test/f"\ninterval = 5\n',
     ["feeds[0].interval", "string"]),
    ('[database]\npath = "x.db"\n[[feeds]]\nname = "a"\nurl = "https://a.test/f"\ninterval = "5 minutes"\n',
     ["feeds[0].interval", "bad interval"]),
    ('[database]\npath = "x.db"\n[[feeds]]\nname = "a"\nurl = "https://a.test/1"\n'
     '[[feeds]]\nname = "a"\nurl = "https://a.test/2"\n', ["feeds[1].name", "duplicate"]),
    ('[database]\npath = "x.db"\n[[feeds]]\nname = "a"\nurl = "file:///etc/passwd"\n',
     ["feeds[0].url", "http"]),
    ('[database]\npath = "x.db"\n[[feeds]]\nname = "a"\n', ["feeds[0].url", "missing"]),
    ('[database]\npath = "x.db"\n[classifier]\nthreshold = "high"\n',
     ["classifier.threshold", "number"]),
    ('[database]\npath = "x.db"\n[classifier]\nthreshold = 1.5\n', ["classifier.threshold"]),
    ('[database]\npath = "x.db"\n[reddit]\ncomments = "yes"\n', ["reddit.comments", "true or false"]),
    ('[database]\npath = "x.db"\n[reddit]\nsubreddits = "darknet"\n',
     ["reddit.subreddits", "list of strings"]),
    ('[database]\npath = "x.db"\n[reddit]\nsubreddits = ["r/darknet"]\n',
     ["reddit.subreddits[0]", "subreddit"]),
    ('[database]\npath = "x.db"\n[reddit]\nclient_secret = "abc"\n',
     ["reddit.client_secret", "MONITOR_REDDIT_CLIENT_SECRET"]),
    ('[database]\npath = "x.db"\n[smtp]\npassword = "abc"\n', ["smtp.password", "MONITOR_SMTP_PASSWORD"]),
    ('[database]\npath = "x.db"\n[smtp]\nsecurity = "tls"\n', ["smtp.security", "starttls"]),
    ('[database]\npath = "x.db"\n[smtp]\nport = "587"\n', ["smtp.port", "whole number"]),
    ('[database]\npath = "x.db"\n[digest]\nweekday = "someday"\n', ["digest.weekday"]),
    ('[database]\npath = "x.db"\n[digest]\ntime = "7am"\n', ["digest.time", "HH:MM"]),
    ('[database]\npath = "x.db"\n[digest]\ntimezone = "Mars/Olympus"\n', ["digest.timezone"]),
    ('[database]\npath = "x.db"\n[digest]\nrecipients = ["not-an-address"]\n',
     ["digest.recipients[0]"]),
    ('[database]\npath = "x.db"\n[feeds]\nname = "a"\n', ["feeds", "[[feeds]]"]),
    ('[databse]\npath = "x.db"\n', ["databse", "unknown key", "database"]),
    ('[database]\npath = "x.db"\nkeep_runs_days = -1\n', ["database.keep_runs_days", "0"]),
    ('[reddit]\nsubreddits = []\n', ["[database]", "missing"]),
    ('[database]\npath = "x.db"\n[[feeds]\n', ["invalid TOML"]),
]


@pytest.mark.parametrize("text,words", ERRORS)
def test_config_errors_name_the_key_and_file(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    for word in words:
        assert word in message


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="monitor init"):
        load_config(tmp_path / "nope.toml", env={})


def test_not_utf8(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"[database]\npath = \"\xff\xfe\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path, env={})


@pytest.mark.parametrize("text,words", ERRORS[:6] + ERRORS[-3:])
def test_cli_reports_config_errors_in_one_line_without_traceback(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["status", "--config", str(path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert words[0] in lines[0]


def test_cli_options_before_or_after_the_verb(tmp_path):
    missing = str(tmp_path / "absent.toml")
    for args in (["--config", missing, "status"], ["status", "--config", missing]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1
        assert "absent.toml" in result.output


def test_config_from_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "env.toml"
    path.write_text('[database]\npath = "e.db"\n')
    monkeypatch.setenv("MONITOR_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "e.db") in result.output


def test_init_writes_the_example_and_creates_the_database(tmp_path):
    path = tmp_path / "cfg" / "config.toml"
    result = CliRunner().invoke(cli, ["init", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_text() == Path(example_config()).read_text()
    assert (tmp_path / "cfg" / "data" / "monitor.db").exists()
    again = CliRunner().invoke(cli, ["init", "--config", str(path)])
    assert again.exit_code == 0 and "left as it is" in again.output
