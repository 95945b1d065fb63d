"""A HumanLayer-compatible API: the ``humanlayer`` SDK (tested: 0.7.9) against signoff.

Point the SDK at signoff with ``HUMANLAYER_API_BASE=http://signoff:8000/humanlayer/v1``
and ``HUMANLAYER_API_KEY=<a signoff API key>``; ``require_approval`` and
``human_as_tool`` then wait for signoff's reviewers, on any surface of the route.

- A **function call** (``POST /function_calls``) becomes a ``message`` item whose text is
  the call as Python (``send_refund(order='1234', amount=12)``), on the route named
  ``humanlayer`` if there is one, else ``default``; ``/humanlayer/routes/{route}/v1`` as
  the base picks another route. The SDK's ``reject_options`` become the card's reject
  reasons (beside the route's) and everything the SDK sent (run and call ids, function,
  arguments, channel, options, ``state``) is kept in the item's metadata under
  ``humanlayer`` and answered back unchanged.
- A **contact request** (``POST /contact_requests``) becomes a ``question`` item; the
  reviewer answers by editing its ``answer`` (the Edit form or modal).
- ``call_id`` is the item's idempotency key (namespaced per type): the same call sent
  again answers the same item; the same ``call_id`` with another body answers 409.
- ``status`` is read from the item: see :func:`call_status` and :func:`contact_status`.
- ``/agent/.../respond`` decides as the API key (surface ``humanlayer``); the item was
  requested by that key, so approving or answering needs the route's
  ``allow_self_approval`` (rejecting never does). ``escalate_email`` escalates through
  the route's chat surfaces: see :meth:`HumanLayerDesk.escalate`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from bot.auth import Integrator
from bot.client import render_call
from bot.clock import Clock
from bot.errors import Conflict, InvalidInput, NotFound
from bot.fanout import SurfaceFanout
from bot.humanlayer_models import (
    Escalation,
    FunctionCall,
    FunctionCallSpec,
    FunctionCallStatus,
    HumanContact,
    HumanContactSpec,
    HumanContactStatus,
    ResponseOption,
)
from bot.notify import Notifier
from bot.ports import Actor, Surface
from bot.present import build_card
from bot.reasons import own_reject_reasons
from bot.routes import Route, RouteTable
from bot.schemas import DecisionPublic, ItemCreate, ItemPublic
from bot.service import ReviewService
from bot.views import item_public
from storage import items as item_store
from storage import steps as step_store
from storage.db import SessionFactory
from storage.models import StepRun

log = logging.getLogger("signoff.humanlayer")

FUNCTION_CALL = "function_call"
HUMAN_CONTACT = "human_contact"
DEFAULT_ROUTES = ("humanlayer", "default")  # the first that exists, when none is named
TITLE_MAX = 300


# -- item → HumanLayer shapes (pure) ------------------------------------------------------


def _bridge(item: ItemPublic) -> dict[str, Any]:
    data = item.metadata.get("humanlayer")
    return data if isinstance(data, dict) else {}


def _final(item: ItemPublic) -> DecisionPublic | None:
    """The decision that settled the item (the last one), or None while pending."""
    return item.decisions[-1] if item.state != "pending" and item.decisions else None


def _reason(decision: DecisionPublic | None) -> str | None:
    if decision is None:
        return None
    return decision.reason_text or decision.reason_code


def call_status(item: ItemPublic) -> FunctionCallStatus:
    """A function call's status, as the SDK reads it.

    Pending: only ``requested_at``. Approved (by a reviewer, by confidence, or by an
    expiry with ``on_expire: approve``): ``approved`` true, so the SDK runs the function.
    Rejected or expired: ``approved`` false with a ``comment`` (the reviewer's text, else
    the reason picked, else "rejected"; an expiry says so), and ``reject_option_name``
    when the reason is one of the call's ``reject_options``. Edited: ``approved`` false
    with the changed call as ``comment``: the SDK can only run the function with its own
    arguments, never the reviewer's, so the agent is told what was approved instead.
    """
    status = FunctionCallStatus(requested_at=item.created_at)
    final = _final(item)
    if final is None:
        return status
    status.responded_at = item.decided_at or final.at
    if item.outcome in ("approved", "auto_approved"):
        status.approved = True
        status.comment = final.reason_text if final.surface != "policy" else None
    elif item.outcome == "edited":
        changed = (item.final_content or {}).get("text", "")
        status.approved = False
        status.comment = f"approved only with changes: {changed}"
    elif item.outcome == "expired":
        status.approved = final.reason_code == "approve"
        status.comment = f"expired {final.reason_text or ''}".strip()
    else:  # rejected, auto_rejected
        status.approved = False
        status.comment = _reason(final) or "rejected"
        if final.reason_code in own_reject_reasons(item.metadata):
            status.reject_option_name = final.reason_code
    return status


def contact_status(item: ItemPublic) -> HumanContactStatus:
    """A contact request's status: ``response`` is the reviewer's answer once approved
    (an edit of ``answer``, or an approval of an answer given at submit; a plain
    approval with no answer says "approved"); a rejection answers "rejected: <reason>"
    and an expiry "expired after …", so the SDK always gets a string back."""
    status = HumanContactStatus(requested_at=item.created_at)
    final = _final(item)
    if final is None:
        return status
    status.responded_at = item.decided_at or final.at
    answer = (item.final_content or item.content).get("answer")
    if item.outcome in ("approved", "edited", "auto_approved") or (
        item.outcome == "expired" and final.reason_code == "approve" and answer
    ):
        status.response = answer if isinstance(answer, str) and answer else "approved"
        options = [o.get("name") for o in _bridge(item).get("response_options") or []]
        if status.response in options:
            status.response_option_name = status.response
    elif item.outcome == "expired":
        status.response = f"expired {final.reason_text or ''}".strip()
    else:
        status.response = f"rejected: {_reason(final) or 'no reason given'}"
    return status


def function_call_of(item: ItemPublic) -> FunctionCall:
    data = _bridge(item)
    spec = FunctionCallSpec.model_validate(
        {k: data.get(k) for k in ("fn", "kwargs", "channel", "reject_options", "state")}
    )
    return FunctionCall(
        run_id=data["run_id"], call_id=data["call_id"], spec=spec, status=call_status(item)
    )


def human_contact_of(item: ItemPublic) -> HumanContact:
    data = _bridge(item)
    spec = HumanContactSpec.model_validate(
        {k: data.get(k) for k in ("msg", "subject", "channel", "response_options", "state")}
    )
    return HumanContact(
        run_id=data["run_id"], call_id=data["call_id"], spec=spec, status=contact_status(item)
    )


def _title(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "HumanLayer request"
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1] + "…"


def _options(options: Sequence[ResponseOption] | None) -> list[dict[str, Any]] | None:
    return [o.model_dump(mode="json") for o in options] if options is not None else None


def _question_text(spec: HumanContactSpec) -> str:
    if not spec.response_options:
        return spec.msg
    offered = ", ".join(
        f"{o.name} ({o.title})" if o.title and o.title != o.name else o.name
        for o in spec.response_options
    )
    return f"{spec.msg}\n\nAnswer with one of: {offered}; or in your own words."


# -- the desk: submit, read, respond, escalate ----------------------------------------------


class HumanLayerDesk:
    """HumanLayer requests as signoff items, for one integrator (an API key) at a time."""

    def __init__(
        self,
        *,
        service: ReviewService,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        fanout: SurfaceFanout,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self._service = service
        self._sessions = sessions
        self._routes = routes
        self._surfaces = surfaces
        self._fanout = fanout
        self._notifier = notifier
        self._clock = clock

    # -- submit ------------------------------------------------------------------------

    async def add_call(
        self, *, integrator: Integrator, call: FunctionCall, route: str | None
    ) -> tuple[FunctionCall, bool]:
        """The call as an item (new: True; the same call again: False)."""
        spec = call.spec
        text = render_call(spec.fn, spec.kwargs)
        data = ItemCreate(
            route=self._route_name(route),
            kind="message",
            title=_title(render_call(spec.fn, spec.kwargs, one_line=True)),
            content={"text": text},
            metadata={
                "humanlayer": {
                    "type": FUNCTION_CALL,
                    "run_id": call.run_id,
                    "call_id": call.call_id,
                    "fn": spec.fn,
                    "kwargs": spec.kwargs,
                    "channel": spec.channel,
                    "reject_options": _options(spec.reject_options),
                    "state": spec.state,
                }
            },
            requested_by=integrator.name,
        )
        result = await self._service.submit(
            integrator=integrator, data=data, idempotency_key=_key(FUNCTION_CALL, call.call_id)
        )
        return function_call_of(result.item), result.created

    async def add_contact(
        self, *, integrator: Integrator, contact: HumanContact, route: str | None
    ) -> tuple[HumanContact, bool]:
        """The contact request as a ``question`` item (new: True; again: False)."""
        spec = contact.spec
        data = ItemCreate(
            route=self._route_name(route),
            kind="question",
            title=_title(spec.subject or f"Question: {spec.msg.strip()}"),
            content={"question": _question_text(spec)},
            metadata={
                "humanlayer": {
                    "type": HUMAN_CONTACT,
                    "run_id": contact.run_id,
                    "call_id": contact.call_id,
                    "msg": spec.msg,
                    "subject": spec.subject,
                    "channel": spec.channel,
                    "response_options": _options(spec.response_options),
                    "state": spec.state,
                }
            },
            requested_by=integrator.name,
        )
        result = await self._service.submit(
            integrator=integrator,
            data=data,
            idempotency_key=_key(HUMAN_CONTACT, contact.call_id),
        )
        return human_contact_of(result.item), result.created

    def _route_name(self, named: str | None) -> str:
        if named is not None:
            if self._routes.get(named) is None:
                raise NotFound(
                    f"no route {named!r} (the base URL names it); known routes: "
                    f"{', '.join(self._routes.names())}"
                )
            return named
        for name in DEFAULT_ROUTES:
            if self._routes.get(name) is not None:
                return name
        raise InvalidInput(
            "no route for HumanLayer requests: add a route named 'humanlayer' (or 'default'), "
            "or name one in the base URL: /humanlayer/routes/<route>/v1",
            field="route",
        )

    # -- read --------------------------------------------------------------------------

    async def item(self, *, integrator: Integrator, kind: str, call_id: str) -> ItemPublic:
        """The item of the caller's call ``call_id``; NotFound otherwise."""
        async with self._sessions() as session:
            row = await item_store.item_by_idempotency_key(
                session, integrator_id=integrator.id, key=_key(kind, call_id)
            )
            if row is None:
                what = "function call" if kind == FUNCTION_CALL else "contact request"
                raise NotFound(f"no {what} {call_id!r}")
            decisions = await item_store.decisions_for(session, item_ids=[row.id])
        found = item_public(row, decisions, self._routes)
        try:  # made here, not an item that borrowed the key over /v1/items
            (function_call_of if kind == FUNCTION_CALL else human_contact_of)(found)
        except (KeyError, TypeError, ValidationError):
            raise NotFound(f"item {found.id} was not made through the HumanLayer API") from None
        return found

    # -- respond (the agent answers for a human) ---------------------------------------

    async def respond_call(
        self, *, integrator: Integrator, call_id: str, status: FunctionCallStatus
    ) -> FunctionCall:
        """Approve (``approved: true``) or reject (``false``, with ``comment`` and/or a
        ``reject_option_name``) as the API key."""
        item = await self.item(integrator=integrator, kind=FUNCTION_CALL, call_id=call_id)
        if status.approved is None:
            raise InvalidInput("must be true or false", field="approved")
        decided = await self._service.decide(
            item_id=item.id,
            action="approve" if status.approved else "reject",
            actor=_actor(integrator),
            reason_code=None if status.approved else status.reject_option_name,
            reason_text=None if status.approved else status.comment,
        )
        return function_call_of(decided)

    async def respond_contact(
        self, *, integrator: Integrator, call_id: str, status: HumanContactStatus
    ) -> HumanContact:
        """Answer a contact request (``response``) as the API key."""
        item = await self.item(integrator=integrator, kind=HUMAN_CONTACT, call_id=call_id)
        if status.response is None:
            raise InvalidInput("the answer is missing", field="response")
        decided = await self._service.decide(
            item_id=item.id,
            action="edit",
            actor=_actor(integrator),
            content={"answer": status.response},
        )
        return human_contact_of(decided)

    # -- escalate ----------------------------------------------------------------------

    async def escalate(
        self, *, integrator: Integrator, kind: str, call_id: str, escalation: Escalation
    ) -> ItemPublic:
        """Escalate a pending request now, the way its route escalates.

        With an ``escalate`` step in the route's chain: its card goes to the step's
        channel (unless already there) and the step's ``mention`` ids (else the route's
        reviewers) are reminded there with the agent's ``escalation_msg``. Without one:
        every chat card of the item gets that reminder, mentioning the route's reviewers.
        Each escalation is recorded in the item's history (an ``escalate`` step run) and
        counted in ``signoff_escalation_steps_total``. signoff sends no e-mail:
        ``additional_recipients`` and ``channel`` are not used.
        """
        item = await self.item(integrator=integrator, kind=kind, call_id=call_id)
        if item.state != "pending":
            raise Conflict(f"item {item.id} is already {item.state}; nothing to escalate")
        route = self._routes.get(item.route)
        if route is None:
            raise NotFound(f"the route {item.route!r} of item {item.id} is gone")
        number = await self._next_number(item.id)
        text = f"Escalated by {integrator.name}: {escalation.escalation_msg}"
        step = next((s for s in route.escalation if s.do == "escalate"), None)
        async with self._sessions() as session:
            posts = [
                p
                for p in await item_store.posts_for(session, item_id=item.id)
                if p.surface != "web" and p.surface in self._surfaces
            ]
        notes: list[str] = []
        if step is not None and step.channel:
            where = route.escalation_surface(step)
            post = next((p for p in posts if (p.surface, p.channel) == (where, step.channel)), None)
            if post is None:
                post = await self._fanout.post_to(item, surface=where, channel=step.channel)
                notes.append(
                    f"posted to {where} {step.channel}"
                    if post
                    else f"posting to {where} {step.channel} failed"
                )
            posts = [post] if post is not None else []
        mentions = _mentions(route, step.mention if step is not None else None)
        card = build_card(item, route)
        reminded: list[int] = []
        for post in posts:
            assert post.id is not None
            try:
                await self._surfaces[post.surface].nudge(
                    card=card,
                    ref=post.ref,
                    mentions=mentions.get(post.surface, []),
                    text=text,
                    key=f"{item.id}:humanlayer-escalation{number}:post{post.id}",
                )
            except Exception as exc:
                log.exception("item %s: escalation on %s failed", item.id, post.surface)
                notes.append(f"{post.surface} failed: {exc}")
                continue
            reminded.append(post.id)
            notes.append(f"reminded on {post.surface} {post.channel or ''}".rstrip())
        if not posts and not notes:
            notes.append("no chat card to remind on (web inbox only)")
        await self._record(item, route, number, text, notes, reminded)
        self._notifier.changed(item.id)
        return item

    async def _next_number(self, item_id: str) -> int:
        async with self._sessions() as session:
            runs = await step_store.runs_for(session, item_id=item_id)
        return 1 + sum(1 for r in runs if r.step < 0)

    async def _record(
        self,
        item: ItemPublic,
        route: Route,
        number: int,
        text: str,
        notes: list[str],
        reminded: list[int],
    ) -> None:
        """One ``escalate`` run per agent escalation, numbered below the route's steps
        (-1, -2, …: they never collide with, or get claimed as, a step of the chain)."""
        now = self._clock.now()
        detail = f"{text} ({'; '.join(dict.fromkeys(notes))})"
        for _ in range(5):  # two escalations at once: the second takes the next number
            try:
                async with self._sessions() as session, session.begin():
                    session.add(
                        StepRun(
                            item_id=item.id,
                            route=route.name,
                            step=-number,
                            action="escalate",
                            state=step_store.DONE,
                            due_at=now,
                            claimed_until=None,
                            attempts=1,
                            done_posts=reminded,
                            detail=detail[:2000],
                            fired_at=now,
                        )
                    )
                return
            except IntegrityError:
                number += 1
        log.warning("item %s: could not record escalation %s", item.id, number)


def _key(kind: str, call_id: str) -> str:
    return f"humanlayer:{kind}:{call_id}"


def _actor(integrator: Integrator) -> Actor:
    return Actor(surface="humanlayer", user_id=integrator.name, name=integrator.name)


def _mentions(route: Route, step_mentions: Mapping[Any, list[str]] | None) -> dict[str, list[str]]:
    """Who an escalation reminds, per surface: the step's ids, else the route's reviewers."""
    chosen: Mapping[Any, list[str]] = (
        step_mentions if step_mentions is not None else route.reviewers
    )
    return {str(surface): list(ids) for surface, ids in chosen.items()}


# -- HTTP ---------------------------------------------------------------------------------
