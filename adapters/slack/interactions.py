"""Slack clicks and modal submissions, on slack-bolt's AsyncApp: every one ends in
``ReviewService.decide``, or for a failed release's Retry button in ``ReleaseRetry.retry``.

Bolt checks each request's signature and acknowledges within Slack's 3 seconds (the
listener calls ``ack()`` first and works after); an error after that reaches the
clicker as an ephemeral message, never silence. Who may decide (or retry a release) is
the route's Slack list of user ids and user groups.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import views
from adapters.slack.audits import SlackAudits
from adapters.slack.blocks import card_blocks, escape, parse_action_id
from adapters.slack.groups import GroupResolver
from adapters.slack.opened import opened_at, stamp_opened
from bot.audits import AuditDesk
from bot.choices import click, parse_choice_id
from bot.clock import Clock
from bot.digest import Digest, tally_words
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound, SignoffError
from bot.ports import Actor
from bot.present import already_decided, build_card
from bot.queue import ReviewQueue
from bot.reader import InboxReader, ItemReader
from bot.reasons import item_reject_reasons
from bot.retry import ReleaseRetry
from bot.routes import RouteTable
from bot.service import ReviewService

log = logging.getLogger("signoff.slack")


class SlackInteractions:
    """Builds the bolt app that turns Slack interactions into decisions."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        signing_secret: str,
        service: ReviewService,
        reader: ItemReader,
        routes: RouteTable,
        groups: GroupResolver,
        web_url: str,
        inbox: InboxReader,
        clock: Clock,
        retry: ReleaseRetry,
        queue: ReviewQueue | None = None,
        audits: AuditDesk | None = None,
    ) -> None:
        self.client = client
        self._review_queue = queue
        self._service = service
        self._retry = retry
        self._reader = reader
        self._routes = routes
        self._groups = groups
        self._web_url = web_url.rstrip("/")
        self._digest = Digest(inbox=inbox, routes=routes, clock=clock)
        self._clock = clock
        self._groups_listed = _lists_user_groups(routes)
        self.app = AsyncApp(client=client, signing_secret=signing_secret, logger=log)
        self.app.action(re.compile(r"^signoff:(approve|edit|reject|redraft):"))(self._on_button)
        self.app.action(re.compile(r"^signoff:retry:"))(self._on_retry)
        self.app.action(re.compile(r"^signoff:(choose|label):"))(self._on_choice)
        self.app.view(views.EDIT)(self._on_edit)
        self.app.view(views.REJECT)(self._on_reject)
        self.app.view(views.REDRAFT)(self._on_reject)  # the same form, another verb
        self.app.command("/signoff")(self._on_command)
        if audits is not None:  # the blind audit cards' buttons and fix modal
            SlackAudits(
                app=self.app, client=client, desk=audits, actor=self._actor, web_url=web_url
            )

    # -- who ---------------------------------------------------------------------------

    async def _actor(self, user: dict[str, Any], route_name: str) -> Actor:
        user_id = str(user.get("id", ""))
        route = self._routes.get(route_name)
        listed = route.reviewers.get("slack", []) if route else []
        groups = await self._groups.groups_of(
            user_id, among=[g for g in listed if g.startswith("S")]
        )
        name = str(user.get("username") or user.get("name") or user_id)
        return Actor(surface="slack", user_id=user_id, name=name, groups=groups)

    async def _actor_of_click(self, user: dict[str, Any], item_id: str) -> Actor:
        """The clicker; the item is read first only when some route lists user groups
        (membership is looked up among the item's route's groups)."""
        if not self._groups_listed:
            return await self._actor(user, "")
        item = await self._reader.get(item_id=item_id)
        return await self._actor(user, item.route)

    # -- listeners ---------------------------------------------------------------------

    async def _on_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        parsed = parse_action_id(str(action.get("action_id", "")))
        if parsed is None:
            return
        verb, item_id = parsed
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        user = body.get("user") or {}
        try:
            if verb == "approve":  # decide checks all that precheck would, in one transaction
                actor = await self._actor_of_click(user, item_id)
                await self._service.decide(item_id=item_id, action="approve", actor=actor)
                return
            item = await self._reader.get(item_id=item_id)
            actor = await self._actor(user, item.route)
            await self._service.precheck(item_id=item_id, action=verb, actor=actor)
            if verb == "edit":
                await self.client.views_open(
                    trigger_id=body["trigger_id"],
                    view=stamp_opened(
                        views.edit_modal(
                            item, channel=channel, web_url=f"{self._web_url}/items/{item_id}"
                        ),
                        at=self._clock.now(),
                    ),
                )
            else:  # reject, or reject and redraft: a form asking for the reason
                route = self._routes.get(item.route)
                reasons = item_reject_reasons(route, item.metadata) if route else []
                await self.client.views_open(
                    trigger_id=body["trigger_id"],
                    view=stamp_opened(
                        views.reject_modal(item, channel=channel, reasons=reasons, verb=verb),
                        at=self._clock.now(),
                    ),
                )
        except Exception as exc:  # after ack(): tell the clicker, never swallow
            await self._tell(channel, user.get("id"), exc, verb=verb, item_id=item_id)

    async def _on_retry(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Retry on a card whose release failed: queue the release again (same key).
        The card is updated through the core; a refusal reaches the clicker alone."""
        await ack()
        parsed = parse_action_id(str(action.get("action_id", "")))
        if parsed is None:
            return
        _, item_id = parsed
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        user = body.get("user") or {}
        try:
            item = await self._reader.get(item_id=item_id)
            actor = await self._actor(user, item.route)
            await self._retry.retry(item_id=item_id, actor=actor)
        except Exception as exc:  # after ack(): tell the clicker, never swallow
            await self._tell(channel, user.get("id"), exc, verb="retry", item_id=item_id)

    async def _on_choice(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A one-click button: a comparison's verdict or a label. Decided at once through
        the core (bot/choices.py); a refusal reaches the clicker alone."""
        await ack()
        parsed = parse_choice_id(str(action.get("action_id", "")))
        if parsed is None:
            return
        verb, item_id, value = parsed
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        user = body.get("user") or {}
        try:
            item = await self._reader.get(item_id=item_id)
            actor = await self._actor(user, item.route)
            await click(
                service=self._service,
                reader=self._reader,
                item_id=item_id,
                verb=verb,
                value=value,
                actor=actor,
            )
        except Exception as exc:  # after ack(): tell the clicker, never swallow
            await self._tell(channel, user.get("id"), exc, verb="decide", item_id=item_id)

    async def _on_edit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        item_id, channel = views.read_metadata(view)
        await self._submit(ack, body, view, item_id, channel, "edit", content=views.read_edit(view))

    async def _on_reject(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The Reject form, or the Reject and redraft one (the reason is the feedback)."""
        item_id, channel = views.read_metadata(view)
        code, text = views.read_reject(view)
        verb = views.reason_verb(view)
        await self._submit(
            ack, body, view, item_id, channel, verb, reason_code=code, reason_text=text
        )

    async def _submit(
        self,
        ack: Any,
        body: dict[str, Any],
        view: dict[str, Any],
        item_id: str,
        channel: str | None,
        verb: str,
        **decision: Any,
    ) -> None:
        user = body.get("user") or {}
        try:  # quick checks first: Slack closes the modal only on an ack within 3 s
            item = await self._reader.get(item_id=item_id)
            actor = await self._actor(user, item.route)
            await self._service.precheck(
                item_id=item_id,
                action=verb,
                actor=actor,
                content=decision.get("content"),
                reason_code=decision.get("reason_code"),
            )
            if verb in ("reject", "redraft") and not (
                decision.get("reason_code") or decision.get("reason_text")
            ):
                raise InvalidInput("give a reason or some details", field="reason_text")
        except InvalidInput as exc:  # shown in the modal, which stays open
            await ack(
                response_action="errors",
                errors={views.error_block(exc.field, view): exc.message[:150]},
            )
            return
        except Exception as exc:
            await ack()
            await self._tell(channel, user.get("id"), exc, verb=verb, item_id=item_id)
            return
        await ack()  # then decide (and update every surface's card) after the deadline
        try:
            await self._service.decide(
                item_id=item_id, action=verb, actor=actor, opened_at=opened_at(view), **decision
            )
        except Exception as exc:
            await self._tell(channel, user.get("id"), exc, verb=verb, item_id=item_id)

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        """``/signoff queue``: items waiting for you; ``/signoff next``: the most uncertain
        one, reserved for you, as its card; ``/signoff stats``: today's numbers for this
        channel's routes. Answered in the ack itself (ephemeral)."""
        words = str(command.get("text") or "").split()
        user = {"id": command.get("user_id"), "name": command.get("user_name")}
        blocks: list[dict[str, Any]] | None = None
        try:
            if words[:1] == ["next"]:
                text, blocks = await self._next(user)
            elif words[:1] == ["queue"]:
                text = await self._queue(user)
            elif words[:1] == ["stats"]:
                text = await self._stats(str(command.get("channel_id") or ""))
            else:
                text = (
                    "Usage: `/signoff queue` (drafts waiting for you), `/signoff next` "
                    "(the one to review next) or `/signoff stats`."
                )
        except Exception:
            log.exception("slack: /signoff %s failed", " ".join(words))
            text, blocks = "Could not answer that: an internal error (logged).", None
        await ack(text=text, blocks=blocks)

    async def _next(self, user: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
        """The most uncertain draft waiting for this user, reserved for them: its card,
        with its buttons, and until when it is theirs."""
        queue = self._review_queue
        item = await queue.next(reviewer=await self._reviewer(user)) if queue else None
        route = self._routes.get(item.route) if item is not None else None
        if item is None or route is None:
            return "Nothing is waiting for you.", None
        held = f"Reserved for you until {item.reserved_until:%H:%M} UTC"
        card = build_card(item, route)
        # On the status line (a quorum's "1 of 2 approvals", else empty): no extra block.
        card = dataclasses.replace(card, status=f"{card.status} · {held}" if card.status else held)
        link = f"{self._web_url}/items/{item.id}"
        text = f"Next for you: <{link}|{escape(item.title)}> · {held}"
        return text, card_blocks(card, web_url=link)

    async def _reviewer(self, user: dict[str, Any]) -> Actor:
        """The user with every user group any route lists (resolved once for all)."""
        listed: set[str] = set()
        for name in self._routes.names():
            route = self._routes.get(name)
            listed.update(g for g in (route.reviewers if route else {}).get("slack", []))
        user_id = str(user.get("id") or "")
        groups = await self._groups.groups_of(
            user_id, among=sorted(g for g in listed if g.startswith("S"))
        )
        return Actor(
            surface="slack", user_id=user_id, name=str(user.get("name") or user_id), groups=groups
        )

    async def _queue(self, user: dict[str, Any]) -> str:
        mine: list[str] = []
        for name in self._routes.names():
            actor = await self._actor(user, name)
            route = self._routes.get(name)
            if route and route.may_decide(
                surface="slack", user_id=actor.user_id, groups=actor.groups
            ):
                mine.append(name)
        items = await self._digest.queue(routes=mine)
        if not items:
            return "Nothing is waiting for you."
        lines = [f"*{len(items)} waiting for you* (oldest due first):"]
        lines += [
            f"• <{self._web_url}/items/{i.id}|{escape(i.title)}> · {escape(i.route)}" for i in items
        ]
        return "\n".join(lines)

    async def _stats(self, channel: str) -> str:
        routes = self._digest.routes_posting_to(surface="slack", channel=channel)
        if not routes:
            return "No route posts to this channel."
        tally = await self._digest.today(routes=routes)
        names = ", ".join(escape(r) for r in routes)
        return f"*Today in {names}* (UTC): {tally_words(tally)}."

    # -- replies -----------------------------------------------------------------------

    async def _tell(
        self, channel: str | None, user: str | None, exc: Exception, *, verb: str, item_id: str
    ) -> None:
        if isinstance(exc, NotAllowed):
            log.warning("slack: %s may not %s %s: %s", user, verb, item_id, exc.message)
        elif isinstance(exc, SignoffError):
            log.info("slack: %s of %s by %s refused: %s", verb, item_id, user, exc.message)
        if isinstance(exc, Conflict) and exc.winner is not None:
            text = escape(already_decided(exc.winner))
        elif isinstance(exc, NotAllowed | Conflict | NotFound | InvalidInput):
            text = escape(exc.message[:1:].upper() + exc.message[1:]) + "."
        elif isinstance(exc, SignoffError):
            text = f"Could not {verb} this item: {escape(exc.message)}"
        else:
            log.exception("slack: %s on %s failed", verb, item_id)
            text = f"Could not {verb} this item: an internal error (logged). Please try again."
        if channel and user:
            try:
                await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
            except Exception:
                log.exception("slack: could not tell %s in %s: %s", user, channel, text)


def _lists_user_groups(routes: RouteTable) -> bool:
    """Whether any route lets a Slack user group (an ``S…`` id) decide."""
    return any(
        reviewer.startswith("S")
        for name in routes.names()
        if (route := routes.get(name)) is not None
        for reviewer in route.reviewers.get("slack", [])
    )
