"""The audit log on SQLite and PostgreSQL: filters, route scoping, pages, CSV and JSONL
exports (formula-safe, streamed in constant memory), and the page template."""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import insert, text
from sqlmodel import SQLModel

from adapters.web.audit import (
    CHUNK_BYTES,
    COLUMNS,
    OUTCOMES,
    AuditFilter,
    AuditRow,
    audit_page,
    csv_stream,
    iter_audit,
    jsonl_stream,
    parse_before,
)
from bot.app import System
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.errors import InvalidInput
from bot.ids import new_item_id
from bot.ports import Actor
from bot.schemas import ItemCreate
from bot.states import Action, Outcome
from storage import audit as audit_store
from storage.models import Decision, Item

TEMPLATES = Path(__file__).resolve().parents[2] / "adapters" / "web" / "templates"
EMAIL = {"to": ["jane@example.com"], "subject": "s", "body": "b"}
BOM = b"\xef\xbb\xbf"


def web(user_id: str, name: str | None = None) -> Actor:
    return Actor(surface="web", user_id=user_id, name=name or user_id)


async def submit(
    system: System,
    integrator: Integrator,
    *,
    route: str = "selfok",
    title: str = "Refund",
    confidence: float = 0.5,
) -> str:
    data = ItemCreate(route=route, kind="email", title=title, content=EMAIL, confidence=confidence)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def collect(rows: AsyncIterator[AuditRow]) -> list[AuditRow]:
    return [row async for row in rows]


async def audit(system: System, **query: str) -> list[AuditRow]:
    routes = query.pop("routes", None)
    flt = AuditFilter.from_query(query, routes=None if routes is None else routes.split(","))
    return await collect(iter_audit(system.sessions, flt, batch=2))


