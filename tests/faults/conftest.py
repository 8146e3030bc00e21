"""The fault-injection suite: a ledger of faults tried, and a summary line at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class Ledger:
    tried: int = 0
    survived: int = 0
    lost: int = 0
    duplicates: int = 0
    names: list[str] = field(default_factory=list)

    def record(self, name: str, *, survived: bool, lost: int = 0, duplicates: int = 0) -> None:
        self.tried += 1
        self.survived += int(survived)
        self.lost += lost
        self.duplicates += duplicates
        self.names.append(name)


LEDGER = Ledger()


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if LEDGER.tried:
        terminalreporter.write_line(
            f"fault suite: {LEDGER.tried} faults tried, {LEDGER.survived} survived, "
            f"items lost: {LEDGER.lost}, duplicates: {LEDGER.duplicates}")
