"""A loopback fake of the parts of GitHub's REST API the GitHub target uses (aiohttp).

::

    async with GithubFake() as github:          # or: github = await GithubFake().start()
        base = github.seed(repo="o/r", branch="main", files={"x.py": "a = 1\\n"})
        client = httpx.AsyncClient()
        target = GithubTarget(client=client, api_url=github.url, token=github.token)
        ...
        assert github.files("o/r", "signoff/itm_1") == {...}

Endpoints, answered with GitHub's JSON shapes and status codes:

- ``GET  /repos/{o}/{r}/git/ref/{ref}`` (exact match, 404 otherwise)
- ``POST /repos/{o}/{r}/git/refs`` (422 ``Reference already exists``)
- ``GET|POST /repos/{o}/{r}/git/commits[/{sha}]``, ``POST /repos/{o}/{r}/git/trees``
  (``base_tree`` plus entries; ``sha: null`` deletes), ``GET|POST /repos/{o}/{r}/git/blobs``
- ``GET  /repos/{o}/{r}/contents/{path}?ref=`` (base64 wrapped at 60 columns; files over
  ``contents_limit`` bytes come with ``encoding: none`` and no content, as on GitHub)
- ``GET|POST /repos/{o}/{r}/pulls`` (``head=owner:branch``, ``state``; 422 for a second
  open pull request from the same head to the same base, for no commits, for a bad head
  or base)

Every request must carry ``Authorization: Bearer <token>`` (or ``token <token>``; else 401
``Bad credentials`` / ``Requires authentication``), ``Accept: application/vnd.github+json``
and ``X-GitHub-Api-Version: 2022-11-28`` (else 400, stricter than GitHub, to catch a client
that forgets them). Bodies must be JSON objects with the fields GitHub requires (else 400
``Problems parsing JSON`` or 422 ``Invalid request.``). ``prefix`` serves the API under a
path, as GitHub Enterprise Server does (``/api/v3``).

Every request is recorded in :attr:`GithubFake.calls`. :meth:`GithubFake.script` makes the
next requests to a method and path answer a given status (optionally after doing the work,
for a response lost on the way back); :meth:`GithubFake.rate_limit` answers 403 with the
rate-limit headers. Blob shas are git's; tree and commit shas are fake but stable.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hashlib
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
DOCS = "https://docs.github.com/rest"
MODES = frozenset({"100644", "100755", "120000"})

JSONDict = dict[str, Any]
Handler = Callable[["_Ctx"], Awaitable[tuple[int, Any]]]


@dataclass
class Call:
    """One request as the fake saw and answered it (``path`` is without the prefix)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int
    response: Any


@dataclass
class Script:
    method: str
    path: str  # an fnmatch pattern over the path without the prefix
    status: int
    times: int
    body: Any
    headers: dict[str, str]
    after: bool  # do the work first, then answer ``status`` (a lost response)


@dataclass
class Repo:
    owner: str
    name: str
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit sha
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # path -> mode, sha
    commits: dict[str, JSONDict] = field(default_factory=dict)
    pulls: list[JSONDict] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class _Ctx:
    request: web.Request
    repo: Repo
    match: re.Match[str]
    body: Any


