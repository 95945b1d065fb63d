"""The audit log of the web inbox: its filter, its page and its CSV and JSONL exports.

The exports walk the decisions in pages of ``batch`` rows, each read in its own short
session, and yield bytes in chunks of many rows: a download of any length holds one page
in memory and never keeps a transaction (on SQLite, the write lock) open while the
client reads slowly.

Titles come from AI output and reasons from people, so a CSV cell that a spreadsheet
would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is written with a leading apostrophe. JSONL carries the values as they are.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import RowMapping
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput
from storage.audit import ACTION_OUTCOMES, OUTCOME_ACTIONS, decision_records
from storage.db import SessionFactory

OUTCOMES: tuple[str, ...] = tuple(OUTCOME_ACTIONS)
"""The public outcome words the ``outcome`` filter accepts, for the form's select."""

# Memory while streaming is about the driver's buffers (~0.3 MB on asyncpg), one
# chunk a few times over, and ~1 KB per row of a batch: ~0.6 MB at these sizes,
# whatever the length of the export.
BATCH = 200
CHUNK_BYTES = 32 * 1024
BOM = "\ufeff".encode()
_MAX_TEXT = 200
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Line breaks JSON leaves raw but str.splitlines() and some readers split on.
_JSONL_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What the audit log shows: the reader's routes and the chosen filters.

    ``routes`` is what the reader may review (None: every route). ``since`` and
    ``until`` are days in UTC, both included: ``until=2026-01-05`` keeps that whole day.
    """

    routes: tuple[str, ...] | None = None
    route: str | None = None
    actor: str | None = None
    outcome: str | None = None
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_query(cls, values: Mapping[str, str], *, routes: Sequence[str] | None) -> AuditFilter:
        """The filter from query-string values (``route``, ``actor``, ``outcome``,
        ``since``, ``until``; empty or missing: no filter; other keys are ignored).

        Raises InvalidInput naming the field: a date that is not ``YYYY-MM-DD``, an
        unknown outcome (the message lists the valid ones), ``until`` before ``since``,
        or a route or actor longer than 200 characters.
        """
        route = _text(values, "route")
        actor = _text(values, "actor")
        outcome = _text(values, "outcome")
        if outcome is not None and outcome not in OUTCOME_ACTIONS:
            raise InvalidInput(
                f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}",
                field="outcome",
            )
        since = _day(values, "since")
        until = _day(values, "until")
        if since is not None and until is not None and until < since:
            raise InvalidInput(
                f"{until.isoformat()} is before since ({since.isoformat()})", field="until"
            )
        return cls(
            routes=None if routes is None else tuple(routes),
            route=route,
            actor=actor,
            outcome=outcome,
            since=since,
            until=until,
        )

    @property
    def since_at(self) -> datetime | None:
        """The first instant included: ``since`` at 00:00 UTC."""
        return None if self.since is None else datetime.combine(self.since, time(), UTC)

    @property
    def until_before(self) -> datetime | None:
        """The first instant excluded: the day after ``until`` at 00:00 UTC."""
        if self.until is None:
            return None
        return datetime.combine(self.until + timedelta(days=1), time(), UTC)

    def as_query(self) -> dict[str, str]:
        """The chosen filters as query-string values (for links that keep them)."""
        values = {
            "route": self.route,
            "actor": self.actor,
            "outcome": self.outcome,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One decision as the audit log shows and exports it; fields in column order."""

    decision_id: int
    at: str  # ISO 8601, UTC, e.g. 2026-01-05T09:00:00Z
    item_id: str
    route: str
    kind: str
    title: str
    action: str
    outcome: str  # the public word of the action: approved, edited, ...
    surface: str
    actor_id: str
    actor_name: str
    reason_code: str | None
    reason_text: str | None
    since_posted_seconds: float

    @classmethod
    def of_record(cls, record: Mapping[Any, Any]) -> AuditRow:
        """The row of a :func:`storage.audit.decision_records` mapping."""
        return cls(
            decision_id=record["decision_id"],
            at=_iso(record["at"]),
            item_id=record["item_id"],
            route=record["route"],
            kind=record["kind"],
            title=record["title"],
            action=record["action"],
            outcome=ACTION_OUTCOMES.get(record["action"], record["action"]),
            surface=record["surface"],
            actor_id=record["actor_id"],
            actor_name=record["actor_name"],
            reason_code=record["reason_code"],
            reason_text=record["reason_text"],
            since_posted_seconds=record["since_posted_seconds"],
        )

    def as_dict(self) -> dict[str, Any]:
        """The fields by column name, in column order."""
        return {name: getattr(self, name) for name in COLUMNS}


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(AuditRow))
"""The export columns, in order: the CSV header and the JSONL keys."""


