"""``signoff demo`` (what ``make run`` starts): demo routes, a reviewer, an API key and
about ten realistic drafts, released to a sink inside signoff itself."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Request

from bot.auth import Integrator
from bot.clock import Clock
from bot.errors import Conflict
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from bot.service import ReviewService

log = logging.getLogger("signoff.demo")
SINK_PATH = "/demo/sink"


def demo_routes(base_url: str) -> RouteTable:
    """The demo's routes; approved items are released to the demo sink."""
    sink = {"type": "webhook", "url": base_url + SINK_PATH}
    hosts = [urlsplit(base_url).hostname or "127.0.0.1"]
    return parse_routes(
        {
            "routes": {
                "default": {},
                "support-emails": {
                    "thresholds": {"auto_approve_at": 0.97, "auto_reject_below": 0.25},
                    "reject_reasons": ["wrong facts", "wrong tone", "should not be sent"],
                    "target": sink,
                    "callback_hosts": hosts,
                    "allow_private_callbacks": True,  # the sink is signoff itself
                },
                "code-changes": {
                    "reject_reasons": ["breaks tests", "wrong approach", "needs discussion"],
                    "target": sink,
                    "callback_hosts": hosts,
                    "allow_private_callbacks": True,  # the sink is signoff itself
                },
                "refunds": {
                    "reject_reasons": ["wrong amount", "against policy"],
                    "target": sink,
                    "callback_hosts": hosts,
                    "allow_private_callbacks": True,  # the sink is signoff itself
                },
            }
        },
        source="demo routes",
    )


def add_sink(router: APIRouter) -> None:
    """A stand-in for the systems approved actions go to: logs what it receives."""

    @router.post(SINK_PATH)
    async def sink(request: Request) -> dict[str, bool]:
        body = await request.body()
        log.info(
            "demo sink received %s (%s, %d bytes)",
            request.headers.get("Signoff-Event"),
            request.headers.get("Idempotency-Key"),
            len(body),
        )
        return {"ok": True}


FULL_REFUND_DIFF = """\
--- a/app/refunds.py
+++ b/app/refunds.py
@@ -8,9 +8,9 @@ from app.orders import Order
 
 def refund_amount(order: Order) -> Decimal:
     \"\"\"What we pay back for a cancelled order.\"\"\"
     total = order.total
-    # keep a 10% handling fee
-    return total * Decimal("0.9")
+    # cancelled before dispatch: refund in full (policy 2026-03)
+    return total
 
 
 def refund_reason(order: Order) -> str:
"""

RETRY_DIFF = """\
--- a/app/webhooks.py
+++ b/app/webhooks.py
@@ -1,14 +1,24 @@
+import random
 import time
 
 import httpx
 
+MAX_ATTEMPTS = 5
+
 
 def deliver(url: str, payload: dict) -> None:
-    response = httpx.post(url, json=payload, timeout=10)
-    response.raise_for_status()
+    for attempt in range(1, MAX_ATTEMPTS + 1):
+        try:
+            response = httpx.post(url, json=payload, timeout=10)
+            response.raise_for_status()
+            return
+        except httpx.HTTPError:
+            if attempt == MAX_ATTEMPTS:
+                raise
+            time.sleep(min(60, 2**attempt) * random.uniform(0.5, 1))
 
 
 def ping(url: str) -> bool:
-    return httpx.get(url).status_code == 200
+    return httpx.get(url, timeout=5).status_code == 200
"""