async def join(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@dataclass
class History:
    approved: str  # support, 2026-01-05, by ann
    rejected: str  # support, 2026-01-06, by bob (id u-bob), reason "wrong facts"
    edited: str  # selfok, 2026-01-07, by cat
    auto: str  # support, 2026-01-08, by policy
    strict: str  # strict, 2026-01-08, approved by lead


async def make_history(system: System, integrator: Integrator, clock: FrozenClock) -> History:
    approved = await submit(system, integrator, route="support", title="Approved one")
    clock.advance(30)
    await system.service.decide(item_id=approved, action="approve", actor=web("ann"))
    clock.advance(timedelta(days=1))
    rejected = await submit(system, integrator, route="support", title="Rejected one")
    await system.service.decide(
        item_id=rejected,
        action="reject",
        actor=web("u-bob", "bob"),
        reason_code="wrong facts",
        reason_text="order 1234 was not refunded",
    )
    clock.advance(timedelta(days=1))
    edited = await submit(system, integrator, route="selfok", title="Edited one")
    await system.service.decide(
        item_id=edited, action="edit", actor=web("cat"), content={"body": "Hi Jane, sorry!"}
    )
    clock.advance(timedelta(days=1))
    auto = await submit(system, integrator, route="support", title="Auto", confidence=0.995)
    strict = await submit(system, integrator, route="strict", title="Strict one")
    await system.service.decide(item_id=strict, action="approve", actor=web("lead"))
    return History(approved, rejected, edited, auto, strict)


def test_outcome_words_match_the_domain() -> None:
    assert set(audit_store.OUTCOME_ACTIONS) == {o.value for o in Outcome}
    # every action that settles an item (a redraft keeps it pending: no outcome)
    assert set(audit_store.OUTCOME_ACTIONS.values()) == {a.value for a in Action} - {"redraft"}
    assert tuple(audit_store.OUTCOME_ACTIONS) == OUTCOMES


async def test_every_decision_newest_first_with_its_columns(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    h = await make_history(system, integrator, clock)
    rows = await audit(system)
    assert [r.item_id for r in rows] == [h.strict, h.auto, h.edited, h.rejected, h.approved]
    ids = [r.decision_id for r in rows]
    assert ids == sorted(ids, reverse=True)
    assert [r.outcome for r in rows] == [
        "approved",
        "auto_approved",
        "edited",
        "rejected",
        "approved",
    ]
    rejected = rows[3]
    assert rejected == AuditRow(
        decision_id=rejected.decision_id,
        at="2026-01-06T09:00:30Z",
        item_id=h.rejected,
        route="support",
        kind="email",
        title="Rejected one",
        action="reject",
        outcome="rejected",
        surface="web",
        actor_id="u-bob",
        actor_name="bob",
        reason_code="wrong facts",
        reason_text="order 1234 was not refunded",
        since_posted_seconds=0.0,
    )
    assert rows[4].at == "2026-01-05T09:00:30Z" and rows[4].since_posted_seconds == 30.0
    assert rows[1].surface == "policy" and rows[1].action == "auto_approve"


async def test_filters(system: System, integrator: Integrator, clock: FrozenClock) -> None:
    h = await make_history(system, integrator, clock)

    async def items(**query: str) -> list[str]:
        return [r.item_id for r in await audit(system, **query)]

    assert await items(route="support") == [h.auto, h.rejected, h.approved]
    assert await items(route="nope") == []
    # the actor filter matches the name or the id, exactly
    assert await items(actor="bob") == [h.rejected]
    assert await items(actor="u-bob") == [h.rejected]
    assert await items(actor="bo") == []
    assert await items(actor="  ann ") == [h.approved]
    assert await items(actor="policy") == [h.auto]
    # the outcome filter takes the public words and matches the decision's action
    assert await items(outcome="approved") == [h.strict, h.approved]
    assert await items(outcome="rejected") == [h.rejected]
    assert await items(outcome="edited") == [h.edited]
    assert await items(outcome="auto_approved") == [h.auto]
    assert await items(outcome="expired") == []
    # dates are UTC days, both included
    assert await items(since="2026-01-06") == [h.strict, h.auto, h.edited, h.rejected]
    assert await items(until="2026-01-06") == [h.rejected, h.approved]
    assert await items(since="2026-01-06", until="2026-01-07") == [h.edited, h.rejected]
    assert await items(since="2026-01-07", until="2026-01-07") == [h.edited]
    assert await items(since="2026-01-09") == []
    # combined
    assert await items(route="support", outcome="approved", until="2026-01-05") == [h.approved]
    assert await items(route="support", actor="bob", outcome="approved") == []
    # empty values mean no filter
    assert len(await items(route="", actor="", outcome="", since="", until="")) == 5


async def test_a_reviewer_sees_only_their_routes(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    h = await make_history(system, integrator, clock)
    assert [r.item_id for r in await audit(system, routes="selfok,strict")] == [
        h.strict,
        h.edited,
    ]
    assert [r.item_id for r in await audit(system, routes="strict", actor="lead")] == [h.strict]
    # a route outside the reviewer's routes shows nothing, not an error
    assert await audit(system, routes="strict", route="support") == []
    assert await audit(system, routes="strict", actor="bob") == []
    flt = AuditFilter.from_query({}, routes=[])
    assert await collect(iter_audit(system.sessions, flt)) == []
    assert await audit_page(system.sessions, flt, before_id=None) == ([], None)


async def test_pages_walk_every_decision_once(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    for n in range(7):
        item_id = await submit(system, integrator, title=f"item {n}")
        clock.advance(60)
        await system.service.decide(item_id=item_id, action="approve", actor=web("ann"))
    flt = AuditFilter.from_query({}, routes=None)
    everything = await collect(iter_audit(system.sessions, flt, batch=3))
    assert [r.title for r in everything] == [f"item {n}" for n in reversed(range(7))]
    # batch sizes that divide the total exactly, or exceed it, walk the same rows
    for batch in (1, 7, 100):
        assert await collect(iter_audit(system.sessions, flt, batch=batch)) == everything

    pages: list[list[AuditRow]] = []
    before: int | None = None
    while True:
        rows, before = await audit_page(system.sessions, flt, before_id=before, limit=3)
        pages.append(rows)
        if before is None:
            break
        assert before == rows[-1].decision_id
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r for p in pages for r in p] == everything
    # exactly one full page: no "Older" link to an empty page
    rows, before = await audit_page(system.sessions, flt, before_id=None, limit=7)
    assert len(rows) == 7 and before is None
    # pages keep the filters
    scoped = AuditFilter.from_query({"since": "2026-01-05"}, routes=["support"])
    assert await audit_page(system.sessions, scoped, before_id=None, limit=3) == ([], None)


def test_filter_from_query_values() -> None:
    flt = AuditFilter.from_query(
        {
            "route": " support ",
            "actor": "ann",
            "outcome": "auto_rejected",
            "since": "2026-01-05",
            "until": "2026-01-05",
            "before": "12",  # not a filter: ignored here
        },
        routes=["support", "strict"],
    )
    assert flt == AuditFilter(
        routes=("support", "strict"),
        route="support",
        actor="ann",
        outcome="auto_rejected",
        since=date(2026, 1, 5),
        until=date(2026, 1, 5),
    )
    assert flt.since_at is not None and flt.since_at.isoformat() == "2026-01-05T00:00:00+00:00"
    assert flt.until_before is not None
    assert flt.until_before.isoformat() == "2026-01-06T00:00:00+00:00"
    assert flt.as_query() == {
        "route": "support",
        "actor": "ann",
        "outcome": "auto_rejected",
        "since": "2026-01-05",
        "until": "2026-01-05",
    }
    empty = AuditFilter.from_query({"route": "", "since": " "}, routes=None)
    assert empty == AuditFilter() and empty.as_query() == {}
    assert empty.since_at is None and empty.until_before is None


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"since": "05/01/2026"}, "since", "since: expected YYYY-MM-DD, got '05/01/2026'"),
        ({"since": "2026-02-30"}, "since", "since: expected YYYY-MM-DD, got '2026-02-30'"),
        ({"until": "20260105"}, "until", "until: expected YYYY-MM-DD, got '20260105'"),
        (
            {"outcome": "approve"},
            "outcome",
            "outcome: unknown outcome 'approve'; expected one of approved, edited, "
            "rejected, auto_approved, auto_rejected, expired",
        ),
        (
            {"since": "2026-01-06", "until": "2026-01-05"},
            "until",
            "until: 2026-01-05 is before since (2026-01-06)",
        ),
        ({"actor": "x" * 201}, "actor", "actor: at most 200 characters"),
        ({"route": "sup\x00port"}, "route", "route: must not contain NUL characters"),
    ],
)
def test_bad_filter_values_name_the_field(query: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AuditFilter.from_query(query, routes=None)
    assert caught.value.field == field and caught.value.message == message


def test_parse_before() -> None:
    assert parse_before(None) is None and parse_before("") is None
    assert parse_before("42") == 42
    for bad in ("abc", "0", "-3", "1.5"):
        with pytest.raises(InvalidInput) as caught:
            parse_before(bad)
        assert caught.value.field == "before"


async def test_storage_refuses_an_unknown_outcome(system: System) -> None:
    async with system.sessions() as session:
        with pytest.raises(ValueError, match="unknown outcome 'approve'"):
            await audit_store.decision_records(session, routes=None, outcome="approve", limit=5)
        with pytest.raises(ValueError, match="unknown outcome 'nope'"):
            await audit_store.decision_records(session, routes=None, outcome="nope")


async def test_storage_records_hold_only_the_audit_columns(
    system: System, integrator: Integrator
) -> None:
    item_id = await submit(system, integrator)
    await system.service.decide(item_id=item_id, action="approve", actor=web("ann"))
    async with system.sessions() as session:
        [record] = await audit_store.decision_records(session, routes=["selfok"], actor="ann")
    assert tuple(record.keys()) == audit_store.RECORD_COLUMNS
    assert (record["item_id"], record["title"], record["action"]) == (item_id, "Refund", "approve")


async def test_csv_has_a_bom_a_header_crlf_and_defuses_formulas(
    system: System, integrator: Integrator
) -> None:
    titles = [
        '=HYPERLINK("http://evil.example","click")',
        "+1 for this",
        "-2 refunds",
        "@SUM(A1:A2)",
        "\tTabbed",
        "\rReturned",
        'Plain, with comma and "quotes"',
        "Über café ✓ 日本",
        "a = b",  # not at the start: left alone
    ]
    for title in titles:
        item_id = await submit(system, integrator, route="support", title=title)
        await system.service.decide(
            item_id=item_id,
            action="reject",
            actor=web("ann"),
            reason_text="=cmd|' /C calc'!A0\nsecond line",
        )
    flt = AuditFilter.from_query({}, routes=None)
    data = await join(csv_stream(iter_audit(system.sessions, flt)))
    assert data.startswith(BOM + b"decision_id,at,item_id,route,kind,title,action,outcome,")
    assert data.count(BOM) == 1
    text = data.decode("utf-8-sig")
    assert text.endswith("\r\n") and "\r\n" in text
    records = list(csv.reader(io.StringIO(text, newline="")))
    assert records[0] == list(COLUMNS)
    assert len(records) == len(titles) + 1
    by_title = {r[COLUMNS.index("title")]: r for r in records[1:]}
    expected = [("'" + t if t[0] in "=+-@\t\r" else t) for t in titles]
    assert set(by_title) == set(expected)
    row = by_title['\'=HYPERLINK("http://evil.example","click")']
    assert row[COLUMNS.index("reason_text")] == "'=cmd|' /C calc'!A0\nsecond line"
    assert row[COLUMNS.index("reason_code")] == ""  # None is an empty cell
    assert row[COLUMNS.index("outcome")] == "rejected"
    assert row[COLUMNS.index("since_posted_seconds")] == "0.0"
    assert row[COLUMNS.index("at")] == "2026-01-05T09:00:00Z"
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in records for cell in r)


