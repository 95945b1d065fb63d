"""The Discord side of signoff on discord.py: persistent buttons, modals, the surface.

Buttons are ``DynamicItem``s whose custom id carries the item id, registered in
``setup_hook``, so cards posted before a restart keep working. Modal submissions are
handled in ``on_interaction`` (a modal object does not survive a restart). Every
interaction is answered first (deferred, or a modal shown) and worked on after; an error
after that reaches the clicker as an ephemeral follow-up. A card whose release failed
carries a Retry button (the same ``DynamicItem``) that queues the release again.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import aiohttp
import discord
from discord import app_commands

from adapters.discord.audits import AuditButton, DiscordAudits, audit_view
from adapters.discord.choices import ChoiceButton, add_choices
from adapters.discord.embeds import card_message
from adapters.discord.opened import opened_from, with_opened
from bot.card import ReviewCard
from bot.choices import click
from bot.clock import Clock, SystemClock
from bot.digest import Digest, tally_words
from bot.errors import Conflict, InvalidInput, NotAllowed, SignoffError
from bot.kinds import LIST_FIELDS, get_kind
from bot.ports import Actor, DigestEntry
from bot.present import already_decided, build_card, fit_lines
from bot.queue import ReviewQueue
from bot.reader import ItemReader
from bot.reasons import item_reject_reasons
from bot.retry import ReleaseRetry
from bot.routes import RouteTable
from bot.schemas import ItemPublic
from bot.service import ReviewService

log = logging.getLogger("signoff.discord")
MAX_INPUT = 4000  # Discord's limit for a text input
_MODAL = re.compile(  # the opening time is missing from forms opened by older versions
    r"^signoff-(?P<verb>edit|reject|redraft):(?P<item_id>itm_[0-9A-Z]+)(?::(?P<opened>[0-9]+))?$"
)


class ReviewButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"signoff:(?P<verb>approve|edit|reject|redraft|retry):(?P<item_id>itm_[0-9A-Z]+)",
):
    """Approve / Edit / Reject (and Reject and redraft where the route allows it), and
    Retry for a failed release; the custom id (≤ 100 characters) is all the state."""

    STYLES = {
        "approve": discord.ButtonStyle.success,
        "edit": discord.ButtonStyle.primary,
        "reject": discord.ButtonStyle.danger,
        "redraft": discord.ButtonStyle.secondary,
        "retry": discord.ButtonStyle.danger,
    }
    LABELS = {"redraft": "Reject and redraft"}  # the others: the verb, capitalized

    def __init__(self, verb: str, item_id: str, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.LABELS.get(verb, verb.capitalize()),
                style=self.STYLES[verb],
                disabled=disabled,
                custom_id=f"signoff:{verb}:{item_id}",
            )
        )
        self.verb = verb
        self.item_id = item_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ReviewButton:
        return cls(match["verb"], match["item_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        reviews: DiscordReviews | None = getattr(interaction.client, "reviews", None)
        if reviews is None:
            await interaction.response.send_message(
                "signoff is starting; try again.", ephemeral=True
            )
            return
        await reviews.on_button(interaction, self.verb, self.item_id)


def card_view(card: ReviewCard) -> discord.ui.View:
    """Approve / Edit / Reject, greyed out once settled; Reject and redraft while the
    route allows another revision; Retry after a failed release; the one-click buttons
    while pending (a comparison has only those)."""
    if card.audit_id is not None:  # a blind audit card: Correct / Wrong
        return audit_view(card)
    view = discord.ui.View(timeout=None)
    pending = "approve" in card.actions
    comparison = card.kind == "comparison"
    for verb in ("approve", "edit", "reject") if not comparison else ():
        view.add_item(ReviewButton(verb, card.item_id, disabled=not pending))
    if "redraft" in card.actions:  # on the first row, beside Reject
        view.add_item(ReviewButton("redraft", card.item_id))
    add_choices(view, choices=card.choices, item_id=card.item_id, first_row=0 if comparison else 1)
    if "retry" in card.actions:
        view.add_item(ReviewButton("retry", card.item_id))
    return view


class SignoffBot(discord.Client):
    """A discord.py client that knows signoff's buttons, modals and /signoff commands."""

    def __init__(self, *, guild_ids: Sequence[int] = (), **options: Any) -> None:
        intents = discord.Intents.default()
        # Nothing signoff sends may ping anyone unless a call says so explicitly.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=intents, **options)
        self.reviews: DiscordReviews | None = None
        self.audits: DiscordAudits | None = None  # audit cards' buttons and fix modal
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(_signoff_commands())
        self._guild_ids = tuple(guild_ids)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ReviewButton, ChoiceButton, AuditButton)
        if self._guild_ids:  # immediate in those guilds
            for guild_id in self._guild_ids:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:  # everywhere (Discord may take a while to show them)
            await self.tree.sync()

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if self.audits is not None and await self.audits.on_modal(interaction):
            return  # the fix of an audit
        if interaction.type != discord.InteractionType.modal_submit or self.reviews is None:
            return
        data = cast(dict[str, Any], interaction.data or {})
        match = _MODAL.match(str(data.get("custom_id", "")))
        if match:
            await self.reviews.on_modal(
                interaction, match["verb"], match["item_id"], opened_at=opened_from(match["opened"])
            )


