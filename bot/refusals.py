"""Every refused HTTP request is logged: ASGI middleware around the whole app.

One line per 4xx answer, from whichever part answered (the integrator API, the body
limit, the Slack endpoint, the web console): method, path (a path parameter named like
a token, secret or key shows as ``{name}``: a sign-in link is never written out),
status, and the ``error.message`` of a JSON error body. Headers, query strings and
request bodies are never logged: they may carry API keys, signatures or content. 401
and 403 are warnings (someone is knocking), other refusals are info.
"""

from __future__ import annotations

import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("signoff.http")

_MAX_KEPT = 4096  # bytes of an error body read for its message
_SECRET_PARAMS = ("token", "secret", "key", "password")


class RefusalLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        is_json = False
        kept = bytearray()

        async def watching_send(message: Message) -> None:
            nonlocal status, is_json
            if message["type"] == "http.response.start":
                status = int(message["status"])
                ctype = dict(message.get("headers", [])).get(b"content-type", b"")
                is_json = ctype.startswith(b"application/json")
            elif message["type"] == "http.response.body" and 400 <= status < 500 and is_json:
                kept.extend(message.get("body", b"")[: max(0, _MAX_KEPT - len(kept))])
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            if 400 <= status < 500:
                _log_refusal(scope, status, bytes(kept))


def _shown_path(scope: Scope) -> str:
    """The request path with secret path parameters (a sign-in token) as ``{name}``."""
    path = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        if any(word in name.lower() for word in _SECRET_PARAMS) and str(value):
            path = path.replace(str(value), "{" + name + "}")
    return path


def _log_refusal(scope: Scope, status: int, body: bytes) -> None:
    path = _shown_path(scope)
    message = ""
    if body:
        try:
            message = str(json.loads(body)["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = ""
    level = logging.WARNING if status in (401, 403) else logging.INFO
    log.log(
        level,
        "refused %s %s: %d%s",
        scope.get("method", "?"),
        path,
        status,
        f" {message[:500]}" if message else "",
    )


_SIGNIN = re.compile(r"(/signin/)[^/?#\s]+")


class _AccessLogRedaction(logging.Filter):
    """uvicorn's access log writes every request's path, and a sign-in link's path is
    its one-time token (still valid when the confirmation page is fetched)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _SIGNIN.sub(r"\1{token}", args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Keep sign-in tokens out of uvicorn's access log (idempotent)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AccessLogRedaction) for f in logger.filters):
        logger.addFilter(_AccessLogRedaction())