def demo_items(clock: Clock) -> list[ItemCreate]:
    soon = clock.now() + timedelta(hours=2)
    email = "support-emails"
    return [
        ItemCreate(
            route=email,
            kind="email",
            title="Refund for order 1234",
            confidence=0.82,
            content={
                "to": ["jane.doe@example.com"],
                "subject": "Your refund for order 1234",
                "body": "Hi Jane,\n\nI'm sorry the blender arrived damaged. We have "
                "refunded the full €89.00 to your card; it should show within 5 working "
                "days.\n\nBest regards,\nSam from Support",
            },
            metadata={"ticket": "T-1234"},
            requested_by="sam",
            due_at=soon,
        ),
        ItemCreate(
            route=email,
            kind="email",
            title="Delivery delayed: apology",
            confidence=0.64,
            content={
                "to": ["m.khan@example.org"],
                "cc": ["logistics@example.com"],
                "subject": "Your order is on its way (a little late)",
                "body": "Dear Mr Khan,\n\nYour order 5521 left our warehouse two days "
                "later than promised. It will arrive on Thursday. As an apology we have "
                "added a €10 voucher to your account.\n\nKind regards,\nSupport",
            },
            metadata={"ticket": "T-5521"},
        ),
        ItemCreate(
            route=email,
            kind="email",
            title="Invoice copy for ACME Ltd",
            confidence=0.71,
            content={
                "to": ["accounts@acme.example"],
                "subject": "Copy of invoice INV-2026-0412",
                "body": "Hello,\n\nPlease find the copy of invoice INV-2026-0412 attached "
                "as requested.\n\nThanks,\nBilling",
            },
        ),
        ItemCreate(
            route=email,
            kind="email",
            title="Password reset instructions",
            confidence=0.99,
            content={
                "to": ["lee@example.net"],
                "subject": "Resetting your password",
                "body": "Hi Lee,\n\nUse the 'Forgot password' link on the sign-in page; "
                "the reset link is valid for one hour.\n\nSupport",
            },
        ),
        ItemCreate(
            route=email,
            kind="email",
            title="Reply to an angry customer",
            confidence=0.12,
            content={
                "to": ["furious@example.com"],
                "subject": "Re: UNACCEPTABLE",
                "body": "Calm down. Read the terms.",
            },
        ),
        ItemCreate(
            route="code-changes",
            kind="code_change",
            title="Refund the full amount",
            confidence=0.64,
            content={
                "repository": "example/shop",
                "base": "main",
                "title": "Refund cancelled orders in full",
                "description": "Orders cancelled before dispatch are refunded in full "
                "since the March policy change; the 10% fee was still deducted.",
                "diff": FULL_REFUND_DIFF,
            },
        ),
        ItemCreate(
            route="code-changes",
            kind="code_change",
            title="Retry webhook deliveries",
            confidence=0.58,
            content={
                "repository": "example/shop",
                "base": "main",
                "title": "Retry webhook deliveries with backoff",
                "description": "Partners saw lost webhooks during their deploys.",
                "diff": RETRY_DIFF,
            },
        ),
        ItemCreate(
            route="refunds",
            kind="decision",
            title="Refund €240 for order 8812?",
            confidence=0.55,
            content={
                "question": "Order 8812 (€240) arrived 9 days late; the customer asks "
                "for a full refund and keeps the goods. What do we do?",
                "options": ["partial refund (20%)", "full refund", "no refund"],
                "proposed": "partial refund (20%)",
            },
        ),
        ItemCreate(
            route="default",
            kind="label",
            title="Classify ticket T-91",
            confidence=0.71,
            content={
                "text": "My invoice shows the wrong VAT number and I need it for my "
                "tax return by Friday.",
                "labels": ["billing", "urgent"],
            },
        ),
        ItemCreate(
            route="default",
            kind="message",
            title="Release note for v2.3",
            confidence=0.77,
            content={
                "text": "v2.3 is out: faster search, dark mode, and exports to CSV. "
                "Thanks to everyone who sent feedback!"
            },
        ),
    ]


async def seed(service: ReviewService, integrator: Integrator, clock: Clock) -> int:
    """Submit the demo items once (idempotently); return how many were new."""
    created = 0
    for n, data in enumerate(demo_items(clock)):
        try:
            result = await service.submit(
                integrator=integrator, data=data, idempotency_key=f"demo-{n}"
            )
        except Conflict:  # seeded by an earlier run (its due times differ from today's)
            continue
        created += result.created
    return created
