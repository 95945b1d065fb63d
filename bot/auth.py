"""Integrators and their API keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.errors import Conflict, InvalidInput
from bot.secrets import digest_key, new_api_key, new_signing_secret
from storage import keys as key_store
from storage.db import SessionFactory


@dataclass(frozen=True, slots=True)
class Integrator:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: the only time the API key itself is ever shown."""

    name: str
    api_key: str
    signing_secret: str


class KeyRing:
    """Creates keys and resolves a presented key to its integrator.

    Resolved keys are cached by digest: keys are only ever added or rotated, and a
    rotation replaces the digest, so a cached digest can never point at the wrong key.
    """

    def __init__(self, *, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cache: dict[str, Integrator] = {}

    async def create(self, *, name: str) -> NewKey:
        """Make a key called ``name``; Conflict if the name is taken."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("must be 1 to 100 characters", field="name")
        api_key, secret = new_api_key(), new_signing_secret()
        try:
            async with self._sessions() as session, session.begin():
                await key_store.add_key(
                    session,
                    name=name,
                    key_digest=digest_key(api_key),
                    signing_secret=secret,
                    now=self._clock.now(),
                )
        except IntegrityError:
            raise Conflict(f"a key named {name!r} already exists") from None
        return NewKey(name=name, api_key=api_key, signing_secret=secret)

    async def rotate(self, *, name: str) -> NewKey:
        """Give the key ``name`` a new API key (creating it if missing); same secret."""
        api_key = new_api_key()
        async with self._sessions() as session, session.begin():
            row = await key_store.key_by_name(session, name=name)
            if row is None:
                secret = new_signing_secret()
                await key_store.add_key(
                    session,
                    name=name,
                    key_digest=digest_key(api_key),
                    signing_secret=secret,
                    now=self._clock.now(),
                )
            else:
                self._cache.pop(row.key_digest, None)
                row.key_digest = digest_key(api_key)
                secret = row.signing_secret
                session.add(row)
        return NewKey(name=name, api_key=api_key, signing_secret=secret)

    async def authenticate(self, api_key: str) -> Integrator | None:
        digest = digest_key(api_key)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        async with self._sessions() as session:
            row = await key_store.key_by_digest(session, key_digest=digest)
        if row is None or row.id is None:
            return None
        integrator = Integrator(id=row.id, name=row.name)
        self._cache[digest] = integrator
        return integrator
