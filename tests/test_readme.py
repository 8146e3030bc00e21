"""The README does what it says: its two commands at the top set up a working checkout, the
Quick look runs, CI runs the test command verbatim, and the reference parts (commands,
configuration keys with their defaults, files it names) match the code.

The commands run in the clean copy of the checkout that tests/test_wheel.py built its wheel
from, reusing that virtualenv (the README's `.venv`), so the dependencies are installed once.
The daemon itself (`monitor run`) would poll real sites, so its setup is run and `run --help`
stands in for it; the test command's setup is run and pytest only collects (it would run this
very suite again).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from monitor import __version__, config
from monitor.cli import cli
from tests.install_helpers import ROOT, run

README = (ROOT / "README.md").read_text(encoding="utf-8")
SETUP_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/monitor init "
                 "&& .venv/bin/monitor run")
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest"


def _section(title: str) -> str:
    """The text of a `## title` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def _top_commands() -> list[str]:
    head = README.split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", head, re.S)


def _parts(command: str) -> list[str]:
    return [part.strip() for part in command.split(" && ")]


# --- the two commands, and the Quick look ----------------------------------------------------

def test_the_two_commands_stand_at_the_top_as_they_were() -> None:
    assert _top_commands() == [SETUP_COMMAND, TEST_COMMAND]


def test_ci_runs_the_test_command_verbatim() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[-1] == TEST_COMMAND


def test_the_quick_look_is_the_setup_then_the_demo() -> None:
    [command] = re.findall(r"```sh\n(.*monitor demo)\n```", _section("Quick look"))
    assert _parts(command) == [*_parts(SETUP_COMMAND)[:2], ".venv/bin/monitor demo"]


@pytest.mark.slow
def test_setup_command_and_quick_look_on_a_clean_checkout(wheel_run) -> None:
    checkout = wheel_run.checkout
    steps = _parts(_top_commands()[0])
    assert steps[-1] == ".venv/bin/monitor run"
    run(" && ".join(steps[:-1]), cwd=checkout, timeout=600)
    # An editable install of this checkout, with the default config and its database.
    where = run([".venv/bin/python", "-c", "import monitor; print(monitor.__file__)"],
                cwd=checkout).stdout.strip()
    assert Path(where) == checkout / "monitor" / "__init__.py"
    assert (checkout / "config.toml").read_text() == (
        checkout / "config.example.toml").read_text()
    assert (checkout / "data" / "monitor.db").is_file()
    status = run([".venv/bin/monitor", "status"], cwd=checkout).stdout
    assert "Daemon: never run" in status and "(0 items)" in status
    assert "Usage: monitor run" in run([".venv/bin/monitor", "run", "--help"],
                                       cwd=checkout).stdout
    # The Quick look's last step, in the same checkout (its setup is the same as above).
    out = run([".venv/bin/monitor", "demo"], cwd=checkout, timeout=180).stdout
    assert "Successors discovered in the chatter: Larkspur -> Cormorant" in out
    for name in ("demo.db", "demo.toml", "demo-digest.html"):
        assert (checkout / name).is_file()
    events = run([".venv/bin/monitor", "events", "--config", "demo.toml"], cwd=checkout).stdout
    assert "Operation Hedgerow" in events


@pytest.mark.slow
def test_test_command_installs_what_the_suite_needs(wheel_run) -> None:
    checkout = wheel_run.checkout
    steps = _parts(_top_commands()[1])
    assert steps[-1] == ".venv/bin/pytest"
    run(" && ".join(steps[:-1]), cwd=checkout, timeout=600)
    collected = run([".venv/bin/pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                    cwd=checkout, timeout=300).stdout
    count = re.search(r"(\d+) tests? collected", collected)
    assert count and int(count.group(1)) > 300, collected[-2000:]
    run([".venv/bin/ruff", "--version"], cwd=checkout)


# --- the reference parts match the code ----------------------------------------------------

def test_every_command_is_in_the_commands_table() -> None:
    table = _section("Commands")
    for name in cli.commands:
        assert f"`monitor {name}" in table, f"monitor {name} is missing from ## Commands"


_SECTIONS = {"database": config.DatabaseConfig, "http": config.HttpConfig,
             "feeds": config.FeedConfig, "reddit": config.RedditConfig,
             "classifier": config.ClassifierConfig, "alerts": config.AlertsConfig,
             "digest": config.DigestConfig, "smtp": config.SmtpConfig,
             "daemon": config.DaemonConfig}


def _documented_keys() -> dict[str, dict[str, str]]:
    """Configuration's tables: section -> key -> the default cell as written."""
    found: dict[str, dict[str, str]] = {}
    section = None
    for line in _section("Configuration").splitlines():
        heading = re.match(r"^`\[\[?(\w+)\]\]?`", line)
        if heading:
            section = found.setdefault(heading.group(1), {})
            continue
        row = re.match(r"^\| `(\w+)` \| (.+?) \| .+ \|$", line)
        if row and section is not None:
            section[row.group(1)] = row.group(2)
    return found


def _settable(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "Secret" not in str(f.type)]


def test_every_config_key_is_documented() -> None:
    documented = _documented_keys()
    assert set(documented) == set(_SECTIONS)
    for name, cls in _SECTIONS.items():
        assert set(documented[name]) == {f.name for f in _settable(cls)}, name


def test_every_documented_default_is_the_real_default(tmp_path: Path) -> None:
    documented = _documented_keys()
    for name, cls in _SECTIONS.items():
        for field in _settable(cls):
            cell = documented[name][field.name]
            if field.default is dataclasses.MISSING:
                assert cell == "(required)", (name, field.name)
                continue
            value = tomllib.loads(f"v = {cell.strip('`')}")["v"]
            if name == "database" and field.name == "path":
                assert config.DatabaseConfig().path == Path(value)
                continue
            data: dict = {"database": {"path": "m.db"}}
            if name == "feeds":
                data["feeds"] = [{"name": "f", "url": "https://example.org/feed",
                                  field.name: value}]
            else:
                data[name] = {field.name: value}
            built = config.config_from_dict(data, tmp_path / "config.toml", {})
            section = built.feeds[0] if name == "feeds" else getattr(built, name)
            assert getattr(section, field.name) == field.default, (name, field.name, cell)


def test_the_secrets_are_documented_as_environment_variables() -> None:
    text = _section("Configuration")
    for variable in (config.ENV_REDDIT_ID, config.ENV_REDDIT_SECRET, config.ENV_SMTP_PASSWORD,
                     config.ENV_CONFIG, "MONITOR_ANALYST"):
        assert f"`{variable}`" in text
    assert "reddit.com/prefs/apps" in text and "script" in text


def test_the_files_it_names_exist() -> None:
    named = set(re.findall(
        r"`((?:bench|data|deploy|monitor|tests|\.ci)/[\w./-]+|[\w.-]+\.(?:md|toml))`", README))
    generated = {"data/monitor.db", "config.toml", "demo.toml", "backtest.toml"}
    missing = sorted(n for n in named - generated if "<" not in n
                     and not (ROOT / n).exists())
    assert not missing, f"the README names files that do not exist: {missing}"


def test_the_changelog_has_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(__version__)}\b", changelog, re.M)
