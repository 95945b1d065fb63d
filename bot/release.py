"""The release worker: claims due outbox rows, delivers them, records what happened.

At-least-once delivery with an idempotency key that is the same on every attempt gives
exactly-once effect at a target that honours it (DESIGN §6). Failures back off
exponentially with jitter; after the last attempt the row and the item's release are
``failed`` with the last error kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.errors import ReleaseError
from bot.outbox import RELEASE, release_link
from bot.ports import DeliveryRequest, DeliveryTarget
from bot.states import ReleaseState, next_release_state
from storage import claims as claim_store
from storage import items as item_store
from storage import keys as key_store
from storage import outbox as outbox_store
from storage.db import SessionFactory
from storage.models import Delivery, DeliveryAttempt

log = logging.getLogger("signoff.release")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 3600.0
    lease_seconds: float = 120.0

    def delay(self, attempt: int, *, rand: Callable[[], float] = random.random) -> timedelta:
        """Exponential backoff with jitter: between half and all of base·2^(attempt-1)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return timedelta(seconds=ceiling * (0.5 + rand() / 2))


class ReleaseWorker:
    """Delivers outbox rows. ``run_once`` is one pass (tests drive it with a clock);
    ``run`` loops until stopped, waking when told that rows were queued."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        targets: Mapping[str, DeliveryTarget],
        clock: Clock,
        policy: RetryPolicy | None = None,
        on_change: Callable[[str], None] = lambda _item_id: None,
        on_release: Callable[[str], Awaitable[None]] | None = None,
        batch: int = 16,
    ) -> None:
        self._sessions = sessions
        self._targets = targets
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._on_change = on_change
        self._on_release = on_release
        self._batch = batch
        self._wake = asyncio.Event()
        # Rows this worker claimed and has not finished (id -> lease), handed back at shutdown.
        self._held: dict[int, tuple[str, datetime]] = {}

    def wake(self) -> None:
        """Tell the worker that rows were queued."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim and deliver what is due now; return how many rows were attempted."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            claimed = await outbox_store.claim_due(
                session,
                now=now,
                lease=timedelta(seconds=self._policy.lease_seconds),
                limit=self._batch,
            )
        for row in claimed:
            assert row.id is not None and row.claimed_until is not None
            self._held[row.id] = (row.item_id, row.claimed_until)
        await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    async def hand_back(self) -> int:
        """Release the claims of deliveries this worker started and did not finish (it
        was cancelled at shutdown), so another replica delivers them now rather than when
        the lease runs out; the attempt is not counted. How many rows were handed back."""
        held, self._held = self._held, {}
        if not held:
            return 0
        async with self._sessions() as session, session.begin():
            released = await claim_store.release_deliveries(
                session, claims=[(delivery_id, until) for delivery_id, (_, until) in held.items()]
            )
        for delivery_id in released:  # other replicas' workers hear of it and wake
            self._on_change(held[delivery_id][0])
        if released:
            log.info("handed back %d claimed deliveries", len(released))
        return len(released)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.run_once():
                    continue
                timeout = await self._idle_seconds()
            except Exception:
                log.exception("release worker pass failed; retrying shortly")
                timeout = 1.0
            self._wake.clear()
            waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()

    async def _idle_seconds(self) -> float:
        async with self._sessions() as session:
            due = await outbox_store.next_due_at(session)
        if due is None:
            return 5.0  # rows queued by another replica are picked up this often
        return max(0.0, min(5.0, (due - self._clock.now()).total_seconds()))

    async def _deliver(self, row: Delivery) -> None:
        assert row.id is not None
        try:
            request = await self._request(row)
            target = self._targets.get(row.target_type)
            if target is None:
                raise ReleaseError(f"no {row.target_type} target is configured", retryable=False)
            receipt = await target.deliver(request=request)
        except ReleaseError as exc:
            await self._failed(row, str(exc), retryable=exc.retryable)
        except Exception as exc:  # a bug in a target must not stop the worker
            log.exception("delivery %s crashed", row.id)
            await self._failed(row, f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            await self._delivered(row, receipt)
        self._held.pop(row.id, None)  # not when cancelled: that claim is handed back

    async def _request(self, row: Delivery) -> DeliveryRequest:
        async with self._sessions() as session:
            item = await item_store.get_item(session, item_id=row.item_id)
            key = await key_store.key_by_id(session, key_id=item.integrator_id) if item else None
        if key is None:
            raise ReleaseError("the integrator's key no longer exists", retryable=False)
        # A webhook gets the event and the item; the chain bookkeeping stays with us.
        body = json.dumps(
            {"event": row.payload.get("event"), "item": row.payload.get("item")},
            separators=(",", ":"),
        ).encode()
        return DeliveryRequest(
            url=row.url,
            body=body,
            idempotency_key=row.idempotency_key,
            signing_secret=key.signing_secret,
            event=str(row.payload.get("event", "")),
            attempt=row.attempts,
            item=row.payload.get("item") or {},
            target=row.payload.get("target") or {"type": row.target_type, "url": row.url},
        )

    async def _delivered(self, row: Delivery, receipt: str) -> None:
        assert row.id is not None
        async with self._sessions() as session, session.begin():
            await outbox_store.mark_delivered(
                session, delivery_id=row.id, now=self._clock.now(), receipt=receipt
            )
            await self._record(session, row, ok=True, detail=receipt)
            following = self._next_link(row)
            if following is not None:
                await outbox_store.enqueue(session, delivery=following)
            elif row.purpose == RELEASE:
                await self._set_release(session, row.item_id, ReleaseState.released, None)
        if following is not None:
            self.wake()
        log.info(
            "delivered %s %s (attempt %d): %s", row.purpose, row.item_id, row.attempts, receipt
        )
        self._on_change(row.item_id)
        if row.purpose == RELEASE and following is None:
            await self._released(row.item_id)

    def _next_link(self, row: Delivery) -> Delivery | None:
        """The next link of a release chain, once this one is delivered."""
        chain = row.payload.get("chain") or []
        link = int(row.payload.get("link") or 0)
        if row.purpose != RELEASE or link + 1 >= len(chain):
            return None
        return release_link(
            item_id=row.item_id,
            snapshot=row.payload["item"],
            chain=chain,
            link=link + 1,
            now=self._clock.now(),
            max_attempts=row.max_attempts,
        )

    async def _failed(self, row: Delivery, error: str, *, retryable: bool) -> None:
        assert row.id is not None
        async with self._sessions() as session, session.begin():
            await self._record(session, row, ok=False, detail=error)
            if retryable and row.attempts < row.max_attempts:
                when = self._clock.now() + self._policy.delay(row.attempts)
                await outbox_store.mark_retry(
                    session, delivery_id=row.id, next_attempt_at=when, error=error
                )
                log.warning(
                    "%s %s attempt %d failed: %s; retry at %s",
                    row.purpose,
                    row.item_id,
                    row.attempts,
                    error,
                    when.isoformat(),
                )
                self._on_change(row.item_id)
                return
            await outbox_store.mark_failed(session, delivery_id=row.id, error=error)
            if row.purpose == RELEASE:
                await self._set_release(session, row.item_id, ReleaseState.failed, error)
        log.error(
            "%s %s failed after %d attempts: %s", row.purpose, row.item_id, row.attempts, error
        )
        self._on_change(row.item_id)
        if row.purpose == RELEASE:
            await self._released(row.item_id)

    async def _released(self, item_id: str) -> None:
        """The release ended (released or failed): the cards say so."""
        if self._on_release is None:
            return
        try:
            await self._on_release(item_id)
        except Exception:  # a surface outage must not stop the worker
            log.exception("item %s: updating the cards after its release failed", item_id)

    async def _record(self, session: AsyncSession, row: Delivery, *, ok: bool, detail: str) -> None:
        assert row.id is not None
        await item_store.add_attempt(
            session,
            attempt=DeliveryAttempt(
                delivery_id=row.id,
                item_id=row.item_id,
                purpose=row.purpose,
                attempt=row.attempts,
                ok=ok,
                detail=detail[:2000],
                at=self._clock.now(),
            ),
        )

    async def _set_release(
        self, session: AsyncSession, item_id: str, state: ReleaseState, error: str | None
    ) -> None:
        now = self._clock.now()
        item = await item_store.get_item(session, item_id=item_id)
        if item is None:
            return
        item.release_state = next_release_state(ReleaseState(item.release_state), state).value
        item.release_error = error
        item.updated_at = max(item.updated_at, now)
        session.add(item)