def _signoff_commands() -> app_commands.Group:
    group = app_commands.Group(name="signoff", description="Drafts waiting for review")

    @group.command(name="queue", description="Drafts waiting for you")
    async def queue(interaction: discord.Interaction[Any]) -> None:
        reviews: DiscordReviews | None = getattr(interaction.client, "reviews", None)
        text = await reviews.queue_text(interaction.user) if reviews else "Starting; try again."
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @group.command(name="next", description="The draft to review next, held for you")
    async def next_(interaction: discord.Interaction[Any]) -> None:
        reviews: DiscordReviews | None = getattr(interaction.client, "reviews", None)
        if reviews is None:
            await interaction.response.send_message("Starting; try again.", ephemeral=True)
            return
        await reviews.on_next(interaction)

    @group.command(name="stats", description="Today's numbers for this channel's routes")
    async def stats(interaction: discord.Interaction[Any]) -> None:
        reviews: DiscordReviews | None = getattr(interaction.client, "reviews", None)
        channel = str(interaction.channel_id or "")
        text = await reviews.stats_text(channel) if reviews else "Starting; try again."
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    return group


class DiscordSurface:
    name = "discord"
    MAX_CONTENT = 2000  # Discord's limit for a message's content
    MAX_LABEL = 100  # characters of a title (or note) in a digest line, before escaping

    def __init__(self, *, client: discord.Client, web_url: str) -> None:
        self._client = client
        self._web_url = web_url.rstrip("/")

    async def _channel(self, channel_id: int) -> Any:
        return self._client.get_channel(channel_id) or await self._client.fetch_channel(channel_id)

    async def post(self, *, card: ReviewCard, channel: str | None) -> Mapping[str, Any] | None:
        if not channel:
            raise ValueError("a Discord surface needs a channel")
        target = await self._channel(int(channel))
        message = card_message(card, web_url=self._web_url + card.web_path)
        sent = await target.send(
            embed=message.embed,
            files=message.files,
            view=card_view(card),
            allowed_mentions=message.allowed_mentions,
        )
        return {"channel": str(target.id), "message": str(sent.id)}

    async def update(self, *, card: ReviewCard, ref: Mapping[str, Any]) -> None:
        target = await self._channel(int(ref["channel"]))
        message = card_message(card, web_url=self._web_url + card.web_path)
        posted = target.get_partial_message(int(ref["message"]))
        await posted.edit(
            embed=message.embed, view=card_view(card), allowed_mentions=message.allowed_mentions
        )
        # Settled with an edit: what changed, once. Later updates of the card (the
        # release failed, was retried, went out) find the thread already there.
        if card.edit_diff and not card.actions and not await self._has_thread(posted.id):
            thread = await posted.create_thread(name=f"Edit of {card.title}"[:100])
            diff = card.edit_diff.replace("```", "`\u200b``")
            quiet = discord.AllowedMentions.none()
            if len(diff) <= 1900:
                await thread.send(f"```diff\n{diff}\n```", allowed_mentions=quiet)
            else:
                edit_file = discord.File(
                    io.BytesIO(card.edit_diff.encode()), filename=f"{card.item_id}-edit.diff"
                )
                await thread.send(
                    "What the reviewer changed:", file=edit_file, allowed_mentions=quiet
                )

    async def _has_thread(self, message_id: int) -> bool:
        """Whether a thread was started from the message (it has the message's id).
        When that cannot be told, False: a second diff is better than none."""
        if self._client.get_channel(message_id) is not None:
            return True
        try:
            await self._client.fetch_channel(message_id)
        except discord.NotFound:
            return False
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.warning("discord: could not look for the thread of %s (%s)", message_id, exc)
            return False
        return True

    async def nudge(
        self,
        *,
        card: ReviewCard,
        ref: Mapping[str, Any],
        mentions: Sequence[str],
        text: str,
        key: str,
        check_first: bool = False,
    ) -> None:
        """A reply to the card that pings exactly ``mentions`` (users, or roles of the
        channel's guild).

        Discord messages carry no metadata, so with ``check_first`` the newest messages
        after the card are searched for this bot's reply to it with the same content; if
        there is one, nothing is sent. When that search fails the reminder is sent anyway;
        a duplicate is better than a lost reminder.
        """
        target = await self._channel(int(ref["channel"]))
        card_id = int(ref["message"])
        who, allowed = await self._mentions(target, mentions)
        content = f"{who} {text}".strip()[: self.MAX_CONTENT]
        if check_first and await self._already_replied(target, card_id, content):
            log.info("discord: reminder %s is already in the channel; not sent again", key)
            return
        await target.get_partial_message(card_id).reply(content, allowed_mentions=allowed)

    async def _already_replied(self, channel: Any, card_id: int, content: str) -> bool:
        """Whether one of the newest 100 messages after the card is this bot's reply to
        it with ``content`` (False if unsure)."""
        me = self._client.user
        if me is None:
            return False
        try:
            # Newest first: an attempt that died mid-send is among the latest messages.
            async for message in channel.history(
                after=discord.Object(card_id), limit=100, oldest_first=False
            ):
                reference = message.reference
                if (
                    message.author.id == me.id
                    and reference is not None
                    and reference.message_id == card_id
                    and message.content == content
                ):
                    return True
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.warning(
                "discord: could not read channel %s to check for a reminder (%s); sending it",
                getattr(channel, "id", "?"),
                exc,
            )
        return False

    async def announce(
        self,
        *,
        channel: str | None,
        mentions: Sequence[str],
        heading: str,
        entries: Sequence[DigestEntry],
    ) -> None:
        """One message listing ``entries`` as links (no link previews), as many as fit in
        Discord's 2000 characters."""
        if not channel:
            return
        target = await self._channel(int(channel))
        who, allowed = await self._mentions(target, mentions)
        head = f"{who} {discord.utils.escape_markdown(heading)}".strip()
        lines = [
            f"• [{self._label(e.title)}](<{e.url}>)"
            + (f" · {self._label(e.note)}" if e.note else "")
            for e in entries
        ]
        await target.send(
            fit_lines(head, lines, limit=self.MAX_CONTENT),
            allowed_mentions=allowed,
            suppress_embeds=True,
        )

    async def _mentions(
        self, channel: Any, ids: Sequence[str]
    ) -> tuple[str, discord.AllowedMentions]:
        """Mentions for ``ids`` (roles of the channel's guild as ``<@&id>``, others as
        users) and the allowed mentions that let exactly those ping; never @everyone."""
        roles = await self._role_ids(channel) if ids else set()
        guild = getattr(channel, "guild", None)
        words: list[str] = []
        users: list[discord.Object] = []
        pinged_roles: list[discord.Object] = []
        for raw in dict.fromkeys(ids):
            if not str(raw).isdigit():
                log.warning("discord: %r is not a user or role id; not mentioned", raw)
                continue
            snowflake = int(raw)
            if guild is not None and snowflake == guild.id:
                continue  # the @everyone role: never pinged
            if snowflake in roles:
                words.append(f"<@&{snowflake}>")
                pinged_roles.append(discord.Object(snowflake))
            else:
                words.append(f"<@{snowflake}>")
                users.append(discord.Object(snowflake))
        allowed = discord.AllowedMentions(
            everyone=False, users=users, roles=pinged_roles, replied_user=False
        )
        return " ".join(words), allowed

    async def _role_ids(self, channel: Any) -> set[int]:
        """The ids of the roles of the channel's guild: from the gateway's cache, or over
        REST when the client is logged in without a gateway (``signoff sweep --once``)."""
        guild = getattr(channel, "guild", None)
        if guild is None:
            return set()
        cached = {role.id for role in guild.roles}
        if cached:
            return cached
        try:
            return {role.id for role in await guild.fetch_roles()}
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.warning("discord: could not list the roles of guild %s (%s)", guild.id, exc)
            return set()

    @classmethod
    def _label(cls, text: str) -> str:
        """Draft text safe inside a markdown link label: one line, clipped, markdown
        escaped, mentions neutralised and no bracket that could end the label."""
        flat = " ".join(text.split())
        if len(flat) > cls.MAX_LABEL:
            flat = flat[: cls.MAX_LABEL - 1] + "…"
        # Brackets step aside while escape_markdown runs (its link rule would add a
        # backslash before "[" of its own), then come back escaped.
        flat = flat.replace("[", "\ue000").replace("]", "\ue001")
        safe = discord.utils.escape_mentions(discord.utils.escape_markdown(flat))
        return safe.replace("\ue000", "\\[").replace("\ue001", "\\]")


