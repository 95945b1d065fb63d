"""A pytest plugin: the run fails when a secret shows up in a log record or in what a
``signoff`` subprocess wrote (issue 11: tokens, signing secrets and API keys never appear
in logs or error messages).

Registered from tests/conftest.py. A handler on the root logger sees every record of
the whole run (the root logger is opened to INFO and signoff's own loggers to DEBUG;
third-party DEBUG chatter stays off, it would slow the suite for nothing a secret could
ride on that INFO does not also show). Every record's message and traceback is checked
as it is emitted against

- the secrets the fakes and fixtures use (``KNOWN``), and any a test adds with
  :func:`register`;
- the shapes of signoff's own credentials (API keys ``sk_`` + 43 characters, signing
  secrets ``whsec_`` + 43) and of Slack tokens (``xoxb-``, ``xapp-``, ...), wherever they
  come from, so a key made in any fixture is covered without registering it.

Subprocess output is checked where tests collect it: :func:`scan_text`, called by
``tests/process.py``. At the end of the session a leak fails the run (exit status 1)
and names the secret (masked), the logger or process, and the message. Under
pytest-xdist (``make test``) each worker hands its leaks to the controller, which
reports them and fails the run.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import pytest

KNOWN = frozenset(
    {
        "test-signing-secret",  # tests/slack: SIGNOFF_SLACK_SIGNING_SECRET
        "resilience-signing-secret",  # tests/resilience/cluster.py
        "ghp_fake_token",  # tests/fakes/github.py
        "sk-fake-openai-key",  # tests/fakes/openai.py
    }
)
SHAPES = (
    r"(?<![A-Za-z0-9_-])sk_[A-Za-z0-9_-]{43}",  # bot/secrets.py new_api_key
    r"(?<![A-Za-z0-9_-])whsec_[A-Za-z0-9_-]{43}",  # bot/secrets.py new_signing_secret
    r"(?<![A-Za-z0-9_-])xox[abpr]-[A-Za-z0-9-]+",  # Slack bot/user tokens (xoxb-test)
    r"(?<![A-Za-z0-9_-])xapp-[A-Za-z0-9-]+",  # Slack app-level tokens
)
MIN_LENGTH = 8  # shorter values ("token") are words, not secrets worth scanning for


@dataclass(frozen=True, slots=True)
class Leak:
    secret: str
    where: str  # a logger name or a process
    text: str


_lock = threading.Lock()
_registered: set[str] = set()
_leaks: list[Leak] = []
_pattern: re.Pattern[str] | None = None


def register(value: str) -> str:
    """Add ``value`` to the secrets the run must never log; returns it."""
    global _pattern
    if len(value) >= MIN_LENGTH and value not in _registered:
        with _lock:
            _registered.add(value)
            _pattern = None
    return value


def _compiled() -> re.Pattern[str]:
    global _pattern
    if _pattern is None:
        literals = sorted(KNOWN | _registered, key=len, reverse=True)
        _pattern = re.compile("|".join([*SHAPES, *(re.escape(v) for v in literals)]))
    return _pattern


def find(text: str) -> list[str]:
    """The secrets in ``text``."""
    return [m.group(0) for m in _compiled().finditer(text)]


def mask(secret: str) -> str:
    return secret[:5] + "…" if len(secret) > 8 else secret[:2] + "…"


def scan_text(text: str, *, where: str, allow_lines: tuple[str, ...] = ()) -> list[str]:
    """Check what a process wrote; lines starting with one of ``allow_lines`` are output
    the process shows on purpose (``signoff demo`` prints its new API key)."""
    found = []
    for line in text.splitlines():
        if allow_lines and line.lstrip().startswith(allow_lines):
            continue
        for secret in find(line):
            found.append(secret)
            with _lock:
                _leaks.append(Leak(secret, where, line))
    return found


class ScanHandler(logging.Handler):
    """Checks every record it sees; keeps only the leaks."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                text += "\n" + record.exc_text
            if record.stack_info:
                text += "\n" + record.stack_info
        except Exception:  # a record that cannot format is not ours to judge
            return
        for secret in find(text):
            with _lock:
                _leaks.append(Leak(secret, record.name, text))


_handler = ScanHandler(level=logging.DEBUG)


def leaks() -> list[Leak]:
    """The leaks so far (a test may look, e.g. to check the scanner itself)."""
    with _lock:
        return list(_leaks)


def forget(count: int) -> None:
    """Drop the leaks recorded after the first ``count``: for a test of the scanner that
    leaks on purpose."""
    with _lock:
        del _leaks[count:]


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.getLogger("signoff").setLevel(logging.DEBUG)


_WORKER_KEY = "signoff_secret_leaks"
_from_workers: list[tuple[str, str, str]] = []  # under pytest-xdist: the workers' leaks


def _reported(found: list[Leak]) -> list[tuple[str, str, str]]:
    """Leaks as they are shown: the secret masked, where, a masked one-line excerpt."""
    return [
        (
            mask(leak.secret),
            leak.where,
            leak.text.replace(leak.secret, mask(leak.secret))[:300].replace("\n", " | "),
        )
        for leak in found
    ]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist, in the controller: a worker finished; keep what it found."""
    output = getattr(node, "workeroutput", None) or {}
    _from_workers.extend(tuple(leak) for leak in output.get(_WORKER_KEY, ()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = _reported(leaks())
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports and fails
        workeroutput[_WORKER_KEY] = found
        return
    found += _from_workers
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"secrets scan: {len(found)} leak(s) of a secret into logs or process output"]
    for secret, where, excerpt in found[:20]:
        lines.append(f"  {secret!r} in {where}: {excerpt}")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True)
        else:
            print(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
