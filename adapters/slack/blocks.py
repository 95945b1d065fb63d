"""A review card as Block Kit, within Slack's limits, with draft text made harmless.

Everything that comes from a draft is escaped (``&``, ``<``, ``>``), so ``<!channel>``,
``<@U123>`` or ``<https://evil|bank>`` inside a draft shows as text and notifies nobody.
Limits (Slack's): 50 blocks a message, 3000 characters a section text, 150 a header,
10 fields of 2000. What does not fit is cut at a chunk boundary and the card says how
much more there is, with a link to the item's web page.
"""

from __future__ import annotations

from typing import Any

from bot.audits import AUDIT_ACTIONS
from bot.card import CardChoice, ReviewCard
from bot.choices import choice_id

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FIELD = 2000
MAX_FIELDS = 10
# All body and diff sections together: Slack truncates a message far past this.
MAX_BODY = 36_000
MAX_NOTE = 500  # characters of a failed release's note, before escaping
MAX_BUTTON = 75  # characters of a button's text
ACTION_PREFIX = "signoff"
BLOCK_ID_PREFIX = "signoff-actions:"
CHOICES_BLOCK_PREFIX = "signoff-choices:"  # one-click buttons: verdicts, labels

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: control sequences become literal text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def action_id(action: str, item_id: str) -> str:
    """``signoff:approve:itm_…``: the click carries the item, so no state is needed."""
    return f"{ACTION_PREFIX}:{action}:{item_id}"


def parse_action_id(value: str) -> tuple[str, str] | None:
    """(action, item id) of one of our buttons, or None."""
    parts = value.split(":", 2)
    if len(parts) != 3 or parts[0] != ACTION_PREFIX:
        return None
    return parts[1], parts[2]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chunks(text: str, *, limit: int, wrap: tuple[str, str] = ("", "")) -> list[str]:
    """Escaped ``text`` in pieces whose escaped length, with ``wrap``, fits ``limit``;
    pieces end at a line break where one is near."""
    room = limit - len(wrap[0]) - len(wrap[1])
    pieces: list[str] = []
    rest = text
    while rest:
        take = min(len(rest), room)
        while len(escape(rest[:take])) > room:  # escaping grew it: take less
            take -= max(1, (len(escape(rest[:take])) - room) // 4)
        if take < len(rest):
            cut = rest.rfind("\n", 0, take)
            if cut > take // 2:
                take = cut + 1
        pieces.append(wrap[0] + escape(rest[:take]) + wrap[1])
        rest = rest[take:]
    return pieces


def _header(title: str) -> str:
    # Slack asks for &, <, > as entities in every text; clip before escaping so an
    # entity is never cut in half.
    if len(escape(title)) <= MAX_HEADER:
        return escape(title)
    cut = MAX_HEADER - 1
    while len(escape(title[:cut])) > MAX_HEADER - 1:
        cut -= 1
    return escape(title[:cut]) + "…"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def card_blocks(card: ReviewCard, *, web_url: str) -> list[Block]:
    """The card as blocks: header, context, fields, body or diff, status, a failed
    release's note, buttons (approve/edit/reject, and redraft where the route allows,
    while pending; retry after a failed release)."""
    head: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": _header(card.title)}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _clip(escape(card.context_line), MAX_SECTION)}],
        },
    ]
    if card.fields:
        head.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _clip(f"*{escape(f.label)}*\n{escape(f.value)}", MAX_FIELD),
                    }
                    for f in card.fields[:MAX_FIELDS]
                ],
            }
        )
    if card.options:
        listed = "\n".join(
            f"• {escape(o)}" + (" _(proposed)_" if n == 0 else "")
            for n, o in enumerate(card.options)
        )
        head.append(_section(_clip(listed, MAX_SECTION)))

    tail: list[Block] = []
    if card.status:
        tail.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _clip(escape(card.status), MAX_SECTION)}],
            }
        )
    if card.release_note:
        tail.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        # Clipped before escaping (an entity is never cut in half);
                        # even all "&" it stays within a section's 3000.
                        "text": ":warning: " + escape(_clip(card.release_note, MAX_NOTE)),
                    }
                ],
            }
        )
    if card.choices:
        tail.append(
            {
                "type": "actions",
                "block_id": CHOICES_BLOCK_PREFIX + card.item_id,
                "elements": [_choice_button(card.item_id, c) for c in card.choices],
            }
        )
    target = str(card.audit_id) if card.audit_id is not None else card.item_id  # audit buttons
    buttons = [_button(target, a, *_BUTTONS[a]) for a in card.actions if a in _BUTTONS]
    if buttons:
        tail.append(
            {"type": "actions", "block_id": BLOCK_ID_PREFIX + card.item_id, "elements": buttons}
        )

    pieces: list[str] = []
    if card.body:
        pieces += _chunks(card.body, limit=MAX_SECTION)
    room = MAX_BLOCKS - len(head) - len(tail) - 1  # one left for "there is more"
    if card.sections:  # each gets an equal share: a long "A" never hides "B"
        chars = (MAX_BODY - sum(map(len, pieces))) // len(card.sections)
        blocks = (room - len(pieces)) // len(card.sections)
        for part in card.sections:
            pieces += _labelled(part.label, part.value, chars=chars, blocks=blocks, web_url=web_url)
    if card.diff:
        pieces += _chunks(card.diff, limit=MAX_SECTION, wrap=("```", "```"))
    fit, total = 0, 0
    while fit < len(pieces) and fit < room and total + len(pieces[fit]) <= MAX_BODY:
        total += len(pieces[fit])
        fit += 1
    body = [_section(p) for p in pieces[:fit]]
    if fit < len(pieces):
        left = sum(len(p) for p in pieces[fit:])
        body.append(
            _section(
                f"_…about {left:,} more characters do not fit in Slack:_ "
                f"<{web_url}|open the full draft in signoff>"
            )
        )
    return [*head, *body, *tail]