class DiscordReviews:
    """Clicks and modal submissions, each ending in ``ReviewService.decide``; the Retry
    button of a failed release ends in ``ReleaseRetry.retry``."""

    def __init__(
        self,
        *,
        service: ReviewService,
        reader: ItemReader,
        routes: RouteTable,
        web_url: str,
        digest: Digest,
        retry: ReleaseRetry,
        queue: ReviewQueue | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._service = service
        self._clock = clock or SystemClock()  # times the opening of Edit and Reject forms
        self._queue = queue
        self._retry = retry
        self._reader = reader
        self._routes = routes
        self._web_url = web_url.rstrip("/")
        self._digest = digest

    async def queue_text(self, user: discord.abc.User) -> str:
        actor = self._actor(user)
        mine = [
            name
            for name in self._routes.names()
            if (route := self._routes.get(name)) is not None
            and route.may_decide(surface="discord", user_id=actor.user_id, groups=actor.groups)
        ]
        items = await self._digest.queue(routes=mine)
        if not items:
            return "Nothing is waiting for you."
        lines = [f"**{len(items)} waiting for you** (oldest due first):"]
        lines += [f"- [{_plain(i.title)}]({self._web_url}/items/{i.id}) · {i.route}" for i in items]
        return "\n".join(lines)[:2000]

    async def on_next(self, interaction: discord.Interaction[Any]) -> None:
        """``/signoff next``: the most uncertain draft waiting for the user, reserved for
        them, as its card with working buttons; only they see it."""
        quiet = discord.AllowedMentions.none()
        queue = self._queue
        try:
            item = await queue.next(reviewer=self._actor(interaction.user)) if queue else None
        except SignoffError as exc:
            await interaction.response.send_message(
                _words(exc), ephemeral=True, allowed_mentions=quiet
            )
            return
        route = self._routes.get(item.route) if item is not None else None
        if item is None or route is None:
            await interaction.response.send_message(
                "Nothing is waiting for you.", ephemeral=True, allowed_mentions=quiet
            )
            return
        held = f"Reserved for you until {item.reserved_until:%H:%M} UTC"
        card = build_card(item, route)
        card = dataclasses.replace(card, status=f"{card.status} · {held}" if card.status else held)
        message = card_message(card, web_url=f"{self._web_url}/items/{item.id}")
        await interaction.response.send_message(
            embed=message.embed,
            files=message.files,
            view=card_view(card),
            ephemeral=True,
            allowed_mentions=message.allowed_mentions,
        )

    async def stats_text(self, channel: str) -> str:
        routes = self._digest.routes_posting_to(surface="discord", channel=channel)
        if not routes:
            return "No route posts to this channel."
        tally = await self._digest.today(routes=routes)
        return f"**Today in {', '.join(routes)}** (UTC): {tally_words(tally)}."

    def _actor(self, user: discord.abc.User) -> Actor:
        roles = tuple(str(r.id) for r in getattr(user, "roles", ()))
        return Actor(surface="discord", user_id=str(user.id), name=user.display_name, groups=roles)

    async def on_button(
        self, interaction: discord.Interaction[Any], verb: str, item_id: str
    ) -> None:
        actor = self._actor(interaction.user)
        if verb == "retry":
            await self.on_retry(interaction, item_id, actor)
            return
        try:
            item = await self._reader.get(item_id=item_id)
            await self._service.precheck(item_id=item_id, action=verb, actor=actor)
        except SignoffError as exc:
            log.log(
                logging.WARNING if isinstance(exc, NotAllowed) else logging.INFO,
                "discord: %s (%s) may not %s %s: %s",
                actor.name,
                actor.user_id,
                verb,
                item_id,
                exc.message,
            )
            await interaction.response.send_message(
                _words(exc), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
            return
        if verb == "edit":
            too_long = _too_long(item)
            if too_long:
                await interaction.response.send_message(
                    f"The {too_long} is longer than a Discord form holds ({MAX_INPUT:,} "
                    f"characters): edit it in the web editor, {self._web_url}/items/{item.id}",
                    ephemeral=True,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
                return
            await interaction.response.send_modal(
                with_opened(self._edit_modal(item), at=self._clock.now())
            )
            return
        if verb in ("reject", "redraft"):  # a form asking for the reason
            await interaction.response.send_modal(
                with_opened(self._reject_modal(item, verb=verb), at=self._clock.now())
            )
            return
        await interaction.response.defer()  # acknowledged; the message is edited after
        try:
            await self._service.decide(item_id=item_id, action="approve", actor=actor)
        except Exception as exc:
            await self._follow_up(interaction, exc, verb)

    async def on_retry(
        self, interaction: discord.Interaction[Any], item_id: str, actor: Actor
    ) -> None:
        """Queue a failed release again (same key); the card is edited through the core."""
        await interaction.response.defer()  # acknowledged; the message is edited after
        try:
            await self._retry.retry(item_id=item_id, actor=actor)
        except Exception as exc:
            if isinstance(exc, NotAllowed):
                log.warning(
                    "discord: %s (%s) may not retry %s: %s",
                    actor.name,
                    actor.user_id,
                    item_id,
                    exc.message,
                )
            await self._follow_up(interaction, exc, "retry")

    async def on_choice(
        self, interaction: discord.Interaction[Any], verb: str, item_id: str, value: str
    ) -> None:
        """A one-click button (a comparison's verdict, a label), decided at once through
        the core; a refusal reaches the clicker alone."""
        await interaction.response.defer()  # acknowledged; the message is edited after
        actor = self._actor(interaction.user)
        try:
            await click(
                service=self._service,
                reader=self._reader,
                item_id=item_id,
                verb=verb,
                value=value,
                actor=actor,
            )
        except Exception as exc:
            if isinstance(exc, NotAllowed):
                log.warning(
                    "discord: %s (%s) may not decide %s: %s",
                    actor.name,
                    actor.user_id,
                    item_id,
                    exc.message,
                )
            await self._follow_up(interaction, exc, verb)

    async def on_modal(
        self,
        interaction: discord.Interaction[Any],
        verb: str,
        item_id: str,
        *,
        opened_at: datetime | None = None,
    ) -> None:
        await interaction.response.defer()
        values = _modal_values(interaction)
        actor = self._actor(interaction.user)
        try:
            if verb == "edit":
                item = await self._reader.get(item_id=item_id)
                await self._service.decide(
                    item_id=item_id,
                    action="edit",
                    actor=actor,
                    content=_edited(item, values),
                    opened_at=opened_at,
                )
            else:  # reject, or reject and redraft (the reason is the model's feedback)
                await self._service.decide(
                    item_id=item_id,
                    action=verb,
                    actor=actor,
                    reason_code=values.get("reason_code") or None,
                    reason_text=values.get("reason_text") or None,
                    opened_at=opened_at,
                )
        except Exception as exc:
            if isinstance(exc, NotAllowed):
                log.warning(
                    "discord: %s (%s) may not %s %s: %s",
                    actor.name,
                    actor.user_id,
                    verb,
                    item_id,
                    exc.message,
                )
            await self._follow_up(interaction, exc, verb)

    async def _follow_up(
        self, interaction: discord.Interaction[Any], exc: Exception, verb: str
    ) -> None:
        if not isinstance(exc, SignoffError):
            log.exception("discord: %s failed", verb)
        elif not isinstance(exc, NotAllowed):  # NotAllowed is logged with the actor
            log.info("discord: %s refused: %s", verb, exc.message)
        await interaction.followup.send(
            _words(exc), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    def _edit_modal(self, item: ItemPublic) -> discord.ui.Modal:
        modal = discord.ui.Modal(
            title="Edit draft", custom_id=f"signoff-edit:{item.id}", timeout=None
        )
        content = item.final_content or item.content
        for name in get_kind(item.kind).editable[:5]:  # Discord allows five inputs
            value = content.get(name)
            text = "\n".join(value or []) if name in LIST_FIELDS else str(value or "")
            if name == "html":
                continue  # the HTML version is edited in the web editor
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

    def _reject_modal(self, item: ItemPublic, *, verb: str = "reject") -> discord.ui.Modal:
        """The reason form of Reject, or of Reject and redraft (``verb="redraft"``)."""
        route = self._routes.get(item.route)
        reasons = ", ".join(item_reject_reasons(route, item.metadata)) if route else ""
        title, text_label = _REASON_FORMS[verb]
        modal = discord.ui.Modal(title=title, custom_id=f"signoff-{verb}:{item.id}", timeout=None)
        if reasons:
            modal.add_item(
                discord.ui.TextInput(
                    label="Reason",
                    custom_id="reason_code",
                    required=False,
                    max_length=100,
                    placeholder=f"one of: {reasons}"[:100],
                )
            )
        modal.add_item(
            discord.ui.TextInput(
                label=text_label,
                custom_id="reason_text",
                style=discord.TextStyle.paragraph,
                required=not reasons,
                max_length=MAX_INPUT,
            )
        )
        return modal


# Per verb: the form's title and its text's label (Discord allows 45 characters each).
_REASON_FORMS = {
    "reject": ("Reject draft", "Details"),
    "redraft": ("Reject and redraft", "What should the next draft do differently?"),
}


def _too_long(item: ItemPublic) -> str | None:
    """The first editable field too long for a Discord text input, if any."""
    content = item.final_content or item.content
    for name in get_kind(item.kind).editable:
        value = content.get(name)
        text = "\n".join(value or []) if name in LIST_FIELDS else str(value or "")
        if name != "html" and len(text) > MAX_INPUT:
            return name
    return None


def _plain(text: str) -> str:
    """A title safe inside a markdown link label."""
    return discord.utils.escape_markdown(text).replace("]", "\\]")[:100]


def _modal_values(interaction: discord.Interaction[Any]) -> dict[str, str]:
    values: dict[str, str] = {}

    def walk(components: list[dict[str, Any]]) -> None:
        for c in components:
            if "components" in c:
                walk(c["components"])
            elif "component" in c:
                walk([c["component"]])
            elif "custom_id" in c and "value" in c:
                values[str(c["custom_id"])] = str(c["value"])

    data = cast(dict[str, Any], interaction.data or {})
    walk(list(data.get("components", [])))
    return values


def _edited(item: ItemPublic, values: Mapping[str, str]) -> dict[str, Any]:
    edited: dict[str, Any] = {}
    for name, raw in values.items():
        if name in LIST_FIELDS:
            edited[name] = [p.strip() for p in raw.replace(",", "\n").splitlines() if p.strip()]
        else:
            edited[name] = raw
    return edited


def _words(exc: Exception) -> str:
    if isinstance(exc, Conflict) and exc.winner is not None:
        return already_decided(exc.winner)
    if isinstance(exc, SignoffError | InvalidInput):
        return exc.message[:1].upper() + exc.message[1:] + "."
    return "Something went wrong (logged). Please try again."
