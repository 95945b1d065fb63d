"""Demo data for ``make run``: a handful of drafts of every kind, waiting for review."""

from __future__ import annotations

from bot.auth import Integrator
from bot.schemas import ItemCreate
from bot.service import ReviewService

DEMO_DIFF = """\
--- a/app/refunds.py
+++ b/app/refunds.py
@@ -10,7 +10,7 @@ def refund_amount(order):
     total = order.total
-    return total * 0.9
+    return total
"""

DEMO_ITEMS = [
    ItemCreate(
        route="default",
        kind="email",
        title="Refund for order 1234",
        confidence=0.82,
        content={
            "to": ["jane@example.com"],
            "subject": "Your refund",
            "body": "Hi Jane,\n\nWe have refunded order 1234 in full.\n\nBest,\nSupport",
        },
        metadata={"ticket": "T-1234"},
    ),
    ItemCreate(
        route="default",
        kind="code_change",
        title="Refund the full amount",
        confidence=0.64,
        content={
            "repository": "example/app",
            "base": "main",
            "title": "Refund the full amount",
            "description": "Refunds dropped 10% by mistake.",
            "diff": DEMO_DIFF,
        },
    ),
    ItemCreate(
        route="default",
        kind="decision",
        title="Escalate ticket T-88?",
        confidence=0.55,
        content={
            "question": "The customer threatens to cancel. Escalate?",
            "options": ["escalate", "reply", "close"],
            "proposed": "escalate",
        },
    ),
    ItemCreate(
        route="default",
        kind="label",
        title="Classify ticket T-91",
        confidence=0.71,
        content={"text": "My invoice shows the wrong VAT number.", "labels": ["billing"]},
    ),
]


async def seed(service: ReviewService, integrator: Integrator) -> int:
    """Submit the demo items once (idempotently); return how many were new."""
    created = 0
    for n, data in enumerate(DEMO_ITEMS):
        result = await service.submit(integrator=integrator, data=data, idempotency_key=f"demo-{n}")
        created += result.created
    return created
