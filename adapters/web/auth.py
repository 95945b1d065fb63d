"""Web reviewers: one-time sign-in links, cookie sessions and CSRF tokens.

Tokens are 256-bit random values; the database keeps only their SHA-256 digests, so a
copy of the database signs nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock
from bot.errors import InvalidInput
from storage import reviewers as store
from storage.db import SessionFactory

ALL_ROUTES = "*"


@dataclass(frozen=True, slots=True)
class WebUser:
    """The signed-in reviewer. ``routes`` None means every route."""

    name: str
    routes: tuple[str, ...] | None
    csrf: str

    def may_see(self, route: str) -> bool:
        return self.routes is None or route in self.routes

    def csrf_ok(self, presented: str | None) -> bool:
        # As bytes: compare_digest refuses non-ASCII str, and a forged token is a 403.
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WebAuth:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        clock: Clock,
        public_url: str,
        link_ttl: timedelta = timedelta(days=1),
        session_ttl: timedelta = timedelta(days=14),
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._link_ttl = link_ttl
        self._session_ttl = session_ttl

    async def invite(self, *, name: str, routes: list[str]) -> str:
        """Create (or update) reviewer ``name`` for ``routes``; return a one-time sign-in URL."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("must be 1 to 100 characters", field="name")
        if not routes:
            raise InvalidInput("give at least one route, or * for all", field="routes")
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            reviewer = await store.reviewer_by_name(session, name=name)
            if reviewer is None:
                reviewer = await store.add_reviewer(session, name=name, routes=routes, now=now)
            else:
                assert reviewer.id is not None
                await store.set_reviewer_routes(session, reviewer_id=reviewer.id, routes=routes)
            assert reviewer.id is not None
            await store.add_link(
                session,
                reviewer_id=reviewer.id,
                token_digest=_digest(token),
                expires_at=now + self._link_ttl,
            )
        return f"{self._public_url}/signin/{token}"

    async def redeem(self, *, token: str) -> str | None:
        """Use a sign-in link; return a new session token, or None if the link is no good."""
        now = self._clock.now()
        session_token = secrets.token_urlsafe(32)
        async with self._sessions() as session, session.begin():
            reviewer_id = await store.use_link(session, token_digest=_digest(token), now=now)
            if reviewer_id is None:
                return None
            await store.add_session(
                session,
                reviewer_id=reviewer_id,
                token_digest=_digest(session_token),
                csrf_token=secrets.token_urlsafe(32),
                now=now,
                expires_at=now + self._session_ttl,
            )
        return session_token

    async def user(self, *, session_token: str | None) -> WebUser | None:
        if not session_token:
            return None
        async with self._sessions() as session:
            found = await store.session_reviewer(
                session, token_digest=_digest(session_token), now=self._clock.now()
            )
        if found is None:
            return None
        web_session, reviewer = found
        routes = None if ALL_ROUTES in reviewer.routes else tuple(reviewer.routes)
        return WebUser(name=reviewer.name, routes=routes, csrf=web_session.csrf_token)

    async def sign_out(self, *, session_token: str) -> None:
        async with self._sessions() as session, session.begin():
            await store.end_session(
                session, token_digest=_digest(session_token), now=self._clock.now()
            )
