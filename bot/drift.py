"""The drift alarm: when audits show automatic approvals going wrong too often, say so
in the route's channels and, if the route allows, raise ``auto_approve_at``.

Runs on every sweep for each route with ``drift`` settings. The measure is the share
judged *wrong* among the route's last ``window`` answered audits of auto-approved
items, once there are at least ``min_audits`` of them. Above ``target_error`` an alarm
*starts*: one message to each chat channel of the route (and its audit channel) and,
with ``auto_raise``, ``auto_approve_at`` raised by ``raise_by`` (capped at 1.0). Both are
recorded as ``ConfigChange`` rows (keys ``drift.alarm`` and
``thresholds.auto_approve_at``) by the actor "signoff drift alarm"; the threshold row
is in force from then on (:mod:`bot.overrides`).

An alarm is not repeated on every sweep: it stays raised until the error falls back to
the target or below (recorded as the alarm ending), or until ``window`` new audits have
been answered since it started and the error is still too high (a new alarm, and a
further raise). A sweep claims each alarm with a unique job row before acting, so
several replicas never post it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.overrides import APPROVE_AT, ThresholdOverrides
from bot.ports import DigestEntry, Surface
from bot.routes import Route, RouteTable
from storage import audits as audit_store
from storage import config_changes as change_store
from storage import steps as step_store
from storage.db import SessionFactory
from storage.models import ConfigChange

log = logging.getLogger("signoff.drift")

ALARM_KEY = "drift.alarm"
ACTOR = "signoff drift alarm"


@dataclass(frozen=True, slots=True)
class Reading:
    """The audited error of a route's automatic approvals over its window."""

    route: str
    audits: int
    wrong: int
    target: float

    @property
    def rate(self) -> float:
        return self.wrong / self.audits if self.audits else 0.0

    @property
    def too_high(self) -> bool:
        return self.audits > 0 and self.rate > self.target


@dataclass(frozen=True, slots=True)
class Alarm:
    """An alarm that started: the reading, and the threshold change if there was one."""

    reading: Reading
    raised: tuple[float, float] | None  # (old, new) auto_approve_at

    def message(self, *, route: str) -> str:
        r = self.reading
        text = (
            f"Drift alarm on route {route}: {r.wrong} of the last {r.audits} audited "
            f"automatic approvals were wrong ({r.rate:.1%}), above the target of "
            f"{r.target:.1%}."
        )
        if self.raised is not None:
            old, new = self.raised
            return text + f" auto_approve_at raised from {old:g} to {new:g}."
        return text + f" Thresholds unchanged; see `signoff calibrate --route {route}`."


