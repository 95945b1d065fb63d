"""Drafting tasks: an integrator hands over a task, signoff drafts the item with a model
and submits it for review (``POST /v1/tasks``).

A task is stored before it is acknowledged (202) and drafted in the background under a
lease; a process that dies mid-draft leaves the lease to run out and the task loop
(:meth:`TaskDesk.run_due`) takes it over. The drafted item is submitted with the
idempotency key ``task:<task id>``, so a takeover never submits it twice. A task that
cannot be drafted (the model's answer invalid twice, a timeout, the route's daily
budget spent) is ``failed`` with an error naming what was wrong, and the integrator's
``callback_url`` gets a signed ``task.failed`` event (retried with backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from datetime import UTC, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.auth import Integrator
from bot.clock import Clock
from bot.drafting import Drafter, DraftFailed, Usage, schema_for
from bot.errors import (
    BudgetExceeded,
    Conflict,
    InvalidInput,
    NotFound,
    SignoffError,
    Unavailable,
)
from bot.ids import new_item_id
from bot.intake import check_callback, route_named
from bot.kinds import get_kind
from bot.leased_runs import LeasedRuns
from bot.notify import Notifier
from bot.ports import DeliveryTarget
from bot.redraft import Redrafter
from bot.release import RetryPolicy
from bot.routes import Route, RouteTable
from bot.schemas import ItemCreate
from bot.service import Drafted, ReviewService
from bot.spending import Spending, call_row
from bot.task_callbacks import FailureCallbacks, task_public
from bot.task_schemas import TaskCreate, TaskPublic
from storage import items as item_store
from storage import keys as key_store
from storage import tasks as task_store
from storage.db import SessionFactory
from storage.models import Task

log = logging.getLogger("signoff.tasks")

RECHECK_SECONDS = 1.0  # a waiting reader also re-reads the task this often


def _spent(usage: Usage) -> dict[str, object]:
    """Column increments that add ``usage`` to a task's totals (in SQL: no stale reads)."""
    return {
        "input_tokens": col(Task.input_tokens) + usage.input_tokens,
        "output_tokens": col(Task.output_tokens) + usage.output_tokens,
        "cost": col(Task.cost) + usage.cost,
    }


def _title(data: TaskCreate) -> str:
    first = data.instructions.strip().splitlines()[0] if data.instructions.strip() else data.kind
    return data.title or (first if len(first) <= 120 else first[:119] + "…")