async def test_an_empty_csv_is_just_the_header(system: System) -> None:
    flt = AuditFilter.from_query({}, routes=None)
    data = await join(csv_stream(iter_audit(system.sessions, flt)))
    assert data == BOM + (",".join(COLUMNS) + "\r\n").encode()
    assert await join(jsonl_stream(iter_audit(system.sessions, flt))) == b""


async def test_jsonl_is_one_raw_object_per_line(
    system: System, integrator: Integrator, clock: FrozenClock
) -> None:
    h = await make_history(system, integrator, clock)
    first = await submit(system, integrator, title="=Über <b>\u2028next\x85line")
    await system.service.decide(item_id=first, action="approve", actor=web("ann"))
    flt = AuditFilter.from_query({"route": "selfok"}, routes=None)
    data = await join(jsonl_stream(iter_audit(system.sessions, flt)))
    assert data.endswith(b"\n") and "Über".encode() in data  # UTF-8, not \u escapes
    lines = data.decode("utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert [list(o) for o in objects] == [list(COLUMNS)] * 2
    assert [o["item_id"] for o in objects] == [first, h.edited]
    # JSONL keeps values as they are; line separators are escaped, so one line each
    assert objects[0]["title"] == "=Über <b>\u2028next\x85line"
    assert objects[1]["outcome"] == "edited" and objects[1]["reason_code"] is None
    assert isinstance(objects[1]["decision_id"], int)
    assert objects[1]["at"] == "2026-01-07T09:00:30Z"


async def test_streams_yield_many_rows_per_chunk() -> None:
    async def fake_rows(n: int) -> AsyncIterator[AuditRow]:
        for i in range(n):
            yield AuditRow(
                decision_id=i + 1,
                at="2026-01-05T09:00:00Z",
                item_id=f"itm_{i:026d}",
                route="support",
                kind="email",
                title=f"Refund for order {i}",
                action="approve",
                outcome="approved",
                surface="web",
                actor_id="ann",
                actor_name="ann",
                reason_code=None,
                reason_text=None,
                since_posted_seconds=1.5,
            )

    csv_chunks = [c async for c in csv_stream(fake_rows(5000))]
    jsonl_chunks = [c async for c in jsonl_stream(fake_rows(5000))]
    for chunks in (csv_chunks, jsonl_chunks):
        assert 2 <= len(chunks) <= 5000 / 50  # dozens of rows per chunk, not one
        assert all(len(c) >= CHUNK_BYTES for c in chunks[:-1])
    text = b"".join(csv_chunks).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text, newline="")))) == 5001
    assert len(b"".join(jsonl_chunks).splitlines()) == 5000