class DriftAlarm:
    """Checks each route with ``drift`` settings; one alarm per episode."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        clock: Clock,
        overrides: ThresholdOverrides,
        web_url: str,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._surfaces = surfaces
        self._clock = clock
        self._overrides = overrides
        self._web_url = web_url.rstrip("/")

    async def run(self, *, now: datetime | None = None) -> list[Alarm]:
        """Check every route (called by each sweep); the alarms that started."""
        now = now or self._clock.now()
        await self._overrides.refresh()  # other replicas' changes, too
        started = []
        for name in self._routes.names():
            route = self._routes.get(name)
            if route is None or route.drift is None:
                continue
            try:
                alarm = await self.check(route, now=now)
            except Exception:  # one route's trouble must not stop the sweep
                log.exception("drift: checking route %s failed", name)
                continue
            if alarm is not None:
                started.append(alarm)
        return started

    async def reading(self, route: Route) -> Reading:
        """The route's audited error of automatic approvals over its window now."""
        if route.drift is None:
            raise ValueError(f"route {route.name!r} has no drift settings")
        async with self._sessions() as session:
            verdicts = await audit_store.recent_verdicts(
                session, route=route.name, auto_outcome="auto_approved", limit=route.drift.window
            )
        return Reading(
            route=route.name,
            audits=len(verdicts),
            wrong=sum(v == "wrong" for v in verdicts),
            target=route.drift.target_error,
        )

    async def check(self, route: Route, *, now: datetime) -> Alarm | None:
        """Start an alarm for ``route`` if one is due; None otherwise."""
        settings = route.drift
        if settings is None:
            return None
        reading = await self.reading(route)
        async with self._sessions() as session:
            last = await change_store.latest(session, route=route.name, key=ALARM_KEY)
            answered = await audit_store.answered_count(
                session, route=route.name, auto_outcome="auto_approved"
            )
        state: dict[str, Any] = dict(last.new_value or {}) if last is not None else {}
        active = bool(state.get("active"))
        if reading.audits < settings.min_audits:
            return None
        if not reading.too_high:
            if active:
                await self._end(route, last, reading, now=now)
            return None
        if active and answered - int(state.get("answered", 0)) < settings.window:
            return None  # this episode's alarm is out already
        return await self._start(route, last, reading, answered=answered, now=now)

    async def _start(
        self,
        route: Route,
        last: ConfigChange | None,
        reading: Reading,
        *,
        answered: int,
        now: datetime,
    ) -> Alarm | None:
        assert route.drift is not None
        current = self._overrides.cached(route).auto_approve_at
        raised: tuple[float, float] | None = None
        if route.drift.auto_raise and current is not None and current < 1.0:
            raised = (current, min(1.0, round(current + route.drift.raise_by, 6)))
        reason = (
            f"audited error of automatic approvals {reading.rate:.1%} ({reading.wrong} of the "
            f"last {reading.audits} audits) is above the target of {reading.target:.1%}"
        )
        async with self._sessions() as session, session.begin():
            slot = str(last.id) if last is not None else "0"
            if not await step_store.claim_job(
                session, job=f"drift-alarm:{route.name}", slot=slot, now=now
            ):
                return None  # another replica started this alarm
            await change_store.add_change(
                session,
                change=ConfigChange(
                    route=route.name,
                    key=ALARM_KEY,
                    old_value=last.new_value if last is not None else None,
                    new_value={
                        "active": True,
                        "rate": reading.rate,
                        "wrong": reading.wrong,
                        "audits": reading.audits,
                        "answered": answered,
                    },
                    reason=reason,
                    actor=ACTOR,
                    at=now,
                ),
            )
            if raised is not None:
                await change_store.add_change(
                    session,
                    change=ConfigChange(
                        route=route.name,
                        key=APPROVE_AT,
                        old_value=raised[0],
                        new_value=raised[1],
                        reason=reason,
                        actor=ACTOR,
                        at=now,
                    ),
                )
        if raised is not None:
            self._overrides.changed(route=route.name, key=APPROVE_AT, value=raised[1])
        alarm = Alarm(reading, raised)
        log.warning("drift: %s", alarm.message(route=route.name))
        await self._announce(route, alarm.message(route=route.name))
        return alarm

    async def _end(
        self, route: Route, last: ConfigChange | None, reading: Reading, *, now: datetime
    ) -> None:
        assert last is not None
        async with self._sessions() as session, session.begin():
            if not await step_store.claim_job(
                session, job=f"drift-end:{route.name}", slot=str(last.id), now=now
            ):
                return
            await change_store.add_change(
                session,
                change=ConfigChange(
                    route=route.name,
                    key=ALARM_KEY,
                    old_value=last.new_value,
                    new_value={"active": False, "rate": reading.rate, "audits": reading.audits},
                    reason=(
                        f"audited error back to {reading.rate:.1%} ({reading.wrong} of the last "
                        f"{reading.audits} audits), within the target of {reading.target:.1%}"
                    ),
                    actor=ACTOR,
                    at=now,
                ),
            )
        log.info("drift: the alarm on route %s has ended", route.name)

    async def _announce(self, route: Route, text: str) -> None:
        places: dict[tuple[str, str], None] = {}
        for target in route.surfaces:
            if target.type != "web" and target.channel:
                places[(target.type, target.channel)] = None
        if route.audit.surface != "web" and route.audit.channel:
            places[(route.audit.surface, route.audit.channel)] = None
        link = DigestEntry(
            item_id="",
            title=f"Calibration of {route.name} on the dashboard",
            url=f"{self._web_url}/dashboard",
            note="",
        )
        for surface_name, channel in places:
            surface = self._surfaces.get(surface_name)
            if surface is None:
                continue
            try:
                await surface.announce(channel=channel, mentions=(), heading=text, entries=[link])
            except Exception:
                log.exception("drift: posting the alarm to %s %s failed", surface_name, channel)
