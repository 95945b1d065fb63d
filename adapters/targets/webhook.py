"""The generic target: a signed JSON POST to an HTTP endpoint.

Headers: ``Signoff-Signature`` (DESIGN §4), ``Idempotency-Key`` (the same on every
attempt), ``Signoff-Event`` and ``Signoff-Attempt``. A 2xx answer is a delivery; 408,
425, 429 and 5xx (and network errors) are retried; any other answer fails at once,
since sending the same request again would get the same refusal.

SSRF guard (bot/netguard.py): unless the item's route allows private addresses, the
host is resolved here, every address it resolves to must be public, and the request
goes to the checked address (``Host`` and TLS server name stay the host name's), so
a DNS answer that changes after the check cannot redirect it. A refused address fails
at once: retrying would resolve to the same place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from bot.errors import ReleaseError
from bot.netguard import UnsafeAddress, resolve_checked
from bot.ports import DeliveryRequest
from bot.secrets import SIGNATURE_HEADER, sign

_RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookTarget:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        allow_private: Callable[[str], bool] = lambda _route: False,
    ) -> None:
        self._client = client
        self._allow_private = allow_private  # by route name

    async def _pinned(
        self, url: httpx.URL, headers: dict[str, str]
    ) -> tuple[httpx.URL, dict[str, Any]]:
        """``url`` with its host replaced by the checked address it resolves to."""
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        shown = redact(url)
        try:
            address = await resolve_checked(host, port)
        except UnsafeAddress as exc:
            raise ReleaseError(f"POST {shown}: refused: {exc.message}", retryable=False) from None
        except OSError as exc:
            raise ReleaseError(
                f"POST {shown}: cannot resolve {host}: {exc}", retryable=True
            ) from None
        headers["Host"] = url.netloc.decode("ascii")
        extensions: dict[str, Any] = {}
        if url.scheme == "https":
            extensions["sni_hostname"] = host  # the certificate is checked for the name
            # a pooled connection was verified for the name it was opened for: no reuse
            headers["Connection"] = "close"
        return url.copy_with(host=str(address)), extensions

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
            url = httpx.URL(request.url)
        except httpx.InvalidURL as exc:
            raise ReleaseError(f"not a valid URL: {exc}", retryable=False) from None
        shown = redact(url)
        extensions: dict[str, Any] = {}
        if not self._allow_private(str(request.item.get("route", ""))):
            url, extensions = await self._pinned(url, headers)
        try:
            response = await self._client.post(
                url, content=request.body, headers=headers, extensions=extensions
            )
        except httpx.HTTPError as exc:
            raise ReleaseError(
                f"POST {shown}: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if response.is_success:
            return f"HTTP {response.status_code}"
        retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
        snippet = response.text[:200]
        raise ReleaseError(
            f"POST {shown}: HTTP {response.status_code} {snippet}".rstrip(),
            retryable=retryable,
        )


def redact(url: httpx.URL) -> str:
    """``url`` for messages and logs: a password in it is shown as ``***``."""
    return str(url.copy_with(username=url.username, password="***")) if url.password else str(url)
