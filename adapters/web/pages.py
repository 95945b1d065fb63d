"""The web console's HTTP routes: sign-in, inbox, item pages, live events, audit, dashboard.

Every page needs a session; every POST needs the session's CSRF token; the reviewer is
always the session's, never the form's. A reviewer sees only the routes they were given
(``signoff users create NAME --routes ...``) whose web reviewer list admits them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles

from adapters.web.audit import OUTCOMES as AUDIT_OUTCOMES
from adapters.web.audit import (
    AuditFilter,
    AuditRow,
    audit_page,
    csv_stream,
    iter_audit,
    jsonl_stream,
    parse_before,
)
from adapters.web.audits import audits_router, recent_changes
from adapters.web.auth import WebAuth, WebUser
from adapters.web.dashboard import dashboard_data, render_context
from adapters.web.headers import SecurityHeaders
from adapters.web.live import Broadcaster
from adapters.web.reliability import calibration_panels
from adapters.web.render import diff_lines, edit_diff, edit_fields, environment, history, parse_edit
from adapters.web.spending import model_spending
from bot.api import error_response
from bot.audits import AuditDesk
from bot.choices import click
from bot.clock import Clock
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound, SignoffError
from bot.kinds import KINDS
from bot.ports import Actor
from bot.present import already_decided, build_card, model_notes
from bot.queue import ReviewQueue
from bot.reader import InboxReader, ItemReader
from bot.retry import ReleaseRetry
from bot.reviewer_stats import reviewer_stats
from bot.routes import RouteTable
from bot.schemas import ItemPublic
from bot.service import ReviewService
from bot.states import ItemState
from storage import item_opens
from storage.db import SessionFactory

COOKIE = "signoff_session"
STATIC = Path(__file__).with_name("static")


class _SignInRequired(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


@dataclass
class WebConsole:
    """Everything the pages need; ``mount`` adds them to the ASGI app."""

    auth: WebAuth
    service: ReviewService
    reader: ItemReader
    inbox: InboxReader
    routes: RouteTable
    broadcaster: Broadcaster
    sessions: SessionFactory
    clock: Clock
    retry: ReleaseRetry
    queue: ReviewQueue | None = None  # the inbox's Next button
    audits: AuditDesk | None = None  # the Audits pages (blind checks of automatic decisions)
    secure_cookies: bool = False
    extra: Callable[[APIRouter], None] | None = None  # e.g. the demo's release sink

    def __post_init__(self) -> None:
        self.templates = environment()

    # -- plumbing ----------------------------------------------------------------------

    def render(self, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        user: WebUser | None = context.get("user")
        context.setdefault("csrf", user.csrf if user else "")
        context.setdefault("notice", None)
        html = self.templates.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status)

    async def current(self, request: Request) -> WebUser:
        user = await self.auth.user(session_token=request.cookies.get(COOKIE))
        if user is None:
            raise _SignInRequired(request.url.path)
        return user

    async def posted(self, request: Request) -> tuple[WebUser, dict[str, str]]:
        """The session's reviewer and the form, once its CSRF token checks out."""
        user = await self.current(request)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if not user.csrf_ok(form.get("csrf")):
            raise NotAllowed("missing or wrong CSRF token: reload the page and try again")
        return user, form

    def visible_routes(self, user: WebUser) -> list[str]:
        names = []
        for name in self.routes.names():
            route = self.routes.get(name)
            if route and user.may_see(name) and route.may_decide(surface="web", user_id=user.name):
                names.append(name)
        return names

    async def visible_item(self, user: WebUser, item_id: str) -> ItemPublic:
        item = await self.reader.get(item_id=item_id)
        if item.route not in self.visible_routes(user):
            raise NotFound(f"no item {item_id}")  # not yours: as if it did not exist
        return item

    # -- pages -------------------------------------------------------------------------

    async def card_context(self, user: WebUser, item: ItemPublic) -> dict[str, Any]:
        route = self.routes.get(item.route)
        content = item.final_content or item.content
        attempts = await self.inbox.attempts(item_id=item.id)
        steps = await self.inbox.steps(item_id=item.id)
        edited = item.outcome == "edited" or any(d.action == "edit" for d in item.decisions)
        card = build_card(item, route) if route else None
        notes, earlier = model_notes(item)
        return {
            "user": user,
            "item": item,
            "content": content,
            "diff": diff_lines(content["diff"]) if item.kind == "code_change" else None,
            "fields": edit_fields(item),
            "reasons": list(card.reject_reasons) if card else [],  # the route's and the item's
            "history": history(item, attempts, steps),
            "edit_diff": edit_diff(item.content, content) if edited else None,
            "pending": item.state == ItemState.pending,
            # as on the chat cards: "Release failed: …" and a Retry button
            "release_note": card.release_note if card else None,
            "retry": card is not None and "retry" in card.actions,
            # a comparison's prompt, A and B in display order; one-click buttons
            "sections": card.sections if card else (),
            "choices": card.choices if card else (),
            # none while a redraft runs; "redraft" where the route allows another revision
            "actions": card.actions if card else ("approve", "edit", "reject"),
            "status_line": card.status if card else None,  # "…; drafting revision 2…"
            "max_revisions": card.max_revisions if card else item.revision,
            "notes": notes,  # what a model wrote for the reviewer, labelled as such
            "earlier": earlier,  # the rejected revisions, with who rejected them and why
        }

    def router(self) -> APIRouter:
        r = APIRouter(include_in_schema=False)
        page = self

        @r.get("/signin")
        async def signin_help() -> HTMLResponse:
            return page.render("signin.html", user=None, token=None)

        @r.get("/signin/{token}")
        async def signin_confirm(token: str) -> HTMLResponse:
            # A GET never signs in: link previews in chat apps would use the link up.
            return page.render("signin.html", user=None, token=token)

        @r.post("/signin/{token}")
        async def signin(token: str) -> Response:
            session_token = await page.auth.redeem(token=token)
            if session_token is None:
                return page.render(
                    "signin.html",
                    user=None,
                    token=None,
                    status=400,
                    notice="This sign-in link is not valid: it was used already, "
                    "has expired, or was mistyped. Ask for a new one.",
                )
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                COOKIE,
                session_token,
                httponly=True,
                samesite="lax",
                secure=page.secure_cookies,
                max_age=14 * 86400,
                path="/",
            )
            return response

        @r.post("/signout")
        async def signout(request: Request) -> Response:
            await page.posted(request)
            await page.auth.sign_out(session_token=request.cookies.get(COOKIE, ""))
            response = RedirectResponse("/signin", status_code=303)
            response.delete_cookie(COOKIE, path="/")
            return response

        @r.get("/")
        async def inbox_page(request: Request) -> HTMLResponse:
            user = await page.current(request)
            return page.render("inbox.html", nav="inbox", **await page.inbox_context(user, request))

        @r.get("/inbox/rows")
        async def inbox_rows(request: Request) -> HTMLResponse:
            user = await page.current(request)
            return page.render("_rows.html", **await page.inbox_context(user, request))

        @r.get("/items/{item_id}")
        async def item_page(request: Request, item_id: str) -> HTMLResponse:
            user = await page.current(request)
            item = await page.visible_item(user, item_id)
            if item.state == ItemState.pending:  # the reviewer's reading time starts here
                await item_opens.record_open(
                    page.sessions,
                    item_id=item.id,
                    reviewer=f"web:{user.name}",
                    now=page.clock.now(),
                )
            return page.render("item.html", nav="inbox", **await page.card_context(user, item))

        @r.get("/items/{item_id}/card")
        async def item_card(request: Request, item_id: str) -> HTMLResponse:
            user = await page.current(request)
            item = await page.visible_item(user, item_id)
            return page.render("_card.html", **await page.card_context(user, item))

        @r.post("/items/{item_id}/decide")
        async def decide(request: Request, item_id: str) -> Response:
            user, form = await page.posted(request)
            item = await page.visible_item(user, item_id)
            action = form.get("action", "")
            if action not in ("approve", "edit", "reject", "redraft"):
                raise InvalidInput("must be approve, edit, reject or redraft", field="action")
            try:
                await page.service.decide(
                    item_id=item.id,
                    action=action,
                    actor=Actor(surface="web", user_id=user.name, name=user.name),
                    content=parse_edit(item, form) if action == "edit" else None,
                    reason_code=form.get("reason_code") or None,
                    reason_text=form.get("reason_text") or None,
                    opened_at=await item_opens.opened_at(
                        page.sessions, item_id=item.id, reviewer=f"web:{user.name}"
                    ),
                )
            except (Conflict, InvalidInput, NotAllowed) as exc:
                fresh = await page.visible_item(user, item_id)
                status = {Conflict: 409, InvalidInput: 422}.get(type(exc), 403)
                return page.render(
                    "item.html",
                    nav="inbox",
                    status=status,
                    notice=_notice(exc),
                    **await page.card_context(user, fresh),
                )
            return RedirectResponse(f"/items/{quote(item.id)}", status_code=303)

        @r.post("/items/{item_id}/choose")
        async def choose(request: Request, item_id: str) -> Response:
            """A one-click button: a comparison's verdict or a label (bot/choices.py)."""
            user, form = await page.posted(request)
            item = await page.visible_item(user, item_id)
            reviewer = f"web:{user.name}"
            try:
                await click(
                    service=page.service,
                    reader=page.reader,
                    item_id=item.id,
                    verb=form.get("verb", ""),
                    value=form.get("value", ""),
                    actor=Actor(surface="web", user_id=user.name, name=user.name),
                    opened_at=await item_opens.opened_at(
                        page.sessions, item_id=item.id, reviewer=reviewer
                    ),
                )
            except (Conflict, InvalidInput, NotAllowed) as exc:
                fresh = await page.visible_item(user, item_id)
                return page.render(
                    "item.html",
                    nav="inbox",
                    status={Conflict: 409, InvalidInput: 422}.get(type(exc), 403),
                    notice=_notice(exc),
                    **await page.card_context(user, fresh),
                )
            return RedirectResponse(f"/items/{quote(item.id)}", status_code=303)

        @r.post("/items/{item_id}/retry")
        async def retry(request: Request, item_id: str) -> Response:
            user, _ = await page.posted(request)
            item = await page.visible_item(user, item_id)  # a reviewer of its route
            try:
                await page.retry.retry(
                    item_id=item.id, actor=Actor(surface="web", user_id=user.name, name=user.name)
                )
            except (Conflict, NotAllowed) as exc:
                fresh = await page.visible_item(user, item_id)
                return page.render(
                    "item.html",
                    nav="inbox",
                    status=409 if isinstance(exc, Conflict) else 403,
                    notice=_notice(exc),
                    **await page.card_context(user, fresh),
                )
            return RedirectResponse(f"/items/{quote(item.id)}", status_code=303)

        @r.post("/next")
        async def next_item(request: Request) -> Response:
            """Next: reserve the most uncertain item of the reviewer's routes and open it."""
            user, _ = await page.posted(request)
            reserved = None
            if page.queue is not None:
                reserved = await page.queue.next(
                    reviewer=Actor(surface="web", user_id=user.name, name=user.name),
                    routes=page.visible_routes(user),
                )
            if reserved is None:
                context = await page.inbox_context(user, request)
                notice = "Nothing is waiting for you."
                return page.render("inbox.html", nav="inbox", notice=notice, **context)
            return RedirectResponse(f"/items/{quote(reserved.id)}", status_code=303)

        @r.get("/events")
        async def events(request: Request) -> StreamingResponse:
            await page.current(request)
            return StreamingResponse(
                page.broadcaster.stream(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )

        @r.get("/audit")
        async def audit(request: Request) -> HTMLResponse:
            user = await page.current(request)
            visible = page.visible_routes(user)
            flt = AuditFilter.from_query(request.query_params, routes=visible)
            rows, next_before = await audit_page(
                page.sessions, flt, before_id=parse_before(request.query_params.get("before"))
            )
            return page.render(
                "audit.html",
                nav="audit",
                user=user,
                flt=flt,
                form=dict(request.query_params),
                rows=rows,
                next_before=next_before,
                query=flt.as_query(),
                route_names=visible,
                outcomes=AUDIT_OUTCOMES,
                config_changes=await recent_changes(page.sessions, routes=visible),
            )

        @r.get("/audit.csv")
        async def audit_csv(request: Request) -> StreamingResponse:
            return await page.export(request, csv_stream, "text/csv; charset=utf-8", "csv")

        @r.get("/audit.jsonl")
        async def audit_jsonl(request: Request) -> StreamingResponse:
            return await page.export(request, jsonl_stream, "application/x-ndjson", "jsonl")

        @r.get("/dashboard")
        async def dashboard(request: Request) -> HTMLResponse:
            user = await page.current(request)
            dash = await dashboard_data(
                page.sessions, routes=page.visible_routes(user), now=page.clock.now()
            )
            context: dict[str, Any] = render_context(dash)
            context["reviewers"] = await reviewer_stats(  # per-reviewer table, last 30 days
                page.sessions, routes=page.visible_routes(user), now=page.clock.now()
            )
            context["calibration"] = await calibration_panels(  # reliability plots
                page.sessions, routes=page.routes, names=page.visible_routes(user), clock=page.clock
            )
            context["spending"] = await model_spending(  # model calls and budgets per route
                page.sessions,
                routes=page.routes,
                names=page.visible_routes(user),
                now=page.clock.now(),
            )
            return page.render("dashboard.html", nav="dashboard", user=user, **context)

        if self.extra is not None:
            self.extra(r)
        return r

    async def export(
        self,
        request: Request,
        encode: Callable[[AsyncIterator[AuditRow]], AsyncIterator[bytes]],
        media_type: str,
        suffix: str,
    ) -> StreamingResponse:
        """Stream every matching decision, batch by batch, in constant memory."""
        user = await self.current(request)
        flt = AuditFilter.from_query(request.query_params, routes=self.visible_routes(user))
        name = f"signoff-audit-{self.clock.now():%Y%m%d-%H%M%S}.{suffix}"
        return StreamingResponse(
            encode(iter_audit(self.sessions, flt)),
            media_type=media_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def inbox_context(self, user: WebUser, request: Request) -> dict[str, Any]:
        q = request.query_params
        visible = self.visible_routes(user)
        state = q.get("state") or "pending"
        if state not in [s.value for s in ItemState]:
            raise InvalidInput(f"unknown state {state!r}", field="state")
        route = q.get("route") or None
        kind = q.get("kind") or None
        items = (
            await self.inbox.items(routes=visible, state=state, route=route, kind=kind)
            if route is None or route in visible
            else []
        )
        return {
            "user": user,
            "items": items,
            "counts": await self.inbox.pending_counts(routes=visible),
            "route_names": visible,
            "kinds": list(KINDS),
            "states": [s.value for s in ItemState],
            "flt": {"state": state, "route": route or "", "kind": kind or ""},
        }

    def mount(self, app: FastAPI) -> None:
        """Add the pages, the static files and the web error pages to ``app``."""
        app.include_router(self.router())
        if self.audits is not None:
            app.include_router(audits_router(self, self.audits))
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.exception_handler(_SignInRequired)
        async def _to_signin(_: Request, exc: _SignInRequired) -> Response:
            return RedirectResponse(f"/signin?next={quote(exc.path)}", status_code=303)

        app.add_middleware(SecurityHeaders)

        @app.exception_handler(SignoffError)
        async def _error_page(request: Request, exc: SignoffError) -> Response:
            if request.url.path.startswith("/v1/"):
                return error_response(exc)
            status = error_response(exc).status_code
            user = await self.auth.user(session_token=request.cookies.get(COOKIE))
            return self.render("error.html", status=status, user=user, notice=exc.message)


def _notice(exc: SignoffError) -> str:
    if isinstance(exc, Conflict) and exc.winner is not None:
        return already_decided(exc.winner)
    return exc.message