# --- 10,000 decisions: streamed in constant memory ------------------------------------


async def bulk_decisions(system: System, integrator_id: int, *, count: int, start: int) -> None:
    """Insert ``count`` decided items and their decisions in two bulk statements."""
    base = FrozenClock().now()
    items: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    for n in range(start, start + count):
        at = base + timedelta(seconds=n)
        item_id = new_item_id(at)
        items.append(
            {
                "id": item_id,
                "integrator_id": integrator_id,
                "route": ("support", "selfok", "strict")[n % 3],
                "kind": "email",
                "title": f"Refund for order {n:06d}: the parcel arrived damaged, the customer "
                "asks for a full refund",
                "content": EMAIL,
                "metadata": {},
                "state": "approved",
                "outcome": "approved",
                "release_state": "none",
                "version": 2,
                "created_at": at,
                "updated_at": at,
                "decided_at": at,
            }
        )
        decisions.append(
            {
                "item_id": item_id,
                "action": "approve",
                "surface": "web",
                "actor_id": f"U0{n % 7:08d}",
                "actor_name": f"Reviewer {n % 7}",
                "reason_code": None,
                "reason_text": "Checked the order history; the refund amount is right"
                if n % 2
                else None,
                "decisive": True,
                "at": at,
                "since_posted_seconds": float(n % 300),
            }
        )
    async with system.engine.begin() as conn:
        await conn.execute(insert(SQLModel.metadata.tables[Item.__tablename__]), items)
        await conn.execute(insert(SQLModel.metadata.tables[Decision.__tablename__]), decisions)
    if system.engine.dialect.name == "postgresql":
        # Autovacuum would refresh the planner's statistics a little later; a test that
        # loads thousands of rows at once and reads them at once does it itself, or the
        # planner keeps its empty-table estimates and scans whole tables for every page.
        async with system.engine.begin() as conn:
            await conn.execute(text("ANALYZE items, decisions"))


