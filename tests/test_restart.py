"""Restart: items, decisions and queued releases survive; a queued release is delivered
by the next server process."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import httpx
import yaml

from tests.fakes.receiver import Receiver
from tests.process import Server, free_port, run, signoff_env


async def test_restart_keeps_everything_and_delivers_the_queued_release(tmp_path: Path) -> None:
    hook_port, port = free_port(), free_port()
    config = tmp_path / "signoff.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "routes": {
                    "ship": {
                        "thresholds": {"auto_approve_at": 0.9},
                        "target": {
                            "type": "webhook",
                            "url": f"http://127.0.0.1:{hook_port}/release",
                        },
                        "callback_hosts": ["127.0.0.1"],
                        "allow_private_callbacks": True,
                    }
                }
            }
        )
    )
    db = tmp_path / "signoff.db"
    env = signoff_env(
        SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        SIGNOFF_CONFIG=str(config),
        SIGNOFF_PORT=str(port),
        SIGNOFF_RELEASE_BACKOFF_SECONDS="0.2",
        SIGNOFF_RELEASE_MAX_ATTEMPTS="60",
    )
    key = json.loads(run(["keys", "create", "agent", "--json"], env=env).stdout)
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    item = {"route": "ship", "kind": "message", "title": "Hello", "content": {"text": "hi"}}

    server = Server(["signoff", "serve"], env=env, port=port).start()
    try:
        async with httpx.AsyncClient(base_url=server.base, headers=headers) as client:
            auto = (await client.post("/v1/items", json={**item, "confidence": 0.95})).json()
            pending = (await client.post("/v1/items", json={**item, "confidence": 0.5})).json()
    finally:
        server.stop()
    assert auto["outcome"] == "auto_approved" and auto["release_state"] == "queued"

    with sqlite3.connect(db) as conn:  # what the stopped server left behind
        assert conn.execute(
            "SELECT state FROM items WHERE id = ?", (pending["id"],)
        ).fetchone() == ("pending",)
        assert conn.execute(
            "SELECT state, purpose FROM deliveries WHERE item_id = ?", (auto["id"],)
        ).fetchall() == [("queued", "release")]

    receiver = await Receiver().start(port=hook_port)
    server = Server(["signoff", "serve"], env=env, port=port).start()
    try:
        async with httpx.AsyncClient(base_url=server.base, headers=headers) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                after = (await client.get(f"/v1/items/{auto['id']}")).json()
                if after["release_state"] == "released":
                    break
                await asyncio.sleep(0.1)  # polling another process, not a timer under test
            still = (await client.get(f"/v1/items/{pending['id']}")).json()
    finally:
        server.stop()
        await receiver.stop()
    assert after["release_state"] == "released"
    assert [d["reason_text"] for d in after["decisions"]] == ["confidence 0.95 ≥ 0.9"]
    assert still["state"] == "pending" and still["title"] == "Hello"
    [delivered] = receiver.accepted()
    assert delivered.headers["Idempotency-Key"] == f"{auto['id']}:release"
