"""The git target against real repositories: a bare ``origin.git`` made in ``tmp_path``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from adapters.targets.git import GitTarget
from bot.errors import ReleaseError
from bot.ports import DeliveryRequest

ITEM_ID = "itm_06H17XYQ38HQN1KZ1JWGZBHJE4"
BRANCH = f"signoff/{ITEM_ID}"
APP = 'def greet(name):\n    return "Hello " + name\n\n\nif __name__ == "__main__":\n'
APP += '    print(greet("world"))\n'

# what the agent proposed: punctuation only
PROPOSED_DIFF = "\n".join(
    [
        "diff --git a/app.py b/app.py",
        "index d049483..8a5e4b1 100644",
        "--- a/app.py",
        "+++ b/app.py",
        "@@ -1,5 +1,5 @@",
        " def greet(name):",
        '-    return "Hello " + name',
        '+    return "Hello, " + name',
        " ",
        " ",
        ' if __name__ == "__main__":',
        "",
    ]
)
# what the reviewer made of it: an f-string and a changelog (a new file), as `git diff` prints
EDITED_DIFF = "\n".join(
    [
        "diff --git a/CHANGELOG.md b/CHANGELOG.md",
        "new file mode 100644",
        "index 0000000..34cb2e1",
        "--- /dev/null",
        "+++ b/CHANGELOG.md",
        "@@ -0,0 +1,3 @@",
        "+# Changelog",
        "+",
        "+- Greet with punctuation.",
        "diff --git a/app.py b/app.py",
        "index d049483..110c807 100644",
        "--- a/app.py",
        "+++ b/app.py",
        "@@ -1,5 +1,5 @@",
        " def greet(name):",
        '-    return "Hello " + name',
        '+    return f"Hello, {name}!"',
        " ",
        " ",
        ' if __name__ == "__main__":',
        "",
    ]
)


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git for the test's own setup and checks; its stdout."""
    done = subprocess.run(
        [
            "git",
            *("-c", "user.name=Tester", "-c", "user.email=tester@example.com"),
            *("-c", "init.defaultBranch=main", "-c", "commit.gpgSign=false"),
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository whose ``main`` holds ``app.py`` and ``docs/notes.txt``."""
    bare = tmp_path / "origin.git"
    git("init", "-q", "--bare", str(bare))
    seed = tmp_path / "seed"
    git("init", "-q", str(seed))
    (seed / "app.py").write_text(APP)
    (seed / "docs").mkdir()
    (seed / "docs" / "notes.txt").write_text("old notes\n")
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "Initial commit", cwd=seed)
    git("push", "-q", str(bare), "HEAD:refs/heads/main", cwd=seed)
    return bare


def item(
    *, diff: str = EDITED_DIFF, proposed: str = PROPOSED_DIFF, kind: str = "code_change"
) -> dict[str, Any]:
    """A settled ``code_change`` as the API shows it: ann approved, then Zoë edited."""
    content = {
        "repository": "acme/greeter",
        "base": "main",
        "title": "Punctuate the greeting",
        "description": "The greeting lacked a comma.\n\nFound by the style checker.",
        "diff": proposed,
    }
    decision = {
        "reason_code": None,
        "reason_text": None,
        "at": "2026-01-05T10:42:00Z",
        "since_posted_seconds": 120.0,
    }
    return {
        "id": ITEM_ID,
        "route": "code",
        "kind": kind,
        "title": "Punctuate the greeting",
        "content": content,
        "final_content": {**content, "diff": diff},
        "confidence": 0.8,
        "callback_url": None,
        "metadata": {},
        "requested_by": "agent",
        "state": "approved",
        "outcome": "edited",
        "release_state": "pending",
        "release_error": None,
        "approvals": 2,
        "quorum": 2,
        "decisions": [
            {**decision, "action": "approve", "surface": "slack", "actor_id": "U0ANN"}
            | {"actor_name": "ann"},
            {**decision, "action": "edit", "surface": "web", "actor_id": "zoe"}
            | {"actor_name": "Zoë", "content_after": {"diff": diff}},
        ],
        "created_at": "2026-01-05T10:40:00Z",
        "updated_at": "2026-01-05T10:44:00Z",
        "decided_at": "2026-01-05T10:44:00Z",
        "due_at": None,
    }


def request(
    repository: Path | str, *, attempt: int = 1, base: str | None = None, **kw: Any
) -> DeliveryRequest:
    return DeliveryRequest(
        url="",
        body=b"",
        idempotency_key=f"release:{ITEM_ID}",
        signing_secret="",
        event="item.approved",
        attempt=attempt,
        item=item(**kw),
        target={
            "type": "git",
            "repository": str(repository),
            "base": base,
            "author_name": "signoff",
            "author_email": "signoff@localhost",
        },
    )


def commits_on_branch(origin: Path) -> list[str]:
    return git("rev-list", f"main..{BRANCH}", cwd=origin).split()


def fake_git(tmp_path: Path, on_push: str) -> str:
    """A git that runs the real one and then, for ``push``, does ``on_push`` (a lost ack)."""
    script = tmp_path / "flaky-git"
    real = shutil.which("git")
    assert real
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        f'  if [ "$a" = push ]; then "{real}" "$@"; {on_push}; fi\n'
        "done\n"
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


async def test_release_lands_one_reviewed_commit(origin: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    receipt = await GitTarget(workdir=work).deliver(request=request(origin))

    [commit] = commits_on_branch(origin)
    assert receipt == f"branch {BRANCH} at {commit[:12]}"
    assert (
        git("rev-parse", f"{BRANCH}^", cwd=origin).strip()
        == git("rev-parse", "main", cwd=origin).strip()
    )
    assert git("log", "-1", "--format=%B", BRANCH, cwd=origin) == (
        "Punctuate the greeting\n\n"
        "The greeting lacked a comma.\n\n"
        "Found by the style checker.\n\n"
        "Reviewed-by: ann (slack U0ANN)\n"
        "Reviewed-by: Zoë (web zoe)\n"
        f"Signoff-Item: {ITEM_ID}\n\n"
    )
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>", BRANCH, cwd=origin).strip() == (
        "signoff <signoff@localhost>|signoff <signoff@localhost>"
    )
    # the reviewer's edited diff is what landed, not the agent's proposal
    assert 'return f"Hello, {name}!"' in git("show", f"{BRANCH}:app.py", cwd=origin)
    assert git("show", f"{BRANCH}:CHANGELOG.md", cwd=origin) == (
        "# Changelog\n\n- Greet with punctuation.\n"
    )
    assert list(work.iterdir()) == []  # the attempt's clone is gone


async def test_a_second_attempt_finds_the_release_already_there(origin: Path) -> None:
    target = GitTarget()
    first = await target.deliver(request=request(origin))
    again = await target.deliver(request=request(origin, attempt=2))

    [commit] = commits_on_branch(origin)
    assert first == f"branch {BRANCH} at {commit[:12]}"
    assert again == f"branch {BRANCH} at {commit[:12]} (already there)"


async def test_a_push_whose_answer_was_lost_is_not_committed_twice(
    origin: Path, tmp_path: Path
) -> None:
    # the push lands but the process hangs until killed: the attempt times out (retried)
    hanging = GitTarget(git=fake_git(tmp_path, "sleep 30"), timeout=1.5)
    with pytest.raises(ReleaseError) as failed:
        await hanging.deliver(request=request(origin))
    assert failed.value.retryable and "timed out" in failed.value.message
    [commit] = commits_on_branch(origin)

    # the next attempt, from a fresh process, sees the branch carries this item's trailer
    receipt = await GitTarget().deliver(request=request(origin, attempt=2))
    assert receipt == f"branch {BRANCH} at {commit[:12]} (already there)"
    assert commits_on_branch(origin) == [commit]


async def test_a_push_reported_as_failed_that_landed_is_a_success(
    origin: Path, tmp_path: Path
) -> None:
    lost = 'echo "fatal: the remote end hung up unexpectedly" >&2; exit 128'
    receipt = await GitTarget(git=fake_git(tmp_path, lost)).deliver(request=request(origin))

    [commit] = commits_on_branch(origin)
    assert receipt == f"branch {BRANCH} at {commit[:12]} (already there)"


async def test_a_diff_made_by_git_diff_applies_exactly(origin: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone))
    (clone / "app.py").write_text(APP.replace('"Hello "', '"Hi "') + "\n# trailing note\n")
    (clone / "docs" / "notes.txt").unlink()
    (clone / "run.sh").write_text("#!/bin/sh\nexec python app.py\n")
    (clone / "run.sh").chmod(0o755)
    (clone / "docs" / "ünïcode name.txt").write_text("naïve café\n")
    git("add", "-A", cwd=clone)
    diff = git("diff", "--cached", cwd=clone)
    assert "new file mode 100755" in diff and "deleted file mode" in diff

    await GitTarget().deliver(request=request(origin, diff=diff))

    assert git("rev-parse", f"{BRANCH}^{{tree}}", cwd=origin) == git("write-tree", cwd=clone)


async def test_a_diff_that_does_not_apply_fails_with_gits_words(origin: Path) -> None:
    stale = EDITED_DIFF.replace('-    return "Hello " + name', '-    return "Howdy " + name')
    with pytest.raises(ReleaseError) as failed:
        await GitTarget().deliver(request=request(origin, diff=stale))

    assert not failed.value.retryable
    assert "patch failed: app.py:1" in failed.value.message
    assert "patch does not apply" in failed.value.message
    assert git("branch", "--list", BRANCH, cwd=origin) == ""


async def test_an_unknown_base_fails_at_once(origin: Path) -> None:
    with pytest.raises(ReleaseError) as failed:
        await GitTarget().deliver(request=request(origin, base="release-9"))

    assert not failed.value.retryable
    assert "release-9" in failed.value.message
    assert "couldn't find remote ref" in failed.value.message


async def test_a_local_repository_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError) as failed:
        await GitTarget().deliver(request=request(tmp_path / "nowhere.git"))
    assert not failed.value.retryable and "does not exist" in failed.value.message

    with pytest.raises(ReleaseError) as failed:
        await GitTarget().deliver(request=request(tmp_path))  # exists, not a repository
    assert not failed.value.retryable
    assert "does not appear to be a git repository" in failed.value.message


async def test_an_unreachable_remote_is_retried_without_showing_credentials() -> None:
    url = "http://deploy:s3cret@127.0.0.1:9/x.git"
    with pytest.raises(ReleaseError) as failed:
        await GitTarget(timeout=10).deliver(request=request(url))

    assert failed.value.retryable
    assert "http://***@127.0.0.1:9/x.git" in failed.value.message
    assert "s3cret" not in failed.value.message


async def test_a_branch_name_taken_by_another_commit_is_not_overwritten(
    origin: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone))
    (clone / "mine.txt").write_text("someone else's work\n")
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Someone else's work", cwd=clone)
    git("push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}", cwd=clone)
    theirs = git("rev-parse", BRANCH, cwd=origin)

    with pytest.raises(ReleaseError) as failed:
        await GitTarget().deliver(request=request(origin))

    assert not failed.value.retryable
    assert f"branch {BRANCH} already exists" in failed.value.message
    assert "taken" in failed.value.message
    assert git("rev-parse", BRANCH, cwd=origin) == theirs


async def test_only_code_changes_are_released(origin: Path) -> None:
    with pytest.raises(ReleaseError) as failed:
        await GitTarget().deliver(request=request(origin, kind="email"))

    assert not failed.value.retryable and "'email'" in failed.value.message
    assert git("branch", "--list", BRANCH, cwd=origin) == ""


def test_git_gets_a_trimmed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.targets.git import _environment, _plan

    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /keys/deploy")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent.sock")
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("SIGNOFF_SECRET", "hush")
    env = _environment(_plan(item(), {"repository": os.getcwd()}))

    assert env["GIT_SSH_COMMAND"] == "ssh -i /keys/deploy"
    assert env["SSH_AUTH_SOCK"] == "/run/agent.sock"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "GIT_DIR" not in env and "SIGNOFF_SECRET" not in env
    assert env["PATH"] == os.environ["PATH"]
