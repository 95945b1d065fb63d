"""``POST /v1/items:batch``: up to 1,000 items in one call (bot/batch_intake.py).

The body is ``{"items": [entry, ...]}``, each entry an item as ``POST /v1/items`` takes
it plus an optional ``idempotency_key``. The answer lists ``{"index", "created", "item"}``
per entry in request order: 201 when at least one item is new, 200 when every entry
was an idempotent replay. Its body limit is ``SIGNOFF_MAX_BATCH_BODY_BYTES`` (16 MiB
by default) rather than ``SIGNOFF_MAX_BODY_BYTES`` (bot/limits.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from bot.api import bearer_integrator, parse_json_body
from bot.auth import KeyRing
from bot.batch_intake import BatchIntake, ItemBatchCreate, ItemBatchPublic
from bot.schemas import ErrorBody

if TYPE_CHECKING:
    from bot.app import System

BATCH_PATH = "/v1/items:batch"


def mount_batch_api(app: FastAPI, system: System) -> BatchIntake:
    """Add ``POST /v1/items:batch`` to ``app``; the intake is also ``app.state.batch``."""
    intake = BatchIntake(service=system.service, sessions=system.reads, routes=system.routes)
    app.state.batch = intake
    app.include_router(batch_router(intake=intake, keys=system.keys))
    return intake


def batch_router(*, intake: BatchIntake, keys: KeyRing) -> APIRouter:
    """The batch route (bearer API key, like every ``/v1`` call)."""
    router = APIRouter()

    @router.post(
        BATCH_PATH,
        status_code=201,
        response_model=ItemBatchPublic,
        responses={
            200: {"model": ItemBatchPublic, "description": "Every entry was a replay"},
            400: {"model": ErrorBody, "description": "Not a JSON object"},
            401: {"model": ErrorBody, "description": "No or unknown API key"},
            409: {"model": ErrorBody, "description": "A key reused with another body"},
            413: {"model": ErrorBody, "description": "Body over SIGNOFF_MAX_BATCH_BODY_BYTES"},
            422: {"model": ErrorBody, "description": "Invalid entries, or not 1 to 1,000"},
        },
        tags=["items"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ItemBatchCreate.model_json_schema()}},
            }
        },
    )
    async def submit_batch(request: Request) -> Any:
        """Submit 1 to 1,000 drafts in one call and one transaction: all are stored
        (committed when the call answers) or, if any entry is invalid, none (422 naming
        each bad entry as ``items.N.field``). Each entry may carry an
        ``idempotency_key``: an entry replayed with the same body answers its stored item
        with ``created: false``; the same key with another body refuses the whole batch
        (409 naming the entry). Answers 201, or 200 when every entry was a replay."""
        caller = await bearer_integrator(request, keys)
        batch = parse_json_body(ItemBatchCreate, await request.body(), request.headers)
        results = await intake.submit(integrator=caller, entries=batch.items)
        body = ItemBatchPublic.model_construct(items=results).model_dump_json()
        created = any(r.created for r in results)
        return Response(body, status_code=201 if created else 200, media_type="application/json")

    return router
