"""Gold items: drafts with a known answer, mixed into a route's stream to measure how
well its reviewers decide.

A route with ``gold: {file, rate}`` reads its file at start: a YAML or JSON list of
``{kind, title, content, expected: approve|reject}`` (optionally ``confidence``,
``requested_by`` and ``metadata``, as an integrator would send them). A bad file stops
the start with a :class:`ConfigError` naming the file and the entry.

After each real item a route posts for review, a gold item follows with probability
``rate``. It is submitted like any other item, on the same route, owned by the built-in
integrator ``signoff-gold``: the card shows nothing that sets it apart. It carries its
answer in ``Item.gold_expected``, is never released to the route's target and has no
callback. A reviewer's decision on it is graded by :func:`grade`.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from bot.auth import Integrator
from bot.clock import Clock
from bot.errors import ConfigError, InvalidInput
from bot.kinds import get_kind, validate_content
from bot.routes import RouteTable
from bot.schemas import ItemCreate, ItemPublic
from bot.secrets import digest_key, new_api_key, new_signing_secret
from bot.states import Action
from storage import keys as key_store
from storage.db import SessionFactory

if TYPE_CHECKING:
    from bot.service import Submitted

log = logging.getLogger("signoff.gold")

GOLD_INTEGRATOR = "signoff-gold"  # owns every gold item; its API key is thrown away
EXPECTED = ("approve", "reject")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=32)
    title: str = Field(min_length=1, max_length=300)
    content: dict[str, Any]
    expected: Literal["approve", "reject"]
    confidence: float | None = Field(default=None, ge=0, le=1)
    requested_by: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GoldExample:
    """One known-answer draft from a gold file."""

    kind: str
    title: str
    content: dict[str, Any]
    expected: str  # approve | reject
    confidence: float | None = None  # None: the confidence of the item it follows
    requested_by: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GoldSet:
    """A route's gold examples and the rate at which they are mixed in."""

    rate: float
    examples: tuple[GoldExample, ...]


def grade(*, action: Action | str, expected: str) -> bool | None:
    """Whether a decision on a gold item is right: approve or edit when the answer is
    approve, reject when it is reject. None for an action that is not a verdict."""
    if expected not in EXPECTED:
        raise ValueError(f"expected must be approve or reject, not {expected!r}")
    verdict = Action(action)
    if verdict in (Action.approve, Action.edit):
        return expected == "approve"
    if verdict == Action.reject:
        return expected == "reject"
    return None


def load_gold_file(path: Path, *, where: str = "gold.file") -> tuple[GoldExample, ...]:
    """Read and check a gold file; ConfigError names the file and the bad entry.

    ``where`` is the route file key that named the file, for a missing file.
    """
    if not path.is_file():
        raise ConfigError(f"{where}: gold file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(
            f"{path}: expected a non-empty list of gold items "
            "({kind, title, content, expected: approve|reject})"
        )
    return tuple(_example(path, n, entry) for n, entry in enumerate(data))


def _example(path: Path, n: int, entry: Any) -> GoldExample:
    title = entry.get("title") if isinstance(entry, dict) else None
    named = f"{path}: entry {n}" + (f" ({title!r})" if isinstance(title, str) else "")
    try:
        parsed = _Entry.model_validate(entry)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "entry"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{loc}: {msg}")
        raise ConfigError(f"{named}: " + "; ".join(problems)) from None
    try:
        content = validate_content(get_kind(parsed.kind), parsed.content)
    except InvalidInput as exc:
        raise ConfigError(f"{named}: {exc.message}") from None
    return GoldExample(
        kind=parsed.kind,
        title=parsed.title,
        content=content,
        expected=parsed.expected,
        confidence=parsed.confidence,
        requested_by=parsed.requested_by,
        metadata=parsed.metadata,
    )


class SubmitGold(Protocol):
    """How a gold item is submitted: :meth:`bot.service.ReviewService.submit`."""

    async def __call__(
        self, *, integrator: Integrator, data: ItemCreate, gold_expected: str | None = ...
    ) -> Submitted: ...


class GoldItems:
    """The gold examples of every route, and the draw that mixes them in.

    ``rng`` decides which items get a gold item after them and which example it is;
    tests pass a seeded one.
    """

    def __init__(
        self,
        *,
        sets: Mapping[str, GoldSet],
        sessions: SessionFactory,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self._sets = dict(sets)
        self._sessions = sessions
        self._clock = clock
        self.rng = rng or random.Random()
        self._integrator: Integrator | None = None

    @classmethod
    def from_routes(
        cls,
        routes: RouteTable,
        *,
        sessions: SessionFactory,
        clock: Clock,
        base: Path,
        rng: random.Random | None = None,
    ) -> GoldItems:
        """Load the gold file of every route that has one (relative paths are read from
        ``base``, the route file's folder). ConfigError for a missing or bad file."""
        sets: dict[str, GoldSet] = {}
        for name in routes.names():
            route = routes.get(name)
            if route is None or route.gold is None:
                continue
            path = Path(route.gold.file).expanduser()
            examples = load_gold_file(
                path if path.is_absolute() else base / path, where=f"routes.{name}.gold.file"
            )
            sets[name] = GoldSet(rate=route.gold.rate, examples=examples)
        return cls(sets=sets, sessions=sessions, clock=clock, rng=rng)

    def examples(self, route: str) -> tuple[GoldExample, ...]:
        """The gold examples of ``route`` (empty without gold)."""
        found = self._sets.get(route)
        return found.examples if found else ()

    def draw(self, route: str) -> GoldExample | None:
        """With the route's rate, the example to mix in after an item; else None."""
        found = self._sets.get(route)
        if found is None or self.rng.random() >= found.rate:
            return None
        return self.rng.choice(found.examples)

    async def inject(self, *, after: ItemPublic, submit: SubmitGold) -> ItemPublic | None:
        """Maybe follow the real item ``after`` with a gold item on its route; the new
        gold item, or None. A failure is logged, never raised: the real item stands."""
        example = self.draw(after.route)
        if example is None:
            return None
        try:
            data = ItemCreate(
                route=after.route,
                kind=example.kind,
                title=example.title,
                content=example.content,
                # a card without a confidence among cards with one would stand out
                confidence=after.confidence if example.confidence is None else example.confidence,
                requested_by=example.requested_by,
                metadata=example.metadata,
            )
            submitted = await submit(
                integrator=await self.integrator(), data=data, gold_expected=example.expected
            )
        except Exception:
            log.exception("gold: could not add a gold item after %s", after.id)
            return None
        log.info("gold: %s follows %s on route %s", submitted.item.id, after.id, after.route)
        return submitted.item

    async def integrator(self) -> Integrator:
        """The built-in ``signoff-gold`` integrator, created on first use. Its API key is
        never shown nor kept, so nobody can submit or read as it."""
        if self._integrator is not None:
            return self._integrator
        async with self._sessions() as session:
            row = await key_store.key_by_name(session, name=GOLD_INTEGRATOR)
        if row is None:
            try:
                async with self._sessions() as session, session.begin():
                    row = await key_store.add_key(
                        session,
                        name=GOLD_INTEGRATOR,
                        key_digest=digest_key(new_api_key() + secrets.token_hex(8)),
                        signing_secret=new_signing_secret(),
                        now=self._clock.now(),
                    )
            except IntegrityError:  # another process made it first
                async with self._sessions() as session:
                    row = await key_store.key_by_name(session, name=GOLD_INTEGRATOR)
        assert row is not None and row.id is not None
        self._integrator = Integrator(id=row.id, name=row.name)
        return self._integrator
