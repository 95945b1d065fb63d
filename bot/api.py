"""The integrator HTTP API (DESIGN §4): submit items, read them, wait for decisions.

Every error is ``{"error": {"code", "message"}}`` with a 4xx status whose message names
what is wrong; nothing a client sends produces a 500.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.auth import Integrator, KeyRing
from bot.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotFound,
    SignoffError,
)
from bot.reader import ItemReader
from bot.schemas import ErrorBody, ItemCreate, ItemPage, ItemPublic
from bot.service import ReviewService
from storage.db import SessionFactory, ping

_STATUS: dict[type[SignoffError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    NotAllowed: 403,
    Conflict: 409,
    InvalidTransition: 409,
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422)
}
_bearer = HTTPBearer(auto_error=False, description="An API key from `signoff keys create`")


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class _Unauthorized(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def error_response(exc: SignoffError) -> JSONResponse:
    """The JSON answer for a SignoffError, with its HTTP status."""
    return error(_STATUS.get(type(exc), 400), exc.code, exc.message)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignoffError)
    async def _signoff(_: Request, exc: SignoffError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, exc: _Unauthorized) -> JSONResponse:
        response = error(401, "unauthorized", exc.message)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            return error(
                400,
                "invalid_json",
                f"body is not valid JSON: {detail.get('ctx', {}).get('error', detail['msg'])}",
            )
        if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
            ctype = request.headers.get("content-type", "none")
            return error(
                400,
                "invalid_body",
                f"body must be a JSON object sent as application/json (got {ctype})",
            )
        parts = []
        for e in errors:
            loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "header", "path")]
            parts.append(f"{'.'.join(loc) or 'body'}: {e['msg']}")
        return error(422, "invalid_input", "; ".join(parts))


def build_router(
    *,
    service: ReviewService,
    reader: ItemReader,
    keys: KeyRing,
    sessions: SessionFactory,
    max_wait_seconds: float,
) -> APIRouter:
    router = APIRouter()

    async def integrator(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Integrator:
        if credentials is None:
            raise _Unauthorized("missing API key: send Authorization: Bearer <api key>")
        found = await keys.authenticate(credentials.credentials)
        if found is None:
            raise _Unauthorized("unknown API key")
        return found

    Caller = Annotated[Integrator, Depends(integrator)]

    @router.post(
        "/v1/items", status_code=201, response_model=ItemPublic, responses=_ERRORS, tags=["items"]
    )
    async def submit_item(
        data: ItemCreate,
        caller: Caller,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Any:
        """Submit a draft for review. With ``Idempotency-Key``, a replay of the same body
        answers 200 with the same item; the same key with another body answers 409."""
        result = await service.submit(integrator=caller, data=data, idempotency_key=idempotency_key)
        # Serialised once here; the response_model above only documents the shape.
        return Response(
            result.item.model_dump_json(),
            status_code=201 if result.created else 200,
            media_type="application/json",
        )

    @router.get("/v1/items/{item_id}", response_model=ItemPublic, responses=_ERRORS, tags=["items"])
    async def get_item(
        item_id: str,
        caller: Caller,
        wait: Annotated[float | None, Query(ge=0, le=3600)] = None,
    ) -> ItemPublic:
        """One of the caller's items; ``wait=N`` holds up to N seconds (capped by
        ``SIGNOFF_MAX_WAIT_SECONDS``) until it is decided."""
        if wait:
            return await reader.wait(
                item_id=item_id, integrator_id=caller.id, within=min(wait, max_wait_seconds)
            )
        return await reader.get(item_id=item_id, integrator_id=caller.id)

    @router.get("/v1/items", response_model=ItemPage, responses=_ERRORS, tags=["items"])
    async def list_items(
        caller: Caller,
        state: str | None = None,
        route: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> ItemPage:
        """The caller's items, newest first; pass ``next_cursor`` back as ``cursor``."""
        return await reader.page(
            integrator_id=caller.id, state=state, route=route, cursor=cursor, limit=limit
        )

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", tags=["ops"], responses={503: {"model": ErrorBody}})
    async def readyz() -> Any:
        try:
            async with sessions() as session:
                await ping(session)
        except Exception as exc:
            return error(503, "not_ready", f"database unreachable: {type(exc).__name__}")
        return {"status": "ready"}

    return router
