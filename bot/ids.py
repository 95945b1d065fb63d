"""Item ids: ``itm_`` and 26 Crockford base-32 characters that sort by creation time."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

# RFC 4648 base 32 re-spelt in Crockford's alphabet, which sorts like the numbers it encodes.
_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


def new_item_id(now: datetime) -> str:
    # 48 bits of milliseconds and 80 random bits, left-aligned in 17 bytes: the first 26
    # base-32 characters carry all 128 bits (and 2 zero bits)
    value = ((int(now.timestamp() * 1000) << 80) | secrets.randbits(80)) << 8
    text = base64.b32encode(value.to_bytes(17, "big"))[:26].translate(_CROCKFORD)
    return "itm_" + text.decode()
