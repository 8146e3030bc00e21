"""Files that ship with monitor: in the wheel under monitor/_data, in a checkout under data/."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    installed = _PACKAGE / "_data"
    return installed if installed.is_dir() else _PACKAGE.parent / "data"


def example_config() -> Path:
    installed = _PACKAGE / "_data" / "config.example.toml"
    return installed if installed.is_file() else _PACKAGE.parent / "config.example.toml"