async def csv_peak(system: System, flt: AuditFilter) -> tuple[int, int]:
    """The CSV's size and the peak traced memory while streaming it, chunks discarded
    (the lower of two runs, to smooth out when the garbage collector happens to run)."""
    peaks = []
    for _ in range(2):
        total = 0
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            async for chunk in csv_stream(iter_audit(system.sessions, flt)):
                total += len(chunk)
                del chunk
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return total, min(peaks)


async def test_10000_decisions_stream_in_constant_memory(system: System) -> None:
    # Runs on SQLite and PostgreSQL, about 3 s each. Measured here: a 2.4 MB CSV of
    # 10,000 rows peaks at ~0.45 MB (SQLite) and ~0.7 MB (PostgreSQL; most of it is
    # asyncpg's fixed cost per session), the same as for 2,000 rows.
    started = time.monotonic()
    bulk = await system.keys.authenticate((await system.keys.create(name="bulk")).api_key)
    assert bulk is not None
    integrator_id = bulk.id
    flt = AuditFilter.from_query({}, routes=None)

    await bulk_decisions(system, integrator_id, count=2_000, start=0)
    await join(csv_stream(iter_audit(system.sessions, flt)))  # warm caches before measuring
    small_size, small_peak = await csv_peak(system, flt)

    await bulk_decisions(system, integrator_id, count=8_000, start=2_000)
    chunks = [c async for c in csv_stream(iter_audit(system.sessions, flt))]
    data = b"".join(chunks)
    assert data.startswith(BOM) and len(chunks) > 10
    records = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert records[0] == list(COLUMNS)
    body = records[1:]
    assert len(body) == 10_000
    assert len({r[0] for r in body}) == 10_000  # every decision once
    assert [int(r[0]) for r in body] == sorted((int(r[0]) for r in body), reverse=True)
    assert body[0][COLUMNS.index("title")].startswith("Refund for order 009999")
    assert body[-1][COLUMNS.index("title")].startswith("Refund for order 000000")
    del chunks, data, records, body

    size, peak = await csv_peak(system, flt)
    print(f"CSV of 2,000: {small_size} B, peak {small_peak} B; 10,000: {size} B, peak {peak} B")
    assert size > 4 * small_size
    assert peak < size / 3, (peak, size)
    # the peak does not grow with the number of rows: 5 times the rows, about the same peak
    assert peak < small_peak * 1.5, (small_peak, peak)

    scoped = AuditFilter.from_query({"route": "strict"}, routes=["strict", "selfok"])
    assert len(await collect(iter_audit(system.sessions, scoped))) == 3_333
    assert time.monotonic() - started < 20


