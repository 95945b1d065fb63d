"""Slack user-group membership, resolved with usergroups.users.list and cached."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from slack_sdk.web.async_client import AsyncWebClient


class GroupResolver:
    """Which of some user groups a user belongs to; members are cached for ``ttl`` s."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        ttl: float = 300.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._now = now
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def groups_of(self, user_id: str, *, among: Sequence[str]) -> tuple[str, ...]:
        return tuple([g for g in among if user_id in await self._users(g)])

    async def _users(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached is not None and self._now() - cached[0] < self._ttl:
            return cached[1]
        answer = await self._client.usergroups_users_list(usergroup=group)
        users = frozenset(answer.get("users") or ())
        self._members[group] = (self._now(), users)
        return users
