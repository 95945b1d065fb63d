"""The generic target: a signed JSON POST to an HTTP endpoint.

Headers: ``Signoff-Signature`` (DESIGN §4), ``Idempotency-Key`` (the same on every
attempt), ``Signoff-Event`` and ``Signoff-Attempt``. A 2xx answer is a delivery; 408,
425, 429 and 5xx (and network errors) are retried; any other answer fails at once,
since sending the same request again would get the same refusal.
"""

from __future__ import annotations

import time

import httpx

from bot.errors import ReleaseError
from bot.ports import DeliveryRequest
from bot.secrets import SIGNATURE_HEADER, sign

_RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookTarget:
    def __init__(self, *, client: httpx.AsyncClient) -> None:
        self._client = client

    async def deliver(self, *, request: DeliveryRequest) -> str:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": request.idempotency_key,
            "Signoff-Event": request.event,
            "Signoff-Attempt": str(request.attempt),
            SIGNATURE_HEADER: sign(
                secret=request.signing_secret, body=request.body, timestamp=int(time.time())
            ),
        }
        try:
            response = await self._client.post(request.url, content=request.body, headers=headers)
        except httpx.HTTPError as exc:
            raise ReleaseError(
                f"POST {request.url}: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if response.is_success:
            return f"HTTP {response.status_code}"
        retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
        snippet = response.text[:200]
        raise ReleaseError(
            f"POST {request.url}: HTTP {response.status_code} {snippet}".rstrip(),
            retryable=retryable,
        )
