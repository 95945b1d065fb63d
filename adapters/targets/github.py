"""The GitHub target: open a pull request for an approved ``code_change`` item.

The approved diff (``final_content`` when a reviewer edited it) is committed on branch
``signoff/<item id>`` off the base branch (the route's ``base``, else the item's, else
``main``) through the REST API's Git Data endpoints, so no clone is needed: the files the
patch touches are fetched at the base commit, ``git apply`` runs on them in a temporary
directory, and the results become blobs, a tree, a commit and the branch. The commit
carries ``Reviewed-by:`` trailers for the approvers and ``Signoff-Item: <item id>``; the
pull request body names the approvers and the item.

Guarantee: one branch, one commit and one pull request per item, however many attempts.
Every attempt first looks for a pull request from the branch (and reuses it), then for the
branch (reused when its tip commit carries the item's ``Signoff-Item`` trailer), and only
then commits; a lost race for the branch or the pull request is resolved the same way.

Network errors, 5xx, 429 and rate-limit 403s are retried; anything else (bad token, no
such repository or base branch, a patch that does not apply, a validation failure) fails
at once with GitHub's or git's message. Patches without git's mode lines (plain
``diff -u`` output) commit files with mode 100644.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx

from bot.errors import ReleaseError
from bot.ports import DeliveryRequest
from bot.present import approvers_of

API_VERSION = "2022-11-28"
TRAILER = "Signoff-Item"
GIT_TIMEOUT = 60.0  # seconds for one ``git`` run

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
_MODE_LINE = re.compile(r"^(?:old mode|deleted file mode|index [0-9a-f]+\.\.[0-9a-f]+) (\d{6})$")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}

Json = dict[str, Any]
File = tuple[str, bytes]  # (git mode, content)


class GithubTarget:
    def __init__(
        self, *, client: httpx.AsyncClient, api_url: str = "https://api.github.com", token: str
    ) -> None:
        self._client = client
        self._api_url = api_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }

    async def deliver(self, *, request: DeliveryRequest) -> str:
        item = request.item
        if item.get("kind") != "code_change":
            raise ReleaseError(
                f"the github target releases code_change items, not {item.get('kind')!r}",
                retryable=False,
            )
        item_id = str(item.get("id") or "")
        if not _BRANCH_SAFE.match(item_id):
            raise ReleaseError(f"item id {item_id!r} cannot name a branch", retryable=False)
        content: Mapping[str, Any] = item.get("final_content") or item.get("content") or {}
        repository = str(request.target.get("repository") or content.get("repository") or "")
        if not _REPOSITORY.match(repository):
            raise ReleaseError(f"repository {repository!r} is not owner/name", retryable=False)
        base = str(request.target.get("base") or content.get("base") or "main")
        release = _Release(
            self,
            repository=repository,
            item_id=item_id,
            base=base,
            content=content,
            approvers=[a.replace("\n", " ") for a in approvers_of(item)],
        )
        return await release.run()

    async def call(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """One API request; raises a retryable ReleaseError on a transient failure."""
        try:
            response = await self._client.request(
                method, self._api_url + path, json=json, params=params, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise ReleaseError(
                f"GitHub {method} {path}: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if _transient(response):
            detail = f"HTTP {response.status_code} {_message(response)}".rstrip()
            raise ReleaseError(f"GitHub {method} {path}: {detail}", retryable=True)
        return response


class _Release:
    """One attempt at releasing one item to one repository."""

    def __init__(
        self,
        target: GithubTarget,
        *,
        repository: str,
        item_id: str,
        base: str,
        content: Mapping[str, Any],
        approvers: list[str],
    ) -> None:
        self._t = target
        self._name = repository
        self._repo = f"/repos/{repository}"
        self._owner = repository.split("/")[0]
        self._id = item_id
        self._base = base
        self._branch = f"signoff/{item_id}"
        self._content = content
        self._approvers = approvers

    def _expect(self, response: httpx.Response, what: str) -> Any:
        return _expect(response, f"{self._name}: {what}")

    async def run(self) -> str:
        existing = await self._find_pull()
        if existing is not None:
            return _receipt(existing, existing=True)
        if not await self._branch_is_ours():
            base_sha, base_tree = await self._base_commit()
            commit = await self._commit(base_sha, base_tree)
            await self._create_branch(commit)
        return await self._open_pull()

    # ------------------------------------------------------------------ pull requests

    async def _find_pull(self) -> Json | None:
        params = {"head": f"{self._owner}:{self._branch}", "state": "all"}
        response = await self._t.call("GET", f"{self._repo}/pulls", params=params)
        if response.status_code == 404:
            raise ReleaseError(
                f"repository {self._name} not found, or the token cannot see it "
                f"(GitHub: {_message(response) or 'Not Found'})",
                retryable=False,
            )
        pulls = self._expect(response, "list pull requests")
        if not isinstance(pulls, list):
            raise ReleaseError("GitHub list pull requests: not a list", retryable=True)
        return next((p for p in pulls if isinstance(p, dict)), None)

    async def _open_pull(self) -> str:
        body = {
            "title": _one_line(str(self._content.get("title") or self._id)),
            "head": self._branch,
            "base": self._base,
            "body": self._pull_body(),
        }
        response = await self._t.call("POST", f"{self._repo}/pulls", json=body)
        if response.status_code == 422 and "pull request already exists" in _message(response):
            existing = await self._find_pull()
            if existing is not None:
                return _receipt(existing, existing=True)
            raise ReleaseError(  # not listed yet: the next attempt will find it
                f"GitHub {self._name}: {_message(response)}, but it is not listed yet",
                retryable=True,
            )
        return _receipt(_object(self._expect(response, "open pull request")), existing=False)

    def _pull_body(self) -> str:
        who = ", ".join(self._approvers) or "policy (no human approval recorded)"
        footer = f"---\nApproved in signoff by: {who}\nSignoff item: {self._id}"
        description = str(self._content.get("description") or "").strip()
        return f"{description}\n\n{footer}" if description else footer

    # ------------------------------------------------------------------ branch and commit

    async def _branch_is_ours(self) -> bool:
        """Whether ``signoff/<id>`` exists with this item's commit at its tip."""
        response = await self._t.call("GET", f"{self._repo}/git/ref/heads/{self._branch}")
        if response.status_code == 404:
            return False
        sha = _ref_sha(_object(self._expect(response, f"get branch {self._branch}")))
        response = await self._t.call("GET", f"{self._repo}/git/commits/{sha}")
        message = str(_object(self._expect(response, f"get commit {sha}")).get("message") or "")
        if _has_trailer(message, self._id):
            return True
        raise ReleaseError(
            f"branch {self._branch} already exists in {self._name} and its tip {sha[:12]} is "
            f"not signoff's commit for {self._id}; delete the branch to release again",
            retryable=False,
        )

    async def _base_commit(self) -> tuple[str, str]:
        response = await self._t.call("GET", f"{self._repo}/git/ref/heads/{quote(self._base)}")
        if response.status_code == 404:
            raise ReleaseError(
                f"base branch {self._base!r} not found in {self._name} "
                f"(GitHub: {_message(response) or 'Not Found'})",
                retryable=False,
            )
        sha = _ref_sha(_object(self._expect(response, f"get base branch {self._base}")))
        response = await self._t.call("GET", f"{self._repo}/git/commits/{sha}")
        tree = _object(self._expect(response, f"get commit {sha}")).get("tree")
        if not isinstance(tree, dict) or not isinstance(tree.get("sha"), str):
            raise ReleaseError(f"GitHub commit {sha}: no tree", retryable=True)
        return sha, tree["sha"]

    async def _commit(self, base_sha: str, base_tree: str) -> str:
        diff = str(self._content.get("diff") or "")
        before: dict[str, File] = {}
        # New files are looked up too, so that one the base already has fails to apply.
        for path, mode in patch_files(diff).items():
            data = await self._file_at(path, base_sha)
            if data is not None:
                before[path] = (mode, data)
        after = await apply_patch(diff, before)
        entries: list[Json] = []
        for path in sorted(set(before) | set(after)):
            if path not in after:
                mode = before[path][0]
                entries.append({"path": path, "mode": mode, "type": "blob", "sha": None})
            elif after[path] != before.get(path):
                mode, data = after[path]
                sha = await self._blob(data)
                entries.append({"path": path, "mode": mode, "type": "blob", "sha": sha})
        if not entries:
            raise ReleaseError("the patch changes nothing", retryable=False)
        response = await self._t.call(
            "POST", f"{self._repo}/git/trees", json={"base_tree": base_tree, "tree": entries}
        )
        tree = _sha(self._expect(response, "create tree"), "create tree")
        body = {"message": self._commit_message(), "tree": tree, "parents": [base_sha]}
        response = await self._t.call("POST", f"{self._repo}/git/commits", json=body)
        return _sha(self._expect(response, "create commit"), "create commit")

    def _commit_message(self) -> str:
        parts = [_one_line(str(self._content.get("title") or self._id))]
        description = str(self._content.get("description") or "").strip()
        if description:
            parts.append(description)
        trailers = [f"Reviewed-by: {a}" for a in self._approvers]
        parts.append("\n".join([*trailers, f"{TRAILER}: {self._id}"]))
        return "\n\n".join(parts) + "\n"

    async def _file_at(self, path: str, ref: str) -> bytes | None:
        """The bytes of ``path`` at commit ``ref``; None when there is no such file."""
        response = await self._t.call(
            "GET", f"{self._repo}/contents/{quote(path)}", params={"ref": ref}
        )
        if response.status_code == 404:
            return None
        found = self._expect(response, f"get {path}")
        if not isinstance(found, dict) or found.get("type") != "file":
            raise ReleaseError(f"{path} is not a regular file at {ref[:12]}", retryable=False)
        if found.get("encoding") == "base64":
            return base64.b64decode(str(found.get("content") or ""))
        # Files over 1 MB come without content: read their blob instead.
        response = await self._t.call("GET", f"{self._repo}/git/blobs/{found.get('sha')}")
        blob = _object(self._expect(response, f"get blob of {path}"))
        return base64.b64decode(str(blob.get("content") or ""))

    async def _blob(self, data: bytes) -> str:
        body = {"content": base64.b64encode(data).decode("ascii"), "encoding": "base64"}
        response = await self._t.call("POST", f"{self._repo}/git/blobs", json=body)
        return _sha(self._expect(response, "create blob"), "create blob")

    async def _create_branch(self, commit: str) -> None:
        body = {"ref": f"refs/heads/{self._branch}", "sha": commit}
        response = await self._t.call("POST", f"{self._repo}/git/refs", json=body)
        # An earlier attempt got there first: use its commit if it is this item's.
        if response.status_code == 422 and "already exists" in _message(response):
            if await self._branch_is_ours():
                return
            raise ReleaseError(  # gone again since: the next attempt starts over
                f"GitHub {self._name}: branch {self._branch} came and went", retryable=True
            )
        self._expect(response, f"create branch {self._branch}")


