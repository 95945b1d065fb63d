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
