"""The signoff command line, run as the installed console script."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.process import Server, free_port, run, signoff_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return signoff_env(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db")


ITEM = {
    "route": "default",
    "kind": "message",
    "title": "Post the release note",
    "content": {"text": "v1.2 is out"},
}


def test_db_upgrade(env: dict[str, str]) -> None:
    done = run(["db", "upgrade"], env=env)
    assert done.returncode == 0 and "up to date" in done.stdout


def _nothing_listens() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+asyncpg://signoff:hunter2-secret@127.0.0.1:{port}/signoff"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(_nothing_listens(), id="refused"),
        pytest.param(
            "postgresql+asyncpg://signoff:hunter2-secret@no-such-host.invalid/signoff",
            id="unknown-host",
        ),
        pytest.param("sqlite+aiosqlite:////nonexistent-dir/hunter2/signoff.db", id="sqlite-path"),
    ],
)
def test_an_unreachable_database_is_one_clear_line(env: dict[str, str], url: str) -> None:
    done = run(["db", "upgrade"], env={**env, "SIGNOFF_DATABASE_URL": url})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("signoff: cannot reach the database (")
    assert "SIGNOFF_DATABASE_URL" in line
    assert "hunter2-secret" not in line


def test_keys_create_json_and_duplicate(env: dict[str, str]) -> None:
    done = run(["keys", "create", "agent", "--json"], env=env)
    key = json.loads(done.stdout)
    assert set(key) == {"name", "api_key", "signing_secret"} and key["name"] == "agent"
    assert key["api_key"].startswith("sk_") and len(key["api_key"]) > 40
    again = run(["keys", "create", "agent"], env=env)
    assert again.returncode == 2 and "a key named 'agent' already exists" in again.stderr


def test_keys_are_stored_as_digests(env: dict[str, str], tmp_path: Path) -> None:
    import sqlite3

    key = json.loads(run(["keys", "create", "agent", "--json"], env=env).stdout)
    with sqlite3.connect(tmp_path / "signoff.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert key["api_key"] not in dump


def test_submit_from_stdin_and_file_then_items_table(env: dict[str, str], tmp_path: Path) -> None:
    one = run(["submit", "-", "--json"], env=env, stdin=json.dumps(ITEM))
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["state"] == "pending"
    path = tmp_path / "item.json"
    path.write_text(json.dumps({**ITEM, "title": "Second"}))
    two = run(["submit", str(path)], env=env)
    assert two.returncode == 0 and two.stdout.split()[1] == "pending"
    table = run(["items"], env=env).stdout.splitlines()
    assert table[0].split() == ["ID", "ROUTE", "KIND", "STATE", "OUTCOME", "RELEASE", "TITLE"]
    assert "Second" in table[1] and "Post the release note" in table[2]


def test_submit_bad_input_names_the_problem(env: dict[str, str]) -> None:
    done = run(["submit", "-"], env=env, stdin=json.dumps({**ITEM, "kind": "fax"}))
    assert done.returncode == 2 and "kind: unknown kind 'fax'" in done.stderr
    done = run(["submit", "-"], env=env, stdin="{nope")
    assert done.returncode == 2 and "Invalid JSON" in done.stderr


def test_decide_from_the_command_line(env: dict[str, str]) -> None:
    item = json.loads(run(["submit", "-", "--json"], env=env, stdin=json.dumps(ITEM)).stdout)
    done = run(["decide", item["id"], "reject", "--as", "lead", "--text", "too early"], env=env)
    assert done.returncode == 0 and "rejected" in done.stdout
    again = run(["decide", item["id"], "approve", "--as", "other"], env=env)
    assert again.returncode == 2 and "already rejected: reject by lead" in again.stderr


def test_bad_setting_stops_the_start(env: dict[str, str]) -> None:
    done = run(["items"], env={**env, "SIGNOFF_PORTT": "1"})
    assert done.returncode == 2 and "unknown setting SIGNOFF_PORTT" in done.stderr


def test_make_run_serves_demo_data_and_prints_a_key_and_a_sign_in_link(
    env: dict[str, str],
) -> None:
    port = free_port()
    server = Server(["make", "-s", "run"], env={**env, "SIGNOFF_PORT": str(port)}, port=port)
    server.start()
    try:
        output = ""
        assert server.proc is not None and server.proc.stdout is not None
        while "Signing secret" not in output:
            output += server.proc.stdout.readline()
        api_key = output.split("API key (integrator 'demo', new at every start): ")[1].split()[0]
        link = output.split("Sign in (reviewer 'demo', one-time link): ")[1].split()[0]
        page = httpx.get(f"{server.base}/v1/items", headers={"Authorization": f"Bearer {api_key}"})
        with httpx.Client(base_url=server.base) as browser:
            signed_in = browser.post(link, follow_redirects=True)
            again = httpx.post(link)
    finally:
        server.stop()
    assert link.startswith(f"http://127.0.0.1:{port}/signin/")
    items = page.json()["items"]
    assert len(items) == 10
    assert {i["kind"] for i in items} == {"email", "code_change", "decision", "label", "message"}
    assert {"auto_approved", "auto_rejected"} <= {i["outcome"] for i in items}
    assert signed_in.status_code == 200 and "Refund for order 1234" in signed_in.text
    assert signed_in.text.count('class="row"') == 8  # the pending drafts
    assert again.status_code == 400  # the link works once
