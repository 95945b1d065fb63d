"""Reminders and digests on Discord: the real discord.py client against the loopback fake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from adapters.discord.bot import DiscordSurface, SignoffBot
from bot.ports import DigestEntry
from tests.cards import sample_card
from tests.fakes.discord import DiscordFake

WEB = "http://signoff.test"
TEXT = "Still waiting for review after 4 h."
KEY = "itm_1:step0:post3"


@pytest.fixture
async def fake() -> AsyncIterator[DiscordFake]:
    async with DiscordFake(token="token") as fake:
        with fake.patch_discord():
            yield fake
        assert fake.unhandled == [], [(r.method, r.path) for r in fake.unhandled]


@pytest.fixture
async def bot(fake: DiscordFake) -> AsyncIterator[SignoffBot]:
    """The bot on the gateway, as in ``signoff serve``."""
    bot = SignoffBot(guild_ready_timeout=0.05)
    await bot.login("token")
    task = asyncio.create_task(bot.connect())
    try:
        await fake.wait_ready()
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


@pytest.fixture
def surface(bot: SignoffBot) -> DiscordSurface:
    return DiscordSurface(client=bot, web_url=WEB)


def ids(fake: DiscordFake) -> tuple[int, int, int]:
    """The lead's and the intern's user ids and the reviewer role's id."""
    lead = next(uid for uid, m in fake.members.items() if m["username"] == "lead")
    intern = next(uid for uid, m in fake.members.items() if m["username"] == "intern")
    return lead, intern, next(iter(fake.roles))


async def post_card(fake: DiscordFake, surface: DiscordSurface) -> dict[str, Any]:
    ref = await surface.post(card=sample_card(), channel=str(fake.channel_id))
    assert ref is not None
    return dict(ref)


def replies_to(fake: DiscordFake, ref: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        m
        for m in fake.messages_in()
        if (m.get("message_reference") or {}).get("message_id") == ref["message"]
    ]


def last_post(fake: DiscordFake) -> Any:
    return fake.requests_to("POST", f"/channels/{fake.channel_id}/messages")[-1].json


def entry(n: int, *, title: str | None = None) -> DigestEntry:
    return DigestEntry(
        item_id=f"itm_{n}",
        title=title if title is not None else f"Bump {n}",
        url=f"{WEB}/items/itm_{n}",
        note=f"waiting {n} h",
    )


async def test_a_nudge_replies_to_the_card_and_pings_exactly_the_given_ids(
    fake: DiscordFake, surface: DiscordSurface
) -> None:
    lead, intern, role = ids(fake)
    ref = await post_card(fake, surface)
    await surface.nudge(
        card=sample_card(),
        ref=ref,
        mentions=[str(lead), str(role), str(fake.guild_id)],  # the last is @everyone's
        text=TEXT,
        key=KEY,
    )

    [reply] = replies_to(fake, ref)
    assert reply["type"] == 19
    assert reply["content"] == f"<@{lead}> <@&{role}> {TEXT}"
    sent = last_post(fake)
    assert sent["message_reference"]["message_id"] == int(ref["message"])
    allowed = sent["allowed_mentions"]
    assert allowed["parse"] == []  # no "everyone", no blanket users or roles
    assert [int(u) for u in allowed["users"]] == [lead]  # not the intern, nor anyone else
    assert [int(r) for r in allowed["roles"]] == [role]
    assert str(intern) not in reply["content"]
    assert not allowed.get("replied_user")
    assert fake.requests_to("GET", "/messages") == []  # no check unless asked


async def test_roles_are_told_apart_without_the_gateway(fake: DiscordFake) -> None:
    # ``signoff sweep --once`` logs in over REST only: no guild cache, roles come over REST.
    bot = SignoffBot()
    await bot.login("token")
    try:
        surface = DiscordSurface(client=bot, web_url=WEB)
        lead, _, role = ids(fake)
        ref = await post_card(fake, surface)
        await surface.nudge(
            card=sample_card(), ref=ref, mentions=[str(role), str(lead)], text=TEXT, key=KEY
        )
    finally:
        await bot.close()

    [reply] = replies_to(fake, ref)
    assert reply["content"] == f"<@&{role}> <@{lead}> {TEXT}"
    allowed = last_post(fake)["allowed_mentions"]
    assert ([int(r) for r in allowed["roles"]], [int(u) for u in allowed["users"]]) == (
        [role],
        [lead],
    )
    assert fake.requests_to("GET", f"/guilds/{fake.guild_id}/roles")


