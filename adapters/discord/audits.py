"""The audit card's buttons on Discord: Correct and Wrong answer at once; "Wrong: fix it"
opens a modal with the draft's editable fields and records the fix with the verdict.

Buttons are ``DynamicItem``s with custom ids ``signoff:audit-correct:<audit id>`` (and
``audit-wrong``, ``audit-fix``), registered in ``setup_hook``, so cards posted before a
restart keep working; the modal is handled in ``on_interaction`` by its custom id
(``signoff-audit-fix:<audit id>``), as modals do not survive a restart. Every answer
ends in ``AuditDesk.answer``, which edits the card (buttons greyed, who audited).
"""

from __future__ import annotations

import logging
import re
from typing import Any, cast

import discord

from bot.audits import ACTION_VERDICTS, AUDIT_ACTIONS, AuditDesk, AuditSubject
from bot.card import ReviewCard
from bot.errors import NotAllowed, SignoffError
from bot.kinds import LIST_FIELDS, get_kind
from bot.ports import Actor

log = logging.getLogger("signoff.discord")
MAX_INPUT = 4000  # Discord's limit for a text input
_MODAL = re.compile(r"^signoff-audit-fix:(?P<audit_id>[0-9]+)$")
_STYLES = {
    "audit-correct": discord.ButtonStyle.success,
    "audit-wrong": discord.ButtonStyle.danger,
    "audit-fix": discord.ButtonStyle.secondary,
}


class AuditButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"signoff:(?P<verb>audit-correct|audit-wrong|audit-fix):(?P<audit_id>[0-9]+)",
):
    """Correct / Wrong / Wrong: fix it on an audit card; the custom id is all the state."""

    def __init__(self, verb: str, audit_id: int, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=AUDIT_ACTIONS[verb],
                style=_STYLES[verb],
                disabled=disabled,
                custom_id=f"signoff:{verb}:{audit_id}",
            )
        )
        self.verb = verb
        self.audit_id = audit_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> AuditButton:
        return cls(match["verb"], int(match["audit_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        audits: DiscordAudits | None = getattr(interaction.client, "audits", None)
        if audits is None:
            await interaction.response.send_message(
                "signoff is starting; try again.", ephemeral=True
            )
            return
        await audits.on_button(interaction, self.verb, self.audit_id)


def audit_view(card: ReviewCard) -> discord.ui.View:
    """The audit card's buttons; greyed out once the audit is answered."""
    assert card.audit_id is not None
    view = discord.ui.View(timeout=None)
    answered = not card.actions
    for verb in AUDIT_ACTIONS:
        if verb in card.actions or (answered and verb != "audit-fix"):
            view.add_item(AuditButton(verb, card.audit_id, disabled=answered))
    return view


class DiscordAudits:
    """Audit clicks and fix modals, each ending in ``AuditDesk.answer``."""

    def __init__(self, *, desk: AuditDesk, web_url: str) -> None:
        self._desk = desk
        self._web_url = web_url.rstrip("/")

    async def on_button(
        self, interaction: discord.Interaction[Any], verb: str, audit_id: int
    ) -> None:
        actor = _actor(interaction.user)
        quiet = discord.AllowedMentions.none()
        try:
            subject = await self._desk.precheck(audit_id=audit_id, actor=actor)
        except SignoffError as exc:
            _log_refusal(exc, actor, audit_id)
            await interaction.response.send_message(
                _words(exc), ephemeral=True, allowed_mentions=quiet
            )
            return
        if verb == "audit-fix":
            too_long = _too_long(subject)
            if too_long:
                await interaction.response.send_message(
                    f"The {too_long} is longer than a Discord form holds ({MAX_INPUT:,} "
                    f"characters): fix it on the web, {self._web_url}/audits/{audit_id}",
                    ephemeral=True,
                    allowed_mentions=quiet,
                )
                return
            await interaction.response.send_modal(_fix_modal(subject))
            return
        await interaction.response.defer()  # acknowledged; the card is edited after
        try:
            await self._desk.answer(audit_id=audit_id, verdict=ACTION_VERDICTS[verb], actor=actor)
        except Exception as exc:
            await _follow_up(interaction, exc)

    async def on_modal(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle the submission of a fix modal; False if it is not one."""
        if interaction.type != discord.InteractionType.modal_submit:
            return False
        data = cast(dict[str, Any], interaction.data or {})
        match = _MODAL.match(str(data.get("custom_id", "")))
        if match is None:
            return False
        await interaction.response.defer()
        try:
            await self._desk.answer(
                audit_id=int(match["audit_id"]),
                verdict="wrong",
                actor=_actor(interaction.user),
                corrected=_corrected(data),
            )
        except Exception as exc:
            await _follow_up(interaction, exc)
        return True


def _actor(user: discord.abc.User) -> Actor:
    roles = tuple(str(r.id) for r in getattr(user, "roles", ()))
    return Actor(surface="discord", user_id=str(user.id), name=user.display_name, groups=roles)


def _fields(subject: AuditSubject) -> list[tuple[str, str]]:
    """The draft's editable fields as text (lists one item a line), at most five."""
    item = subject.item
    content = item.final_content or item.content
    shown = []
    for name in get_kind(item.kind).editable:
        if name == "html":
            continue  # the HTML version is edited on the web
        value = content.get(name)
        shown.append((name, "\n".join(value or []) if name in LIST_FIELDS else str(value or "")))
    return shown[:5]  # Discord allows five inputs


def _too_long(subject: AuditSubject) -> str | None:
    return next((name for name, text in _fields(subject) if len(text) > MAX_INPUT), None)


def _fix_modal(subject: AuditSubject) -> discord.ui.Modal:
    modal = discord.ui.Modal(
        title="Fix the draft", custom_id=f"signoff-audit-fix:{subject.id}", timeout=None
    )
    for name, text in _fields(subject):
        modal.add_item(
            discord.ui.TextInput(
                label=name.capitalize(),
                custom_id=name,
                default=text or None,
                style=discord.TextStyle.paragraph,
                required=name not in ("cc", "description"),
                max_length=MAX_INPUT,
            )
        )
    return modal


def _corrected(data: dict[str, Any]) -> dict[str, Any]:
    """The fixed fields from a submitted modal (lists split on lines and commas)."""
    values: dict[str, Any] = {}

    def walk(components: list[dict[str, Any]]) -> None:
        for c in components:
            if "components" in c:
                walk(c["components"])
            elif "component" in c:
                walk([c["component"]])
            elif "custom_id" in c and "value" in c:
                raw = str(c["value"])
                name = str(c["custom_id"])
                values[name] = (
                    [p.strip() for p in raw.replace(",", "\n").splitlines() if p.strip()]
                    if name in LIST_FIELDS
                    else raw
                )

    walk(list(data.get("components", [])))
    return values


def _log_refusal(exc: SignoffError, actor: Actor, audit_id: int) -> None:
    if isinstance(exc, NotAllowed):
        log.warning(
            "discord: %s (%s) may not audit %s: %s", actor.name, actor.user_id, audit_id, exc
        )


async def _follow_up(interaction: discord.Interaction[Any], exc: Exception) -> None:
    if not isinstance(exc, SignoffError):
        log.exception("discord: an audit answer failed")
    await interaction.followup.send(
        _words(exc), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


def _words(exc: Exception) -> str:
    if isinstance(exc, SignoffError):
        return exc.message[:1].upper() + exc.message[1:] + "."
    return "Something went wrong (logged). Please try again."
