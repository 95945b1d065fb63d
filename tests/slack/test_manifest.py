"""The Slack app manifest: the committed file is current; the CLI fills in the URL."""

from __future__ import annotations

from pathlib import Path

import yaml

from adapters.slack.manifest import manifest_yaml
from tests.process import ROOT, run, signoff_env


def test_the_committed_manifest_is_what_the_code_makes() -> None:
    assert (ROOT / "manifests" / "slack-app.yaml").read_text() == manifest_yaml()


def test_manifest_for_a_host_and_for_socket_mode(tmp_path: Path) -> None:
    env = signoff_env(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    http = yaml.safe_load(
        run(["manifest", "slack", "--url", "https://review.acme.test/"], env=env).stdout
    )
    assert http["settings"]["interactivity"]["request_url"] == (
        "https://review.acme.test/slack/events"
    )
    assert http["features"]["slash_commands"][0]["url"] == "https://review.acme.test/slack/events"
    assert http["settings"]["socket_mode_enabled"] is False
    assert set(http["oauth_config"]["scopes"]["bot"]) >= {
        "chat:write",
        "commands",
        "usergroups:read",
    }
    socket = yaml.safe_load(run(["manifest", "slack", "--socket"], env=env).stdout)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["interactivity"]
    bad = run(["manifest", "slack", "--url", "review.acme.test"], env=env)
    assert bad.returncode == 2 and "--url: must be an http(s) URL" in bad.stderr
