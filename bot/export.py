"""Training exports: reviewed drafts as fine-tuning data, streamed in constant memory.

Formats (one JSON object a line):

``sft``
    OpenAI chat fine-tuning, ``{"messages": [...prompt..., {"role": "assistant",
    "content": <released text>}]}``: one row per item a person approved or edited,
    with the version that was released.
``dpo``
    OpenAI preference fine-tuning, ``{"input": {"messages": [...prompt...]},
    "preferred_output": [{"role": "assistant", "content": ...}],
    "non_preferred_output": [...]}``: one row per edit of an item that ended approved
    (the edited version preferred over the version before the edit) and one per
    settled comparison whose choice is ``a`` or ``b`` (that candidate preferred).
``trl``
    TRL preference rows from the same pairs, ``{"prompt", "chosen", "rejected"}``:
    with a chat prompt in TRL's conversational form (the messages, then one assistant
    message each), with a string prompt in its standard form (three strings).
``labels``
    ``{"id", "text", "labels", "route", "decided_by", "decided_at"}`` per label item a
    person approved or edited, with the final labels.

A string prompt becomes one user message in ``sft`` and ``dpo``. Rows need the prompt
that produced the draft (``prompt`` on submit; a comparison's own ``prompt`` field
otherwise): drafts without one, and edits whose two versions read the same, are left
out and counted in :class:`ExportStats` ``skipped``. Automatic decisions, gold items and
expired items are never exported. The database is read in keyset pages of ``page``
rows, each in a short transaction of its own, so memory stays flat however many rows
there are and writers are not held up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, BinaryIO

from bot.errors import InvalidInput
from storage import exports as export_store
from storage import revision_exports
from storage.db import SessionFactory

PAGE = 1_000  # rows per database read
CHUNK_BYTES = 64 * 1024  # bytes per write (and per HTTP body chunk)
_SLICE = 50  # rows encoded between two turns of the event loop (see _encoded)


class ExportFormat(StrEnum):
    """The export formats, by the name the CLI and the API take."""

    sft = "sft"
    dpo = "dpo"
    trl = "trl"
    labels = "labels"


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which rows to export: one route, decided at or after ``since``, one integrator's."""

    route: str | None = None
    since: datetime | None = None
    integrator_id: int | None = None


@dataclass(slots=True)
class ExportStats:
    """What an export has done so far: rows written, source records left out."""

    rows: int = 0
    skipped: int = 0


def parse_format(value: str) -> ExportFormat:
    """The format called ``value``; InvalidInput naming the known formats otherwise."""
    try:
        return ExportFormat(value)
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise InvalidInput(
            f"unknown export format {value!r}; expected one of {known}", field="format"
        ) from None


def parse_since(value: str, *, field: str = "since") -> datetime:
    """A date (``2026-01-31``, midnight UTC) or an ISO 8601 time with a UTC offset."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not a date (2026-01-31) or an ISO 8601 time", field=field
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"give a UTC offset, e.g. {text}+00:00", field=field)
    return parsed.astimezone(UTC)


# -- the released text of each kind -------------------------------------------------------


def _email_text(c: Mapping[str, Any]) -> str:
    return f"Subject: {c['subject']}\n\n{c['body']}"


def _message_text(c: Mapping[str, Any]) -> str:
    return str(c["text"])


def _code_change_text(c: Mapping[str, Any]) -> str:
    return "\n\n".join(part for part in (c["title"], c.get("description"), c["diff"]) if part)


def _decision_text(c: Mapping[str, Any]) -> str:
    return str(c["proposed"])


def _label_text(c: Mapping[str, Any]) -> str:
    return ", ".join(c["labels"])


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "email": _email_text,
    "message": _message_text,
    "code_change": _code_change_text,
    "decision": _decision_text,
    "label": _label_text,
}
"""The assistant text of each kind's content, as it goes into a training row."""


def released_text(kind: str, content: Mapping[str, Any]) -> str:
    """The text of a kind's content that a model would have written."""
    return RENDERERS[kind](content)


