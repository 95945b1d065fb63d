"""Run the real ``signoff`` command as a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests import secrets_scan

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signoff_env(**settings: str) -> dict[str, str]:
    """The test process's environment without SIGNOFF_* or proxies, plus ``settings``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNOFF_") and "proxy" not in k.lower()
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(settings)
    return env


def run(
    args: list[str], *, env: dict[str, str], stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``signoff ARGS``; its stderr (logs, error messages) goes to the secrets scan."""
    done = subprocess.run(
        [str(BIN / "signoff"), *args],
        env=env,
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    secrets_scan.scan_text(done.stderr or "", where=f"signoff {' '.join(args[:2])} (stderr)")
    return done


class Server:
    """A server subprocess; ``start`` returns once ``/healthz`` answers."""

    def __init__(
        self, command: list[str], *, env: dict[str, str], port: int, cwd: Path = ROOT
    ) -> None:
        self.command, self.env, self.port, self.cwd = command, env, port, cwd
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, *, within: float = 60) -> Server:
        self.proc = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited: {self.proc.stdout.read() if self.proc.stdout else ''}"
                )
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)  # polling for the server to listen, not a timer under test
        self.stop()
        raise RuntimeError(f"server did not listen within {within}s: {self.output}")

    def stop(self) -> str:
        """Stop gracefully (SIGTERM, as a service manager would); return its output."""
        if self.proc is None:
            return self.output
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
        self.output += out or ""
        self.proc = None
        # the demo prints its new API key and signing secret on purpose
        secrets_scan.scan_text(
            out or "",
            where=" ".join(self.command[:2]),
            allow_lines=("API key (integrator", "Signing secret:"),
        )
        return self.output
