"""``signoff stats``, run as the installed console script: per-reviewer numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.process import run, signoff_env

GOLD = [
    {
        "kind": "message",
        "title": "Post the outage note",
        "content": {"text": "All systems are fine (there is an outage)."},
        "expected": "reject",
    }
]
ITEM = {
    "route": "notes",
    "kind": "message",
    "title": "Post the release note",
    "content": {"text": "v1.2 is out"},
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "gold.yaml").write_text(yaml.safe_dump(GOLD))
    routes = {"routes": {"notes": {"gold": {"file": "gold.yaml", "rate": 1.0}}, "other": {}}}
    (tmp_path / "signoff.yaml").write_text(yaml.safe_dump(routes))
    return signoff_env(
        SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
        SIGNOFF_CONFIG=str(tmp_path / "signoff.yaml"),
    )


def test_stats_show_gold_accuracy_zero_for_a_reviewer_who_approves_bad_gold(
    env: dict[str, str],
) -> None:
    for _ in range(2):
        done = run(["submit", "-", "--json"], env=env, stdin=json.dumps(ITEM))
        assert done.returncode == 0, done.stderr
    page = json.loads(run(["items", "--json"], env=env).stdout)
    gold = [i["id"] for i in page["items"] if i["title"] == "Post the outage note"]
    real = [i["id"] for i in page["items"] if i["title"] == "Post the release note"]
    assert len(gold) == 2 and len(real) == 2  # a gold item after each real one
    for item_id in gold:
        done = run(["decide", item_id, "approve", "--as", "ann"], env=env)
        assert done.returncode == 0, done.stderr
    run(["decide", real[0], "reject", "--as", "bob", "--text", "too early"], env=env)

    report = json.loads(run(["stats", "--json"], env=env).stdout)
    stats = {r["user_id"]: r for r in report["reviewers"]}
    assert report["days"] == 30 and report["routes"] is None
    ann, bob = stats["ann"], stats["bob"]
    assert (ann["gold_graded"], ann["gold_correct"], ann["gold_accuracy"]) == (2, 0, 0.0)
    assert ann["decisions"] == 2 and ann["approval_rate"] == 1.0 and ann["today"] == 2
    assert bob["gold_graded"] == 0 and bob["gold_accuracy"] is None
    assert bob["approval_rate"] == 0.0

    table = run(["stats", "--route", "notes"], env=env).stdout.splitlines()
    assert table[0].split() == [
        "REVIEWER",
        "SURFACE",
        "DECISIONS",
        "APPROVED",
        "MEDIAN",
        "STAMPS",
        "GOLD",
        "TODAY",
    ]
    ann_row = next(line for line in table if line.startswith("ann"))
    assert "0 % (0/2)" in ann_row and "100 %" in ann_row
    assert "no reviewer decisions" in run(["stats", "--route", "other"], env=env).stdout


def test_stats_options_are_checked(env: dict[str, str]) -> None:
    done = run(["stats", "--route", "nope"], env=env)
    assert done.returncode == 2 and "--route: unknown route 'nope'" in done.stderr
    assert "known routes: notes, other" in done.stderr
    done = run(["stats", "--days", "0"], env=env)
    assert done.returncode == 2 and "--days: must be 1 to 366, not 0" in done.stderr


def test_a_bad_gold_file_stops_every_command(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "gold.yaml").write_text(yaml.safe_dump([{**GOLD[0], "kind": "fax"}]))
    done = run(["stats"], env=env)
    assert done.returncode == 2
    assert f"{tmp_path / 'gold.yaml'}: entry 0 ('Post the outage note'): kind: unknown kind" in (
        done.stderr
    )
