"""The reasons a reviewer may pick when rejecting an item: its route's, then its own.

An item's own reasons come from the HumanLayer API (bot/humanlayer.py): a function
call's ``reject_options`` are kept in the item's metadata under
``humanlayer.reject_options`` and offered on its card beside the route's reasons, so
the SDK reads back which one the reviewer picked (``reject_option_name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.routes import Route


def own_reject_reasons(metadata: Mapping[str, Any] | None) -> list[str]:
    """The reject reasons an item brought itself (none for most items)."""
    bridge = (metadata or {}).get("humanlayer")
    if not isinstance(bridge, Mapping):
        return []
    options = bridge.get("reject_options")
    if not isinstance(options, list):
        return []
    names = (o.get("name") if isinstance(o, Mapping) else None for o in options)
    return [n for n in names if isinstance(n, str) and n]


def item_reject_reasons(route: Route, metadata: Mapping[str, Any] | None) -> list[str]:
    """The route's reject reasons, then the item's own, each once."""
    return list(dict.fromkeys([*route.reject_reasons, *own_reject_reasons(metadata)]))