# ---------------------------------------------------------------------- responses


def _transient(response: httpx.Response) -> bool:
    status = response.status_code
    if status >= 500 or status in (408, 429):
        return True
    if status == 403:
        headers = response.headers
        return (
            headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in headers
            or "rate limit" in _message(response).lower()
        )
    return False


def _message(response: httpx.Response) -> str:
    """GitHub's ``message``, with the ``errors`` messages it carries, or the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if not isinstance(body, dict):
        return ""
    message = str(body.get("message") or "")
    details = [
        str(e.get("message") or e.get("code") or "") if isinstance(e, dict) else str(e)
        for e in body.get("errors") or []
    ]
    details = [d for d in details if d]
    return f"{message} ({'; '.join(details)})" if details else message


def _expect(response: httpx.Response, what: str) -> Any:
    """The JSON of a 2xx answer; a non-retryable ReleaseError with GitHub's message else."""
    if not response.is_success:
        raise ReleaseError(
            f"GitHub {what}: HTTP {response.status_code} {_message(response)}".rstrip(),
            retryable=False,
        )
    try:
        return response.json()
    except ValueError as exc:
        raise ReleaseError(f"GitHub {what}: the answer is not JSON", retryable=True) from exc


def _object(value: Any) -> Json:
    if not isinstance(value, dict):
        raise ReleaseError("GitHub answered with something other than an object", retryable=True)
    return value


