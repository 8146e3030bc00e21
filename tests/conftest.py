"""Fixtures shared by the test modules: config files, fresh databases, a local HTTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from monitor import store
from monitor.config import Config, load_config
from tests.analyst_helpers import Built, analyst_fixture

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip when the shared data is not beside the checkout."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the shared test data (../shared) is not beside this "
                    "checkout")
    return path


@pytest.fixture
def built(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Built:
    """The analysts' database (tests/analyst_helpers.py): collected, classified, in a copy
    of its own for each test."""
    return analyst_fixture(tmp_path_factory, tmp_path)


@pytest.fixture
def local_server() -> Iterator[HTTPServer]:
    """A threaded HTTP server on 127.0.0.1, so a slow handler does not block the others."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a config file from TOML text (plus [database] if missing) and load it."""

    def write(text: str = "", name: str = "config.toml", env: dict | None = None) -> Config:
        if "[database]" not in text:
            text = '[database]\npath = "monitor.db"\n' + text
        path = tmp_path / name
        path.write_text(text)
        return load_config(path, env=env or {})

    return write


@pytest.fixture
def fresh_db(tmp_path: Path):
    db = store.open_db(tmp_path / "fresh.db")
    yield db
    db.close()


# --- the installed package (tests/test_wheel.py, tests/test_readme.py) ---------------------

@pytest.fixture(scope="session")
def wheel_run(tmp_path_factory):
    """The wheel built from a clean copy of the checkout, installed in a fresh virtualenv,
    and `monitor demo` run from it: done once, recorded (tests/install_helpers.py)."""
    from tests.install_helpers import install_wheel

    return install_wheel(tmp_path_factory.mktemp("wheel"))