# The label and style of each action's button, in the card's order of actions.
_BUTTONS: dict[str, tuple[str, str | None]] = {
    "approve": ("Approve", "primary"),
    "edit": ("Edit", None),
    "reject": ("Reject", "danger"),
    # the reviewer's reason becomes the model's feedback for the next revision
    "redraft": ("Reject and redraft", None),
    "retry": ("Retry", "danger"),
    # a blind audit card's (bot/audits.py): their value is the audit's id
    "audit-correct": (AUDIT_ACTIONS["audit-correct"], "primary"),
    "audit-wrong": (AUDIT_ACTIONS["audit-wrong"], "danger"),
    "audit-fix": (AUDIT_ACTIONS["audit-fix"], None),
}


def _button(item_id: str, action: str, label: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action_id(action, item_id),
        "text": {"type": "plain_text", "text": label},
        "value": item_id,
    }
    if style:
        button["style"] = style
    return button


def _choice_button(item_id: str, choice: CardChoice) -> Block:
    """A one-click button (a comparison's verdict, a label): ``signoff:<verb>:<item>:<value>``."""
    button: Block = {
        "type": "button",
        "action_id": choice_id(item_id, choice),
        "text": {"type": "plain_text", "text": _plain(choice.text or "(blank)", MAX_BUTTON)},
        "value": item_id,
    }
    if choice.style:
        button["style"] = choice.style
    return button


def _plain(text: str, limit: int) -> str:
    """``text`` escaped and clipped to ``limit`` (clipped before escaping, so an entity
    is never cut in half)."""
    if len(escape(text)) <= limit:
        return escape(text)
    cut = limit - 1
    while len(escape(text[:cut])) > limit - 1:
        cut -= 1
    return escape(text[:cut]) + "…"


def _labelled(label: str, text: str, *, chars: int, blocks: int, web_url: str) -> list[str]:
    """``text`` under a bold ``label`` in sections, within ``chars`` characters and
    ``blocks`` sections; what does not fit is left to the web page, with a link."""
    head = f"*{escape(label)}*\n"
    pieces = _chunks(text, limit=MAX_SECTION - len(head)) or [""]
    fit, total = 0, 0
    while fit < len(pieces) and fit < max(1, blocks - 1) and total + len(pieces[fit]) <= chars:
        total += len(pieces[fit])
        fit += 1
    shown = [head + p if n == 0 else p for n, p in enumerate(pieces[: max(1, fit)])]
    if fit < len(pieces):
        left = sum(len(p) for p in pieces[max(1, fit) :])
        shown.append(
            f"_…about {left:,} more characters of {escape(label)}:_ "
            f"<{web_url}|read it whole in signoff>"
        )
    return shown


def fallback_text(card: ReviewCard) -> str:
    """The notification text (shown where blocks are not): escaped like the rest."""
    status = f" · {card.status}" if card.status else ""
    note = f" · {card.release_note}" if card.release_note else ""
    return _clip(escape(f"Review: {card.title}{status}{note}"), MAX_SECTION)


def diff_reply(diff: str, *, web_url: str) -> list[Block]:
    """A thread reply with the edit's diff, within the same limits as a card."""
    pieces = _chunks(diff, limit=MAX_SECTION, wrap=("```", "```"))
    blocks = [_section("*What the reviewer changed* (original → released):")]
    blocks += [_section(p) for p in pieces[: MAX_BLOCKS - 2]]
    if len(pieces) > MAX_BLOCKS - 2:
        blocks.append(_section(f"_The rest is on the <{web_url}|item's page in signoff>._"))
    return blocks
