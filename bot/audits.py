"""Audits: a sample of automatically decided items, checked blind by a person.

A route's ``audit.rate`` is the share of its automatic decisions (``auto_approved`` and
``auto_rejected``) that are also posted, as an audit card, to ``audit.surface`` /
``audit.channel`` (or the web console's Audits page). The card is blind: it shows the
draft, its route and its confidence, never what the policy decided, so the reviewer
judges the draft rather than agreeing with the machine. They answer **Correct** (the
automatic decision was right) or **Wrong**, optionally with a corrected version.

Answering is first-wins: a second answer is told who audited the item already. Answers
per confidence band are what calibration (:mod:`bot.calibration`) and the drift alarm
(:mod:`bot.drift`) read.
"""

from __future__ import annotations

import logging
import random as _random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.card import ReviewCard
from bot.clock import Clock
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.kinds import get_kind, validate_edit
from bot.ports import Actor, Surface
from bot.routes import Route, RouteTable
from bot.schemas import ItemPublic
from bot.views import item_public
from storage import audits as audit_store
from storage import items as item_store
from storage.bins import bin_of
from storage.db import SessionFactory
from storage.models import Audit

log = logging.getLogger("signoff.audits")

VERDICTS = ("correct", "wrong")
AUTO_OUTCOMES = ("auto_approved", "auto_rejected")
# The audit card's actions and their button labels, the same on every surface. "Fix"
# records "wrong" with a corrected version (an edit form or modal first).
AUDIT_ACTIONS: Mapping[str, str] = {
    "audit-correct": "Correct",
    "audit-wrong": "Wrong",
    "audit-fix": "Wrong: fix it",
}
ACTION_VERDICTS: Mapping[str, str] = {
    "audit-correct": "correct",
    "audit-wrong": "wrong",
    "audit-fix": "wrong",
}


# -- confidence bands ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Band:
    """A confidence band of width 0.1: ``[low, high)``, the top one ``[0.9, 1.0]``."""

    index: int  # 0 (0.0-0.1) to 9 (0.9-1.0)

    @property
    def low(self) -> float:
        return self.index / 10

    @property
    def high(self) -> float:
        return (self.index + 1) / 10

    @property
    def midpoint(self) -> float:
        return (self.index + 0.5) / 10

    @property
    def label(self) -> str:
        close = "]" if self.index == 9 else ")"
        return f"[{self.low:.1f}, {self.high:.1f}{close}"


BANDS: tuple[Band, ...] = tuple(Band(i) for i in range(9, -1, -1))
"""Every band, highest first."""


