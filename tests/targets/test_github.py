"""The GitHub target with a real ``httpx.AsyncClient`` against the loopback GitHub fake."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.targets.github import GithubTarget, patch_files
from bot.errors import ReleaseError
from bot.ports import DeliveryRequest
from tests.fakes.github import GithubFake

REPO = "acme/shop"
ITEM_ID = "itm_06H17XYQ38HQN1KZ1JWGZBHJE4"
BRANCH = f"signoff/{ITEM_ID}"
PRICING = "def refund(total):\n    return total * 0.9\n"
FILES: dict[str, str | bytes] = {
    "app/pricing.py": PRICING,
    "legacy.txt": "remove me\n",
    "README.md": "# shop\n",
}

PROPOSED_DIFF = "\n".join(
    [
        "diff --git a/app/pricing.py b/app/pricing.py",
        "index 46adee8..0c2a1f5 100644",
        "--- a/app/pricing.py",
        "+++ b/app/pricing.py",
        "@@ -1,2 +1,2 @@",
        " def refund(total):",
        "-    return total * 0.9",
        "+    return total",
        "",
    ]
)
# the reviewer's edit: rounding, a new module, a new script and a deleted file
EDITED_DIFF = "\n".join(
    [
        "diff --git a/app/pricing.py b/app/pricing.py",
        "index 46adee8..4580c11 100644",
        "--- a/app/pricing.py",
        "+++ b/app/pricing.py",
        "@@ -1,2 +1,2 @@",
        " def refund(total):",
        "-    return total * 0.9",
        "+    return round(total, 2)",
        "diff --git a/app/refunds.py b/app/refunds.py",
        "new file mode 100644",
        "index 0000000..a192a1a",
        "--- /dev/null",
        "+++ b/app/refunds.py",
        "@@ -0,0 +1 @@",
        "+FULL = True",
        "diff --git a/bin/run b/bin/run",
        "new file mode 100755",
        "index 0000000..de9f4c4",
        "--- /dev/null",
        "+++ b/bin/run",
        "@@ -0,0 +1,2 @@",
        "+#!/bin/sh",
        "+exec python -m app",
        "diff --git a/legacy.txt b/legacy.txt",
        "deleted file mode 100644",
        "index 10b961a..0000000",
        "--- a/legacy.txt",
        "+++ /dev/null",
        "@@ -1 +0,0 @@",
        "-remove me",
        "",
    ]
)
PATCHED = {
    "README.md": "# shop\n",
    "app/pricing.py": "def refund(total):\n    return round(total, 2)\n",
    "app/refunds.py": "FULL = True\n",
    "bin/run": "#!/bin/sh\nexec python -m app\n",
}


def decision(action: str, name: str, user_id: str, surface: str = "slack") -> dict[str, Any]:
    return {
        "action": action,
        "surface": surface,
        "actor_id": user_id,
        "actor_name": name,
        "reason_code": None,
        "reason_text": None,
        "at": "2026-01-05T10:42:00Z",
        "since_posted_seconds": 60.0,
    }


def code_item(
    diff: str = PROPOSED_DIFF, final_diff: str | None = EDITED_DIFF, **content: Any
) -> dict[str, Any]:
    original = {
        "repository": REPO,
        "base": "main",
        "title": "Refund cancelled orders in full",
        "description": "Orders cancelled before dispatch are refunded in full.",
        "diff": diff,
        **content,
    }
    return {
        "id": ITEM_ID,
        "route": "code-changes",
        "kind": "code_change",
        "title": "Refund the full amount",
        "content": original,
        "final_content": {**original, "diff": final_diff} if final_diff else None,
        "decisions": [
            decision("edit", "ann", "U0ANN"),
            decision("approve", "bob", "bob@example.com", surface="web"),
            decision("approve", "ann", "U0ANN"),
        ],
    }


def request_for(
    item: dict[str, Any], *, attempt: int = 1, target: dict[str, Any] | None = None
) -> DeliveryRequest:
    return DeliveryRequest(
        url="",
        body=b"{}",
        idempotency_key=f"release:{item['id']}",
        signing_secret="",
        event="item.released",
        attempt=attempt,
        item=item,
        target=target or {"type": "github", "repository": REPO, "base": None},
    )


@pytest.fixture
async def github() -> AsyncIterator[GithubFake]:
    async with GithubFake() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def target_for(github: GithubFake, client: httpx.AsyncClient, **kw: Any) -> GithubTarget:
    return GithubTarget(client=client, api_url=github.url, token=kw.pop("token", github.token))


async def release_error(target: GithubTarget, request: DeliveryRequest) -> ReleaseError:
    with pytest.raises(ReleaseError) as caught:
        await target.deliver(request=request)
    return caught.value


# ---------------------------------------------------------------------- the pull request


async def test_opens_a_pull_request_with_the_edited_patch_committed(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    base_sha = github.seed(repo=REPO, files=FILES)
    receipt = await target_for(github, client).deliver(request=request_for(code_item()))

    assert receipt == f"PR #1 https://github.com/{REPO}/pull/1"
    [pull] = github.pulls(REPO)
    assert (pull["head"], pull["base"], pull["state"]) == (BRANCH, "main", "open")
    assert pull["title"] == "Refund cancelled orders in full"
    assert pull["body"] == (
        "Orders cancelled before dispatch are refunded in full.\n\n---\n"
        "Approved in signoff by: ann (slack U0ANN), bob (web bob@example.com)\n"
        f"Signoff item: {ITEM_ID}"
    )
    # the reviewer's diff, not the proposed one: edited file, new files, deleted file
    assert github.files(REPO, BRANCH) == PATCHED
    assert github.modes(REPO, BRANCH)["bin/run"] == "100755"
    assert github.modes(REPO, BRANCH)["app/pricing.py"] == "100644"
    assert github.files(REPO, "main") == FILES  # the base is untouched

    commit = github.commit(REPO, github.branch_sha(REPO, BRANCH) or "")
    assert [p["sha"] for p in commit["parents"]] == [base_sha]
    assert commit["message"] == (
        "Refund cancelled orders in full\n\n"
        "Orders cancelled before dispatch are refunded in full.\n\n"
        "Reviewed-by: ann (slack U0ANN)\n"
        "Reviewed-by: bob (web bob@example.com)\n"
        f"Signoff-Item: {ITEM_ID}\n"
    )
    # only the files the patch names were read, each at the base commit
    reads = github.calls_to("GET", f"/repos/{REPO}/contents/*")
    assert sorted(c.path.split("/contents/")[1] for c in reads) == [
        "app/pricing.py",
        "app/refunds.py",
        "bin/run",
        "legacy.txt",
    ]
    assert {c.query["ref"] for c in reads} == {base_sha}
    [tree] = github.calls_to("POST", f"/repos/{REPO}/git/trees")
    assert tree.body["base_tree"] == github.commit(REPO, base_sha)["tree"]["sha"]
    assert {"path": "legacy.txt", "mode": "100644", "type": "blob", "sha": None} in tree.body[
        "tree"
    ]


async def test_sends_the_token_and_api_headers(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    await target_for(github, client).deliver(request=request_for(code_item()))
    assert github.calls
    for call in github.calls:
        assert call.headers["Authorization"] == f"Bearer {github.token}"
        assert call.headers["Accept"] == "application/vnd.github+json"
        assert call.headers["X-GitHub-Api-Version"] == "2022-11-28"


async def test_the_unedited_patch_when_nobody_edited(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    await target_for(github, client).deliver(request=request_for(code_item(final_diff=None)))
    assert github.files(REPO, BRANCH)["app/pricing.py"] == "def refund(total):\n    return total\n"
    assert github.files(REPO, BRANCH)["legacy.txt"] == "remove me\n"


async def test_base_comes_from_the_route_then_the_item(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    release = github.seed(repo=REPO, branch="release", files=FILES)
    github.seed(repo=REPO, branch="develop", files=FILES)
    target = target_for(github, client)
    route = {"type": "github", "repository": REPO, "base": "release"}
    await target.deliver(request=request_for(code_item(base="develop"), target=route))
    [pull] = github.pulls(REPO)
    assert pull["base"] == "release"
    assert github.commit(REPO, github.branch_sha(REPO, BRANCH) or "")["parents"][0]["sha"] == (
        release
    )

    other = {**code_item(base="develop"), "id": "itm_OTHER"}
    await target.deliver(request=request_for(other))
    assert github.pulls(REPO)[1]["base"] == "develop"


async def test_no_approvers_says_policy(github: GithubFake, client: httpx.AsyncClient) -> None:
    github.seed(repo=REPO, files=FILES)
    item = {**code_item(description=""), "decisions": []}
    await target_for(github, client).deliver(request=request_for(item))
    [pull] = github.pulls(REPO)
    assert pull["body"].startswith("---\nApproved in signoff by: policy")
    message = github.commit(REPO, github.branch_sha(REPO, BRANCH) or "")["message"]
    assert message == f"Refund cancelled orders in full\n\nSignoff-Item: {ITEM_ID}\n"


# ---------------------------------------------------------------------- exactly once


async def test_a_second_attempt_reuses_the_pull_request(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    first = await target.deliver(request=request_for(code_item()))
    second = await target.deliver(request=request_for(code_item(), attempt=2))

    assert second == f"{first} (existing)"
    assert len(github.pulls(REPO)) == 1
    assert len(github.calls_to("POST", "*/git/commits")) == 1
    assert len(github.calls_to("POST", "*/pulls")) == 1


async def test_a_crash_between_branch_and_pull_request_commits_once(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    github.script("POST", f"/repos/{REPO}/pulls", status=502)

    error = await release_error(target, request_for(code_item()))
    assert error.retryable
    commit = github.branch_sha(REPO, BRANCH)
    assert commit is not None and github.pulls(REPO) == []

    receipt = await target.deliver(request=request_for(code_item(), attempt=2))
    assert receipt == f"PR #1 https://github.com/{REPO}/pull/1"
    assert len(github.calls_to("POST", "*/git/commits")) == 1
    assert len(github.calls_to("POST", "*/git/blobs")) == 3
    assert github.branch_sha(REPO, BRANCH) == commit
    assert github.files(REPO, BRANCH) == PATCHED


async def test_a_lost_pull_request_answer_is_found_next_time(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    github.script("POST", f"/repos/{REPO}/pulls", status=504, after=True)

    assert (await release_error(target, request_for(code_item()))).retryable
    assert len(github.pulls(REPO)) == 1  # GitHub opened it; the answer was lost

    receipt = await target.deliver(request=request_for(code_item(), attempt=2))
    assert receipt == f"PR #1 https://github.com/{REPO}/pull/1 (existing)"
    assert len(github.pulls(REPO)) == 1
    assert len(github.calls_to("POST", "*/git/commits")) == 1


async def test_a_stale_pull_request_list_meets_already_exists(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    await target.deliver(request=request_for(code_item()))
    github.script("GET", f"/repos/{REPO}/pulls", status=200, body=[])  # not listed yet

    receipt = await target.deliver(request=request_for(code_item(), attempt=2))
    assert receipt == f"PR #1 https://github.com/{REPO}/pull/1 (existing)"
    assert len(github.pulls(REPO)) == 1
    assert github.calls_to("POST", "*/pulls")[-1].status == 422


async def test_a_lost_branch_race_uses_the_first_commit(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    github.script("POST", f"/repos/{REPO}/pulls", status=502)
    await release_error(target, request_for(code_item()))
    first = github.branch_sha(REPO, BRANCH)
    # the next attempt does not see the branch (as if another attempt made it meanwhile)
    github.script("GET", f"/repos/{REPO}/git/ref/heads/{BRANCH}", status=404)

    await target.deliver(request=request_for(code_item(), attempt=2))
    assert github.calls_to("POST", "*/git/refs")[-1].response["message"] == (
        "Reference already exists"
    )
    assert github.branch_sha(REPO, BRANCH) == first
    assert github.pulls(REPO)[0]["head_sha"] == first


async def test_a_branch_that_is_not_ours_is_left_alone(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    github.seed(repo=REPO, branch=BRANCH, files={"x": "someone else's\n"}, message="Mine")

    error = await release_error(target_for(github, client), request_for(code_item()))
    assert not error.retryable
    assert f"branch {BRANCH} already exists" in error.message
    assert github.files(REPO, BRANCH) == {"x": "someone else's\n"}
    assert github.pulls(REPO) == []


# ---------------------------------------------------------------------- failures


async def test_a_patch_that_does_not_apply_fails_with_gits_message(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files={**FILES, "app/pricing.py": "def refund(total):\n    pass\n"})
    error = await release_error(target_for(github, client), request_for(code_item()))
    assert not error.retryable
    assert error.message.startswith("the patch does not apply: ")
    assert "patch failed: app/pricing.py:1" in error.message
    assert github.calls_to("POST", "*") == []


async def test_a_new_file_that_already_exists_does_not_apply(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files={**FILES, "app/refunds.py": "FULL = False\n"})
    error = await release_error(target_for(github, client), request_for(code_item()))
    assert not error.retryable
    assert "app/refunds.py: already exists in working directory" in error.message


async def test_a_missing_base_branch_is_final(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, branch="trunk", files=FILES)
    error = await release_error(target_for(github, client), request_for(code_item()))
    assert not error.retryable
    assert "base branch 'main' not found in acme/shop" in error.message


async def test_a_missing_repository_is_final(github: GithubFake, client: httpx.AsyncClient) -> None:
    github.seed(repo=REPO, files=FILES)
    route = {"type": "github", "repository": "acme/nope", "base": None}
    error = await release_error(target_for(github, client), request_for(code_item(), target=route))
    assert not error.retryable
    assert "repository acme/nope not found" in error.message


async def test_a_bad_token_is_final(github: GithubFake, client: httpx.AsyncClient) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client, token="ghp_wrong")
    error = await release_error(target, request_for(code_item()))
    assert not error.retryable
    assert "HTTP 401 Bad credentials" in error.message


@pytest.mark.parametrize(
    "path",
    [
        f"/repos/{REPO}/pulls",
        f"/repos/{REPO}/git/ref/heads/main",
        f"/repos/{REPO}/contents/app/pricing.py",
        f"/repos/{REPO}/git/trees",
        f"/repos/{REPO}/git/refs",
    ],
)
async def test_a_502_is_retried(github: GithubFake, client: httpx.AsyncClient, path: str) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    github.script("*", path, status=502)

    error = await release_error(target, request_for(code_item()))
    assert error.retryable and "HTTP 502" in error.message

    receipt = await target.deliver(request=request_for(code_item(), attempt=2))
    assert receipt.startswith("PR #1 ")
    assert github.files(REPO, BRANCH) == PATCHED
    assert len(github.pulls(REPO)) == 1


async def test_rate_limits_are_retried(github: GithubFake, client: httpx.AsyncClient) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    github.rate_limit()
    error = await release_error(target, request_for(code_item()))
    assert error.retryable and "API rate limit exceeded" in error.message

    github.script("POST", "*/git/blobs", status=429)
    assert (await release_error(target, request_for(code_item(), attempt=2))).retryable

    github.script(
        "POST",
        "*/git/commits",
        status=403,
        body={"message": "You have exceeded a secondary rate limit."},
        headers={"retry-after": "60"},
    )
    assert (await release_error(target, request_for(code_item(), attempt=3))).retryable

    assert (await target.deliver(request=request_for(code_item(), attempt=4))).startswith("PR #1")


async def test_a_plain_403_is_final(github: GithubFake, client: httpx.AsyncClient) -> None:
    github.seed(repo=REPO, files=FILES)
    github.script(
        "POST",
        "*/git/blobs",
        status=403,
        body={"message": "Resource not accessible by integration"},
    )
    error = await release_error(target_for(github, client), request_for(code_item()))
    assert not error.retryable
    assert "Resource not accessible by integration" in error.message


async def test_network_errors_are_retried(client: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = GithubTarget(client=client, api_url=f"http://127.0.0.1:{port}", token="t")
    error = await release_error(target, request_for(code_item()))
    assert error.retryable and "ConnectError" in error.message


async def test_only_code_changes(github: GithubFake, client: httpx.AsyncClient) -> None:
    item = {**code_item(), "kind": "email"}
    error = await release_error(target_for(github, client), request_for(item))
    assert not error.retryable and "code_change" in error.message
    assert github.calls == []


async def test_unsafe_paths_are_refused(github: GithubFake, client: httpx.AsyncClient) -> None:
    github.seed(repo=REPO, files=FILES)
    diff = "--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-x\n+y\n"
    error = await release_error(target_for(github, client), request_for(code_item(diff, diff)))
    assert not error.retryable and "unsafe path" in error.message


async def test_a_patch_that_changes_nothing_is_refused(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    diff = "\n".join(
        [
            "diff --git a/README.md b/README.md",
            "--- a/README.md",
            "+++ b/README.md",
            "@@ -1 +1 @@",
            "-# shop",
            "+# shop",
            "",
        ]
    )
    error = await release_error(target_for(github, client), request_for(code_item(diff, diff)))
    assert not error.retryable and "changes nothing" in error.message


# ---------------------------------------------------------------------- files and servers


async def test_github_enterprise_path_prefix(client: httpx.AsyncClient) -> None:
    async with GithubFake(prefix="/api/v3", html_url="http://ghe.example") as github:
        github.seed(repo=REPO, files=FILES)
        assert github.url.endswith("/api/v3")
        target = GithubTarget(client=client, api_url=github.url + "/", token=github.token)
        receipt = await target.deliver(request=request_for(code_item()))
        assert receipt == f"PR #1 http://ghe.example/{REPO}/pull/1"
        assert github.files(REPO, BRANCH) == PATCHED
        # a client that forgot the prefix would be answered 404
        bare = github.url.removesuffix("/api/v3")
        response = await client.get(
            f"{bare}/repos/{REPO}/pulls",
            headers={
                "Authorization": f"Bearer {github.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        assert response.status_code == 404


async def test_modes_renames_quoted_paths_and_binary_content(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(
        repo=REPO,
        files={
            "run.sh": "#!/bin/sh\n",
            "plain.sh": "echo\n",
            "sp ace.txt": "r\nr\nr\n",
            "logo.bin": bytes(range(256)),
        },
        modes={"run.sh": "100755"},
    )
    diff = "\n".join(
        [
            "diff --git a/plain.sh b/plain.sh",
            "old mode 100644",
            "new mode 100755",
            "diff --git a/run.sh b/run.sh",
            "index 1a24852..34dd0c4 100755",
            "--- a/run.sh",
            "+++ b/run.sh",
            "@@ -1 +1,2 @@",
            " #!/bin/sh",
            "+# hi",
            'diff --git a/sp ace.txt "b/t\\303\\253st.txt"',
            "similarity index 100%",
            "rename from sp ace.txt",
            'rename to "t\\303\\253st.txt"',
            "",
        ]
    )
    await target_for(github, client).deliver(request=request_for(code_item(diff, diff)))
    assert github.file_bytes(REPO, BRANCH) == {
        "logo.bin": bytes(range(256)),
        "plain.sh": b"echo\n",
        "run.sh": b"#!/bin/sh\n# hi\n",
        "tëst.txt": b"r\nr\nr\n",
    }
    assert github.modes(REPO, BRANCH) == {
        "logo.bin": "100644",
        "plain.sh": "100755",
        "run.sh": "100755",
        "tëst.txt": "100644",
    }


async def test_files_over_the_contents_limit_are_read_as_blobs(client: httpx.AsyncClient) -> None:
    async with GithubFake(contents_limit=10) as github:
        github.seed(repo=REPO, files=FILES)
        await target_for(github, client).deliver(request=request_for(code_item()))
        assert github.files(REPO, BRANCH) == PATCHED
        assert github.calls_to("GET", "*/git/blobs/*")


def test_patch_paths_skip_hunk_bodies() -> None:
    diff = "\n".join(
        [
            "--- a/schema.sql\t2026-01-01 10:00:00",
            "+++ b/schema.sql\t2026-01-01 10:05:00",
            "@@ -1,2 +1,2 @@",
            "--- a/not-a-file",
            "+++ b/not-a-file",
            " select 1;",
            "\\ No newline at end of file",
            "diff --git a/sp ace b/sp ace",
            "old mode 100755",
            "new mode 100644",
            "diff --git a/run b/run",
            "index 1a24852..34dd0c4 100755",
            "--- a/run",
            "+++ b/run",
            "@@ -1 +1,2 @@",
            " #!/bin/sh",
            "+# hi",
            "diff --git a/bin/new b/bin/new",
            "new file mode 100755",
            "index 0000000..de9f4c4",
            "--- /dev/null",
            "+++ b/bin/new",
            "@@ -0,0 +1 @@",
            "+#!/bin/sh",
            "",
        ]
    )
    assert patch_files(diff) == {
        "schema.sql": "100644",
        "sp ace": "100755",
        "run": "100755",
        "bin/new": "100644",
    }


# ---------------------------------------------------------------------- the fake itself


async def test_the_fake_checks_headers_and_bodies(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    good = {
        "Authorization": f"token {github.token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    url = f"{github.url}/repos/{REPO}"
    assert (await client.get(f"{url}/pulls", headers=good)).json() == []
    no_auth = {k: v for k, v in good.items() if k != "Authorization"}
    answer = await client.get(f"{url}/pulls", headers=no_auth)
    assert (answer.status_code, answer.json()["message"]) == (401, "Requires authentication")
    for header in ("Accept", "X-GitHub-Api-Version"):
        partial = {k: v for k, v in good.items() if k != header}
        assert (await client.get(f"{url}/pulls", headers=partial)).status_code == 400

    blob = await client.post(f"{url}/git/blobs", headers=good, json={"encoding": "base64"})
    assert blob.status_code == 422 and blob.json()["message"].startswith("Invalid request.")
    garbage = await client.post(
        f"{url}/git/blobs", headers={**good, "Content-Type": "application/json"}, content=b"{"
    )
    assert (garbage.status_code, garbage.json()["message"]) == (400, "Problems parsing JSON")
    tree = await client.post(
        f"{url}/git/trees", headers=good, json={"tree": [{"path": "x", "mode": "100644"}]}
    )
    assert tree.status_code == 422
    contents = await client.get(f"{url}/contents/nope.txt", headers=good)
    assert (contents.status_code, contents.json()["message"]) == (404, "Not Found")
    listing = await client.get(f"{url}/contents/app", headers=good, params={"ref": "main"})
    assert [e["path"] for e in listing.json()] == ["app/pricing.py"]
    pull = await client.post(
        f"{url}/pulls", headers=good, json={"title": "t", "head": "main", "base": "main"}
    )
    assert pull.status_code == 422
    assert pull.json()["errors"][0]["message"] == "No commits between main and main"


async def test_an_unlisted_existing_pull_request_is_retried(
    github: GithubFake, client: httpx.AsyncClient
) -> None:
    github.seed(repo=REPO, files=FILES)
    target = target_for(github, client)
    await target.deliver(request=request_for(code_item()))
    github.script("GET", f"/repos/{REPO}/pulls", status=200, body=[], times=2)

    error = await release_error(target, request_for(code_item(), attempt=2))
    assert error.retryable and "A pull request already exists" in error.message
    assert (await target.deliver(request=request_for(code_item(), attempt=3))).endswith(
        "(existing)"
    )
    assert len(github.pulls(REPO)) == 1


async def test_a_plain_unified_diff_applies(github: GithubFake, client: httpx.AsyncClient) -> None:
    github.seed(repo=REPO, files=FILES)
    diff = "\n".join(
        [
            "--- a/app/pricing.py\t2026-01-05 10:00:00.000000000 +0000",
            "+++ b/app/pricing.py\t2026-01-05 10:05:00.000000000 +0000",
            "@@ -1,2 +1,2 @@",
            " def refund(total):",
            "-    return total * 0.9",
            "+    return total",
            "",
        ]
    )
    await target_for(github, client).deliver(request=request_for(code_item(diff, diff)))
    assert github.files(REPO, BRANCH)["app/pricing.py"] == "def refund(total):\n    return total\n"
