"""``GET /v1/queue/next``: the review queue over HTTP, for a web reviewer.

An API key identifies a program, not a person, so the caller names the web reviewer it
acts for (``?reviewer=NAME``, someone made with ``signoff users create``); the queue
serves that reviewer's routes and reserves the item for them (``web:NAME``), exactly as
the inbox's Next button does. Typical callers are a team's own review tool or a script
that hands work out.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bot.api import error
from bot.auth import KeyRing
from bot.errors import InvalidInput
from bot.queue import ReservedItem, ReviewQueue
from bot.schemas import ErrorBody


def queue_router(*, queue: ReviewQueue, keys: KeyRing) -> APIRouter:
    """The queue's API routes (bearer API key, like every ``/v1`` call)."""
    router = APIRouter()

    @router.get(
        "/v1/queue/next",
        response_model=ReservedItem,
        responses={
            204: {"description": "Nothing is waiting for this reviewer"},
            **{code: {"model": ErrorBody} for code in (401, 404, 422)},
        },
        tags=["queue"],
    )
    async def next_item(
        request: Request,
        reviewer: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Any:
        """Reserve the most uncertain pending item for web reviewer ``reviewer`` and
        return it with ``reserved_by`` and ``reserved_until``; 204 when nothing waits;
        404 for an unknown reviewer. Asking again before the reservation runs out
        returns the same item."""
        # Checked by hand, before the query: a caller without a key learns nothing else.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("missing API key: send Authorization: Bearer <api key>")
        if await keys.authenticate(token.strip()) is None:
            return _unauthorized("unknown API key")
        if reviewer is None or not reviewer.strip():
            raise InvalidInput(
                "name the web reviewer to serve, e.g. ?reviewer=support-lead", field="reviewer"
            )
        item = await queue.next_for_web_reviewer(name=reviewer.strip())
        if item is None:
            return Response(status_code=204)
        return Response(item.model_dump_json(), media_type="application/json")

    return router


def _unauthorized(message: str) -> Response:
    response = error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response
