"""The git target: an approved ``code_change`` lands as one commit on ``signoff/<item id>``.

Each attempt works in a fresh temporary repository (removed afterwards): it fetches the base
(the target's ``base``, else the item's, else ``main``) with depth 1, applies the item's
``final_content`` diff exactly (``git apply --index``, no fuzz), commits it with the
route's author, a ``Reviewed-by`` trailer per approver and a ``Signoff-Item: <item id>``
trailer, and pushes the new branch. Git runs without a shell, with a trimmed environment
(PATH, HOME, proxies and the GIT_*/SSH_* credential variables, never a prompt) and a
timeout per command.

Exactly once: before committing, an attempt looks the branch up on the remote. When its
tip carries our ``Signoff-Item`` trailer the release is already done, so an attempt that
pushed and then died before its success was recorded (or timed out waiting for the push
to be acknowledged) is followed by one that commits nothing and reports the branch as
``already there``. A branch of that name without the trailer is someone else's: the
release fails rather than overwrite it. Pushes never force.

Retried: network failures, timeouts, and a remote URL that cannot be reached (a remote
may be down or credentials not yet in place). Failed at once, since another attempt
would meet the same refusal: another kind than ``code_change``, a local repository path
that does not exist or is not a repository, an unknown base, a diff that does not apply
a taken branch name, and a push the remote rejects (non-fast-forward, or declined by a
hook or branch protection). Error messages carry git's own words (``patch does not
apply``), with any credentials in a URL masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bot.errors import ReleaseError
from bot.ports import DeliveryRequest
from bot.present import approvers_of

TRAILER = "Signoff-Item"
BRANCH_PREFIX = "signoff/"
_SHORT = 12  # characters of a commit id in receipts

_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# a branch or tag name as a fetch source: no option, refspec or revision syntax
_BASE = re.compile(r"^(?!-)(?!.*\.\.)[^\s:~^?*\[\\]+$")
# environment variables handed to git as they are: where to find programs and config,
# proxies and certificates, and the credentials of a remote (GIT_*/SSH_* minus _NOT_PASSED)
_PASSED = frozenset(
    {
        "PATH",
        "HOME",
        "XDG_CONFIG_HOME",
        "TMPDIR",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
# GIT_* variables that would point git at another repository or identity than ours
_NOT_PASSED = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_SHALLOW_FILE",
        "GIT_PREFIX",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_QUARANTINE_PATH",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "GIT_EDITOR",
        "GIT_SEQUENCE_EDITOR",
        "GIT_PAGER",
        "GIT_TERMINAL_PROMPT",
    }
)
# a push the remote refuses by policy (a hook, branch protection, permissions)
_REFUSED = re.compile(r"declined|denied|protected|not allowed|forbidden", re.IGNORECASE)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")  # credentials in a URL
_MAX_MESSAGE = 800  # characters of git's stderr kept in an error


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one release needs, checked before git runs."""

    item_id: str
    branch: str
    repository: str  # as handed to ``git remote add`` (a local path made absolute)
    local: bool
    base: str
    diff: str
    message: str
    author_name: str
    author_email: str

    @property
    def shown(self) -> str:
        """The repository for messages, without credentials."""
        return _redact(self.repository)


@dataclass(frozen=True, slots=True)
class _Run:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        """Git's stderr (else stdout) on one line, without hints, for an error message."""
        lines = [
            line.strip()
            for line in (self.err or self.out).splitlines()
            if line.strip() and not line.startswith("hint:")
        ]
        text = _redact(" ".join(lines)) or f"exit status {self.code}"
        return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


