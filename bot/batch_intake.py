"""Batch submit: up to 1,000 items in one call and one transaction (``POST /v1/items:batch``).

For high-volume integrators. The contract, entry by entry as ``POST /v1/items``:

* Every entry is checked first (schema, route, kind, content, callback host); if any
  is invalid nothing is stored and the error names each bad entry by index and field
  (``items.17.content.to: ...``).
* Idempotent per entry: an entry's ``idempotency_key`` already used by this integrator
  with the same body returns the stored item (``created: false``); with another body the
  whole batch is refused (409, naming the index). Two entries of one batch with the
  same key and body are one item; with different bodies, a 409.
* All new rows (items, and for the ones policy decides at once their decision and
  outbox rows, exactly as a single submit builds them) go in through the service's
  group writer in ONE transaction: all or none, committed when the call returns.
* Then, after the commit, each new item is announced as a single submit does (cards of
  pending items posted, waiters and the release worker told about decided ones). That
  runs in a background task, since posting 1,000 cards into a chat channel is paced at
  the chat platform's rate; a chat card not posted by then is posted by the sweep
  (``post_due_at``), as for a single submit whose process died before posting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from bot.auth import Integrator
from bot.errors import Conflict, InvalidInput
from bot.intake import Draft, NewItem, check_draft
from bot.routes import RouteTable
from bot.schemas import ItemCreate, ItemPublic
from bot.service import ReviewService
from bot.views import item_public
from storage import items as item_store
from storage.db import SessionFactory
from storage.idempotency import items_by_idempotency_keys
from storage.models import Decision

log = logging.getLogger("signoff.batch")

MAX_ITEMS = 1000
# Batches whose announcing (posting cards) still runs; one more waits for room, so a
# client that outpaces the chat platforms cannot pile up work without bound.
MAX_BACKLOG = 8
_MAX_KEY_RACES = 3  # another request took one of the batch's keys meanwhile: look again
# Checking and building 1,000 items is CPU work of a few hundred ms: hand the event loop
# back every so many entries, so other requests (a chat platform's 3 s deadline to
# acknowledge a click among them) are not held up behind a batch.
_YIELD_EVERY = 50


class BatchEntry(ItemCreate):
    """One item of a batch: an item as ``POST /v1/items`` takes it, plus its own
    optional ``idempotency_key`` (what the ``Idempotency-Key`` header is for one item)."""

    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)

    def item(self) -> ItemCreate:
        """The entry without its key: what the key's stored body must match."""
        values = {name: getattr(self, name) for name in ItemCreate.model_fields}
        given = self.model_fields_set - {"idempotency_key"}
        return ItemCreate.model_construct(_fields_set=given, **values)


