"""The README's walkthrough runs verbatim against a real server (only the port differs)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.process import ROOT, Server, free_port, signoff_env


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- walkthrough:start -->")[1].split("<!-- walkthrough:end -->")[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert blocks, "the README lost its walkthrough"
    return "\n".join(blocks)


def test_readme_walkthrough_works_verbatim(tmp_path: Path) -> None:
    port = free_port()
    env = signoff_env(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db")
    script = walkthrough()
    assert "127.0.0.1:8000" in script
    server = Server(["signoff", "serve", "--port", str(port)], env=env, port=port).start()
    try:
        done = subprocess.run(
            [
                "bash",
                "-euo",
                "pipefail",
                "-c",
                script.replace("127.0.0.1:8000", f"127.0.0.1:{port}"),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr + done.stdout
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    submitted, read_back, final = answers
    assert submitted["state"] == "pending" and read_back == submitted
    assert final["state"] == "approved" and final["decisions"][0]["actor_name"] == "support-lead"
