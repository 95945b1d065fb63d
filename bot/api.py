"""The integrator HTTP API (DESIGN §4): submit items, read them, wait for decisions.

Every error is ``{"error": {"code", "message"}}`` with a 4xx status whose message names
what is wrong; nothing a client sends produces a 500.
"""

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from bot.auth import Integrator, KeyRing
from bot.dberrors import install_database_handlers
from bot.errors import (
    BudgetExceeded,
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotFound,
    SignoffError,
    Unavailable,
)
from bot.export import ExportFilter, ExportFormat, export_chunks, parse_since
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
    BudgetExceeded: 429,
    Unavailable: 503,
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422)
}
M = TypeVar("M", bound=BaseModel)
# Header bytes arrive decoded as Latin-1: anything past ASCII is a client's encoding
# accident (UTF-8 or worse), refused rather than stored garbled.
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class _Unauthorized(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def error_response(exc: SignoffError) -> JSONResponse:
    """The JSON answer for a SignoffError, with its HTTP status."""
    response = error(_STATUS.get(type(exc), 400), exc.code, exc.message)
    if isinstance(exc, BudgetExceeded):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def idempotency_key_of(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, checked (422 naming the header otherwise)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput("must be 1 to 255 printable ASCII characters", field="Idempotency-Key")
    return key


async def bearer_integrator(request: Request, keys: KeyRing) -> Integrator:
    """The integrator whose API key the request carries (401 otherwise)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _Unauthorized("missing API key: send Authorization: Bearer <api key>")
    found = await keys.authenticate(token.strip())
    if found is None:
        raise _Unauthorized("unknown API key")
    return found


def parse_json_body(model: type[M], body: bytes, headers: Mapping[str, str]) -> M:
    """Validate a JSON body straight from bytes (pydantic-core parses and validates in
    one pass: the hot path of ingest). Errors take the shape FastAPI's own have, so
    one handler words them all."""
    ctype = headers.get("content-type", "")
    if ctype and "json" not in ctype.split(";")[0]:
        raise RequestValidationError([{"type": "model_type", "loc": ("body",), "msg": ""}])
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def document_bearer_auth(app: FastAPI) -> None:
    """Declare the bearer API key in the OpenAPI schema for every /v1 operation."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        schema = plain()
        schema.setdefault("components", {})["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from `signoff keys create`",
            }
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
        _hoist_defs(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _hoist_defs(schema: dict[str, Any]) -> None:
    """Bodies documented with a model's own JSON schema (``openapi_extra``) carry its
    ``$defs``, and ``#/$defs/...`` does not resolve inside an OpenAPI document: move them
    to ``components/schemas`` and point the references there (idempotent)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for name, definition in (node.pop("$defs", None) or {}).items():
                visit(definition)
                components.setdefault(name, definition)
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema.get("paths", {}))


def install_error_handlers(app: FastAPI) -> None:
    install_database_handlers(app)  # a database outage answers 503, not 500

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
    leading: Callable[[], bool] = lambda: True,
) -> APIRouter:
    """The integrator API; ``sessions`` only read (exports, readiness); ``leading`` tells
    ``/healthz`` whether this replica leads."""
    router = APIRouter()

    async def integrator(request: Request) -> Integrator:
        # Read by hand rather than through HTTPBearer: this runs on every request.
        return await bearer_integrator(request, keys)

    Caller = Annotated[Integrator, Depends(integrator)]

    @router.post(
        "/v1/items",
        status_code=201,
        response_model=ItemPublic,
        responses=_ERRORS,
        tags=["items"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ItemCreate.model_json_schema()}},
            }
        },
    )
    async def submit_item(request: Request) -> Any:
        """Submit a draft for review. With ``Idempotency-Key``, a replay of the same body
        answers 200 with the same item; the same key with another body answers 409."""
        caller = await integrator(request)  # called, not injected: the ingest hot path
        idempotency_key = idempotency_key_of(request)
        data = parse_json_body(ItemCreate, await request.body(), request.headers)
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

    @router.get(
        "/v1/exports/{format}",
        response_class=StreamingResponse,
        responses={**_ERRORS, 200: {"content": {"application/x-ndjson": {}}}},
        tags=["exports"],
    )
    async def export_items(
        format: ExportFormat,
        caller: Caller,
        route: str | None = None,
        since: str | None = None,
    ) -> StreamingResponse:
        """The caller's reviewed items as training data, JSON Lines streamed in constant
        memory: ``sft``, ``dpo``, ``trl`` or ``labels``; ``since`` (a date or an ISO 8601
        time with offset) keeps what was decided at or after it."""
        flt = ExportFilter(
            route=route, since=parse_since(since) if since else None, integrator_id=caller.id
        )
        return StreamingResponse(
            export_chunks(sessions, fmt=format, flt=flt), media_type="application/x-ndjson"
        )

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str | bool]:
        """Liveness, and whether this replica leads (runs the gateway connections)."""
        return {"status": "ok", "leader": leading()}

    @router.get("/readyz", tags=["ops"], responses={503: {"model": ErrorBody}})
    async def readyz() -> Any:
        try:
            async with sessions() as session:
                await ping(session)
        except Exception as exc:
            return error(503, "not_ready", f"database unreachable: {type(exc).__name__}")
        return {"status": "ready"}

    return router
