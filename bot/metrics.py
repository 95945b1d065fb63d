"""``GET /metrics``: Prometheus text exposition, read from the database.

Counts come from the tables, not from process memory, so every replica reports the
same totals and a restart loses nothing: items by route and state (the pending ones are
the queue depth), outcomes, time to decision, escalation steps, audit agreement, gold
accuracy, and outbox rows by purpose and state (release failures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def _histogram(
    name: str, help_text: str, rows: list[tuple[str, list[int], int, float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for route, cumulative, count, total in rows:
        label = f'route="{_label(route)}"'
        for bound, n in zip(stats.DECISION_BUCKETS, cumulative, strict=True):
            lines.append(f'{name}_bucket{{{label},le="{bound:g}"}} {n}')
        lines.append(f'{name}_bucket{{{label},le="+Inf"}} {count}')
        lines.append(f"{name}_sum{{{label}}} {total:g}")
        lines.append(f"{name}_count{{{label}}} {count}")
    return lines


async def render(sessions: SessionFactory) -> str:
    """The metrics page."""
    async with sessions() as session:
        items = await stats.items_by_route_state(session)
        steps = await step_store.counts(session)
        deliveries = await stats.deliveries_by_state(session)
        outcomes = await stats.outcomes_by_route(session)
        times = await stats.decision_time_histogram(session)
        audits = await stats.audits_by_verdict(session)
        gold = await stats.gold_grades(session)
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
        *_family(
            "signoff_outcomes_total",
            "counter",
            "Settled items by route and outcome.",
            (({"route": r, "outcome": o}, n) for r, o, n in outcomes),
        ),
        *_histogram(
            "signoff_time_to_decision_seconds",
            "From posting to the settling decision, by route.",
            times,
        ),
        *_family(
            "signoff_audits_total",
            "counter",
            "Blind audits of automatic decisions by route and verdict (correct, wrong, open).",
            (({"route": r, "verdict": v}, n) for r, v, n in audits),
        ),
        *_family(
            "signoff_gold_decisions_total",
            "counter",
            "People's decisions on gold items by route and whether they matched the answer.",
            (({"route": r, "correct": "true" if ok else "false"}, n) for r, ok, n in gold),
        ),
    ]
    return "\n".join(lines) + "\n"


def metrics_router(
    *, sessions: SessionFactory, leading: Callable[[], bool] = lambda: True
) -> APIRouter:
    """``GET /metrics``; ``leading`` says whether this replica leads (``signoff_leader``,
    the one per-replica gauge)."""
    router = APIRouter()

    @router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus metrics (text exposition format 0.0.4)."""
        leader = [
            "# HELP signoff_leader Whether this replica leads (runs the gateway connections).",
            "# TYPE signoff_leader gauge",
            f"signoff_leader {1 if leading() else 0}",
        ]
        text = await render(sessions) + "\n".join(leader) + "\n"
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    return router
