"""The Discord application manifest and install URL."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from adapters.discord.manifest import manifest_json
from tests.process import ROOT, run, signoff_env


def test_the_committed_manifest_is_what_the_code_makes() -> None:
    assert (ROOT / "manifests" / "discord-app.json").read_text() == manifest_json()


def test_install_url_and_manifest_from_the_cli(tmp_path: Path) -> None:
    env = signoff_env(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    url = run(["manifest", "discord", "--app-id", "1234567890"], env=env).stdout.strip()
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://discord.com/oauth2/authorize?")
    assert query == {
        "client_id": ["1234567890"],
        "scope": ["bot applications.commands"],
        "permissions": ["309237763072"],
    }
    manifest = json.loads(run(["manifest", "discord"], env=env).stdout)
    assert [c["name"] for c in manifest["commands"]] == ["signoff"]
    assert manifest["intents"]["privileged"] == []
    bad = run(["manifest", "discord", "--app-id", "abc"], env=env)
    assert bad.returncode == 2 and "--app-id" in bad.stderr