# -- rows ---------------------------------------------------------------------------------
#
# Rows are written as text from templates rather than built as dicts and encoded: the
# prompt is copied in as the JSON text the database holds (it was validated on submit),
# and only the texts are encoded, one string each. Building and encoding nested dicts
# for every row was most of an export's time (see BENCHMARKS.md).

# One encoder, built once (json.dumps with options builds a new one per call).
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# What _ENCODE does with a string, without its Python wrapper: the C string encoder.
# Texts are encoded with it directly: two calls a row, a few percent of an export.
_STR: Callable[[str], str] = json.encoder.encode_basestring
_ASSISTANT = '{"role":"assistant","content":'
_RAW_DECODE = json.JSONDecoder().raw_decode


def _decode(text: str) -> Any:
    """JSON text from the database (no surrounding whitespace): json.loads without its
    whitespace checks."""
    return _RAW_DECODE(text)[0]


def _sft_line(messages: str, text: str) -> str:
    head = messages.rstrip()[:-1]  # the array without its closing bracket
    return f'{{"messages":{head},{_ASSISTANT}{_STR(text)}}}]}}\n'


def _dpo_line(messages: str, preferred: str, other: str) -> str:
    return (
        f'{{"input":{{"messages":{messages}}},"preferred_output":[{_ASSISTANT}'
        f'{_STR(preferred)}}}],"non_preferred_output":[{_ASSISTANT}{_STR(other)}}}]}}\n'
    )


def _trl_line(prompt: str, chosen: str, rejected: str) -> str:
    if prompt.startswith('"'):  # a string prompt: TRL's standard form
        return f'{{"prompt":{prompt},"chosen":{_STR(chosen)},"rejected":{_STR(rejected)}}}\n'
    return (  # chat messages: TRL's conversational form
        f'{{"prompt":{prompt},"chosen":[{_ASSISTANT}{_STR(chosen)}}}],'
        f'"rejected":[{_ASSISTANT}{_STR(rejected)}}}]}}\n'
    )


def _prompt_json(raw: str | None) -> str | None:
    """The stored prompt's JSON text (a string or a list of messages), or None when the
    item has none (SQL NULL, JSON null, or empty)."""
    if raw is None or raw in ('""', "[]", "null"):
        return None
    return raw if raw[:1] in ('"', "[") else None


def _messages_json(prompt: str) -> str:
    """A prompt's JSON text as a JSON array of chat messages (a string: one user message)."""
    return f'[{{"role":"user","content":{prompt}}}]' if prompt.startswith('"') else prompt


# -- reading ------------------------------------------------------------------------------


async def export_lines(
    sessions: SessionFactory,
    *,
    fmt: ExportFormat,
    flt: ExportFilter = ExportFilter(),
    stats: ExportStats | None = None,
    page: int = PAGE,
) -> AsyncIterator[str]:
    """Every row of ``fmt`` the filter keeps, one JSON text with its newline each, read
    from the database ``page`` rows at a time."""
    async for lines in _all_batches(sessions, fmt=fmt, flt=flt, stats=stats, page=page):
        for line in lines:
            yield line


async def export_chunks(
    sessions: SessionFactory,
    *,
    fmt: ExportFormat,
    flt: ExportFilter = ExportFilter(),
    stats: ExportStats | None = None,
    page: int = PAGE,
    chunk_bytes: int = CHUNK_BYTES,
) -> AsyncIterator[bytes]:
    """The rows as JSON Lines (UTF-8), in chunks of about ``chunk_bytes`` that end at a
    line's end."""
    parts: list[str] = []
    size = 0
    async for lines in _all_batches(sessions, fmt=fmt, flt=flt, stats=stats, page=page):
        for line in lines:
            parts.append(line)
            size += len(line)
            if size >= chunk_bytes:
                yield "".join(parts).encode()
                parts.clear()
                size = 0
    if parts:
        yield "".join(parts).encode()