class ItemBatchCreate(BaseModel):
    """The body of ``POST /v1/items:batch``."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchEntry] = Field(min_length=1, max_length=MAX_ITEMS)


class BatchResult(BaseModel):
    index: int  # the entry's position in the request, from 0
    created: bool  # False: an idempotent replay returned the stored item
    item: ItemPublic


class ItemBatchPublic(BaseModel):
    """The answer of ``POST /v1/items:batch``: one result per entry, in request order."""

    items: list[BatchResult]


@dataclass(frozen=True, slots=True)
class _Stored:
    item: ItemPublic
    request_hash: str | None


class BatchIntake:
    """Batch submit on top of a :class:`ReviewService` (its checks, rows and writer)."""

    def __init__(
        self, *, service: ReviewService, sessions: SessionFactory, routes: RouteTable
    ) -> None:
        self._service = service
        self._sessions = sessions
        self._routes = routes
        self._announcing: set[asyncio.Task[None]] = set()

    async def submit(
        self, *, integrator: Integrator, entries: Sequence[BatchEntry]
    ) -> list[BatchResult]:
        """Check, store in one transaction and announce ``entries``; one result per entry
        in their order. Raises InvalidInput naming every bad entry (nothing stored) and
        Conflict naming every entry whose key was used with another body."""
        if not 1 <= len(entries) <= MAX_ITEMS:
            raise InvalidInput(
                f"a batch holds 1 to {MAX_ITEMS} items, not {len(entries)}", field="items"
            )
        drafts = await self._check(entries)
        keys = [e.idempotency_key for e in entries if e.idempotency_key is not None]
        attempt = 1
        while True:
            stored = await self._stored(integrator, keys)
            results, fresh = await self._build(integrator, entries, drafts, stored)
            try:
                if fresh:
                    await self._service.writer.insert([r for new in fresh for r in new.rows])
                break
            except IntegrityError:
                if not keys or attempt == _MAX_KEY_RACES:
                    raise
                attempt += 1  # a concurrent request stored one of our keys: a replay now
        await self._announce_later(fresh)
        return results

    async def drain(self) -> None:
        """Wait until the cards of every batch so far are posted (tests; shutdown)."""
        while self._announcing:
            await asyncio.gather(*self._announcing, return_exceptions=True)

    # -- steps -----------------------------------------------------------------------------

    async def _check(self, entries: Sequence[BatchEntry]) -> list[Draft]:
        drafts: list[Draft] = []
        problems: list[str] = []
        for n, entry in enumerate(entries):
            if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            try:
                drafts.append(
                    check_draft(
                        entry.item(),
                        routes=self._routes,
                        keyed=entry.idempotency_key is not None,
                        where=f"items.{n}.",
                    )
                )
            except InvalidInput as exc:
                problems.append(exc.message)
        if problems:
            raise InvalidInput("; ".join(problems))
        return drafts

    async def _stored(self, integrator: Integrator, keys: Sequence[str]) -> dict[str, _Stored]:
        if not keys:
            return {}
        async with self._sessions() as session:
            rows = await items_by_idempotency_keys(
                session, integrator_id=integrator.id, keys=sorted(set(keys))
            )
            decisions = await item_store.decisions_for(session, item_ids=[r.id for r in rows])
        by_item: dict[str, list[Decision]] = {}
        for d in decisions:
            by_item.setdefault(d.item_id, []).append(d)
        return {
            str(row.idempotency_key): _Stored(
                item_public(row, by_item.get(row.id, []), self._routes),
                row.request_hash,
            )
            for row in rows
        }

    async def _build(
        self,
        integrator: Integrator,
        entries: Sequence[BatchEntry],
        drafts: Sequence[Draft],
        stored: dict[str, _Stored],
    ) -> tuple[list[BatchResult], list[NewItem]]:
        """The result of every entry, and the rows of the new items among them."""
        results: list[BatchResult] = []
        fresh: list[NewItem] = []
        first_with_key: dict[str, int] = {}
        conflicts: list[str] = []
        for n, (entry, draft) in enumerate(zip(entries, drafts, strict=True)):
            if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            key = entry.idempotency_key
            if key is not None and key in stored:
                old = stored[key]
                if old.request_hash != draft.request_hash:
                    conflicts.append(
                        f"items.{n}.idempotency_key: {key!r} was already used with a "
                        f"different body (item {old.item.id})"
                    )
                results.append(BatchResult.model_construct(index=n, created=False, item=old.item))
                continue
            if key is not None and key in first_with_key:
                first = first_with_key[key]
                if drafts[first].request_hash != draft.request_hash:
                    conflicts.append(
                        f"items.{n}.idempotency_key: {key!r} is also the key of items.{first}, "
                        "with a different body"
                    )
                results.append(  # one item for both: stored with the first
                    BatchResult.model_construct(index=n, created=False, item=results[first].item)
                )
                continue
            if key is not None:
                first_with_key[key] = n
            new = await self._service.prepare(
                integrator=integrator, draft=draft, idempotency_key=key
            )
            fresh.append(new)
            results.append(BatchResult.model_construct(index=n, created=True, item=new.item))
        if conflicts:
            raise Conflict("; ".join(conflicts))
        return results, fresh

    async def _announce_later(self, items: list[NewItem]) -> None:
        if not items:
            return
        while len(self._announcing) >= MAX_BACKLOG:
            await asyncio.wait(self._announcing, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self._announce(items))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def _announce(self, items: list[NewItem]) -> None:
        for n, new in enumerate(items):
            if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            try:
                await self._service.announce(new.item, queued=new.queued)
            except Exception:  # one surface's failure must not keep the others' cards back
                log.exception("item %s: announcing it after its batch failed", new.item.id)
