"""API keys, signing secrets and webhook signatures.

API keys are 256-bit random tokens; only their SHA-256 digest is stored (a slow password
hash would cost more than the request and adds nothing against a random token).
Signatures follow DESIGN §4:
``Signoff-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "sk_"
SIGNING_SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Signoff-Signature"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_signing_secret() -> str:
    return SIGNING_SECRET_PREFIX + secrets.token_urlsafe(32)


def digest_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    """The ``Signoff-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(*, secret: str, body: bytes, header: str, now: int, tolerance: int = 300) -> bool:
    """Check a ``Signoff-Signature`` header, as a receiver would; rejects stale timestamps."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret=secret, body=body, timestamp=timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
