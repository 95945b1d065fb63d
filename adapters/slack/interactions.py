"""Slack clicks and modal submissions, on slack-bolt's AsyncApp: every one ends in
``ReviewService.decide``, or for a failed release's Retry button in ``ReleaseRetry.retry``.

Bolt checks each request's signature and acknowledges within Slack's 3 seconds (the
listener calls ``ack()`` first and works after); an error after that reaches the
clicker as an ephemeral message, never silence. Who may decide (or retry a release) is
the route's Slack list of user ids and user groups.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import views
from adapters.slack.blocks import escape, parse_action_id
from adapters.slack.groups import GroupResolver
from bot.clock import Clock
from bot.digest import Digest, tally_words
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound, SignoffError
from bot.ports import Actor
from bot.present import already_decided
from bot.reader import InboxReader, ItemReader
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
    ) -> None:
        self.client = client
        self._service = service
        self._retry = retry
        self._reader = reader
        self._routes = routes
        self._groups = groups
        self._web_url = web_url.rstrip("/")
        self._digest = Digest(inbox=inbox, routes=routes, clock=clock)
        self.app = AsyncApp(client=client, signing_secret=signing_secret, logger=log)
        self.app.action(re.compile(r"^signoff:(approve|edit|reject):"))(self._on_button)
        self.app.action(re.compile(r"^signoff:retry:"))(self._on_retry)
        self.app.view(views.EDIT)(self._on_edit)
        self.app.view(views.REJECT)(self._on_reject)
        self.app.command("/signoff")(self._on_command)

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
            item = await self._reader.get(item_id=item_id)
            actor = await self._actor(user, item.route)
            await self._service.precheck(item_id=item_id, action=verb, actor=actor)
            if verb == "approve":
                await self._service.decide(item_id=item_id, action="approve", actor=actor)
            elif verb == "edit":
                await self.client.views_open(
                    trigger_id=body["trigger_id"],
                    view=views.edit_modal(
                        item, channel=channel, web_url=f"{self._web_url}/items/{item_id}"
                    ),
                )
            else:
                route = self._routes.get(item.route)
                await self.client.views_open(
                    trigger_id=body["trigger_id"],
                    view=views.reject_modal(
                        item, channel=channel, reasons=route.reject_reasons if route else []
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

    async def _on_edit(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        item_id, channel = views.read_metadata(view)
        await self._submit(ack, body, view, item_id, channel, "edit", content=views.read_edit(view))

    async def _on_reject(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        item_id, channel = views.read_metadata(view)
        code, text = views.read_reject(view)
        await self._submit(
            ack, body, view, item_id, channel, "reject", reason_code=code, reason_text=text
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
            if verb == "reject" and not (
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
            await self._service.decide(item_id=item_id, action=verb, actor=actor, **decision)
        except Exception as exc:
            await self._tell(channel, user.get("id"), exc, verb=verb, item_id=item_id)

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        """``/signoff queue``: items waiting for you; ``/signoff stats``: today's numbers
        for this channel's routes. Answered in the ack itself (ephemeral)."""
        words = str(command.get("text") or "").split()
        user = {"id": command.get("user_id"), "name": command.get("user_name")}
        try:
            if words[:1] == ["queue"]:
                text = await self._queue(user)
            elif words[:1] == ["stats"]:
                text = await self._stats(str(command.get("channel_id") or ""))
            else:
                text = "Usage: `/signoff queue` (drafts waiting for you) or `/signoff stats`."
        except Exception:
            log.exception("slack: /signoff %s failed", " ".join(words))
            text = "Could not answer that: an internal error (logged)."
        await ack(text=text)

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