# --- the page template ------------------------------------------------------------


@dataclass
class User:
    name: str


def render(**context: Any) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    return env.get_template("audit.html").render(**context)


def test_the_page_renders_escapes_and_keeps_the_filters() -> None:
    flt = AuditFilter.from_query(
        {"route": "support", "outcome": "rejected", "since": "2026-01-05"}, routes=None
    )
    row = AuditRow(
        decision_id=41,
        at="2026-01-05T09:00:30.123456Z",
        item_id="itm_01ABC",
        route="support",
        kind="email",
        title="<script>alert(1)</script>",
        action="reject",
        outcome="rejected",
        surface="web",
        actor_id="u-bob",
        actor_name="bob <b>",
        reason_code="wrong facts",
        reason_text='"quoted" & <i>',
        since_posted_seconds=3.0,
    )
    html = render(
        user=User(name="ann"),
        csrf="x",
        nav="audit",
        flt=flt,
        form={"route": "support", "outcome": "rejected", "since": "2026-01-05", "actor": ""},
        rows=[row],
        next_before=41,
        query=flt.as_query(),
        route_names=["strict", "support"],
        outcomes=OUTCOMES,
    )
    assert "<title>Audit log · signoff</title>" in html
    assert 'data-page="audit"' in html and 'href="/static/audit.css"' in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "bob &lt;b&gt;" in html and "&#34;quoted&#34; &amp; &lt;i&gt;" in html
    assert 'href="/items/itm_01ABC"' in html
    assert '<option value="support" selected>' in html
    assert '<option value="strict">' in html
    assert '<option value="rejected" selected>' in html
    assert 'name="since"\n             value="2026-01-05"' in html
    assert 'name="until"\n             value=""' in html
    assert "2026-01-05 09:00:30" in html
    q = "route=support&amp;outcome=rejected&amp;since=2026-01-05"
    assert f'href="/audit.csv?{q}"' in html and f'href="/audit.jsonl?{q}"' in html
    assert f'href="/audit?{q}&amp;before=41"' in html and "Newest" not in html
    assert "style=" not in html and "<script" not in html.replace(
        '<script src="/static/app.js" defer></script>', ""
    )


def test_the_page_renders_without_filters_rows_or_next() -> None:
    html = render(
        user=User(name="ann"),
        csrf="x",
        nav="audit",
        flt=AuditFilter(),
        form={},
        rows=[],
        next_before=None,
        query={},
        route_names=["support"],
        outcomes=OUTCOMES,
    )
    assert "No decisions match these filters." in html
    assert 'href="/audit.csv"' in html and 'href="/audit.jsonl"' in html
    assert "Older" not in html and "Newest" not in html
    assert 'aria-current="page">Audit log' in html


def test_a_later_page_links_back_and_keeps_an_unlisted_route() -> None:
    flt = AuditFilter.from_query({"route": "retired"}, routes=None)
    html = render(
        user=User(name="ann"),
        csrf="x",
        nav="audit",
        flt=flt,
        form={"route": "retired", "before": "41"},
        rows=[],
        next_before=None,
        query=flt.as_query(),
        route_names=["support"],
        outcomes=OUTCOMES,
        error="since: expected YYYY-MM-DD, got 'x'",
    )
    assert '<option value="retired" selected>retired</option>' in html
    assert '<a href="/audit?route=retired">Newest</a>' in html and "Older" not in html
    assert 'role="alert">since: expected YYYY-MM-DD, got &#39;x&#39;</p>' in html