def parse_before(value: str | None) -> int | None:
    """The ``before`` cursor of the page query string; raises InvalidInput if not a
    positive integer."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"expected a positive integer, got {value!r}", field="before")
    return int(text)


async def audit_page(
    sessions: SessionFactory, flt: AuditFilter, *, before_id: int | None, limit: int = 100
) -> tuple[list[AuditRow], int | None]:
    """One page of the audit log, newest first, and the ``before_id`` of the next
    (older) page, or None when this is the last one."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    async with sessions() as session:
        page = await _records(session, flt, before_id=before_id, limit=limit + 1)
    rows = [AuditRow.of_record(record) for record in page[:limit]]
    next_before = rows[-1].decision_id if len(page) > limit else None
    return rows, next_before


async def iter_audit(
    sessions: SessionFactory, flt: AuditFilter, *, batch: int = BATCH
) -> AsyncIterator[AuditRow]:
    """Every decision the filter keeps, newest first, read ``batch`` at a time (plain
    columns, no ORM objects), each batch in a new short session that is closed before
    its rows are yielded."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    before_id: int | None = None
    while True:
        async with sessions() as session:
            records = await _records(session, flt, before_id=before_id, limit=batch)
        if not records:
            return
        before_id = records[-1]["decision_id"]
        full = len(records) == batch
        records.reverse()
        while records:  # hand the rows over one by one, dropping each as it goes
            yield AuditRow.of_record(records.pop())
        if not full:
            return


async def csv_stream(
    rows: AsyncIterator[AuditRow], *, chunk_bytes: int = CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """The rows as UTF-8 CSV: a byte-order mark (so spreadsheets read UTF-8), a header
    of :data:`COLUMNS`, CRLF line ends, formula-like cells defused with an apostrophe;
    yielded in chunks of about ``chunk_bytes``."""
    out = _Lines()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    first = True
    async for row in rows:
        writer.writerow([_cell(getattr(row, name)) for name in COLUMNS])
        if out.size >= chunk_bytes:
            yield (BOM if first else b"") + out.take()
            first = False
    yield (BOM if first else b"") + out.take()


async def jsonl_stream(
    rows: AsyncIterator[AuditRow], *, chunk_bytes: int = CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """The rows as JSON Lines (UTF-8, one object per line with the :data:`COLUMNS` as
    keys), yielded in chunks of about ``chunk_bytes``."""
    out = _Lines()
    async for row in rows:
        out.write(json.dumps(row.as_dict(), ensure_ascii=False).translate(_JSONL_BREAKS))
        out.write("\n")
        if out.size >= chunk_bytes:
            yield out.take()
    if out.size:
        yield out.take()


async def _records(
    session: AsyncSession, flt: AuditFilter, *, before_id: int | None, limit: int
) -> list[RowMapping]:
    return await decision_records(
        session,
        routes=flt.routes,
        route=flt.route,
        actor=flt.actor,
        outcome=flt.outcome,
        since=flt.since_at,
        until=flt.until_before,
        before_id=before_id,
        limit=limit,
    )


class _Lines:
    """A text sink for csv.writer that hands its contents over as UTF-8 bytes."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.size += len(text)
        return len(text)

    def take(self) -> bytes:
        data = "".join(self.parts).encode("utf-8")
        self.parts.clear()
        self.size = 0
        return data


def _text(values: Mapping[str, str], field: str) -> str | None:
    raw = values.get(field)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    if len(text) > _MAX_TEXT:
        raise InvalidInput(f"at most {_MAX_TEXT} characters", field=field)
    if "\x00" in text:
        raise InvalidInput("must not contain NUL characters", field=field)
    return text


def _day(values: Mapping[str, str], field: str) -> date | None:
    raw = values.get(field)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"expected YYYY-MM-DD, got {raw!r}", field=field) from None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
