"""Failure callbacks of drafting tasks: a signed ``task.failed`` event to the task's
``callback_url``, retried with backoff (state kept on the task row, so a restart resumes
them). Items have the outbox; a failed task has no item, hence this small sender."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from bot.clock import Clock
from bot.errors import ReleaseError
from bot.ports import DeliveryRequest, DeliveryTarget
from bot.release import RetryPolicy
from bot.schemas import UsagePublic
from bot.task_schemas import TaskPublic
from storage import keys as key_store
from storage import tasks as task_store
from storage.db import SessionFactory
from storage.models import Task

log = logging.getLogger("signoff.tasks")


def task_public(task: Task) -> TaskPublic:
    return TaskPublic(
        id=task.id,
        route=task.route,
        kind=task.kind,
        title=task.title,
        state=task.state,
        item_id=task.item_id,
        error=task.error,
        attempts=task.attempts,
        usage=UsagePublic(
            input_tokens=task.input_tokens,
            output_tokens=task.output_tokens,
            cost_usd=round(task.cost, 6),
        ),
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


class FailureCallbacks:
    """Delivers ``task.failed`` events through the webhook target."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        clock: Clock,
        target: DeliveryTarget | None,
        max_attempts: int,
        retry: RetryPolicy,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._target = target
        self._max_attempts = max_attempts
        self._retry = retry

    async def send_due(self) -> int:
        """Send the failure callbacks that are due; how many were attempted."""
        if self._target is None:
            return 0
        now = self._clock.now()
        async with self._sessions() as session:
            due = await task_store.due_callbacks(session, now=now)
        sent = 0
        for task in due:
            async with self._sessions() as session, session.begin():
                held = await task_store.claim_callback(
                    session, task_id=task.id, now=now, lease_until=now + timedelta(minutes=5)
                )
                key = await key_store.key_by_id(session, key_id=task.integrator_id)
            if held and key is not None:
                await self._callback(task, key.signing_secret, attempt=task.callback_attempts + 1)
                sent += 1
        return sent

    async def _callback(self, task: Task, secret: str, *, attempt: int) -> None:
        assert self._target is not None and task.callback_url is not None
        body = json.dumps(
            {"event": "task.failed", "task": task_public(task).model_dump(mode="json")},
            separators=(",", ":"),
        ).encode()
        request = DeliveryRequest(
            url=task.callback_url,
            body=body,
            idempotency_key=f"{task.id}:failed",
            signing_secret=secret,
            event="task.failed",
            attempt=attempt,
            item={"route": task.route},  # whose settings apply (e.g. private addresses)
            target={"type": "webhook", "url": task.callback_url},
        )
        now = self._clock.now()
        values: dict[str, object]
        try:
            receipt = await self._target.deliver(request=request)
        except ReleaseError as exc:
            if exc.retryable and attempt < self._max_attempts:
                when = now + self._retry.delay(attempt)
                values = {"callback_due_at": when, "callback_error": str(exc)[:2000]}
                log.warning("task %s: failure callback attempt %d: %s", task.id, attempt, exc)
            else:
                values = {"callback_state": "failed", "callback_error": str(exc)[:2000]}
                log.error("task %s: failure callback gave up: %s", task.id, exc)
        else:
            values = {"callback_state": "delivered", "callback_error": None}
            log.info("task %s: failure callback delivered: %s", task.id, receipt)
        async with self._sessions() as session, session.begin():
            await task_store.set_callback(session, task_id=task.id, values=values)
