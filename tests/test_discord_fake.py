"""The real discord.py client against the loopback Discord fake (REST + gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import discord
import pytest

from tests.fakes.discord import CALLBACK_DEFERRED_UPDATE, DiscordFake


class ProbeClient(discord.Client):
    """Answers every interaction with a deferred update, as a button handler would."""

    def __init__(self) -> None:
        # guild_ready_timeout: READY waits this long after the last GUILD_CREATE.
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.interactions: list[discord.Interaction] = []

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.interactions.append(interaction)
        await interaction.response.defer()


@pytest.fixture
async def fake() -> AsyncIterator[DiscordFake]:
    fake = DiscordFake(token="token")
    await fake.start()
    try:
        with fake.patch_discord():
            yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def client(fake: DiscordFake) -> AsyncIterator[ProbeClient]:
    client = ProbeClient()
    await client.login("token")
    task = asyncio.create_task(client.connect())
    try:
        await fake.wait_ready(within=5)
        await asyncio.wait_for(client.wait_until_ready(), 5)
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    assert fake.unhandled == [], [(r.method, r.path) for r in fake.unhandled]


async def test_patch_discord_restores_the_real_endpoints() -> None:
    def current() -> tuple[str, str]:
        return discord.http.Route.BASE, str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)

    before = current()
    fake = await DiscordFake().start()
    try:
        with fake.patch_discord():
            patched = current()
        assert patched == (fake.rest_url, fake.gateway_url)
        assert current() == before
    finally:
        await fake.stop()


async def test_client_connects_and_caches_the_guild(fake: DiscordFake, client: ProbeClient) -> None:
    assert client.user is not None and client.user.id == fake.bot_user_id and client.user.bot
    assert client.application_id == fake.application_id
    guild = client.get_guild(fake.guild_id)
    assert guild is not None and guild.name == fake.guild_name
    channel = client.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel) and channel.guild == guild
    assert guild.me is not None
    assert {r.id for r in guild.roles} == {fake.guild_id, *fake.roles}
    # Default intents lack GUILD_MEMBERS, so discord.py caches only the bot itself.

    # zstandard is absent here, so discord.py asks for (and decodes) a zlib stream.
    assert (
        fake.gateway_connects[0]["compress"]
        == discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    )
    identify = next(f for f in fake.gateway_received if f["op"] == 2)
    assert identify["d"]["token"] == "token"
    assert identify["d"]["intents"] == discord.Intents.default().value
    assert any(f["op"] == 1 for f in fake.gateway_received)  # heartbeat (acked)
    me = fake.requests_to("GET", "/users/@me")[0]
    assert me.headers["Authorization"] == "Bot token" and me.status == 200


async def test_send_embed_is_recorded(fake: DiscordFake, client: ProbeClient) -> None:
    channel = client.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    embed = discord.Embed(title="Draft #7", description="needs a look", colour=0x5865F2)
    sent = await channel.send("review please", embed=embed)

    assert sent.content == "review please"
    assert sent.author.id == fake.bot_user_id
    assert [e.title for e in sent.embeds] == ["Draft #7"]
    (req,) = fake.requests_to("POST", "/messages")
    assert req.status == 200 and req.path == f"/channels/{fake.channel_id}/messages"
    assert req.json["embeds"][0]["title"] == "Draft #7"
    assert fake.messages[sent.id]["embeds"][0]["description"] == "needs a look"

    edited = await sent.edit(content="reviewed")
    assert edited.content == "reviewed" and edited.edited_at is not None
    assert fake.messages[sent.id]["content"] == "reviewed"


async def test_file_upload_is_recorded(fake: DiscordFake, client: ProbeClient) -> None:
    channel = client.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("diff", file=discord.File(io.BytesIO(b"+ added\n"), "change.diff"))

    assert [a.filename for a in sent.attachments] == ["change.diff"]
    assert sent.attachments[0].size == len(b"+ added\n")
    (req,) = fake.requests_to("POST", "/messages")
    assert req.json["content"] == "diff"
    assert [(f.filename, f.data) for f in req.files] == [("change.diff", b"+ added\n")]
    assert [u.data for u in fake.uploads[sent.id]] == [b"+ added\n"]


async def test_rate_limited_send_is_retried_once(fake: DiscordFake, client: ProbeClient) -> None:
    channel = client.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    fake.rate_limit(method="POST", path_contains="/messages", times=1, retry_after=0.2)

    sent = await channel.send(embed=discord.Embed(title="once"))

    calls = fake.requests_to("POST", "/messages")
    assert [r.status for r in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 0.2
    assert [m["id"] for m in fake.messages_in()] == [str(sent.id)]


async def test_rate_limit_headers_are_discords(fake: DiscordFake) -> None:
    import aiohttp

    fake.rate_limit(method="GET", path_contains="/channels", retry_after=0.5)
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bot token"}) as http,
        http.get(f"{fake.rest_url}/channels/{fake.channel_id}") as limited,
        http.get(f"{fake.rest_url}/channels/{fake.channel_id}") as ok,
        http.get(f"{fake.rest_url}/no/such/route") as missing,
    ):
        assert limited.status == 429
        assert limited.headers["Content-Type"] == "application/json"
        assert limited.headers["Via"]
        for name in ("Limit", "Remaining", "Reset-After", "Bucket", "Scope"):
            assert f"X-RateLimit-{name}" in limited.headers
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert (await limited.json())["retry_after"] == 0.5
        assert ok.status == 200 and ok.headers["Content-Type"] == "application/json"
        assert missing.status == 404
        assert await missing.json() == {"message": "Unknown route", "code": 0}
    assert [(r.method, r.path) for r in fake.unhandled] == [("GET", "/no/such/route")]
    fake.requests.clear()


async def test_button_interaction_is_deferred_within_3s(
    fake: DiscordFake, client: ProbeClient
) -> None:
    channel = client.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("approve?")
    lead_id = next(iter(fake.members))

    payload = fake.button_interaction(custom_id="approve:7", user_id=lead_id, message_id=sent.id)
    await fake.send_interaction(payload)
    callback = await fake.wait_for_callback(payload["id"], within=3.0)

    assert callback.type == CALLBACK_DEFERRED_UPDATE and callback.latency < 3.0
    (interaction,) = client.interactions
    assert interaction.type is discord.InteractionType.component
    assert interaction.data is not None and interaction.data.get("custom_id") == "approve:7"
    assert interaction.user.id == lead_id and isinstance(interaction.user, discord.Member)
    assert interaction.user.name == fake.members[lead_id]["username"]
    assert {r.id for r in interaction.user.roles} == {
        fake.guild_id,
        *fake.members[lead_id]["roles"],
    }
    assert interaction.message is not None and interaction.message.id == sent.id
    assert interaction.channel is not None and interaction.channel.id == fake.channel_id

    # After a deferred update the original response is the clicked message.
    await interaction.edit_original_response(content="approved by lead")
    assert fake.messages[sent.id]["content"] == "approved by lead"
    followup = await interaction.followup.send("done", wait=True)
    assert fake.messages[followup.id]["webhook_id"] == str(fake.application_id)

    # Discord acknowledges an interaction once.
    with pytest.raises(discord.HTTPException) as again:
        await interaction.response.__class__(interaction).defer()
    assert again.value.code == 40060


async def test_unknown_interaction_callback_is_refused(fake: DiscordFake) -> None:
    import aiohttp

    url = f"{fake.rest_url}/interactions/123/not-a-token/callback"
    async with aiohttp.ClientSession() as http, http.post(url, json={"type": 6}) as resp:
        assert resp.status == 404
        assert await resp.json() == {"message": "Unknown interaction", "code": 10062}
    assert fake.callbacks == []
    with pytest.raises(RuntimeError, match="no identified gateway client"):
        await fake.send_interaction({"id": "1", "token": "t"})


async def text_channel(fake: DiscordFake, client: ProbeClient) -> discord.TextChannel:
    channel = client.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_a_reply_is_stored_with_its_reference(fake: DiscordFake, client: ProbeClient) -> None:
    channel = await text_channel(fake, client)
    card = await channel.send("card")
    reply = await card.reply("reminder", allowed_mentions=discord.AllowedMentions.none())

    stored = fake.messages[reply.id]
    assert stored["type"] == 19
    assert stored["message_reference"] == {
        "type": 0,
        "message_id": str(card.id),
        "channel_id": str(fake.channel_id),
        "guild_id": str(fake.guild_id),
    }
    assert stored["referenced_message"]["content"] == "card"
    assert reply.reference is not None and reply.reference.message_id == card.id
    assert isinstance(reply.reference.resolved, discord.Message)

    unknown = channel.get_partial_message(fake.snowflake())
    with pytest.raises(discord.HTTPException) as refused:
        await unknown.reply("to nothing")
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "Unknown message" in refused.value.text
    plain = await channel.send(
        "to nothing", reference=unknown.to_reference(fail_if_not_exists=False)
    )
    assert fake.messages[plain.id]["type"] == 0 and plain.reference is None


async def test_history_pages_newest_first_like_discord(
    fake: DiscordFake, client: ProbeClient
) -> None:
    import aiohttp

    channel = await text_channel(fake, client)
    sent = [await channel.send(f"m{n}") for n in range(5)]
    fake.messages[sent[4].id]["flags"] = 64  # as if ephemeral: never in history

    newest = [m.content async for m in channel.history(limit=3)]
    assert newest == ["m3", "m2", "m1"]
    after = [m.content async for m in channel.history(after=sent[0], limit=2)]
    assert after == ["m1", "m2"]  # discord.py turns Discord's newest-first page around
    before = [m.content async for m in channel.history(before=sent[3])]
    assert before == ["m2", "m1", "m0"]

    url = f"{fake.rest_url}/channels/{fake.channel_id}/messages"
    async with aiohttp.ClientSession(headers={"Authorization": "Bot token"}) as http:
        async with http.get(url, params={"after": str(sent[0].id), "limit": "2"}) as page:
            assert [m["content"] for m in await page.json()] == ["m2", "m1"]
        async with http.get(url, params={"limit": "101"}) as too_many:
            assert too_many.status == 400 and (await too_many.json())["code"] == 50035
        both = {"before": str(sent[3].id), "after": str(sent[0].id)}
        async with http.get(url, params=both) as exclusive:
            assert exclusive.status == 400


async def test_what_discord_refuses_in_a_message(fake: DiscordFake, client: ProbeClient) -> None:
    import aiohttp

    channel = await text_channel(fake, client)
    await channel.send("x" * 2000)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "2000 or fewer" in too_long.value.text

    url = f"{fake.rest_url}/channels/{fake.channel_id}/messages"
    exclusive = {"content": "hi", "allowed_mentions": {"parse": ["users"], "users": ["1"]}}
    too_many = {"content": "hi", "allowed_mentions": {"parse": [], "roles": ["1"] * 101}}
    async with aiohttp.ClientSession(headers={"Authorization": "Bot token"}) as http:
        for body in (exclusive, too_many):
            async with http.post(url, json=body) as answer:
                assert answer.status == 400
                assert "allowed_mentions" in (await answer.json())["errors"]
    assert [m["content"] for m in fake.messages_in()] == ["x" * 2000]


async def test_suppressed_embeds_are_a_message_flag(fake: DiscordFake, client: ProbeClient) -> None:
    channel = await text_channel(fake, client)
    sent = await channel.send("[link](<https://example.com>)", suppress_embeds=True)
    assert fake.messages[sent.id]["flags"] == 4
    assert sent.flags.suppress_embeds
    [request] = fake.requests_to("POST", "/messages")
    assert request.json["flags"] == 4


async def test_guild_roles_over_rest(fake: DiscordFake, client: ProbeClient) -> None:
    guild = client.get_guild(fake.guild_id)
    assert guild is not None
    roles = await guild.fetch_roles()
    assert {r.id for r in roles} == {fake.guild_id, *fake.roles}
    assert fake.requests_to("GET", f"/guilds/{fake.guild_id}/roles")[0].status == 200


async def test_scripted_failures(fake: DiscordFake, client: ProbeClient) -> None:
    channel = await text_channel(fake, client)
    await channel.send("m0")
    fake.fail("GET", "/messages")
    with pytest.raises(discord.Forbidden) as refused:
        _ = [m async for m in channel.history(limit=10)]
    assert (refused.value.status, refused.value.code) == (403, 50001)
    assert [m.content async for m in channel.history(limit=10)] == ["m0"]  # once only
