"""``POST /v1/tasks`` and ``GET /v1/tasks/{id}``: hand signoff a task, get a reviewed draft.

The task is stored and answered 202 at once; drafting runs in the background. Poll
``GET /v1/tasks/{id}`` (``?wait=N`` holds until drafting ends) for ``item_id``, then
follow the item like any other, or wait for its decision callback.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bot.api import bearer_integrator, idempotency_key_of, parse_json_body
from bot.auth import KeyRing
from bot.schemas import ErrorBody
from bot.task_schemas import TaskCreate, TaskPublic
from bot.tasks import TaskDesk


def tasks_router(*, desk: TaskDesk, keys: KeyRing, max_wait_seconds: float) -> APIRouter:
    """The task routes (bearer API key, like every ``/v1`` call)."""
    router = APIRouter()
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422, 429, 503)
    }

    @router.post(
        "/v1/tasks",
        status_code=202,
        response_model=TaskPublic,
        responses={**errors, 200: {"model": TaskPublic, "description": "A replayed task"}},
        tags=["tasks"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": TaskCreate.model_json_schema()}},
            }
        },
    )
    async def create_task(request: Request) -> Any:
        """Draft an item with the model and submit it for review: 202 with the task
        (``state: drafting``). With ``Idempotency-Key``, a replay of the same body
        answers 200 with the same task. 429 when the route's daily model budget is
        spent (``Retry-After`` says when it renews); 503 when no model is configured."""
        caller = await bearer_integrator(request, keys)
        key = idempotency_key_of(request)
        data = parse_json_body(TaskCreate, await request.body(), request.headers)
        task, created = await desk.create(integrator=caller, data=data, idempotency_key=key)
        return Response(
            task.model_dump_json(),
            status_code=202 if created else 200,
            media_type="application/json",
        )

    @router.get("/v1/tasks/{task_id}", response_model=TaskPublic, responses=errors, tags=["tasks"])
    async def get_task(
        task_id: str,
        request: Request,
        wait: Annotated[float | None, Query(ge=0, le=3600)] = None,
    ) -> TaskPublic:
        """One of the caller's tasks; ``wait=N`` holds up to N seconds (capped by
        ``SIGNOFF_MAX_WAIT_SECONDS``) until drafting ends."""
        caller = await bearer_integrator(request, keys)
        if wait:
            return await desk.wait(
                task_id=task_id, integrator_id=caller.id, within=min(wait, max_wait_seconds)
            )
        return await desk.get(task_id=task_id, integrator_id=caller.id)

    return router