def band_of(confidence: float) -> Band:
    """The band of a confidence (0 to 1): [0.9, 1.0], [0.8, 0.9), …, [0.0, 0.1)."""
    return Band(min(9, bin_of(confidence) // 10))


def band_of_bin(hundredths: int) -> Band:
    """The band of a bin of :mod:`storage.bins` (confidence in hundredths)."""
    return Band(min(9, hundredths // 10))


def draft_was_acceptable(*, auto_outcome: str, verdict: str) -> bool:
    """What an audit says about the draft itself: an auto-approval judged correct, or
    an auto-rejection judged wrong, means the draft was fine to send."""
    return (auto_outcome == "auto_approved") == (verdict == "correct")


@dataclass(frozen=True, slots=True)
class BandAgreement:
    """How often the auditors agreed with the policy in one band."""

    band: Band
    audits: int = 0
    agreed: int = 0

    @property
    def rate(self) -> float | None:
        return self.agreed / self.audits if self.audits else None


def agreement_by_band(counts: Iterable[tuple[int, str, str, int]]) -> list[BandAgreement]:
    """Agreement per band, highest band first, from (bin, auto outcome, verdict, count)
    rows (:func:`storage.audits.verdict_counts`)."""
    audits = [0] * 10
    agreed = [0] * 10
    for hundredths, _, verdict, n in counts:
        band = band_of_bin(hundredths)
        audits[band.index] += n
        agreed[band.index] += n if verdict == "correct" else 0
    return [BandAgreement(b, audits[b.index], agreed[b.index]) for b in BANDS]


# -- the desk ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditSubject:
    """An audit and the item it is about (the item's decisions left out: blind)."""

    audit: Audit
    item: ItemPublic

    @property
    def id(self) -> int:
        assert self.audit.id is not None
        return self.audit.id


class AuditDesk:
    """Samples automatic decisions for audit, posts blind audit cards, records answers.

    ``random`` returns a float in [0, 1); tests pass a seeded one.
    """

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        clock: Clock,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._surfaces = surfaces
        self._clock = clock
        self.random = random  # public: tests reseed it

    async def maybe_sample(self, item: ItemPublic) -> AuditSubject | None:
        """Called for every automatically decided item: with the route's audit rate,
        record an audit and post its blind card. Nothing happens (and the database is
        not touched) on a route whose rate is 0."""
        route = self._routes.get(item.route)
        if route is None or route.audit.rate <= 0 or item.outcome not in AUTO_OUTCOMES:
            return None
        if self.random() >= route.audit.rate:
            return None
        audit = Audit(
            item_id=item.id,
            route=item.route,
            confidence=item.confidence,
            auto_outcome=str(item.outcome),
            posted_at=self._clock.now(),
        )
        try:
            async with self._sessions() as session, session.begin():
                await audit_store.add_audit(session, audit=audit)
        except Exception:  # the item is stored and decided: its submit must not fail now
            log.exception("item %s: recording its audit failed", item.id)
            return None
        subject = AuditSubject(audit, _blind(item))
        await self._post(subject, route)
        return subject

    async def _post(self, subject: AuditSubject, route: Route) -> None:
        name = route.audit.surface
        surface = self._surfaces.get(name)
        if surface is None:
            log.warning("audit %s: surface %s is not enabled; not posted", subject.id, name)
            return
        try:
            ref = await surface.post(card=audit_card(subject), channel=route.audit.channel)
        except Exception:
            log.exception("audit %s: posting to %s failed", subject.id, name)
            return
        if ref is not None:
            async with self._sessions() as session, session.begin():
                await audit_store.set_ref(
                    session, audit_id=subject.id, ref={"surface": name, "ref": dict(ref)}
                )

    async def subject(self, *, audit_id: int) -> AuditSubject:
        """The audit and its (blind) item; NotFound if there is no such audit."""
        async with self._sessions() as session:
            audit = await audit_store.get_audit(session, audit_id=audit_id)
            if audit is None:
                raise NotFound(f"no audit {audit_id}")
            row = await item_store.get_item(session, item_id=audit.item_id)
        if row is None:
            raise NotFound(f"no item {audit.item_id}")
        return AuditSubject(audit, _blind(item_public(row, [], self._routes)))

    async def open_for(self, *, routes: list[str], limit: int = 100) -> list[audit_store.OpenAudit]:
        """Unanswered audits of ``routes``, oldest first."""
        async with self._sessions() as session:
            return await audit_store.open_audits(session, routes=routes, limit=limit)

    def check_auditor(self, *, route_name: str, actor: Actor) -> None:
        """NotAllowed unless ``actor`` reviews the route (auditors are its reviewers)."""
        route = self._routes.get(route_name)
        if route is None or not route.may_decide(
            surface=actor.surface, user_id=actor.user_id, groups=actor.groups
        ):
            raise NotAllowed(f"{actor.name} is not a reviewer of route {route_name!r}")

    async def precheck(self, *, audit_id: int, actor: Actor) -> AuditSubject:
        """What ``answer`` would refuse (NotFound, NotAllowed, Conflict naming the
        auditor), without answering: lets a surface answer within its deadline."""
        subject = await self.subject(audit_id=audit_id)
        self.check_auditor(route_name=subject.audit.route, actor=actor)
        if subject.audit.verdict is not None:
            raise Conflict(already_audited(subject.audit))
        return subject

    async def answer(
        self,
        *,
        audit_id: int,
        verdict: str,
        actor: Actor,
        corrected: Mapping[str, Any] | None = None,
    ) -> AuditSubject:
        """Record ``verdict`` (correct | wrong) and, with "wrong", an optional corrected
        version (the kind's editable fields). The first answer wins; a later one raises
        Conflict saying who audited it. Every posted audit card is updated after."""
        if verdict not in VERDICTS:
            raise InvalidInput(
                f"must be one of {', '.join(VERDICTS)}, got {verdict!r}", field="verdict"
            )
        subject = await self.precheck(audit_id=audit_id, actor=actor)
        fixed: dict[str, Any] | None = None
        if corrected is not None:
            if verdict != "wrong":
                raise InvalidInput("a corrected version goes with 'wrong'", field="corrected")
            item = subject.item
            original = item.final_content or item.content
            fixed = validate_edit(get_kind(item.kind), original, dict(corrected))
            if fixed == original:
                fixed = None  # the form came back unchanged: no correction
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            won = await audit_store.answer_if_open(
                session,
                audit_id=audit_id,
                verdict=verdict,
                corrected=fixed,
                surface=actor.surface,
                actor_id=actor.user_id,
                actor_name=actor.name,
                at=now,
            )
            audit = await audit_store.get_audit(session, audit_id=audit_id)
        assert audit is not None
        if not won:
            raise Conflict(already_audited(audit))
        answered = AuditSubject(audit, subject.item)
        await self._refresh(answered)
        return answered

    async def _refresh(self, subject: AuditSubject) -> None:
        posted = subject.audit.ref or {}
        surface = self._surfaces.get(str(posted.get("surface", "")))
        if surface is None or not posted.get("ref"):
            return
        try:
            await surface.update(card=audit_card(subject), ref=posted["ref"])
        except Exception:
            log.exception("audit %s: updating its card failed", subject.id)


def already_audited(audit: Audit) -> str:
    """What a late answer is told: ``already audited by ann (correct) at 10:42 UTC``."""
    at = f" at {audit.decided_at:%H:%M} UTC" if audit.decided_at else ""
    return f"already audited by {audit.actor_name} ({audit.verdict}){at}"


def audit_card(subject: AuditSubject) -> ReviewCard:
    """The blind card: the draft, its route and confidence; never the automatic outcome.

    Open: Correct / Wrong (/ Wrong: fix it, when the kind has editable fields).
    Answered: who audited it and their verdict, no buttons."""
    item, audit = subject.item, subject.audit
    parts = get_kind(item.kind).card_parts(item.final_content or item.content)
    if audit.verdict is None:
        actions = tuple(a for a in AUDIT_ACTIONS if a != "audit-fix" or _editable(item.kind))
        status = None
    else:
        actions = ()
        status = f"Audited by {audit.actor_name}: {audit.verdict}"
    return ReviewCard(
        item_id=item.id,
        kind=item.kind,
        title=f"Audit: {item.title}",
        route=item.route,
        confidence=item.confidence,
        requested_by=None,
        due=None,
        fields=parts.fields,
        body=parts.body,
        diff=parts.diff,
        options=parts.options,
        actions=actions,
        status=status,
        audit_id=subject.id,
        sections=parts.sections,
    )


def parse_audit_id(value: str) -> int:
    """An audit id from a button or a URL; InvalidInput if it is not one."""
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"not an audit id: {value!r}", field="audit")
    return int(value)


def _editable(kind: str) -> bool:
    return bool(get_kind(kind).editable)


def _blind(item: ItemPublic) -> ItemPublic:
    """The item without what would give its automatic outcome away."""
    return item.model_copy(update={"decisions": [], "state": "pending", "outcome": None})