class GitTarget:
    def __init__(
        self, *, workdir: Path | None = None, git: str = "git", timeout: float = 120.0
    ) -> None:
        self._workdir = workdir
        self._git = git
        self._timeout = timeout

    async def deliver(self, *, request: DeliveryRequest) -> str:
        plan = _plan(request.item, request.target)
        tmp = await asyncio.to_thread(self._make_tmp)
        try:
            return await self._release(plan, tmp)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    def _make_tmp(self) -> Path:
        if self._workdir is not None:
            self._workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="signoff-git-", dir=self._workdir))

    async def _release(self, plan: _Plan, tmp: Path) -> str:
        git = _Session(
            executable=self._git,
            timeout=self._timeout,
            repo=tmp / "repo",
            env=_environment(plan),
            hooks=tmp / "no-hooks",
        )
        git.repo.mkdir()
        await _must(git("init", "-q", "--template="), "git init")
        await _must(git("remote", "add", "--", "origin", plan.repository), "git remote add")

        done = await _already_there(git, plan)
        if done is not None:
            return f"branch {plan.branch} at {done[:_SHORT]} (already there)"

        fetched = await git("fetch", "-q", "--no-tags", "--depth=1", "origin", "--", plan.base)
        if fetched.code != 0:
            if "couldn't find remote ref" in fetched.err:
                raise ReleaseError(
                    f"base {plan.base!r} is not in {plan.shown}: {fetched.said}",
                    retryable=False,
                )
            raise _unreachable(plan, "git fetch", fetched)
        base_sha = await _fetched_commit(git)
        await _must(git("checkout", "-q", "-b", plan.branch, base_sha), "git checkout")

        patch, message = tmp / "change.diff", tmp / "message.txt"
        await asyncio.to_thread(_write, patch, plan.diff)
        await asyncio.to_thread(_write, message, plan.message)
        applied = await git("apply", "--index", "--whitespace=nowarn", str(patch))
        if applied.code != 0:
            raise ReleaseError(
                f"the diff does not apply to {plan.base} at {base_sha[:_SHORT]}: {applied.said}",
                retryable=False,
            )
        committed = await git(
            *("-c", f"user.name={plan.author_name}", "-c", f"user.email={plan.author_email}"),
            *("commit", "-q", "--no-verify", "--cleanup=whitespace", "-F", str(message)),
        )
        if committed.code != 0:
            raise ReleaseError(f"git commit: {committed.said}", retryable=False)
        sha = (await _must(git("rev-parse", "HEAD"), "git rev-parse")).out.strip()

        pushed = await git("push", "-q", "--no-verify", "origin", f"HEAD:refs/heads/{plan.branch}")
        if pushed.code == 0:
            return f"branch {plan.branch} at {sha[:_SHORT]}"
        # Another attempt may have pushed this release meanwhile: that is a success too.
        done = await _already_there(git, plan)
        if done is not None:
            return f"branch {plan.branch} at {done[:_SHORT]} (already there)"
        if "[rejected]" in pushed.err:  # non-fast-forward, fetch first, already exists
            raise ReleaseError(
                f"push to {plan.branch} was rejected: {pushed.said}", retryable=False
            )
        if "[remote rejected]" in pushed.err and _REFUSED.search(pushed.err):
            raise ReleaseError(f"push to {plan.branch} was refused: {pushed.said}", retryable=False)
        raise _unreachable(plan, "git push", pushed)