async def write_export(
    sessions: SessionFactory,
    *,
    fmt: ExportFormat,
    out: BinaryIO,
    flt: ExportFilter = ExportFilter(),
    on_progress: Callable[[ExportStats], None] | None = None,
    page: int = PAGE,
) -> ExportStats:
    """Write the export to ``out`` (a binary file), calling ``on_progress`` after each
    chunk; the final counts."""
    stats = ExportStats()
    async for chunk in export_chunks(sessions, fmt=fmt, flt=flt, stats=stats, page=page):
        out.write(chunk)
        if on_progress is not None:
            on_progress(stats)
    out.flush()
    return stats


async def _batches(
    sessions: SessionFactory,
    *,
    fmt: ExportFormat,
    flt: ExportFilter,
    stats: ExportStats | None,
    page: int,
) -> AsyncIterator[list[str]]:
    """The lines of each database page (pages are read one at a time on one connection,
    each in a short transaction of its own, ended before its lines are handed on)."""
    if page < 1:
        raise ValueError("page must be at least 1")
    stats = stats if stats is not None else ExportStats()
    scope: dict[str, Any] = {
        "route": flt.route,
        "since": flt.since,
        "integrator_id": flt.integrator_id,
    }

    async with export_store.page_reader(sessions) as conn:

        async def read(after: Any) -> Sequence[Any]:
            if fmt == ExportFormat.sft:
                return await export_store.released_items(
                    conn, kinds=list(RENDERERS), after=after, limit=page, **scope
                )
            if fmt == ExportFormat.labels:
                return await export_store.labelled_items(conn, after=after, limit=page, **scope)
            return await export_store.preference_decisions(conn, after=after, limit=page, **scope)

        # aclosing: a consumer that stops early stops the read in flight before the
        # connection goes back to the pool.
        async with contextlib.aclosing(_encoded(read, fmt=fmt, stats=stats, page=page)) as pages:
            async for lines in pages:
                yield lines


async def _encoded(
    read: Callable[[Any], Awaitable[Sequence[Any]]],
    *,
    fmt: ExportFormat,
    stats: ExportStats,
    page: int,
) -> AsyncGenerator[list[str], None]:
    """The lines of the pages ``read(after)`` returns, walking by the first column.

    The next page is read while this one is encoded: the database (its own process, or
    SQLite's thread) works on the query while this task turns rows into lines, instead
    of each waiting for the other; on PostgreSQL that was most of the gain. The encoding
    lets the read advance every ``_SLICE`` rows (one turn of the event loop each)."""
    reading: asyncio.Task[Sequence[Any]] | None = asyncio.ensure_future(read(None))
    try:
        while reading is not None:
            records, reading = await reading, None
            if not records:
                return
            if len(records) == page:  # a short page is the last one
                reading = asyncio.ensure_future(read(records[-1][0]))
            lines: list[str] = []
            for start in range(0, len(records), _SLICE):
                lines += _lines(fmt, records[start : start + _SLICE], stats)
                if reading is not None:
                    await asyncio.sleep(0)  # let the read of the next page advance
            stats.rows += len(lines)
            yield lines
    finally:
        if reading is not None:  # the consumer stopped early
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading


def _lines(fmt: ExportFormat, records: Sequence[Any], stats: ExportStats) -> list[str]:
    if fmt == ExportFormat.sft:
        lines = _sft(records)
    elif fmt == ExportFormat.labels:
        lines = [_label(r) for r in records]
    else:
        lines = []
        dpo = fmt == ExportFormat.dpo
        for r in records:
            pair = _pair(r)
            if pair is None:
                continue
            prompt, preferred, other = pair
            if dpo:
                lines.append(_dpo_line(_messages_json(prompt), preferred, other))
            else:
                lines.append(_trl_line(prompt, preferred, other))
    stats.skipped += len(records) - len(lines)
    return [line if line.isascii() else _safe(line) for line in lines]


