"""``GET /metrics``: Prometheus text exposition, read from the database.

Counts come from the tables, not from process memory, so every replica reports the
same totals and a restart loses nothing: items by route and state, escalation steps
(nudges, escalations, expiries) by route, action and state, and outbox rows by purpose
and state.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from storage import stats
from storage import steps as step_store
from storage.db import SessionFactory

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], int]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {value}")
    return lines


async def render(sessions: SessionFactory) -> str:
    """The metrics page."""
    async with sessions() as session:
        items = await stats.items_by_route_state(session)
        steps = await step_store.counts(session)
        deliveries = await stats.deliveries_by_state(session)
    lines = [
        *_family(
            "signoff_items",
            "gauge",
            "Items by route and state.",
            (({"route": r, "state": s}, n) for r, s, n in items),
        ),
        *_family(
            "signoff_escalation_steps_total",
            "counter",
            "Escalation steps (nudge, escalate, expire) by route, action and state.",
            (({"route": r, "action": a, "state": s}, n) for r, a, s, n in steps),
        ),
        *_family(
            "signoff_deliveries",
            "gauge",
            "Outbox rows (releases and callbacks) by purpose and state.",
            (({"purpose": p, "state": s}, n) for p, s, n in deliveries),
        ),
    ]
    return "\n".join(lines) + "\n"


def metrics_router(*, sessions: SessionFactory) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus metrics (text exposition format 0.0.4)."""
        return PlainTextResponse(await render(sessions), media_type=CONTENT_TYPE)

    return router
