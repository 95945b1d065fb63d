"""The audit card's buttons on Slack: Correct and Wrong answer at once; "Wrong: fix it"
opens the edit modal first and records the corrected version with the verdict. Every
answer ends in ``AuditDesk.answer``, which updates the card (no buttons, who audited).

Auditors are the route's Slack reviewers (user ids and user groups). A refusal, or a
late answer ("already audited by …"), reaches the clicker alone, as an ephemeral message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import views
from adapters.slack.blocks import escape, parse_action_id
from bot.audits import ACTION_VERDICTS, AuditDesk, AuditSubject, parse_audit_id
from bot.errors import InvalidInput, NotAllowed, SignoffError
from bot.kinds import get_kind, validate_edit
from bot.ports import Actor

log = logging.getLogger("signoff.slack")

FIX = "signoff:audit-fix"  # the modal's callback id
ActorOf = Callable[[dict[str, Any], str], Awaitable[Actor]]


class SlackAudits:
    """Registers the audit listeners on the bolt app."""

    def __init__(
        self,
        *,
        app: AsyncApp,
        client: AsyncWebClient,
        desk: AuditDesk,
        actor: ActorOf,
        web_url: str,
    ) -> None:
        self._client = client
        self._desk = desk
        self._actor = actor  # (Slack user, route name) → Actor with the user's groups
        self._web_url = web_url.rstrip("/")
        app.action(re.compile(r"^signoff:audit-(correct|wrong|fix):"))(self._on_button)
        app.view(FIX)(self._on_fix)

    async def _on_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        parsed = parse_action_id(str(action.get("action_id", "")))
        if parsed is None:
            return
        verb, raw_id = parsed
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        user = body.get("user") or {}
        try:
            audit_id = parse_audit_id(raw_id)
            subject = await self._desk.subject(audit_id=audit_id)
            actor = await self._actor(user, subject.audit.route)
            if verb == "audit-fix":
                await self._desk.precheck(audit_id=audit_id, actor=actor)
                await self._client.views_open(
                    trigger_id=body["trigger_id"], view=self._fix_modal(subject, channel)
                )
            else:
                await self._desk.answer(
                    audit_id=audit_id, verdict=ACTION_VERDICTS[verb], actor=actor
                )
        except Exception as exc:  # after ack(): tell the clicker, never swallow
            await self._tell(channel, user.get("id"), exc)

    async def _on_fix(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        data = json.loads(view.get("private_metadata") or "{}")
        channel = data.get("channel")
        user = body.get("user") or {}
        corrected = views.read_edit(view)
        try:  # quick checks first: Slack closes the modal only on an ack within 3 s
            audit_id = parse_audit_id(str(data.get("audit", "")))
            subject = await self._desk.subject(audit_id=audit_id)
            actor = await self._actor(user, subject.audit.route)
            await self._desk.precheck(audit_id=audit_id, actor=actor)
            item = subject.item
            validate_edit(get_kind(item.kind), item.final_content or item.content, corrected)
        except InvalidInput as exc:  # shown in the modal, which stays open
            await ack(
                response_action="errors",
                errors={views.error_block(exc.field, view): exc.message[:150]},
            )
            return
        except Exception as exc:
            await ack()
            await self._tell(channel, user.get("id"), exc)
            return
        await ack()
        try:
            await self._desk.answer(
                audit_id=audit_id, verdict="wrong", actor=actor, corrected=corrected
            )
        except Exception as exc:
            await self._tell(channel, user.get("id"), exc)

    def _fix_modal(self, subject: AuditSubject, channel: str | None) -> dict[str, Any]:
        """The edit modal of the draft, prefilled, recording "wrong" with the fix."""
        modal = views.edit_modal(
            subject.item, channel=channel, web_url=f"{self._web_url}/audits/{subject.id}"
        )
        modal.update(
            callback_id=FIX,
            private_metadata=json.dumps({"audit": subject.id, "channel": channel}),
            title={"type": "plain_text", "text": "Fix the draft"},
            submit={"type": "plain_text", "text": "Record as wrong"},
        )
        return modal

    async def _tell(self, channel: str | None, user: str | None, exc: Exception) -> None:
        if isinstance(exc, SignoffError):
            if isinstance(exc, NotAllowed):
                log.warning("slack: %s may not audit: %s", user, exc.message)
            text = escape(exc.message[:1].upper() + exc.message[1:]) + "."
        else:
            log.exception("slack: an audit answer failed")
            text = "Could not record that audit: an internal error (logged). Please try again."
        if channel and user:
            try:
                await self._client.chat_postEphemeral(channel=channel, user=user, text=text)
            except Exception:
                log.exception("slack: could not tell %s in %s: %s", user, channel, text)
