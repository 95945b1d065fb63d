"""The HTTP side of the HumanLayer-compatible API: ``/humanlayer/v1`` (and
``/humanlayer/routes/<route>/v1``), bearer keys mapped to signoff API keys; the mapping
onto items lives in :mod:`bot.humanlayer`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from bot.api import error, error_response
from bot.auth import Integrator, KeyRing
from bot.errors import SignoffError
from bot.humanlayer import (
    FUNCTION_CALL,
    HUMAN_CONTACT,
    HumanLayerDesk,
    function_call_of,
    human_contact_of,
)
from bot.humanlayer_models import (
    Escalation,
    FunctionCall,
    FunctionCallStatus,
    HumanContact,
    HumanContactStatus,
)
from bot.schemas import ErrorBody

log = logging.getLogger("signoff.humanlayer")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409, 422)
}


def humanlayer_router(*, desk: HumanLayerDesk, keys: KeyRing) -> APIRouter:
    """``/humanlayer/v1/…`` (the route ``humanlayer``, else ``default``) and
    ``/humanlayer/routes/{route}/v1/…`` (the named route), with the SDK's bearer key."""
    calls = APIRouter(tags=["humanlayer"])

    async def answer(
        request: Request, work: Callable[[Integrator], Awaitable[tuple[BaseModel, int]]]
    ) -> Response:
        """Authenticate, do ``work``, answer JSON; errors as ``{"error": …}`` (also here,
        outside /v1/, where the web console would otherwise answer with a page)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("missing API key: send Authorization: Bearer <api key>")
        who = await keys.authenticate(token.strip())
        if who is None:
            return _unauthorized("unknown API key")
        try:
            model, status = await work(who)
        except SignoffError as exc:
            return error_response(exc)
        return Response(model.model_dump_json(), status_code=status, media_type="application/json")

    @calls.post("/function_calls", response_model=FunctionCall, responses=_ERRORS)
    async def create_function_call(request: Request, call: FunctionCall) -> Response:
        """Ask for approval of a function call (``require_approval``); 201 new, 200 the
        same call again."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            route = request.path_params.get("route")
            made, created = await desk.add_call(integrator=who, call=call, route=route)
            return made, 201 if created else 200

        return await answer(request, work)

    @calls.get("/function_calls/{call_id}", response_model=FunctionCall, responses=_ERRORS)
    async def get_function_call(request: Request, call_id: str) -> Response:
        """The call with its ``status`` (``approved`` null while pending)."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            item = await desk.item(integrator=who, kind=FUNCTION_CALL, call_id=call_id)
            return function_call_of(item), 200

        return await answer(request, work)

    @calls.post(
        "/agent/function_calls/{call_id}/respond", response_model=FunctionCall, responses=_ERRORS
    )
    async def respond_function_call(
        request: Request, call_id: str, status: FunctionCallStatus
    ) -> Response:
        """Decide the call as the API key (an agent relaying a human's answer)."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            return await desk.respond_call(integrator=who, call_id=call_id, status=status), 200

        return await answer(request, work)

    @calls.post(
        "/agent/function_calls/{call_id}/escalate_email",
        response_model=FunctionCall,
        responses=_ERRORS,
    )
    async def escalate_function_call(
        request: Request, call_id: str, escalation: Escalation
    ) -> Response:
        """Escalate a pending call through its route (see HumanLayerDesk.escalate)."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            item = await desk.escalate(
                integrator=who, kind=FUNCTION_CALL, call_id=call_id, escalation=escalation
            )
            return function_call_of(item), 200

        return await answer(request, work)

    @calls.post("/contact_requests", response_model=HumanContact, responses=_ERRORS)
    async def create_contact_request(request: Request, contact: HumanContact) -> Response:
        """Ask a human a question (``human_as_tool``); 201 new, 200 the same one again."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            route = request.path_params.get("route")
            made, created = await desk.add_contact(integrator=who, contact=contact, route=route)
            return made, 201 if created else 200

        return await answer(request, work)

    @calls.get("/contact_requests/{call_id}", response_model=HumanContact, responses=_ERRORS)
    async def get_contact_request(request: Request, call_id: str) -> Response:
        """The request with its ``status`` (``response`` null until answered)."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            item = await desk.item(integrator=who, kind=HUMAN_CONTACT, call_id=call_id)
            return human_contact_of(item), 200

        return await answer(request, work)

    @calls.post(
        "/agent/human_contacts/{call_id}/respond", response_model=HumanContact, responses=_ERRORS
    )
    async def respond_contact_request(
        request: Request, call_id: str, status: HumanContactStatus
    ) -> Response:
        """Answer the request as the API key."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            return await desk.respond_contact(integrator=who, call_id=call_id, status=status), 200

        return await answer(request, work)

    @calls.post(
        "/agent/human_contacts/{call_id}/escalate_email",
        response_model=HumanContact,
        responses=_ERRORS,
    )
    async def escalate_contact_request(
        request: Request, call_id: str, escalation: Escalation
    ) -> Response:
        """Escalate a pending contact request through its route."""

        async def work(who: Integrator) -> tuple[BaseModel, int]:
            item = await desk.escalate(
                integrator=who, kind=HUMAN_CONTACT, call_id=call_id, escalation=escalation
            )
            return human_contact_of(item), 200

        return await answer(request, work)

    router = APIRouter()
    router.include_router(calls, prefix="/humanlayer/v1")
    router.include_router(calls, prefix="/humanlayer/routes/{route}/v1", include_in_schema=False)
    return router


def _unauthorized(message: str) -> Response:
    response = error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response
