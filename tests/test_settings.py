"""Settings from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


def test_defaults() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite+aiosqlite:///./signoff.db"
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_unknown_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown setting SIGNOFF_PROT"):
        load_settings({"SIGNOFF_PROT": "1"})


def test_bad_value_is_named() -> None:
    with pytest.raises(ConfigError, match="SIGNOFF_PORT"):
        load_settings({"SIGNOFF_PORT": "eighty"})
