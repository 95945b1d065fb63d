"""``signoff calibrate``, run as the installed console script on a seeded database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bot.app import System
from bot.routes import RouteTable, parse_routes
from storage.models import ConfigChange
from tests.process import run, signoff_env
from tests.test_calibration import AT, ROUTES, seed


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # the command reads the same file; counting runs both
    return sqlite_url


@pytest.fixture
def routes() -> RouteTable:
    return parse_routes(ROUTES)


async def test_the_command_prints_the_report_and_the_drift_changes(
    system: System, tmp_path: Path
) -> None:
    await seed(system)
    async with system.sessions() as session, session.begin():
        session.add(
            ConfigChange(
                route="support",
                key="thresholds.auto_approve_at",
                old_value=0.97,
                new_value=0.98,
                reason="audited error 6.0% is above the target of 1.0%",
                actor="signoff drift alarm",
                at=AT + timedelta(hours=1),
            )
        )
    config = tmp_path / "signoff.yaml"
    config.write_text(yaml.safe_dump(ROUTES))
    env = signoff_env(SIGNOFF_DATABASE_URL=system.settings.database_url, SIGNOFF_CONFIG=str(config))
    done = run(["calibrate", "--route", "support", "--target-error", "0.05"], env=env)
    assert done.returncode == 0, done.stderr
    assert "Recommended auto_approve_at: 0.93" in done.stdout
    assert "auto_approve_at 0.98 (changed by signoff; the route file says 0.97)" in done.stdout
    assert "thresholds.auto_approve_at: 0.97 -> 0.98  (signoff drift alarm" in done.stdout
    as_json = run(["calibrate", "--route", "fresh", "--json"], env=env)
    data = json.loads(as_json.stdout)
    assert data["recommended"]["auto_approve_at"]["value"] is None
    assert data["target_error"] == 0.01
    unknown = run(["calibrate", "--route", "nope"], env=env)
    assert unknown.returncode == 2
    assert "--route: unknown route 'nope'; known routes: fresh, support" in unknown.stderr