class TaskDesk:
    """Takes tasks, drafts them, submits the drafts, reports failures."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        clock: Clock,
        service: ReviewService,
        notifier: Notifier,
        spending: Spending,
        drafter: Drafter | None,
        model: str,
        callbacks: DeliveryTarget | None,
        lease: timedelta,
        callback_attempts: int = 8,
        retry: RetryPolicy | None = None,
        redrafter: Redrafter | None = None,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._clock = clock
        self._service = service
        self._notifier = notifier
        self._spending = spending
        self._drafter = drafter
        self._model = model
        self._failures = FailureCallbacks(
            sessions=sessions,
            clock=clock,
            target=callbacks,
            max_attempts=callback_attempts,
            retry=retry or RetryPolicy(),
        )
        self._lease = lease
        self._redrafter = redrafter  # its abandoned redrafts are taken over here too
        self._runs = LeasedRuns(run=self.run, log=log, what="task %s: drafting")

    # -- the API -----------------------------------------------------------------------

    async def create(
        self, *, integrator: Integrator, data: TaskCreate, idempotency_key: str | None = None
    ) -> tuple[TaskPublic, bool]:
        """Store a task and start drafting it; (the task, whether it is new). A replay
        with the same ``idempotency_key`` and body returns the stored task; another body
        raises Conflict. Raises InvalidInput (unknown route or kind, a kind that cannot be
        drafted, a callback host the route does not allow), Unavailable (no model
        configured) and BudgetExceeded (the route's daily budget is spent)."""
        route = route_named(self._routes, data.route)
        get_kind(data.kind)
        if data.kind == "comparison":
            raise InvalidInput("a comparison cannot be drafted; submit it as an item", field="kind")
        schema_for(data.kind)
        if data.callback_url is not None:
            check_callback(route, data.callback_url)
        if self._drafter is None:
            raise Unavailable(
                "drafting is not configured on this server: set SIGNOFF_OPENAI_MODEL and "
                "SIGNOFF_OPENAI_API_KEY (or SIGNOFF_OPENAI_BASE_URL for a local server)"
            )
        request_hash = None
        if idempotency_key is not None:
            request_hash = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
            replay = await self._replay(integrator, idempotency_key, request_hash)
            if replay is not None:
                return replay, False
        await self._spending.check(route)
        now = self._clock.now()
        task = Task(
            id=new_item_id(now).replace("itm_", "tsk_", 1),
            integrator_id=integrator.id,
            route=route.name,
            kind=data.kind,
            title=_title(data),
            instructions=data.instructions,
            context=data.context,
            callback_url=data.callback_url,
            meta=data.metadata,
            requested_by=data.requested_by,
            due_at=data.due_at.astimezone(UTC) if data.due_at else None,
            state="drafting",
            attempts=1,
            lease_until=now + self._lease,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(task)
        except IntegrityError:
            if idempotency_key is None:
                raise
            replay = await self._replay(integrator, idempotency_key, request_hash)
            if replay is None:
                raise
            return replay, False
        public = task_public(task)
        self._start(task.id)
        return public, True

    async def get(self, *, task_id: str, integrator_id: int | None = None) -> TaskPublic:
        async with self._sessions() as session:
            task = await task_store.get_task(session, task_id=task_id, integrator_id=integrator_id)
        if task is None:
            raise NotFound(f"no task {task_id}")
        return task_public(task)

    async def wait(
        self, *, task_id: str, integrator_id: int | None = None, within: float
    ) -> TaskPublic:
        """The task once it left ``drafting``, or as it is after ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            task = await self.get(task_id=task_id, integrator_id=integrator_id)
            remaining = deadline - time.monotonic()
            if task.state != "drafting" or remaining <= 0:
                return task
            await self._notifier.wait(task_id, within=min(remaining, RECHECK_SECONDS))

    # -- drafting ----------------------------------------------------------------------

    def _start(self, task_id: str) -> None:
        self._runs.start(task_id)

    async def drain(self) -> None:
        """Wait for the drafts started in this process (tests, shutdown)."""
        await self._runs.drain()

    async def hand_back(self) -> int:
        """At shutdown: stop the drafts running here and end their leases, so another
        replica takes them over at once; how many were handed back."""
        held = await self._runs.stop()
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            for task_id in held:
                await task_store.release_task(session, task_id=task_id, now=now)
        return len(held)

    async def run(self, task_id: str) -> None:
        """Draft the task (held under this process's lease) and submit the draft."""
        async with self._sessions() as session:
            task = await task_store.get_task(session, task_id=task_id)
            if task is None or task.state != "drafting":
                return
            done = await item_store.item_by_idempotency_key(
                session, integrator_id=task.integrator_id, key=f"task:{task.id}"
            )
            key = await key_store.key_by_id(session, key_id=task.integrator_id)
        if done is not None:  # an earlier run submitted it and died before saying so
            await self._finish(task, state="submitted", item_id=done.id, usage=Usage())
            return
        route = self._routes.get(task.route)
        if route is None or key is None or self._drafter is None:
            why = "its route is no longer configured" if route is None else "drafting is off"
            await self._fail(task, f"the task cannot be drafted: {why}", Usage())
            return
        try:
            await self._spending.check(route)
            draft = await self._drafter.draft(
                kind=task.kind,
                instructions=task.instructions,
                context=task.context if task.context is not None else "",
            )
        except (DraftFailed, BudgetExceeded) as exc:
            usage = exc.usage if isinstance(exc, DraftFailed) else Usage()
            await self._fail(task, exc.message, usage)
            return
        await self._record(task, route, draft.usage, ok=True)
        data = ItemCreate(
            route=task.route,
            kind=task.kind,
            title=task.title,
            content=draft.content,
            callback_url=task.callback_url,
            metadata=task.meta,
            requested_by=task.requested_by,
            due_at=task.due_at,
            prompt=draft.prompt,
        )
        spent = Usage(
            task.input_tokens + draft.usage.input_tokens,
            task.output_tokens + draft.usage.output_tokens,
            task.cost + draft.usage.cost,
        )
        try:
            submitted = await self._service.submit(
                integrator=Integrator(id=key.id or 0, name=key.name),
                data=data,
                idempotency_key=f"task:{task.id}",
                drafted=Drafted(
                    task_id=task.id,
                    input_tokens=spent.input_tokens,
                    output_tokens=spent.output_tokens,
                    cost=spent.cost,
                ),
            )
        except Conflict:  # a takeover raced us and submitted its own draft first
            async with self._sessions() as session:
                done = await item_store.item_by_idempotency_key(
                    session, integrator_id=task.integrator_id, key=f"task:{task.id}"
                )
            if done is None:
                raise
            await self._finish(task, state="submitted", item_id=done.id, usage=Usage())
            return
        except SignoffError as exc:
            await self._fail(task, f"the draft could not be submitted: {exc.message}", Usage())
            return
        await self._finish(task, state="submitted", item_id=submitted.item.id, usage=draft.usage)

    async def run_due(self) -> int:
        """Take over drafting tasks whose lease ran out and send due failure callbacks;
        how many tasks and callbacks were handled."""
        now = self._clock.now()
        async with self._sessions() as session:
            stale = await task_store.expired_tasks(session, now=now)
        handled = 0
        for task_id in stale:
            async with self._sessions() as session, session.begin():
                won = await task_store.claim_task(
                    session, task_id=task_id, now=now, lease_until=now + self._lease
                )
            if won:
                log.info("task %s: taking over an abandoned draft", task_id)
                await self._runs.guarded(task_id)
                handled += 1
        if self._redrafter is not None:
            handled += await self._redrafter.run_due()
        return handled + await self._failures.send_due()

    async def run_loop(self, stop: asyncio.Event, *, every: float = 5.0) -> None:
        """Run :meth:`run_due` until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("the task loop failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)

    async def _record(self, task: Task, route: Route, usage: Usage, *, ok: bool) -> None:
        async with self._sessions() as session, session.begin():
            session.add(
                call_row(
                    route=route.name,
                    purpose="draft",
                    model=self._model,
                    usage=usage,
                    at=self._clock.now(),
                    ok=ok,
                    task_id=task.id,
                )
            )
            await task_store.set_callback(session, task_id=task.id, values=_spent(usage))

    async def _finish(self, task: Task, *, state: str, item_id: str, usage: Usage) -> None:
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            await task_store.finish_task(
                session,
                task_id=task.id,
                values={"state": state, "item_id": item_id, "updated_at": now},
            )
        log.info("task %s: drafted as item %s", task.id, item_id)
        self._notifier.changed(task.id)

    async def _fail(self, task: Task, error: str, usage: Usage) -> None:
        now = self._clock.now()
        route = self._routes.get(task.route)
        async with self._sessions() as session, session.begin():
            if usage.input_tokens or usage.output_tokens or usage.cost:
                session.add(
                    call_row(
                        route=task.route,
                        purpose="draft",
                        model=self._model,
                        usage=usage,
                        at=now,
                        ok=False,
                        task_id=task.id,
                    )
                )
            values: dict[str, object] = {
                "state": "failed",
                "error": error[:4000],
                "updated_at": now,
                **_spent(usage),
            }
            if task.callback_url and route is not None:
                values.update(callback_state="queued", callback_due_at=now)
            await task_store.finish_task(session, task_id=task.id, values=values)
        log.warning("task %s failed: %s", task.id, error)
        self._notifier.changed(task.id)
        if task.callback_url:
            await self._failures.send_due()

    # -- helpers -----------------------------------------------------------------------

    async def _replay(
        self, integrator: Integrator, key: str, request_hash: str | None
    ) -> TaskPublic | None:
        async with self._sessions() as session:
            task = await task_store.task_by_idempotency_key(
                session, integrator_id=integrator.id, key=key
            )
        if task is None:
            return None
        if task.request_hash != request_hash:
            raise Conflict(
                f"Idempotency-Key {key!r} was already used with a different body (task {task.id})"
            )
        return task_public(task)