def _sft(records: Sequence[Any]) -> list[str]:
    lines = []
    for _id, kind, raw_prompt, raw_final in records:
        prompt = _prompt_json(raw_prompt)
        if prompt is None or raw_final is None:
            continue
        final = _RAW_DECODE(raw_final)[0]
        if final:
            lines.append(_sft_line(_messages_json(prompt), RENDERERS[kind](final)))
    return lines


def _pair(record: Any) -> tuple[str, str, str] | None:
    """(prompt JSON, preferred text, the other text) of an edit or a comparison, or None
    when it makes no usable pair (no prompt, or nothing that reads differently)."""
    _id, kind, raw_prompt, choice, raw_before, raw_after, raw_comparison = record
    prompt = _prompt_json(raw_prompt)
    if raw_comparison is not None:
        comparison = _decode(raw_comparison)
        if prompt is None and comparison.get("prompt"):
            prompt = _ENCODE(str(comparison["prompt"]))
        a, b = _candidate(comparison.get("a")), _candidate(comparison.get("b"))
        preferred, other = (a, b) if choice == "a" else (b, a)
    else:
        render = RENDERERS.get(kind)
        if render is None or raw_before is None or raw_after is None:
            return None
        before, after = _RAW_DECODE(raw_before)[0], _RAW_DECODE(raw_after)[0]
        if not before or not after:
            return None
        preferred, other = render(after), render(before)
    if prompt is None or preferred == other:
        return None
    return prompt, preferred, other


def _candidate(value: Any) -> str:
    return value if isinstance(value, str) else _ENCODE(value)


def _label(record: Any) -> str:
    item_id, route, raw_final, decided_at, actor_name = record
    final = _decode(raw_final)
    row = {
        "id": item_id,
        "text": final["text"],
        "labels": final["labels"],
        "route": route,
        "decided_by": actor_name,
        "decided_at": decided_at.isoformat().replace("+00:00", "Z"),
    }
    return _ENCODE(row) + "\n"


# Line breaks other than \n that JSON may leave raw in strings (PostgreSQL's JSON text
# does, and so does the encoder above) but line readers split on.
_BREAKS = re.compile("[\x85\u2028\u2029]")
_ESCAPED = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _safe(line: str) -> str:
    if line.isascii() or not _BREAKS.search(line):
        return line
    return line.translate(_ESCAPED)


async def _all_batches(
    sessions: SessionFactory,
    *,
    fmt: ExportFormat,
    flt: ExportFilter,
    stats: ExportStats | None,
    page: int,
) -> AsyncIterator[list[str]]:
    """:func:`_batches`, then for ``dpo`` and ``trl`` the redraft pairs: each revision a
    reviewer rejected with "Reject and redraft", against the revision they approved, on
    the task's prompt (the same prompt for both, as a preference pair needs)."""
    stats = stats if stats is not None else ExportStats()
    async for lines in _batches(sessions, fmt=fmt, flt=flt, stats=stats, page=page):
        yield lines
    if fmt not in (ExportFormat.dpo, ExportFormat.trl):
        return
    after: str | None = None
    while True:
        async with sessions() as session:
            records = await revision_exports.redrafted_items(
                session,
                after=after,
                limit=page,
                route=flt.route,
                since=flt.since,
                integrator_id=flt.integrator_id,
            )
        if not records:
            return
        after = records[-1][0]
        lines = [_safe(line) for r in records for line in _redraft_lines(fmt, r, stats)]
        stats.rows += len(lines)
        yield lines
        if len(records) < page:
            return


def _redraft_lines(fmt: ExportFormat, record: Any, stats: ExportStats) -> list[str]:
    _id, kind, raw_prompt, final, revisions = record
    prompt = _prompt_json(raw_prompt)
    render = RENDERERS.get(kind)
    if prompt is None or render is None or not final:
        stats.skipped += 1
        return []
    preferred = render(final)
    lines = []
    for revision in revisions or []:
        other = render(revision.get("content") or {})
        if other == preferred:
            continue
        if fmt == ExportFormat.dpo:
            lines.append(_dpo_line(_messages_json(prompt), preferred, other))
        else:
            lines.append(_trl_line(prompt, preferred, other))
    return lines