def _sha(value: Any, what: str) -> str:
    sha = _object(value).get("sha")
    if not isinstance(sha, str):
        raise ReleaseError(f"GitHub {what}: no sha in the answer", retryable=True)
    return sha


def _ref_sha(ref: Json) -> str:
    target = ref.get("object")
    if not isinstance(target, dict) or not isinstance(target.get("sha"), str):
        raise ReleaseError(f"GitHub ref {ref.get('ref')}: no object sha", retryable=True)
    return str(target["sha"])


def _receipt(pull: Json, *, existing: bool) -> str:
    text = f"PR #{pull.get('number')} {pull.get('html_url')}"
    return f"{text} (existing)" if existing else text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _has_trailer(message: str, item_id: str) -> bool:
    """Whether the message's last paragraph holds ``Signoff-Item: <item_id>``."""
    last = message.strip().split("\n\n")[-1]
    return f"{TRAILER}: {item_id}" in (line.strip() for line in last.splitlines())


# ---------------------------------------------------------------------- patches


def patch_files(diff: str) -> dict[str, str]:
    """Every path a unified diff names (both sides, renames too), in order, with the mode
    the patch says the file has before it applies (``100644`` when it does not say).

    Hunk bodies are skipped by their line counts, so a removed line that starts with
    ``-- `` is not taken for a file header. Paths lose their first component (``a/``,
    ``b/``) as ``git apply`` does by default; unsafe paths raise a non-retryable error.
    """
    found: dict[str, str] = {}
    old: list[str | None] = [None, None]  # this file's preimage path and mode

    def add(raw: str, *, strip: bool, preimage: bool = False) -> None:
        name = _unquote(raw.split("\t")[0] if not raw.startswith('"') else raw)
        if name == "/dev/null":
            return
        if strip:
            name = name.split("/", 1)[1] if "/" in name else name
        path = _safe_path(name)
        found.setdefault(path, "100644")
        if preimage:
            old[0] = path
        if old[0] is not None and old[1] is not None:
            found[old[0]] = old[1]

    lines = diff.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        hunk = _HUNK.match(line)
        if hunk:
            left = int(hunk[1]) if hunk[1] is not None else 1
            right = int(hunk[2]) if hunk[2] is not None else 1
            i += 1
            while i < len(lines) and (left > 0 or right > 0 or lines[i].startswith("\\")):
                tag = lines[i][:1]
                if tag == "-":
                    left -= 1
                elif tag == "+":
                    right -= 1
                elif tag != "\\":
                    left, right = left - 1, right - 1
                i += 1
            continue
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            add(line[4:], strip=True, preimage=True)
            add(lines[i + 1][4:], strip=True)
            i += 2
            continue
        if line.startswith("diff --git "):
            old[:] = [None, None]
            names = _git_header_names(line[len("diff --git ") :])
            for n, name in enumerate(names):
                add(name, strip=True, preimage=n == 0)
        elif line.startswith(("rename from ", "copy from ")):
            add(line.split(" ", 2)[2], strip=False, preimage=True)
        elif line.startswith(("rename to ", "copy to ")):
            add(line.split(" ", 2)[2], strip=False)
        elif mode := _MODE_LINE.match(line):
            old[1] = mode[1]
            if old[0] is not None:
                found[old[0]] = mode[1]
        i += 1
    return found


