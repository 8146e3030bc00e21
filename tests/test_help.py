"""Every command has help: a one-line summary, the common options, and an example that runs
the command itself. `monitor --version` says the package's version.
"""

from __future__ import annotations

import re
from importlib import metadata

import pytest
from click.testing import CliRunner

from monitor import __version__
from monitor.cli import cli
from tests.conftest import shared_path

# DESIGN.md's CLI section: the verbs analysts and operators rely on.
DESIGNED = {"init", "run", "collect", "classify", "train", "eval", "label", "digest", "report",
            "markets", "status", "serve", "replay", "events", "export", "demo"}
COMMANDS = sorted(cli.commands)


def _help(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="monitor")
    assert result.exit_code == 0, result.output
    return result.output


def test_every_designed_command_exists() -> None:
    assert set(COMMANDS) >= DESIGNED


def test_the_design_lists_no_command_we_lack() -> None:
    design = shared_path("DESIGN.md").read_text(encoding="utf-8")
    block = design.split("## CLI", 1)[1].split("##", 1)[0]
    named = set(re.findall(r"^\s+monitor (\w+)", block, re.M))
    assert named and named <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help_has_a_summary_and_an_example(name: str) -> None:
    text = _help(name)
    lines = text.splitlines()
    assert lines[0].startswith(f"Usage: monitor {name}")
    # The summary: the help's first paragraph, one line in the source (the terminal may
    # wrap it), shown first under the usage line.
    summary = cli.commands[name].help.strip().split("\n\n", 1)[0]
    assert summary and "\n" not in summary, f"{name}: summary is not one line: {summary!r}"
    assert len(summary) <= 100 and summary.endswith("."), summary
    assert " ".join(text.split("\n\n", 2)[1].split()) == summary
    # An example that runs this very command.
    examples = re.search(r"\n  Examples?:\n((?:    .*\n)+)", text)
    assert examples, f"{name}: no Example section in its help"
    assert re.search(rf"^\s+monitor {name}\b", examples.group(1), re.M), examples.group(1)
    # The options every command takes.
    for option in ("--config", "-v, --verbose", "-q, --quiet", "-h, --help"):
        assert option in text, f"{name}: {option} missing from its help"


@pytest.mark.parametrize("name", COMMANDS)
def test_short_help_works_too(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "-h"], prog_name="monitor")
    assert result.exit_code == 0 and "Usage: monitor" in result.output


def test_the_group_help_lists_every_command_with_its_summary() -> None:
    text = _help()
    listed = re.findall(r"^  (\w+)\s{2,}(\S.*)$", text.split("Commands:", 1)[1], re.M)
    assert [name for name, _ in listed] == COMMANDS
    for name, summary in listed:
        start = summary.rstrip(".").rstrip()
        assert cli.commands[name].help.lstrip().startswith(start), (name, summary)
    assert "Example" in text


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"], prog_name="monitor")
    assert result.exit_code == 0
    assert result.output.strip() == f"monitor, version {__version__}"
    assert metadata.version("monitor") == __version__  # what pip installed says the same
