"""Release targets through the whole pipeline: a reviewer's decision, the outbox, the
worker, and a real SMTP server or a real bare git repository."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.targets.email import EmailTarget
from adapters.targets.git import GitTarget
from bot.app import System, build
from bot.auth import Integrator
from bot.clock import FrozenClock
from bot.ports import Actor, DeliveryRequest, DeliveryTarget
from bot.routes import parse_routes
from bot.schemas import ItemCreate
from bot.settings import load_settings
from storage import keys as key_store
from storage.migrate import upgrade
from tests.fakes.github import GithubFake
from tests.fakes.surface import RecordingSurface
from tests.targets.test_email import Serve, serve  # noqa: F401 - the SMTP server fixture
from tests.targets.test_git import APP, EDITED_DIFF, PROPOSED_DIFF, git, origin  # noqa: F401

ANN = Actor(surface="slack", user_id="U0ANN", name="ann")
ZOE = Actor(surface="web", user_id="zoe", name="Zoë")
EMAIL = {
    "to": ["jane@example.com"],
    "cc": ["records@example.com"],
    "subject": "Your refund",
    "body": "Hi Jane, your refund is on its way.",
}


class DiesAfterSending:
    """A target that delivers, then its process 'dies' before the worker records it."""

    def __init__(self, real: DeliveryTarget) -> None:
        self.real = real

    async def deliver(self, *, request: DeliveryRequest) -> str:
        await self.real.deliver(request=request)
        raise asyncio.CancelledError  # the worker never hears back


async def make(
    tmp_path: Path,
    clock: FrozenClock,
    routes: Mapping[str, Any],
    *,
    targets: Mapping[str, Any] | None = None,
    surface: RecordingSurface | None = None,
    **settings: str,
) -> System:
    system = build(
        load_settings(
            {
                "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
                "SIGNOFF_RELEASE_TIMEOUT_SECONDS": "5",
                **settings,
            }
        ),
        clock=clock,
        routes=parse_routes({"routes": routes}),
        surfaces={"web": surface or RecordingSurface(name="web")},
        targets=targets,
    )
    await upgrade(system.engine)
    return system


async def integrator_of_existing(system: System) -> Integrator:
    async with system.sessions() as session:
        key = await key_store.key_by_id(session, key_id=1)
    assert key is not None
    return Integrator(id=1, name=key.name)


async def integrator_of(system: System) -> Integrator:
    key = await system.keys.create(name="agent")
    found = await system.keys.authenticate(key.api_key)
    assert found is not None
    return found


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


async def test_the_edited_email_is_sent_once_even_when_the_worker_dies_after_sending(
    tmp_path: Path,
    clock: FrozenClock,
    serve: Serve,  # noqa: F811
) -> None:
    port, mailbox = serve()
    url = f"smtp://127.0.0.1:{port}"
    routes = {"support": {"target": {"type": "email", "from": "Support <help@example.com>"}}}
    real = EmailTarget(smtp_url=url)
    dying = await make(tmp_path, clock, routes, targets={"email": DiesAfterSending(real)})
    try:
        integrator = await integrator_of(dying)
        data = ItemCreate(route="support", kind="email", title="Refund", content=EMAIL)
        item = (await dying.service.submit(integrator=integrator, data=data)).item
        edited = {**EMAIL, "body": "Hi Jane, your refund of 40 EUR is on its way."}
        await dying.service.decide(item_id=item.id, action="edit", actor=ANN, content=edited)
        with pytest.raises(asyncio.CancelledError):
            await dying.worker.run_once()
    finally:
        await dying.close()
    assert len(mailbox.received) == 1  # the server has it; nobody recorded that

    clock.advance(timedelta(minutes=10))  # past the dead worker's lease
    restarted = await make(tmp_path, clock, routes, SIGNOFF_SMTP_URL=url)
    try:
        assert await restarted.worker.run_once() == 1
        released = await restarted.reader.get(item_id=item.id)
        attempts = await restarted.web.inbox.attempts(item_id=item.id)
    finally:
        await restarted.close()
    assert released.release_state == "released"
    first, second = mailbox.received
    assert first.raw == second.raw  # the same message, byte for byte
    [(message_id, stored)] = mailbox.stored.items()  # and one copy in the mailbox
    assert stored["Message-ID"] == message_id and item.id in message_id
    assert stored["From"] == "Support <help@example.com>"
    assert stored["To"] == "jane@example.com" and stored["Cc"] == "records@example.com"
    assert stored["Subject"] == "Your refund"
    body = stored.get_body(preferencelist=("plain",))
    assert body is not None and "refund of 40 EUR" in body.get_content()
    assert [a.attempt for a in attempts] == [2] and attempts[0].detail.startswith("SMTP 250")


async def test_git_lands_the_approved_change_once_and_a_bad_patch_fails_on_the_card(
    tmp_path: Path,
    clock: FrozenClock,
    origin: Path,  # noqa: F811
) -> None:
    routes = {"code": {"target": {"type": "git", "repository": str(origin)}, "quorum": 2}}
    content = {
        "repository": "acme/greeter",
        "base": "main",
        "title": "Punctuate the greeting",
        "description": "The greeting lacked a comma.",
        "diff": PROPOSED_DIFF,
    }
    dying = await make(tmp_path, clock, routes, targets={"git": DiesAfterSending(GitTarget())})
    try:
        integrator = await integrator_of(dying)
        data = ItemCreate(route="code", kind="code_change", title="Punctuate", content=content)
        good = (await dying.service.submit(integrator=integrator, data=data)).item
        await dying.service.decide(item_id=good.id, action="approve", actor=ANN)
        await dying.service.decide(
            item_id=good.id, action="edit", actor=ZOE, content={"diff": EDITED_DIFF}
        )
        await dying.service.decide(item_id=good.id, action="approve", actor=ANN)
        with pytest.raises(asyncio.CancelledError):
            await dying.worker.run_once()  # pushed, then died before recording it
    finally:
        await dying.close()

    clock.advance(timedelta(minutes=10))
    surface = RecordingSurface(name="web")
    system = await make(tmp_path, clock, routes, surface=surface)
    try:
        await system.worker.run_once()
        released = await system.reader.get(item_id=good.id)
        [attempt] = await system.web.inbox.attempts(item_id=good.id)
        integrator = await integrator_of_existing(system)
        broken = {**content, "diff": PROPOSED_DIFF.replace("Hello", "Howdy")}
        data = ItemCreate(route="code", kind="code_change", title="Broken", content=broken)
        bad = (await system.service.submit(integrator=integrator, data=data)).item
        await system.service.decide(item_id=bad.id, action="approve", actor=ANN)
        await system.service.decide(item_id=bad.id, action="approve", actor=ZOE)
        await system.worker.run_once()
        failed = await system.reader.get(item_id=bad.id)
    finally:
        await system.close()
    assert released.release_state == "released" and "(already there)" in attempt.detail
    assert git("rev-list", "--count", f"main..signoff/{good.id}", cwd=origin).strip() == "1"
    message = git("log", "-1", "--format=%B", f"signoff/{good.id}", cwd=origin)
    assert message.startswith("Punctuate the greeting\n\nThe greeting lacked a comma.")
    assert "Reviewed-by: ann (slack U0ANN)" in message
    assert "Reviewed-by: Zoë (web zoe)" in message
    assert f"Signoff-Item: {good.id}" in message
    landed = git("show", f"signoff/{good.id}:app.py", cwd=origin)
    assert 'return f"Hello, {name}!"' in landed  # the reviewer's edit, not the draft

    assert failed.release_state == "failed"
    assert failed.release_error is not None and "patch" in failed.release_error
    card = next(c for c, _ in reversed(surface.updates) if c.item_id == bad.id)
    assert card.release_note == f"Release failed: {failed.release_error}"
    assert card.actions == ("retry",)


async def test_github_opens_one_pull_request_and_a_retry_after_an_outage_reuses_it(
    tmp_path: Path, clock: FrozenClock
) -> None:
    async with GithubFake() as github:
        github.seed(repo="acme/greeter", files={"app.py": APP})
        routes = {"code": {"target": {"type": "github", "repository": "acme/greeter"}}}
        system = await make(
            tmp_path,
            clock,
            routes,
            SIGNOFF_GITHUB_TOKEN=github.token,
            SIGNOFF_GITHUB_API_URL=github.url,
            SIGNOFF_RELEASE_MAX_ATTEMPTS="1",
        )
        try:
            integrator = await integrator_of(system)
            content = {
                "repository": "acme/greeter",
                "base": "main",
                "title": "Punctuate the greeting",
                "description": "The greeting lacked a comma.",
                "diff": PROPOSED_DIFF,
            }
            data = ItemCreate(route="code", kind="code_change", title="Punctuate", content=content)
            item = (await system.service.submit(integrator=integrator, data=data)).item
            await system.service.decide(item_id=item.id, action="approve", actor=ANN)
            # GitHub loses the answer to "open the pull request": one attempt, failed
            github.script("POST", "/repos/acme/greeter/pulls", status=502, times=1, after=True)
            await system.worker.run_once()
            failed = await system.reader.get(item_id=item.id)
            await system.retry.retry(item_id=item.id, actor=ANN)
            await system.worker.run_once()
            released = await system.reader.get(item_id=item.id)
        finally:
            await system.close()
        assert failed.release_state == "failed" and "502" in (failed.release_error or "")
        assert released.release_state == "released"
        [pull] = github.pulls("acme/greeter")  # one pull request, made before the 502
        assert pull["head"] == f"signoff/{item.id}" and pull["base"] == "main"
        assert pull["title"] == "Punctuate the greeting"
        assert "ann (slack U0ANN)" in pull["body"]
        assert github.files("acme/greeter", f"signoff/{item.id}")["app.py"].count("Hello, ") == 1