class _Session:
    """git in one attempt's repository: ``await git("status")``."""

    def __init__(
        self, *, executable: str, timeout: float, repo: Path, env: Mapping[str, str], hooks: Path
    ) -> None:
        self._git = executable
        self._timeout = timeout
        self.repo = repo
        self._env = env
        self._config = (
            *("-c", f"core.hooksPath={hooks}"),  # does not exist: no hook of any config runs
            *("-c", "protocol.ext.allow=never"),
            *("-c", "core.autocrlf=false"),
            *("-c", "commit.gpgSign=false"),
        )

    async def __call__(self, *args: str) -> _Run:
        return await self._run(*self._config, *args)

    async def _run(self, *args: str) -> _Run:
        try:
            proc = await asyncio.create_subprocess_exec(
                self._git,
                *args,
                cwd=self.repo,
                env=dict(self._env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a timeout kills git's helpers (ssh, remote-https) too
            )
        except FileNotFoundError as exc:
            raise ReleaseError(f"git executable {self._git!r} not found", retryable=False) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            raise ReleaseError(
                f"git {_verb(args)} timed out after {self._timeout:g} s", retryable=True
            ) from None
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        return _Run(
            proc.returncode if proc.returncode is not None else -1,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
        )


async def _already_there(git: _Session, plan: _Plan) -> str | None:
    """The tip of ``plan.branch`` on the remote when it is this release, None when there
    is no such branch; raises when the branch exists and is not ours."""
    ref = f"refs/heads/{plan.branch}"
    listed = await git("ls-remote", "origin", ref)
    if listed.code != 0:
        raise _unreachable(plan, "git ls-remote", listed)
    if not any(line.split("\t")[-1] == ref for line in listed.out.splitlines()):
        return None
    fetched = await git("fetch", "-q", "--no-tags", "--depth=1", "origin", ref)
    if fetched.code != 0:
        raise _unreachable(plan, "git fetch", fetched)
    tip = await _fetched_commit(git)
    trailers = await _must(
        git("log", "-1", f"--format=%(trailers:key={TRAILER},valueonly,unfold)", tip),
        "git log",
    )
    if plan.item_id in (line.strip() for line in trailers.out.splitlines()):
        return tip
    raise ReleaseError(
        f"branch {plan.branch} already exists in {plan.shown} at {tip[:_SHORT]} "
        f"without a '{TRAILER}: {plan.item_id}' trailer: the branch name is taken "
        "by another commit",
        retryable=False,
    )


async def _fetched_commit(git: _Session) -> str:
    return (await _must(git("rev-parse", "--verify", "FETCH_HEAD^{commit}"), "git")).out.strip()


async def _must(pending: Awaitable[_Run], what: str) -> _Run:
    """Await a git run that fails only when something local is broken (not retried)."""
    result = await pending
    if result.code != 0:
        raise ReleaseError(f"{what}: {result.said}", retryable=False)
    return result


def _unreachable(plan: _Plan, what: str, result: _Run) -> ReleaseError:
    """A failure to talk to the remote: retried, unless it is a local path (config)."""
    return ReleaseError(f"{what} {plan.shown}: {result.said}", retryable=not plan.local)


def _plan(item: Mapping[str, Any], target: Mapping[str, Any]) -> _Plan:
    kind = item.get("kind")
    if kind != "code_change":
        raise ReleaseError(
            f"the git target releases code_change items, not {kind!r}", retryable=False
        )
    item_id = str(item.get("id") or "")
    if not _ITEM_ID.match(item_id):
        raise ReleaseError(f"item id {item_id!r} cannot name a branch", retryable=False)
    content: Mapping[str, Any] = item.get("final_content") or item.get("content") or {}
    diff = content.get("diff")
    if not isinstance(diff, str) or not diff.strip():
        raise ReleaseError(f"item {item_id} has no diff to apply", retryable=False)
    raw_repository = target.get("repository")
    if not isinstance(raw_repository, str) or not raw_repository:
        raise ReleaseError("the git target has no repository", retryable=False)
    repository, local = _locate(raw_repository)
    base = str(target.get("base") or content.get("base") or "main")
    if not _BASE.match(base):
        raise ReleaseError(f"base {base!r} is not a branch name", retryable=False)
    title = str(content.get("title") or item.get("title") or item_id)
    return _Plan(
        item_id=item_id,
        branch=BRANCH_PREFIX + item_id,
        repository=repository,
        local=local,
        base=base,
        diff=diff if diff.endswith("\n") else diff + "\n",
        message=_message(
            title=title,
            description=str(content.get("description") or ""),
            approvers=approvers_of(item),
            item_id=item_id,
        ),
        author_name=_one_line(str(target.get("author_name") or "signoff")),
        author_email=_one_line(str(target.get("author_email") or "signoff@localhost")),
    )


def _locate(repository: str) -> tuple[str, bool]:
    """``(what to give git, whether it is a local path)``; a local path must exist."""
    if repository.startswith("file://"):
        path = Path(unquote(urlsplit(repository).path))
    elif "://" in repository or re.match(r"^[^/]+:", repository):  # URL or scp-like ssh
        return repository, False
    else:
        path = Path(repository)
    path = Path(os.path.abspath(path))
    if not path.exists():
        raise ReleaseError(f"repository {repository} does not exist", retryable=False)
    return str(path), True


def _message(*, title: str, description: str, approvers: list[str], item_id: str) -> str:
    trailers = [f"Reviewed-by: {_one_line(who)}" for who in approvers]
    trailers.append(f"{TRAILER}: {item_id}")
    parts = [_one_line(title), description.strip(), "\n".join(trailers)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _redact(text: str) -> str:
    """``https://user:token@host/x`` → ``https://***@host/x``: errors are shown to people."""
    return _USERINFO.sub(r"\1***@", text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _environment(plan: _Plan) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key in _PASSED or (key.startswith(("GIT_", "SSH_")) and key not in _NOT_PASSED)
    }
    env.update(
        {
            "LC_ALL": "C",  # git's messages in English: some are read above
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": plan.author_name,
            "GIT_AUTHOR_EMAIL": plan.author_email,
            "GIT_COMMITTER_NAME": plan.author_name,
            "GIT_COMMITTER_EMAIL": plan.author_email,
        }
    )
    env.setdefault("PATH", os.defpath)
    return env


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))


def _verb(args: tuple[str, ...]) -> str:
    """The git subcommand in ``args`` (after the ``-c key=value`` pairs)."""
    rest = list(args)
    while len(rest) >= 2 and rest[0] == "-c":
        rest = rest[2:]
    return rest[0] if rest else ""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
