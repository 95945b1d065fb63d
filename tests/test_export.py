"""Training exports (SFT, DPO, TRL, labels): every row checked against its format, on
SQLite and PostgreSQL; filters, keyset pages, the API and the command line.

Comparisons are created directly through storage (an item of kind ``comparison`` and its
decisive decision with ``choice`` in candidate terms): the export relies only on that
contract, not on how a surface records the click.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from bot.app import System, create_app
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.errors import InvalidInput
from bot.export import (
    ExportFilter,
    ExportFormat,
    ExportStats,
    export_chunks,
    export_lines,
    parse_format,
    parse_since,
)
from bot.ids import new_item_id
from bot.ports import Actor
from bot.schemas import ItemCreate
from storage.models import Decision, Item
from tests.process import run, signoff_env

LEAD = Actor(surface="web", user_id="lead", name="Lead")
AGENT = Actor(surface="web", user_id="agent", name="Agent")
ROLES = {"system", "user", "assistant"}
CHAT = [
    {"role": "system", "content": "You write support replies."},
    {"role": "user", "content": "Customer asks for a refund of order 1234."},
]
EMAIL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, done."}


# -- format checks ------------------------------------------------------------------------


def check_messages(messages: Any, *, empty_ok: bool = False) -> None:
    assert isinstance(messages, list) and (empty_ok or messages)
    for m in messages:
        assert set(m) == {"role", "content"} and m["role"] in ROLES
        assert isinstance(m["content"], str)


def check_assistant_output(output: Any) -> str:
    assert isinstance(output, list) and len(output) == 1
    assert output[0]["role"] == "assistant" and isinstance(output[0]["content"], str)
    return str(output[0]["content"])


def check_row(fmt: str, row: dict[str, Any]) -> None:
    """The required fields of each format, as OpenAI and TRL document them."""
    if fmt == "sft":
        assert set(row) == {"messages"}
        check_messages(row["messages"])
        assert row["messages"][-1]["role"] == "assistant"
        assert any(m["role"] != "assistant" for m in row["messages"][:-1])
    elif fmt == "dpo":
        assert set(row) == {"input", "preferred_output", "non_preferred_output"}
        assert set(row["input"]) == {"messages"}
        check_messages(row["input"]["messages"])
        good = check_assistant_output(row["preferred_output"])
        bad = check_assistant_output(row["non_preferred_output"])
        assert good != bad
    elif fmt == "trl":
        assert set(row) == {"prompt", "chosen", "rejected"}
        if isinstance(row["prompt"], str):  # standard form
            assert row["prompt"] and isinstance(row["chosen"], str)
            assert isinstance(row["rejected"], str) and row["chosen"] != row["rejected"]
        else:  # conversational form
            check_messages(row["prompt"])
            assert check_assistant_output(row["chosen"]) != check_assistant_output(row["rejected"])
    else:
        assert set(row) == {"id", "text", "labels", "route", "decided_by", "decided_at"}
        assert row["id"].startswith("itm_") and isinstance(row["text"], str)
        assert isinstance(row["labels"], list) and all(isinstance(x, str) for x in row["labels"])
        assert isinstance(row["decided_by"], str) and row["decided_at"].endswith("Z")


def parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]  # only \n ends a line


async def rows_of(
    system: System, fmt: str, *, stats: ExportStats | None = None, page: int = 1000
) -> list[dict[str, Any]]:
    lines = export_lines(system.sessions, fmt=ExportFormat(fmt), stats=stats, page=page)
    return [json.loads(line) async for line in lines]


async def export(system: System, fmt: str, **flt: Any) -> list[dict[str, Any]]:
    chunks = export_chunks(system.sessions, fmt=ExportFormat(fmt), flt=ExportFilter(**flt))
    rows = parse_jsonl(b"".join([c async for c in chunks]))
    for row in rows:
        check_row(fmt, row)
    return rows


# -- building a history -------------------------------------------------------------------


async def submit(
    system: System, integrator: Integrator, *, route: str = "selfok", **fields: Any
) -> str:
    data = {"route": route, "kind": "message", "title": "Draft", "content": {"text": "Hello"}}
    data.update(fields)
    result = await system.service.submit(integrator=integrator, data=ItemCreate(**data))
    return result.item.id


async def comparison(
    system: System,
    integrator: Integrator,
    *,
    choice: str,
    prompt: Any = None,
    decided: bool = True,
    route: str = "selfok",
) -> str:
    """A comparison and its decisive decision, written through storage."""
    now = system.clock.now()
    row = Item(
        id=new_item_id(now),
        integrator_id=integrator.id,
        route=route,
        kind="comparison",
        title="Which reply?",
        content={"prompt": "Reply to a refund request.", "a": "Reply A", "b": "Reply B"},
        prompt=prompt,
        ab_swapped=True,  # the card showed b first; the stored choice is in candidate terms
        state="approved" if decided else "pending",
        outcome="approved" if decided else None,
        release_state="none",
        created_at=now,
        updated_at=now,
        decided_at=now if decided else None,
    )
    async with system.sessions() as session, session.begin():
        session.add(row)
        await session.flush()
        if decided:
            session.add(
                Decision(
                    item_id=row.id,
                    action="approve",
                    surface="web",
                    actor_id="lead",
                    actor_name="Lead",
                    decisive=True,
                    at=now,
                    choice=choice,
                )
            )
    return row.id


# -- the acceptance points ----------------------------------------------------------------


async def test_an_edit_gives_one_sft_row_and_one_dpo_row_with_the_edit_preferred(
    system: System, integrator: Integrator
) -> None:
    item = await submit(system, integrator, content={"text": "Refund is on its way"}, prompt=CHAT)
    await system.service.decide(
        item_id=item, action="edit", actor=LEAD, content={"text": "Your refund was sent today."}
    )
    sft = await export(system, "sft")
    assert sft == [
        {"messages": [*CHAT, {"role": "assistant", "content": "Your refund was sent today."}]}
    ]
    dpo = await export(system, "dpo")
    assert dpo == [
        {
            "input": {"messages": CHAT},
            "preferred_output": [{"role": "assistant", "content": "Your refund was sent today."}],
            "non_preferred_output": [{"role": "assistant", "content": "Refund is on its way"}],
        }
    ]
    trl = await export(system, "trl")
    assert trl == [
        {
            "prompt": CHAT,
            "chosen": [{"role": "assistant", "content": "Your refund was sent today."}],
            "rejected": [{"role": "assistant", "content": "Refund is on its way"}],
        }
    ]


async def test_a_comparison_decided_b_prefers_b_and_a_prefers_a(
    system: System, integrator: Integrator
) -> None:
    await comparison(system, integrator, choice="b")
    dpo = await export(system, "dpo")
    assert dpo == [
        {
            "input": {"messages": [{"role": "user", "content": "Reply to a refund request."}]},
            "preferred_output": [{"role": "assistant", "content": "Reply B"}],
            "non_preferred_output": [{"role": "assistant", "content": "Reply A"}],
        }
    ]
    await comparison(system, integrator, choice="a", prompt=CHAT)  # the item's own prompt wins
    trl = await export(system, "trl")
    assert trl == [
        {"prompt": "Reply to a refund request.", "chosen": "Reply B", "rejected": "Reply A"},
        {
            "prompt": CHAT,
            "chosen": [{"role": "assistant", "content": "Reply A"}],
            "rejected": [{"role": "assistant", "content": "Reply B"}],
        },
    ]


async def test_a_comparison_decided_on_its_card_exports_the_candidate_chosen(
    system: System, integrator: Integrator
) -> None:
    """End to end through the comparison kind: the reviewer clicks the letter the card
    shows for candidate b, whichever order the card drew."""
    for n in range(4):  # both card orders are likely to come up
        item = await submit(
            system,
            integrator,
            kind="comparison",
            content={"prompt": f"Greet customer {n}.", "a": f"Hi {n}", "b": f"Hello {n}"},
        )
        async with system.sessions() as session:
            row = await session.get(Item, item)
        assert row is not None and row.ab_swapped is not None
        shown_for_b = "A" if row.ab_swapped else "B"
        await system.service.decide(item_id=item, action="approve", actor=LEAD, choice=shown_for_b)
    dpo = await export(system, "dpo")
    assert sorted(
        (r["input"]["messages"][0]["content"], check_assistant_output(r["preferred_output"]))
        for r in dpo
    ) == [(f"Greet customer {n}.", f"Hello {n}") for n in range(4)]


async def test_every_row_of_every_format_fits_its_format(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    """A mixed history: every kind, string and chat prompts, edits, comparisons, and the
    things that never become rows."""
    approved = {
        "email": await submit(
            system, integrator, kind="email", content=EMAIL, prompt="Write to Jane."
        ),
        "code": await submit(
            system,
            integrator,
            kind="code_change",
            content={
                "repository": "org/app",
                "title": "Fix typo",
                "description": "A typo in the greeting.",
                "diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-helo\n+hello\n",
            },
            prompt=CHAT,
        ),
        "decision": await submit(
            system,
            integrator,
            kind="decision",
            content={"question": "Refund?", "options": ["yes", "no"], "proposed": "yes"},
            prompt="Should we refund order 1234?",
        ),
        "label": await submit(
            system,
            integrator,
            kind="label",
            content={"text": "My parcel never came", "labels": ["shipping"]},
            prompt=[{"role": "user", "content": "Label this ticket."}],
        ),
        "unicode": await submit(
            system, integrator, content={"text": "Grüße\u2028zweite Zeile"}, prompt="Grüß ihn"
        ),
    }
    for item in approved.values():
        await system.service.decide(item_id=item, action="approve", actor=LEAD)
    edited_label = await submit(
        system,
        integrator,
        kind="label",
        content={"text": "Where is my refund?", "labels": ["shipping"]},
        prompt="Label this ticket.",
    )
    await system.service.decide(
        item_id=edited_label, action="edit", actor=LEAD, content={"labels": ["billing", "refund"]}
    )
    edited_decision = await submit(
        system,
        integrator,
        kind="decision",
        content={"question": "Refund?", "options": ["yes", "no"], "proposed": "yes"},
        prompt=CHAT,
    )
    await system.service.decide(
        item_id=edited_decision, action="edit", actor=AGENT, content={"proposed": "no"}
    )
    await comparison(system, integrator, choice="a")
    # what never becomes a row:
    rejected = await submit(system, integrator, prompt="p")
    await system.service.decide(item_id=rejected, action="reject", actor=LEAD, reason_text="no")
    await submit(system, integrator, prompt="still pending")
    await submit(  # decided by policy, not by a person
        system, integrator, route="support", kind="email", content=EMAIL, confidence=0.995
    )
    await comparison(system, integrator, choice="tie")
    await comparison(system, integrator, choice="both_bad")
    await comparison(system, integrator, choice="a", decided=False)

    sft = await export(system, "sft")
    assert len(sft) == 7  # five approved, two edited
    released = {row["messages"][-1]["content"] for row in sft}
    assert "Subject: Your refund\n\nHi Jane, done." in released
    assert "Fix typo\n\nA typo in the greeting.\n\n--- a/x\n+++ b/x\n@@" in "\n".join(released)
    assert {"billing, refund", "no", "shipping", "Grüße\u2028zweite Zeile"} <= released
    email_row = next(r for r in sft if r["messages"][-1]["content"].startswith("Subject"))
    assert email_row["messages"][0] == {"role": "user", "content": "Write to Jane."}

    dpo = await export(system, "dpo")
    assert len(dpo) == 3  # two edits and the decided comparison
    pairs = {(check_assistant_output(r["preferred_output"]),) for r in dpo}
    assert pairs == {("billing, refund",), ("no",), ("Reply A",)}
    trl = await export(system, "trl")
    assert len(trl) == 3
    labels = await export(system, "labels")
    assert sorted((r["text"], tuple(r["labels"])) for r in labels) == [
        ("My parcel never came", ("shipping",)),
        ("Where is my refund?", ("billing", "refund")),
    ]
    edited = next(r for r in labels if r["id"] == edited_label)
    assert edited["route"] == "selfok" and edited["decided_by"] == "Lead"
    assert edited["decided_at"] == clock.now().isoformat().replace("+00:00", "Z")


async def test_line_breaks_json_leaves_raw_are_escaped_so_lines_stay_lines(
    system: System, integrator: Integrator
) -> None:
    item = await submit(system, integrator, content={"text": "one\u2028two\x85three"}, prompt="p")
    await system.service.decide(item_id=item, action="approve", actor=LEAD)
    data = b"".join([c async for c in export_chunks(system.sessions, fmt=ExportFormat.sft)])
    assert data.count(b"\n") == 1 and "\u2028".encode() not in data and b"\\u2028" in data
    assert parse_jsonl(data)[0]["messages"][-1]["content"] == "one\u2028two\x85three"


async def test_left_out_and_counted_no_prompt_no_change_gold(
    system: System, integrator: Integrator
) -> None:
    no_prompt = await submit(system, integrator)
    await system.service.decide(item_id=no_prompt, action="edit", actor=LEAD, content={"text": "x"})
    # an e-mail edit that only changes the recipients reads the same as text
    same = await submit(system, integrator, kind="email", content=EMAIL, prompt="p")
    await system.service.decide(
        item_id=same, action="edit", actor=LEAD, content={"to": ["john@example.com"]}
    )
    gold = await submit(system, integrator, prompt="p")
    async with system.sessions() as session, session.begin():
        row = await session.get(Item, gold)
        assert row is not None
        row.gold_expected = "approve"
    await system.service.decide(item_id=gold, action="edit", actor=LEAD, content={"text": "g"})

    stats = ExportStats()
    sft = await rows_of(system, "sft", stats=stats)
    assert [r["messages"][-1]["content"] for r in sft] == ["Subject: Your refund\n\nHi Jane, done."]
    assert (stats.rows, stats.skipped) == (1, 1)  # the draft without a prompt
    stats = ExportStats()
    dpo = await rows_of(system, "dpo", stats=stats)
    assert dpo == [] and (stats.rows, stats.skipped) == (0, 2)


async def test_an_edit_of_an_item_rejected_later_is_no_preference(
    system: System, integrator: Integrator
) -> None:
    item = await submit(system, integrator, route="pair", prompt="p")  # quorum 2
    await system.service.decide(item_id=item, action="edit", actor=LEAD, content={"text": "E"})
    assert len(await export(system, "dpo")) == 0  # still pending
    await system.service.decide(item_id=item, action="reject", actor=AGENT, reason_text="no")
    assert await export(system, "dpo") == [] and await export(system, "sft") == []


async def test_quorum_edits_give_one_pair_each(system: System, integrator: Integrator) -> None:
    item = await submit(system, integrator, route="pair", prompt="p", content={"text": "v1"})
    await system.service.decide(item_id=item, action="edit", actor=LEAD, content={"text": "v2"})
    await system.service.decide(item_id=item, action="edit", actor=AGENT, content={"text": "v3"})
    assert await export(system, "trl") == []  # the second edit restarted the count
    await system.service.decide(item_id=item, action="approve", actor=LEAD)
    trl = await export(system, "trl")
    assert [(r["chosen"], r["rejected"]) for r in trl] == [("v2", "v1"), ("v3", "v2")]
    assert [r["messages"][-1]["content"] for r in await export(system, "sft")] == ["v3"]


# -- filters ------------------------------------------------------------------------------


async def test_filters_route_since_and_integrator(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    other_key = await system.keys.create(name="other")
    other = await system.keys.authenticate(other_key.api_key)
    assert other is not None
    early = await submit(system, integrator, prompt="p", content={"text": "early"})
    await system.service.decide(item_id=early, action="edit", actor=LEAD, content={"text": "E"})
    clock.advance(timedelta(days=1))
    boundary = clock.now()
    on_time = await submit(system, integrator, route="pair", prompt="p", content={"text": "x"})
    await system.service.decide(item_id=on_time, action="edit", actor=AGENT, content={"text": "O"})
    await system.service.decide(item_id=on_time, action="approve", actor=LEAD)
    mine = await submit(system, other, prompt="p", content={"text": "other's"})
    await system.service.decide(item_id=mine, action="approve", actor=LEAD)

    def texts(rows: list[dict[str, Any]]) -> list[str]:
        return sorted(r["messages"][-1]["content"] for r in rows)

    assert texts(await export(system, "sft")) == ["E", "O", "other's"]  # sorted
    assert texts(await export(system, "sft", route="pair")) == ["O"]
    assert texts(await export(system, "sft", since=boundary)) == ["O", "other's"]  # inclusive
    later = boundary + timedelta(microseconds=1)
    assert texts(await export(system, "sft", since=later)) == []
    assert texts(await export(system, "sft", integrator_id=other.id)) == ["other's"]
    assert len(await export(system, "dpo", since=boundary)) == 1  # by the edit's time
    assert len(await export(system, "dpo", route="selfok")) == 1
    assert await export(system, "dpo", route="nope") == []


async def test_the_database_is_read_in_keyset_pages(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    for n in range(7):
        clock.advance(0.001)  # ids sort by creation time (to the millisecond)
        item = await submit(system, integrator, prompt="p", content={"text": f"t{n}"})
        await system.service.decide(item_id=item, action="approve", actor=LEAD)
    limits: list[Any] = []

    def spy(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "final_content" in statement:
            limits.append(params)

    event.listen(system.engine.sync_engine, "before_cursor_execute", spy)
    try:
        rows = await rows_of(system, "sft", page=3)
    finally:
        event.remove(system.engine.sync_engine, "before_cursor_execute", spy)
    assert [r["messages"][-1]["content"] for r in rows] == [f"t{n}" for n in range(7)]
    assert len(limits) == 3  # 3 + 3 + 1 rows: the last short page ends the walk
    chunks = [
        c async for c in export_chunks(system.sessions, fmt=ExportFormat.sft, chunk_bytes=100)
    ]
    assert len(chunks) > 1 and all(c.endswith(b"\n") for c in chunks)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_pages_walk_an_index_in_order_without_sorting(
    system: System, integrator: Integrator
) -> None:
    """Each page must continue along an index in key order: a plan that sorts (a temp
    B-tree) sorts every matching row again for every page, which is quadratic."""
    statements: list[tuple[str, Any]] = []

    def spy(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        # the redraft pairs' pass (storage/revision_exports.py) is a walk of its own
        if "items.revisions" in statement:
            return
        if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement:
            statements.append((statement, params))

    event.listen(system.engine.sync_engine, "before_cursor_execute", spy)
    try:
        for fmt in ExportFormat:
            for flt in (
                {},
                {"route": "selfok"},
                {"since": system.clock.now()},
                {"integrator_id": integrator.id},
                {"route": "selfok", "since": system.clock.now(), "integrator_id": integrator.id},
            ):
                await export(system, fmt.value, **flt)
    finally:
        event.remove(system.engine.sync_engine, "before_cursor_execute", spy)
    assert len(statements) == len(ExportFormat) * 5
    async with system.engine.connect() as conn:
        for statement, params in statements:
            plan = [
                str(row[-1])
                for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            ]
            assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)


def test_format_and_since_parsing_names_the_problem() -> None:
    assert parse_format("dpo") is ExportFormat.dpo
    with pytest.raises(InvalidInput, match="format: unknown export format 'csv'; expected one"):
        parse_format("csv")
    assert parse_since("2026-01-31").isoformat() == "2026-01-31T00:00:00+00:00"
    assert parse_since("2026-01-31T10:00:00+02:00").isoformat() == "2026-01-31T08:00:00+00:00"
    with pytest.raises(InvalidInput, match="since: give a UTC offset"):
        parse_since("2026-01-31T10:00:00")
    with pytest.raises(InvalidInput, match="since: 'yesterday' is not a date"):
        parse_since("yesterday")


# -- API ----------------------------------------------------------------------------------


@pytest.fixture
async def client(system: System) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as c:
        yield c


async def test_api_streams_the_callers_own_rows(system: System, client: httpx.AsyncClient) -> None:
    keys = {name: (await system.keys.create(name=name)).api_key for name in ("alice", "bob")}
    for name, key in keys.items():
        created = await client.post(
            "/v1/items",
            json={
                "route": "selfok",
                "kind": "message",
                "title": "t",
                "content": {"text": f"{name} v1"},
                "prompt": CHAT,
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert created.status_code == 201, created.text
        await system.service.decide(
            item_id=created.json()["id"], action="edit", actor=LEAD, content={"text": f"{name} v2"}
        )
    alice = {"Authorization": f"Bearer {keys['alice']}"}
    async with client.stream("GET", "/v1/exports/dpo", headers=alice) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [check_assistant_output(r["preferred_output"]) for r in lines] == ["alice v2"]
    for r in lines:
        check_row("dpo", r)
    sft = await client.get("/v1/exports/sft?route=selfok&since=2026-01-01", headers=alice)
    assert [r["messages"][-1]["content"] for r in parse_jsonl(sft.content)] == ["alice v2"]
    none = await client.get("/v1/exports/sft?since=2027-01-01T00:00:00Z", headers=alice)
    assert none.status_code == 200 and none.content == b""


async def test_api_errors(system: System, client: httpx.AsyncClient) -> None:
    key = (await system.keys.create(name="alice")).api_key
    auth = {"Authorization": f"Bearer {key}"}
    anonymous = await client.get("/v1/exports/sft")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    wrong = await client.get("/v1/exports/sft", headers={"Authorization": "Bearer sk_nope"})
    assert wrong.status_code == 401
    unknown = await client.get("/v1/exports/csv", headers=auth)
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith("format: ")
    assert "'sft'" in error["message"] and "'labels'" in error["message"]
    bad = await client.get("/v1/exports/sft?since=last+week", headers=auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("since: 'last week' is not a date")
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/exports/{format}" in schema["paths"]


# -- command line -------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return signoff_env(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db")


def test_cli_exports_to_a_file_and_to_stdout(cli_env: dict[str, str], tmp_path: Path) -> None:
    item = {
        "route": "default",
        "kind": "message",
        "title": "Release note",
        "content": {"text": "v1.2 is out"},
        "prompt": "Announce v1.2.",
    }
    created = run(["submit", "-", "--json"], env=cli_env, stdin=json.dumps(item))
    assert created.returncode == 0, created.stderr
    item_id = json.loads(created.stdout)["id"]
    edit = ["decide", item_id, "edit", "--as", "lead", "--content", '{"text": "v1.2 is out!"}']
    assert run(edit, env=cli_env).returncode == 0

    out = tmp_path / "out" / "dpo.jsonl"
    out.parent.mkdir()
    done = run(["export", "dpo", "-o", str(out), "--since", "2000-01-01"], env=cli_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "dpo: 1 rows" in done.stderr
    rows = parse_jsonl(out.read_bytes())
    assert len(rows) == 1 and check_assistant_output(rows[0]["preferred_output"]) == "v1.2 is out!"
    check_row("dpo", rows[0])
    assert list(out.parent.iterdir()) == [out]  # no partial file left behind

    stdout = run(["export", "sft", "--route", "default"], env=cli_env)
    assert stdout.returncode == 0, stdout.stderr
    assert parse_jsonl(stdout.stdout.encode()) == [
        {
            "messages": [
                {"role": "user", "content": "Announce v1.2."},
                {"role": "assistant", "content": "v1.2 is out!"},
            ]
        }
    ]
    trl = run(["export", "trl", "--route", "elsewhere"], env=cli_env)
    assert trl.returncode == 0 and trl.stdout == "" and "trl: 0 rows" in trl.stderr


def test_cli_bad_input_exits_2_with_a_clear_message(cli_env: dict[str, str]) -> None:
    unknown = run(["export", "csv"], env=cli_env)
    assert unknown.returncode == 2
    assert "format: unknown export format 'csv'; expected one of sft, dpo, trl, labels" in (
        unknown.stderr
    )
    bad = run(["export", "sft", "--since", "2026-13-01"], env=cli_env)
    assert bad.returncode == 2 and "--since: '2026-13-01' is not a date" in bad.stderr
    nowhere = run(["export", "sft", "-o", "/nonexistent/dir/x.jsonl"], env=cli_env)
    assert nowhere.returncode == 2 and "-o: cannot write /nonexistent/dir/x.jsonl" in (
        nowhere.stderr
    )