class GithubFake:
    def __init__(
        self,
        *,
        token: str = "ghp_fake_token",
        prefix: str = "",
        contents_limit: int = 1_000_000,
        html_url: str = "https://github.com",
    ) -> None:
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.contents_limit = contents_limit
        self.html_url = html_url
        self.repos: dict[str, Repo] = {}
        self.calls: list[Call] = []
        self.url = ""
        self._scripts: list[Script] = []
        self._clock = itertools.count(1_767_225_600)  # 2026-01-01, one second a commit
        self._runner: web.AppRunner | None = None
        repo = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(repo + r"/git/ref/(?P<ref>.+)"), self._get_ref),
            ("POST", re.compile(repo + r"/git/refs"), self._create_ref),
            ("GET", re.compile(repo + r"/git/commits/(?P<sha>[0-9a-f]+)"), self._get_commit),
            ("POST", re.compile(repo + r"/git/commits"), self._create_commit),
            ("POST", re.compile(repo + r"/git/trees"), self._create_tree),
            ("GET", re.compile(repo + r"/git/blobs/(?P<sha>[0-9a-f]+)"), self._get_blob),
            ("POST", re.compile(repo + r"/git/blobs"), self._create_blob),
            ("GET", re.compile(repo + r"/contents/(?P<path>.*)"), self._get_contents),
            ("GET", re.compile(repo + r"/pulls"), self._list_pulls),
            ("POST", re.compile(repo + r"/pulls"), self._create_pull),
        ]

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> GithubFake:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}{self.prefix}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GithubFake:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test helpers

    def seed(
        self,
        *,
        repo: str,
        branch: str = "main",
        files: dict[str, str | bytes],
        modes: dict[str, str] | None = None,
        message: str = "Initial commit",
    ) -> str:
        """Commit ``files`` (the whole tree) on ``branch`` of ``repo``; the commit's sha.

        The repository is made when missing; a branch that exists gets a child commit."""
        owner, _, name = repo.partition("/")
        r = self.repos.setdefault(repo, Repo(owner, name))
        entries: dict[str, tuple[str, str]] = {}
        for path, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            entries[path] = ((modes or {}).get(path, "100644"), self._store_blob(r, raw))
        tree = self._store_tree(r, entries)
        parent = r.refs.get(f"refs/heads/{branch}")
        sha = self._store_commit(r, message=message, tree=tree, parents=[parent] if parent else [])
        r.refs[f"refs/heads/{branch}"] = sha
        return sha

    def script(
        self,
        method: str,
        path: str,
        *,
        status: int,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """The next ``times`` requests matching ``method`` and ``path`` (an fnmatch pattern,
        without the prefix) answer ``status`` with ``body`` (default: GitHub's error shape).
        With ``after`` the request is carried out first, as when a response is lost."""
        if body is None and status >= 400:
            body = {"message": _REASONS.get(status, "Error"), "documentation_url": DOCS}
        self._scripts.append(
            Script(method.upper(), path, status, times, body, dict(headers or {}), after)
        )

    def rate_limit(self, *, times: int = 1, path: str = "*") -> None:
        """Answer the next requests with GitHub's primary rate-limit 403."""
        self.script(
            "*",
            path,
            status=403,
            times=times,
            body={
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
            },
            headers={
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": "1767229200",
                "x-ratelimit-resource": "core",
            },
        )

    def calls_to(self, method: str, path: str) -> list[Call]:
        """Recorded calls whose method and path (fnmatch pattern) match."""
        return [
            c
            for c in self.calls
            if c.method == method.upper() and fnmatch.fnmatchcase(c.path, path)
        ]

    def branch_sha(self, repo: str, branch: str) -> str | None:
        return self.repos[repo].refs.get(f"refs/heads/{branch}")

    def commit(self, repo: str, sha: str) -> JSONDict:
        """A commit as ``GET /git/commits/{sha}`` shows it."""
        return self._commit_json(self.repos[repo], sha)

    def files(self, repo: str, branch: str) -> dict[str, str]:
        """The files on ``branch`` (its tip's whole tree), decoded as UTF-8."""
        return {p: d.decode() for p, d in self.file_bytes(repo, branch).items()}

    def file_bytes(self, repo: str, branch: str) -> dict[str, bytes]:
        r = self.repos[repo]
        tree = r.trees[r.commits[r.refs[f"refs/heads/{branch}"]]["tree"]]
        return {path: r.blobs[sha] for path, (_, sha) in sorted(tree.items())}

    def modes(self, repo: str, branch: str) -> dict[str, str]:
        r = self.repos[repo]
        tree = r.trees[r.commits[r.refs[f"refs/heads/{branch}"]]["tree"]]
        return {path: mode for path, (mode, _) in sorted(tree.items())}

    def pulls(self, repo: str) -> list[JSONDict]:
        return list(self.repos[repo].pulls)

    # ------------------------------------------------------------------ storage

    def _store_blob(self, r: Repo, data: bytes) -> str:
        sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id
        r.blobs[sha] = data
        return sha

    def _store_tree(self, r: Repo, entries: dict[str, tuple[str, str]]) -> str:
        canonical = json.dumps(sorted(entries.items())).encode()
        sha = hashlib.sha1(b"tree " + canonical).hexdigest()
        r.trees[sha] = dict(entries)
        return sha

    def _store_commit(self, r: Repo, *, message: str, tree: str, parents: list[str]) -> str:
        when = next(self._clock)
        canonical = json.dumps([message, tree, parents, when]).encode()
        sha = hashlib.sha1(b"commit " + canonical).hexdigest()
        r.commits[sha] = {"message": message, "tree": tree, "parents": parents, "when": when}
        return sha

    def _api(self, r: Repo, path: str) -> str:
        return f"{self.url}/repos/{r.full_name}{path}"

    def _commit_json(self, r: Repo, sha: str) -> JSONDict:
        c = r.commits[sha]
        person = {"name": "signoff-bot", "email": "bot@example.com", "date": _iso(c["when"])}
        return {
            "sha": sha,
            "node_id": f"C_{sha[:16]}",
            "url": self._api(r, f"/git/commits/{sha}"),
            "html_url": f"{self.html_url}/{r.full_name}/commit/{sha}",
            "author": person,
            "committer": person,
            "message": c["message"],
            "tree": {"sha": c["tree"], "url": self._api(r, f"/git/trees/{c['tree']}")},
            "parents": [
                {
                    "sha": p,
                    "url": self._api(r, f"/git/commits/{p}"),
                    "html_url": f"{self.html_url}/{r.full_name}/commit/{p}",
                }
                for p in c["parents"]
            ],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
            },
        }

    def _ref_json(self, r: Repo, ref: str) -> JSONDict:
        sha = r.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{hashlib.sha1(ref.encode()).hexdigest()[:16]}",
            "url": self._api(r, f"/git/{ref}"),
            "object": {"sha": sha, "type": "commit", "url": self._api(r, f"/git/commits/{sha}")},
        }

    def _resolve(self, r: Repo, ref: str) -> str | None:
        """A commit sha for a branch name, ``heads/x``, ``refs/heads/x`` or a commit sha."""
        for candidate in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in r.refs:
                return r.refs[candidate]
        return ref if ref in r.commits else None

    # ------------------------------------------------------------------ dispatch

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        path = request.path
        query = dict(request.query)
        headers = dict(request.headers)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        status, answer, extra = await self._answer(request, path, raw)
        recorded = path[len(self.prefix) :] if path.startswith(self.prefix) else path
        self.calls.append(Call(request.method, recorded, query, headers, body, status, answer))
        if status == 204:
            return web.Response(status=204, headers=extra)
        return web.json_response(answer, status=status, headers=extra)

    async def _answer(
        self, request: web.Request, path: str, raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        extra = {"x-github-api-version-selected": API_VERSION, "x-ratelimit-remaining": "4999"}
        if not path.startswith(self.prefix + "/"):
            return 404, _not_found(), extra
        path = path[len(self.prefix) :]
        problem = self._header_problem(request)
        if problem is not None:
            return problem[0], problem[1], extra
        script = self._take_script(request.method, path)
        if script is not None and not script.after:
            return script.status, script.body, {**extra, **script.headers}
        status, answer = await self._route(request, path, raw)
        if script is not None:
            return script.status, script.body, {**extra, **script.headers}
        return status, answer, extra

    def _header_problem(self, request: web.Request) -> tuple[int, JSONDict] | None:
        auth = request.headers.get("Authorization")
        if auth is None:
            return 401, {"message": "Requires authentication", "documentation_url": DOCS}
        scheme, _, given = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or given != self.token:
            return 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
        if request.headers.get("Accept") != ACCEPT:
            return 400, {"message": f"fake GitHub: send Accept: {ACCEPT}"}
        version = request.headers.get("X-GitHub-Api-Version")
        if version != API_VERSION:
            return 400, {
                "message": f"API version {version} is not supported."
                if version
                else f"fake GitHub: send X-GitHub-Api-Version: {API_VERSION}",
                "documentation_url": f"{DOCS}/about-the-rest-api/api-versions",
            }
        return None

    def _take_script(self, method: str, path: str) -> Script | None:
        for script in self._scripts:
            if script.method in ("*", method) and fnmatch.fnmatchcase(path, script.path):
                script.times -= 1
                if script.times <= 0:
                    self._scripts.remove(script)
                return script
        return None

    async def _route(self, request: web.Request, path: str, raw: bytes) -> tuple[int, Any]:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None or method != request.method:
                continue
            repo = self.repos.get(f"{match['owner']}/{match['name']}")
            if repo is None:
                return 404, _not_found()
            body: Any = None
            if method == "POST":
                if not request.content_type.endswith("json"):
                    return 415, {"message": "fake GitHub: send Content-Type: application/json"}
                try:
                    body = json.loads(raw)
                except ValueError:
                    return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
                if not isinstance(body, dict):
                    return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
            return await handler(_Ctx(request, repo, match, body))
        return 404, _not_found()

    # ------------------------------------------------------------------ git data

    async def _get_ref(self, ctx: _Ctx) -> tuple[int, Any]:
        ref = "refs/" + ctx.match["ref"]
        if ref not in ctx.repo.refs:
            return 404, _not_found("git/refs#get-a-reference")
        return 200, self._ref_json(ctx.repo, ref)

    async def _create_ref(self, ctx: _Ctx) -> tuple[int, Any]:
        ref, sha = ctx.body.get("ref"), ctx.body.get("sha")
        if not isinstance(ref, str) or not isinstance(sha, str):
            return _invalid('"ref" and "sha" are required strings.')
        if not ref.startswith("refs/") or ref.count("/") < 2 or ".." in ref or ref.endswith("/"):
            return 422, {"message": "Reference name is invalid", "documentation_url": DOCS}
        if sha not in ctx.repo.commits:
            return 422, {"message": "Object does not exist", "documentation_url": DOCS}
        if ref in ctx.repo.refs:
            return 422, {"message": "Reference already exists", "documentation_url": DOCS}
        ctx.repo.refs[ref] = sha
        return 201, self._ref_json(ctx.repo, ref)

    async def _get_commit(self, ctx: _Ctx) -> tuple[int, Any]:
        if ctx.match["sha"] not in ctx.repo.commits:
            return 404, _not_found("git/commits#get-a-commit-object")
        return 200, self._commit_json(ctx.repo, ctx.match["sha"])

    async def _create_commit(self, ctx: _Ctx) -> tuple[int, Any]:
        message, tree, parents = (ctx.body.get(k) for k in ("message", "tree", "parents"))
        if not isinstance(message, str) or not isinstance(tree, str):
            return _invalid('"message" and "tree" are required strings.')
        if parents is None:
            parents = []
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            return _invalid('"parents" must be a list of shas.')
        if tree not in ctx.repo.trees:
            return 422, {"message": "Tree SHA does not exist", "documentation_url": DOCS}
        if any(p not in ctx.repo.commits for p in parents):
            return 422, {
                "message": "Parent SHA does not exist or is not a commit object",
                "documentation_url": DOCS,
            }
        sha = self._store_commit(ctx.repo, message=message, tree=tree, parents=parents)
        return 201, self._commit_json(ctx.repo, sha)

    async def _create_tree(self, ctx: _Ctx) -> tuple[int, Any]:
        repo, base, entries = ctx.repo, ctx.body.get("base_tree"), ctx.body.get("tree")
        if not isinstance(entries, list):
            return _invalid('"tree" wasn\'t supplied.')
        if base is not None and base not in repo.trees:
            return 422, {"message": "base_tree is not a valid tree oid", "documentation_url": DOCS}
        tree = dict(repo.trees[base]) if base else {}
        for entry in entries:
            if not isinstance(entry, dict):
                return _invalid("For 'items', is not an object.")
            path, mode, kind = entry.get("path"), entry.get("mode"), entry.get("type")
            if not isinstance(path, str) or not path or path.startswith("/") or ".." in path:
                return _invalid(f"For 'properties/path', {path!r} is not a valid path.")
            if mode not in MODES or kind != "blob":
                return _invalid(f"For 'properties/mode', {mode!r} with type {kind!r} (blobs only).")
            if ("sha" in entry) == ("content" in entry):
                return _invalid("Exactly one of 'sha' or 'content' is required.")
            if "content" in entry:
                if not isinstance(entry["content"], str):
                    return _invalid("For 'properties/content', is not a string.")
                tree[path] = (mode, self._store_blob(repo, entry["content"].encode()))
            elif entry["sha"] is None:
                if path not in tree:
                    return 422, {"message": "GitRPC::BadObjectState", "documentation_url": DOCS}
                del tree[path]
            elif entry["sha"] not in repo.blobs:
                return 422, {"message": "GitRPC::BadObjectState", "documentation_url": DOCS}
            else:
                tree[path] = (mode, entry["sha"])
        sha = self._store_tree(repo, tree)
        return 201, {
            "sha": sha,
            "url": self._api(repo, f"/git/trees/{sha}"),
            "tree": [
                {
                    "path": p,
                    "mode": m,
                    "type": "blob",
                    "sha": s,
                    "size": len(repo.blobs[s]),
                    "url": self._api(repo, f"/git/blobs/{s}"),
                }
                for p, (m, s) in sorted(tree.items())
            ],
            "truncated": False,
        }

    async def _get_blob(self, ctx: _Ctx) -> tuple[int, Any]:
        sha = ctx.match["sha"]
        if sha not in ctx.repo.blobs:
            return 404, _not_found("git/blobs#get-a-blob")
        data = ctx.repo.blobs[sha]
        return 200, {
            "sha": sha,
            "node_id": f"B_{sha[:16]}",
            "size": len(data),
            "url": self._api(ctx.repo, f"/git/blobs/{sha}"),
            "content": _wrapped_base64(data),
            "encoding": "base64",
        }

    async def _create_blob(self, ctx: _Ctx) -> tuple[int, Any]:
        content, encoding = ctx.body.get("content"), ctx.body.get("encoding", "utf-8")
        if not isinstance(content, str):
            return _invalid('"content" wasn\'t supplied.')
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except binascii.Error:
                return _invalid("content is not valid Base64")
        elif encoding in ("utf-8", "utf8"):
            data = content.encode()
        else:
            return _invalid(f"encoding {encoding!r} is not one of utf-8, base64.")
        sha = self._store_blob(ctx.repo, data)
        return 201, {"url": self._api(ctx.repo, f"/git/blobs/{sha}"), "sha": sha}

    # ------------------------------------------------------------------ contents

    async def _get_contents(self, ctx: _Ctx) -> tuple[int, Any]:
        repo, path = ctx.repo, ctx.match["path"].strip("/")
        ref = ctx.request.query.get("ref") or "main"
        commit = self._resolve(repo, ref)
        if commit is None:
            return 404, {"message": f"No commit found for the ref {ref}", "documentation_url": DOCS}
        tree = repo.trees[repo.commits[commit]["tree"]]
        if path in tree:
            mode, sha = tree[path]
            data = repo.blobs[sha]
            big = len(data) > self.contents_limit
            return 200, {
                **self._content_entry(repo, path, sha, len(data), ref),
                "type": "symlink" if mode == "120000" else "file",
                "content": "" if big else _wrapped_base64(data),
                "encoding": "none" if big else "base64",
            }
        under = [p for p in tree if p.startswith(path + "/") or not path]
        if not under:
            return 404, _not_found("repos/contents#get-repository-content")
        listing: dict[str, JSONDict] = {}
        for p in under:
            rest = p[len(path) + 1 :] if path else p
            name = rest.split("/")[0]
            child = f"{path}/{name}" if path else name
            if "/" in rest:
                listing[name] = {**self._content_entry(repo, child, "", 0, ref), "type": "dir"}
            else:
                mode, sha = tree[p]
                entry = self._content_entry(repo, child, sha, len(repo.blobs[sha]), ref)
                listing[name] = {**entry, "type": "file"}
        return 200, [listing[n] for n in sorted(listing)]

    def _content_entry(self, r: Repo, path: str, sha: str, size: int, ref: str) -> JSONDict:
        url = self._api(r, f"/contents/{path}?ref={ref}")
        html = f"{self.html_url}/{r.full_name}/blob/{ref}/{path}"
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": size,
            "url": url,
            "html_url": html,
            "git_url": self._api(r, f"/git/blobs/{sha}"),
            "download_url": f"https://raw.githubusercontent.com/{r.full_name}/{ref}/{path}",
            "_links": {"self": url, "git": self._api(r, f"/git/blobs/{sha}"), "html": html},
        }

    # ------------------------------------------------------------------ pull requests

    def _pull_json(self, r: Repo, pull: JSONDict) -> JSONDict:
        number = pull["number"]
        head_sha = r.refs.get(f"refs/heads/{pull['head']}", pull["head_sha"])
        base_sha = r.refs.get(f"refs/heads/{pull['base']}", pull["base_sha"])
        repo_json = {"id": 1, "name": r.name, "full_name": r.full_name}
        return {
            "url": self._api(r, f"/pulls/{number}"),
            "id": 1000 + number,
            "node_id": f"PR_{number}",
            "html_url": f"{self.html_url}/{r.full_name}/pull/{number}",
            "number": number,
            "state": pull["state"],
            "locked": False,
            "title": pull["title"],
            "body": pull["body"],
            "user": {"login": "signoff-bot", "id": 1, "type": "User"},
            "created_at": pull["created_at"],
            "draft": pull["draft"],
            "head": {
                "label": f"{r.owner}:{pull['head']}",
                "ref": pull["head"],
                "sha": head_sha,
                "repo": repo_json,
            },
            "base": {
                "label": f"{r.owner}:{pull['base']}",
                "ref": pull["base"],
                "sha": base_sha,
                "repo": repo_json,
            },
            "merged_at": None,
        }

    async def _list_pulls(self, ctx: _Ctx) -> tuple[int, Any]:
        repo, query = ctx.repo, ctx.request.query
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            return _validation([{"resource": "Search", "field": "state", "code": "invalid"}])
        found = [p for p in reversed(repo.pulls) if state == "all" or p["state"] == state]
        if "head" in query:
            owner, _, branch = query["head"].partition(":")
            found = [p for p in found if owner == repo.owner and p["head"] == branch]
        if "base" in query:
            found = [p for p in found if p["base"] == query["base"]]
        per_page = int(query.get("per_page", "30"))
        return 200, [self._pull_json(repo, p) for p in found[:per_page]]

    async def _create_pull(self, ctx: _Ctx) -> tuple[int, Any]:
        repo, body = ctx.repo, ctx.body
        title, head, base = body.get("title"), body.get("head"), body.get("base")
        if not all(isinstance(v, str) and v for v in (title, head, base)):
            return _invalid('"title", "head" and "base" are required strings.')
        if not isinstance(body.get("body", ""), str | None):
            return _invalid("For 'properties/body', is not a string.")
        owner, _, branch = head.rpartition(":")
        if owner and owner != repo.owner:
            return _validation([{"resource": "PullRequest", "field": "head", "code": "invalid"}])
        head_sha = repo.refs.get(f"refs/heads/{branch}")
        base_sha = repo.refs.get(f"refs/heads/{base}")
        if head_sha is None:
            return _validation([{"resource": "PullRequest", "field": "head", "code": "invalid"}])
        if base_sha is None:
            return _validation([{"resource": "PullRequest", "field": "base", "code": "invalid"}])
        for pull in repo.pulls:
            if pull["state"] == "open" and pull["head"] == branch and pull["base"] == base:
                message = f"A pull request already exists for {repo.owner}:{branch}."
                return _validation(
                    [{"resource": "PullRequest", "code": "custom", "message": message}]
                )
        if head_sha == base_sha:
            message = f"No commits between {base} and {branch}"
            return _validation([{"resource": "PullRequest", "code": "custom", "message": message}])
        pull = {
            "number": len(repo.pulls) + 1,
            "state": "open",
            "title": title,
            "body": body.get("body"),
            "head": branch,
            "base": base,
            "head_sha": head_sha,
            "base_sha": base_sha,
            "draft": bool(body.get("draft", False)),
            "created_at": _iso(next(self._clock)),
        }
        repo.pulls.append(pull)
        return 201, self._pull_json(repo, pull)


_REASONS = {
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    422: "Validation Failed",
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
}


def _not_found(doc: str = "") -> JSONDict:
    return {
        "message": "Not Found",
        "documentation_url": f"{DOCS}/{doc}".rstrip("/"),
        "status": "404",
    }


def _invalid(detail: str) -> tuple[int, JSONDict]:
    return 422, {"message": f"Invalid request.\n\n{detail}", "documentation_url": DOCS}


def _validation(errors: list[JSONDict]) -> tuple[int, JSONDict]:
    return 422, {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS}


def _wrapped_base64(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
