"""Checking a submitted draft: the part of submitting shared by single and batch submit.

:func:`check_draft` does everything that needs no database (route, kind, content,
callback host, NUL characters, the idempotency hash); ``ReviewService.prepare`` then
builds the rows that store the item (bot/service.py), and the caller writes them: one
item per ``POST /v1/items``, up to 1,000 in one transaction per ``POST /v1/items:batch``
(bot/batch_intake.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import SQLModel

from bot.errors import InvalidInput
from bot.kinds import Kind, get_kind, validate_content
from bot.netguard import check_literal_url
from bot.routes import Route, RouteTable
from bot.schemas import ItemCreate, ItemPublic
from storage.models import Delivery


@dataclass(frozen=True, slots=True)
class Draft:
    """A submitted item that passed every check that needs no database."""

    data: ItemCreate
    route: Route
    kind: Kind
    content: dict[str, Any]  # validated and normalised for its kind
    request_hash: str | None  # with an idempotency key: what a replay must match


@dataclass(frozen=True, slots=True)
class NewItem:
    """What storing one new item takes, not yet written."""

    rows: list[SQLModel]  # the item; when policy decided it, its decision and outbox rows
    item: ItemPublic

    @property
    def queued(self) -> bool:
        """Whether storing it queues a delivery (a release or a callback)."""
        return any(isinstance(row, Delivery) for row in self.rows)


def check_draft(data: ItemCreate, *, routes: RouteTable, keyed: bool, where: str = "") -> Draft:
    """Check ``data`` against its route and kind; InvalidInput naming the field otherwise.

    ``keyed``: the request carries an idempotency key, so its hash is computed.
    ``where`` prefixes every field named in an error (``items.17.`` in a batch).
    """
    if "\\u0000" in data.model_dump_json():  # rare: find and name the field
        refuse_nul(data.model_dump(mode="json"), path=where.rstrip("."))
    route = route_named(routes, data.route, field=f"{where}route")
    try:
        kind = get_kind(data.kind)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.removeprefix("kind: "), field=f"{where}kind") from None
    content = validate_content(kind, data.content, field=f"{where}content")
    if data.callback_url is not None:
        check_callback(route, data.callback_url, field=f"{where}callback_url")
    digest = hashlib.sha256(canonical(data).encode()).hexdigest() if keyed else None
    return Draft(data=data, route=route, kind=kind, content=content, request_hash=digest)


def route_named(routes: RouteTable, name: str, *, field: str = "route") -> Route:
    """The route called ``name``; InvalidInput naming the known ones otherwise."""
    route = routes.get(name)
    if route is None:
        raise InvalidInput(
            f"unknown route {name!r}; known routes: {', '.join(routes.names())}", field=field
        )
    return route


def check_callback(route: Route, url: str, *, field: str = "callback_url") -> None:
    """InvalidInput unless ``url`` may receive the route's callbacks: its host in the
    route's ``callback_hosts``, and no literal private address unless the route allows
    them (host names are checked again after resolving, when sending)."""
    if not route.host_allowed(url):
        raise InvalidInput(
            f"host of {url!r} is not in the callback_hosts of route "
            f"{route.name!r} (allowed: {', '.join(route.callback_hosts) or 'none'})",
            field=field,
        )
    if not route.allow_private_callbacks:
        problem = check_literal_url(url)
        if problem is not None:
            raise InvalidInput(problem, field=field)


def refuse_nul(value: Any, *, path: str) -> None:
    """NUL cannot be stored in PostgreSQL text or JSONB: refuse it, naming where it is."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidInput("must not contain NUL (\\u0000) characters", field=path or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, path=path)
            refuse_nul(item, path=f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            refuse_nul(item, path=f"{path}.{n}")


def canonical(data: ItemCreate) -> str:
    """The request as canonical JSON: what an idempotent replay must match."""
    body = data.model_dump(mode="json")
    if body.get("prompt") is None:  # hashes as before the field existed: stored keys still match
        body.pop("prompt", None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"))