async def test_check_first_skips_a_reminder_that_is_already_there(
    fake: DiscordFake, surface: DiscordSurface
) -> None:
    lead, _, _ = ids(fake)
    ref = await post_card(fake, surface)
    await surface.nudge(card=sample_card(), ref=ref, mentions=[str(lead)], text=TEXT, key=KEY)
    await surface.nudge(
        card=sample_card(), ref=ref, mentions=[str(lead)], text=TEXT, key=KEY, check_first=True
    )

    assert len(replies_to(fake, ref)) == 1
    [history] = fake.requests_to("GET", f"/channels/{fake.channel_id}/messages")
    assert history.status == 200


async def test_check_first_sends_a_reminder_that_is_not_there(
    fake: DiscordFake, surface: DiscordSurface, bot: SignoffBot
) -> None:
    lead, _, _ = ids(fake)
    ref = await post_card(fake, surface)
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    # The same words, but not a reply to the card; and a reply with other words.
    await channel.send(f"<@{lead}> {TEXT}")
    await surface.nudge(card=sample_card(), ref=ref, mentions=[str(lead)], text="Other.", key="k0")

    await surface.nudge(
        card=sample_card(), ref=ref, mentions=[str(lead)], text=TEXT, key=KEY, check_first=True
    )

    assert [m["content"] for m in replies_to(fake, ref)] == [
        f"<@{lead}> Other.",
        f"<@{lead}> {TEXT}",
    ]


async def test_when_the_check_fails_the_reminder_is_sent_anyway(
    fake: DiscordFake, surface: DiscordSurface, caplog: pytest.LogCaptureFixture
) -> None:
    lead, _, _ = ids(fake)
    ref = await post_card(fake, surface)
    fake.fail("GET", f"/channels/{fake.channel_id}/messages")  # 403 Missing Access
    with caplog.at_level(logging.WARNING, logger="signoff.discord"):
        await surface.nudge(
            card=sample_card(), ref=ref, mentions=[str(lead)], text=TEXT, key=KEY, check_first=True
        )

    assert len(replies_to(fake, ref)) == 1
    assert "Missing Access" in caplog.text


async def test_announce_posts_one_message_of_links_without_previews(
    fake: DiscordFake, surface: DiscordSurface
) -> None:
    lead, _, role = ids(fake)
    await surface.announce(
        channel=str(fake.channel_id),
        mentions=[str(lead), str(role)],
        heading="20 items in code are waiting for review (oldest first):",
        entries=[entry(n) for n in range(20)],
    )

    [message] = fake.messages_in()
    assert message["flags"] & 4  # SUPPRESS_EMBEDS
    lines = message["content"].split("\n")
    assert lines[0] == (
        f"<@{lead}> <@&{role}> 20 items in code are waiting for review (oldest first):"
    )
    assert lines[1:] == [f"• [Bump {n}](<{WEB}/items/itm_{n}>) · waiting {n} h" for n in range(20)]
    allowed = last_post(fake)["allowed_mentions"]
    assert allowed["parse"] == []
    assert [int(u) for u in allowed["users"]] == [lead]
    assert [int(r) for r in allowed["roles"]] == [role]


async def test_a_long_announcement_lists_what_fits_and_says_how_many_more(
    fake: DiscordFake, surface: DiscordSurface
) -> None:
    entries = [entry(n, title=f"{n} " + "long title " * 20) for n in range(300)]
    await surface.announce(
        channel=str(fake.channel_id), mentions=[], heading="Daily digest:", entries=entries
    )

    [message] = fake.messages_in()
    content = message["content"]
    assert len(content) <= 2000
    listed = [line for line in content.split("\n") if line.startswith("• ")]
    more = re.fullmatch(r"… and (\d+) more", content.split("\n")[-1])
    assert more is not None
    assert 0 < len(listed) < 300 and len(listed) + int(more[1]) == 300
    assert [line.split(" ", 2)[1] for line in listed] == [f"[{n}" for n in range(len(listed))]


async def test_announce_escapes_markdown_and_mentions_in_titles(
    fake: DiscordFake, surface: DiscordSurface
) -> None:
    lead, _, _ = ids(fake)
    title = f"**bold** _x_ [a](https://evil) @everyone <@{lead}>"
    await surface.announce(
        channel=str(fake.channel_id),
        mentions=[],
        heading="Waiting:",
        entries=[entry(1, title=title)],
    )

    [message] = fake.messages_in()
    line = message["content"].split("\n")[1]
    assert line.startswith("• [\\*\\*bold\\*\\* \\_x\\_ \\[a\\](https://evil)")
    assert "@\u200beveryone" in line and f"<@\u200b{lead}>" in line
    assert line.endswith(f"](<{WEB}/items/itm_1>) · waiting 1 h")
    assert last_post(fake)["allowed_mentions"] == {"parse": [], "users": [], "roles": []}


async def test_announce_without_a_channel_posts_nothing(
    fake: DiscordFake, surface: DiscordSurface
) -> None:
    await surface.announce(channel=None, mentions=["1"], heading="Waiting:", entries=[entry(1)])
    assert fake.requests_to("POST", "/messages") == []
