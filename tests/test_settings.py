"""Settings from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

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


def test_a_dotenv_shared_with_other_programs_is_read_but_unknown_signoff_keys_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=secret\nSIGNOFF_PORT=8766\n")
    assert load_settings().port == 8766  # docker compose's own keys are not ours
    (tmp_path / ".env").write_text("SIGNOFF_PROT=8766\n")
    with pytest.raises(ConfigError, match="unknown setting SIGNOFF_PROT"):
        load_settings()