def _git_header_names(rest: str) -> list[str]:
    """The two names of a ``diff --git`` line, when they can be told apart."""
    if rest.startswith('"'):
        end = _quoted_end(rest)
        first, second = rest[:end], rest[end:].lstrip(" ")
        return [first, second]
    if " " in rest and rest.endswith('"'):
        start = rest.index(' "')
        return [rest[:start], rest[start + 1 :]]
    half = (len(rest) - 1) // 2
    first, second = rest[:half], rest[half + 1 :]
    if len(rest) % 2 == 1 and rest[half] == " " and first[2:] == second[2:]:
        return [first, second]
    return []  # ambiguous (a rename with spaces): the rename lines name both sides


def _quoted_end(text: str) -> int:
    i = 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of a path (``"t\\303\\251st"`` is ``tést``)."""
    if not (len(name) >= 2 and name.startswith('"') and name.endswith('"')):
        return name
    out = bytearray()
    body = name[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out += ch.encode()
            i += 1
        elif body[i + 1] in "01234567":
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(body[i + 1], ord(body[i + 1])))
            i += 2
    return out.decode("utf-8", errors="replace")


def _safe_path(name: str) -> str:
    parts = PurePosixPath(name).parts
    if (
        not name
        or name.startswith("/")
        or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts)
    ):
        raise ReleaseError(f"the patch names an unsafe path: {name!r}", retryable=False)
    return "/".join(parts)


async def apply_patch(diff: str, before: Mapping[str, File]) -> dict[str, File]:
    """The files after ``git apply`` of ``diff`` to ``before`` (path → mode, content).

    Runs in a fresh temporary repository, without a shell and without the user's git
    configuration. A patch that does not apply raises a non-retryable ReleaseError with
    git's message.
    """
    text = diff if diff.endswith("\n") else diff + "\n"
    work = await asyncio.to_thread(tempfile.mkdtemp, prefix="signoff-github-")
    try:
        await asyncio.to_thread(_write_files, Path(work), before)
        await _git(work, "-c", "init.defaultBranch=main", "init", "-q", failure="git init failed")
        await _git(
            work,
            "apply",
            "--whitespace=nowarn",
            "-",
            stdin=text.encode(),
            failure="the patch does not apply",
        )
        return await asyncio.to_thread(_read_files, Path(work))
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _git(cwd: str, *args: str, stdin: bytes = b"", failure: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": cwd,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise ReleaseError(f"cannot run git: {exc}", retryable=False) from exc
    try:
        _, err = await asyncio.wait_for(process.communicate(stdin), GIT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ReleaseError(f"{failure}: git took over {GIT_TIMEOUT:g} s", retryable=True) from None
    if process.returncode != 0:
        message = err.decode("utf-8", errors="replace").strip()
        raise ReleaseError(f"{failure}: {message}", retryable=False)


def _write_files(root: Path, files: Mapping[str, File]) -> None:
    for path, (mode, data) in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o755 if mode == "100755" else 0o644)


def _read_files(root: Path) -> dict[str, File]:
    files: dict[str, File] = {}
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        if here == root:
            dirs[:] = [d for d in dirs if d != ".git"]
        for name in [*dirs, *names]:
            full = here / name
            path = full.relative_to(root).as_posix()
            if full.is_symlink():
                files[path] = ("120000", os.fsencode(os.readlink(full)))
            elif full.is_file():
                executable = full.stat().st_mode & 0o100
                files[path] = ("100755" if executable else "100644", full.read_bytes())
    return files
