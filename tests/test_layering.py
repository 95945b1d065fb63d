"""bot/ is the core: outside the composition root it imports no adapter or platform SDK."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "adapters",
    "slack_bolt",
    "slack_sdk",
    "discord",
    "openai",
    "aiosmtplib",
    "httpx",
    "aiohttp",
}
COMPOSITION_ROOTS = {"bot/app.py", "bot/cli.py"}
# The client integrators install is an HTTP client, nothing else: httpx is its transport.
CLIENT = "bot/client.py"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_adapter_or_sdk() -> None:
    offenders = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in COMPOSITION_ROOTS:
            continue
        bad = imported_modules(path) & (FORBIDDEN - {"httpx"} if rel == CLIENT else FORBIDDEN)
        if bad:
            offenders[rel] = sorted(bad)
    assert offenders == {}


def test_the_check_catches_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import slack_sdk\nfrom adapters.web import x\n")
    assert imported_modules(bad) >= {"slack_sdk", "adapters"}


def test_storage_does_not_import_the_core() -> None:
    for path in (ROOT / "storage").rglob("*.py"):
        assert "bot" not in imported_modules(path), path


def test_the_client_stands_alone() -> None:
    """bot/client.py imports nothing else of signoff, so it can be used (or copied) alone."""
    assert imported_modules(ROOT / CLIENT) & {"bot", "storage", "adapters", "fastapi"} == set()
