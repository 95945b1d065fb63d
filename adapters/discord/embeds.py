"""A review card as a Discord message: one embed within Discord's limits, the full text
attached as a file when it does not fit, and mentions that notify nobody.

Limits (Discord's): title 256, description 4096, 25 fields of 256/1024, footer 2048,
6000 characters across a message's embeds. A diff or body longer than the preview is
attached whole (``itm_….diff`` / ``itm_….txt``) with a preview in the embed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import discord

from bot.card import ReviewCard

TITLE = 256
DESCRIPTION = 4096
FIELD_VALUE = 1024
TOTAL = 6000
PREVIEW = 3000  # of a long body or diff, in the description; the rest is in the file
COLOURS = {
    None: 0x2456C7,
    "approved": 0x18794E,
    "rejected": 0xC0362C,
    "release_failed": 0xE03E1A,  # settled, but the release failed: needs someone
}


@dataclass
class CardMessage:
    """What to send: the embed, any attached files, and mentions switched off."""

    embed: discord.Embed
    files: list[discord.File] = field(default_factory=list)
    allowed_mentions: discord.AllowedMentions = field(default_factory=discord.AllowedMentions.none)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fence(text: str) -> str:
    # A ``` inside the draft would close our code block early.
    return text.replace("```", "`\u200b``")


def _preview(text: str, limit: int) -> tuple[str, bool]:
    """The first lines of ``text`` that fit in ``limit`` characters; and whether cut."""
    if len(text) <= limit:
        return text, False
    cut = text.rfind("\n", 0, limit)
    return text[: cut if cut > limit // 2 else limit], True


def card_message(card: ReviewCard, *, web_url: str) -> CardMessage:
    """The card as an embed; a long body or diff also as an attached file."""
    embed = discord.Embed(title=_clip(card.title, TITLE), url=web_url, colour=_colour(card))
    context = [("Route", card.route)]
    if card.confidence is not None:
        context.append(("Confidence", f"{card.confidence:.2f}"))
    if card.revision > 1:  # redrafted: the earlier revisions are sections below
        context.append(("Revision", f"{card.revision} of {card.max_revisions}"))
    if card.requested_by:
        context.append(("Requested by", card.requested_by))
    if card.due is not None:
        context.append(("Due", discord.utils.format_dt(card.due, "R")))
    for name, value in context:
        embed.add_field(name=name, value=_clip(value, FIELD_VALUE), inline=True)
    for f in card.fields:
        embed.add_field(
            name=_clip(f.label, 256), value=_clip(f.value or "—", FIELD_VALUE), inline=f.short
        )
    if card.status:
        embed.add_field(name="Status", value=_clip(card.status, FIELD_VALUE), inline=False)
    if card.release_note:
        # The error may quote a target's answer: shown as text, not as markdown.
        note = discord.utils.escape_markdown(card.release_note)
        embed.add_field(name="Release", value=_clip(f"⚠️ {note}", FIELD_VALUE), inline=False)

    files: list[discord.File] = []
    parts: list[str] = []
    if card.options:
        parts.append(
            "\n".join(
                f"• **{o}** (proposed)" if n == 0 else f"• {o}" for n, o in enumerate(card.options)
            )
        )
    budget = min(DESCRIPTION, TOTAL - len(embed)) - 200  # room for the notes below
    for text, suffix, code in ((card.body, "txt", False), (card.diff, "diff", True)):
        if not text:
            continue
        room = max(200, budget - sum(len(p) for p in parts) - (12 if code else 0))
        shown, cut = _preview(text, min(room, PREVIEW))
        parts.append(f"```diff\n{_fence(shown)}\n```" if code else shown)
        if cut:
            files.append(
                discord.File(io.BytesIO(text.encode()), filename=f"{card.item_id}.{suffix}")
            )
            lines = len(text.splitlines())
            parts.append(
                f"*Preview: the whole {'diff' if code else 'text'} ({lines:,} lines, "
                f"{len(text):,} characters) is attached as `{card.item_id}.{suffix}`.*"
            )
    if card.sections:  # equal shares, so a long "A" never hides "B"; long ones attached
        share = (budget - sum(len(p) + 2 for p in parts)) // len(card.sections)
        for part in card.sections:
            parts.append(_section(card.item_id, part.label, part.value, room=share, files=files))
    embed.description = _clip("\n\n".join(parts), min(DESCRIPTION, TOTAL - len(embed)))
    return CardMessage(embed=embed, files=files)


def _section(item_id: str, label: str, text: str, *, room: int, files: list[discord.File]) -> str:
    """``text`` under a bold ``label`` in about ``room`` characters; when cut, the whole
    text is attached (``itm_…-A.txt``) and the section says so."""
    head = f"**{discord.utils.escape_markdown(label)}**\n"
    name = f"{item_id}-{re.sub(r'[^0-9A-Za-z]', '', label) or 'text'}.txt"
    note = f"\n*… the whole {label} ({len(text):,} characters) is attached as `{name}`.*"
    shown, cut = _preview(text, max(100, min(PREVIEW, room - len(head) - len(note))))
    if not cut:
        return head + shown
    files.append(discord.File(io.BytesIO(text.encode()), filename=name))
    return head + shown + note


def _colour(card: ReviewCard) -> int:
    if card.release_note:
        return COLOURS["release_failed"]
    if card.status is None or "approve" in card.actions or card.choices:
        return COLOURS[None]
    lowered = card.status.lower()
    if lowered.startswith("revision"):  # "Revision 1 rejected …; drafting revision 2…"
        return COLOURS[None]  # still open: the next revision is on its way
    return (
        COLOURS["rejected"]
        if lowered.startswith(("rejected", "auto-rejected", "expired"))
        else COLOURS["approved"]
    )
