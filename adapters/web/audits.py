"""The web console's Audits: blind checks of automatic decisions (``bot/audits.py``).

Not to be confused with the audit *log* (``adapters/web/audit.py``, every decision).
``GET /audits`` lists the open audits of the reviewer's routes, oldest first;
``GET /audits/{id}`` shows one as its blind card (the draft, its route and confidence,
never what the policy decided, nor the item's history) with Correct, Wrong and
"Wrong: fix it" (the edit form); ``POST /audits/{id}`` records the answer. The first
answer wins; a later one is told who audited it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from adapters.web.auth import WebUser
from adapters.web.render import diff_lines, edit_fields, parse_edit
from bot.audits import AuditDesk, AuditSubject, audit_card, parse_audit_id
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.ports import Actor
from storage import config_changes as change_store
from storage.db import SessionFactory
from storage.models import ConfigChange

if TYPE_CHECKING:
    from adapters.web.pages import WebConsole

_STATUS = {Conflict: 409, InvalidInput: 422, NotAllowed: 403}


def audits_router(page: WebConsole, desk: AuditDesk) -> APIRouter:
    """The Audits pages, on the console's sessions, CSRF checks and route scoping."""
    r = APIRouter(include_in_schema=False)

    async def visible(user: WebUser, raw_id: str) -> AuditSubject:
        subject = await desk.subject(audit_id=parse_audit_id(raw_id))
        if subject.audit.route not in page.visible_routes(user):
            raise NotFound(f"no audit {raw_id}")  # not yours: as if it did not exist
        return subject

    def context(user: WebUser, subject: AuditSubject) -> dict[str, Any]:
        card = audit_card(subject)
        return {
            "user": user,
            "card": card,
            "audit": subject.audit,
            "diff": diff_lines(card.diff) if card.diff else None,
            "fields": edit_fields(subject.item) if "audit-fix" in card.actions else [],
        }

    @r.get("/audits")
    async def audit_list(request: Request) -> HTMLResponse:
        user = await page.current(request)
        routes = page.visible_routes(user)
        return page.render(
            "audits.html",
            nav="audits",
            user=user,
            audits=await desk.open_for(routes=routes),
            route_names=routes,
        )

    @r.get("/audits/{audit_id}")
    async def audit_page(request: Request, audit_id: str) -> HTMLResponse:
        user = await page.current(request)
        subject = await visible(user, audit_id)
        return page.render("audit_check.html", nav="audits", **context(user, subject))

    @r.post("/audits/{audit_id}")
    async def answer(request: Request, audit_id: str) -> Response:
        user, form = await page.posted(request)
        subject = await visible(user, audit_id)
        verdict = form.get("verdict", "")
        try:
            await desk.answer(
                audit_id=subject.id,
                verdict=verdict,
                actor=Actor(surface="web", user_id=user.name, name=user.name),
                corrected=parse_edit(subject.item, form) if form.get("fix") else None,
            )
        except (Conflict, InvalidInput, NotAllowed) as exc:
            fresh = await visible(user, audit_id)
            return page.render(
                "audit_check.html",
                nav="audits",
                status=_STATUS[type(exc)],
                notice=exc.message[:1].upper() + exc.message[1:] + ".",
                **context(user, fresh),
            )
        return RedirectResponse("/audits", status_code=303)

    return r


async def recent_changes(
    sessions: SessionFactory, *, routes: list[str], limit: int = 20
) -> list[ConfigChange]:
    """The newest changes signoff made to ``routes`` by itself (the drift alarm), for
    the audit log."""
    async with sessions() as session:
        return await change_store.changes(session, routes=routes, limit=limit)
