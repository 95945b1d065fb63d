"""Items a model drafted from a task, for the surfaces' "Reject and redraft" tests.

The drafter is the real ``adapters.llm.openai_drafter`` (built by ``bot.app.build`` from
``SIGNOFF_OPENAI_*``) talking to the loopback :class:`tests.fakes.openai.OpenAIFake`;
items are created through the TaskDesk, as ``POST /v1/tasks`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app import System
from bot.auth import Integrator
from bot.task_schemas import TaskCreate
from tests.fakes.openai import OpenAIFake

MODEL = "gpt-test"
PRICES = {MODEL: {"input_per_million": 1, "output_per_million": 2}}
REASONS = ["wrong facts", "wrong tone"]
FIRST = {
    "to": ["jane@example.com"],
    "cc": None,
    "subject": "Your refund for order 1234",
    "body": "Hi Jane,\n\nwe have refunded order 1234 in full.\n\nBest, Support",
    "html": None,
}
SECOND = {**FIRST, "body": "Dear Jane,\n\nso sorry for the wait: order 1234 is refunded.\n\nWarmly"}
THIRD = {**FIRST, "body": "Dear Jane,\n\norder 1234 is refunded. Sorry!\n\nWarmly"}


def openai_env(fake: OpenAIFake) -> dict[str, str]:
    """Settings that point the real OpenAI client at ``fake``."""
    return {
        "SIGNOFF_OPENAI_MODEL": MODEL,
        "SIGNOFF_OPENAI_BASE_URL": f"{fake.url}/v1",
        "SIGNOFF_OPENAI_API_KEY": fake.api_key,
        "SIGNOFF_OPENAI_TIMEOUT_SECONDS": "5",
        "SIGNOFF_OPENAI_MAX_RETRIES": "0",
    }


def drafting_route(**keys: Any) -> dict[str, Any]:
    """A route (``keys``) whose items may be redrafted up to 3 revisions, with reasons."""
    return {"reject_reasons": REASONS, "llm": {"max_revisions": 3}, **keys}


async def drafted_item(
    system: System, integrator: Integrator, *, route: str, title: str = "Refund for order 1234"
) -> str:
    """Create a task on ``route``, let the model draft it (the fake must have an answer
    scripted) and return the id of the item it became."""
    assert system.tasks is not None, "no model configured"
    task, _ = await system.tasks.create(
        integrator=integrator,
        data=TaskCreate(
            route=route,
            kind="email",
            title=title,
            instructions="Tell Jane her order was refunded.",
            context={"ticket": "T-1234: where is my refund?"},
        ),
    )
    async with asyncio.timeout(10):
        await system.tasks.drain()
    done = await system.tasks.get(task_id=task.id)
    assert done.state == "submitted" and done.item_id, done
    return done.item_id


async def redrafted(system: System) -> None:
    """Wait for the redrafts started in this process."""
    assert system.redrafter is not None
    async with asyncio.timeout(10):
        await system.redrafter.drain()


def said_to_model(fake: OpenAIFake, request: int) -> str:
    """All the message text of the fake's ``request``-th request (0-based)."""
    return "\n".join(str(m["content"]) for m in fake.requests[request].messages)
