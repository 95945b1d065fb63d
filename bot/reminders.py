"""Carrying out claimed escalation steps: reminders, digests and escalations.

The sweep (:mod:`bot.sweep`) claims steps; :class:`Reminders` sends what they say
through the surfaces and records, per step, which posts were reminded, so a step that
is retried after a crash skips those.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.escalation import EscalationStep, format_duration
from bot.fanout import SurfaceFanout
from bot.notify import Notifier
from bot.ports import DigestEntry, Surface
from bot.present import build_card
from bot.routes import Route, RouteTable
from bot.schemas import ItemPublic
from storage import steps as step_store
from storage.db import SessionFactory
from storage.models import Post, StepRun

log = logging.getLogger("signoff.sweep")
_GIVE_UP_AFTER = 5  # attempts at a step whose surface keeps failing


@dataclass
class SweepReport:
    """What one sweep did (also logged, and counted in metrics from the step runs)."""

    nudged: int = 0
    digests: int = 0
    in_digests: int = 0
    escalated: int = 0
    expired: int = 0
    kept: int = 0
    skipped: int = 0
    recovered: int = 0
    reposted: int = 0  # items whose cards a sweep posted (the submitter could not)
    failed: int = 0

    @property
    def fired(self) -> int:
        return self.nudged + self.in_digests + self.escalated + self.expired + self.kept


@dataclass
class ClaimedStep:
    """A claimed step and what is needed to carry it out."""

    run: StepRun
    route: Route
    step: EscalationStep
    item: ItemPublic
    posts: list[Post]
    done: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    failed: bool = False
    cards_pending: bool = False  # a chat card failed to post and the sweep will retry it


_Channel = tuple[str, str, str | None]  # route, surface, channel
_Pair = tuple[ClaimedStep, Post]


class Reminders:
    """Sends what claimed steps say, grouped by channel, and records it."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        routes: RouteTable,
        surfaces: Mapping[str, Surface],
        fanout: SurfaceFanout,
        notifier: Notifier,
        web_url: str,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._surfaces = surfaces
        self._fanout = fanout
        self._notifier = notifier
        self._web_url = web_url.rstrip("/")

    async def carry_out(
        self, works: list[ClaimedStep], *, now: datetime, report: SweepReport
    ) -> None:
        channels: dict[tuple[str, str, str | None], list[tuple[ClaimedStep, Post]]] = defaultdict(
            list
        )
        for work in works:
            if work.item.state != "pending":
                work.notes.append(f"item {work.item.state} before the reminder went out")
                continue
            if work.step.do == "escalate":
                await self._escalate(work, report)
                continue
            for post in work.posts:
                if post.id not in work.done and post.surface in self._surfaces:
                    channels[(work.route.name, post.surface, post.channel)].append((work, post))
            unposted = self._unposted(work) if work.cards_pending else []
            if unposted and work.step.do == "nudge":
                # A card still to be posted (its surface was down) is reminded once the
                # sweep has posted it: the step stays open and is tried again.
                work.failed = True
                work.notes.append(f"no card in {', '.join(unposted)} yet; reminding once posted")
            if work.step.do == "expire":
                report.kept += 1
                work.notes.append(f"past its {format_duration(work.step.after)} expiry; kept open")
            if not work.posts:
                work.notes.append("no chat card to remind on (web inbox only)")

        async def remind(
            key: tuple[str, str, str | None], pairs: list[tuple[ClaimedStep, Post]]
        ) -> None:
            route_name, surface, channel = key
            route = self._routes.get(route_name)
            assert route is not None
            if len(pairs) > route.digest.threshold:
                await self._digest(route, surface, channel, pairs, now=now, report=report)
            else:
                for work, post in pairs:
                    await self._nudge(work, post, report)

        # Channels go in parallel; within one, reminders follow each other (chat
        # platforms pace posts per channel).
        await asyncio.gather(*(remind(key, pairs) for key, pairs in channels.items()))
        async with self._sessions() as session, session.begin():  # one commit per page
            for work in works:
                await self._record(session, work, now=now, report=report)
        for work in works:
            self._notifier.changed(work.run.item_id)

    async def _nudge(self, work: ClaimedStep, post: Post, report: SweepReport) -> None:
        assert post.id is not None
        surface = self._surfaces[post.surface]
        if work.step.do == "expire":
            text = (
                f"Past its {format_duration(work.step.after)} expiry; kept open by policy "
                "and still waiting for review."
            )
        elif work.step.do == "escalate":
            text = f"Escalated: waiting for review for {format_duration(work.step.after)}."
        else:
            text = f"Still waiting for review after {format_duration(work.step.after)}."
        try:
            await surface.nudge(
                card=build_card(work.item, work.route),
                ref=post.ref,
                mentions=self._mentions(work, post.surface),
                text=text,
                key=f"{work.item.id}:step{work.run.step}:post{post.id}",
                check_first=work.run.attempts > 1,
            )
        except Exception as exc:
            log.exception("item %s: reminder on %s failed", work.item.id, post.surface)
            work.failed = True
            work.notes.append(f"{post.surface} failed: {exc}")
            return
        work.done.add(post.id)
        work.notes.append(f"reminded on {post.surface} {post.channel or ''}".rstrip())
        if work.step.do == "nudge":
            report.nudged += 1

    async def _digest(
        self,
        route: Route,
        surface: str,
        channel: str | None,
        pairs: list[tuple[ClaimedStep, Post]],
        *,
        now: datetime,
        report: SweepReport,
    ) -> None:
        pairs = sorted(pairs, key=lambda pair: (pair[0].item.created_at, pair[0].item.id))
        mentions = list(dict.fromkeys(m for w, _ in pairs for m in self._mentions(w, surface)))
        entries = [
            DigestEntry(
                item_id=w.item.id,
                title=w.item.title,
                url=f"{self._web_url}/items/{w.item.id}",
                note=f"waiting {format_duration(now - w.item.created_at)}",
            )
            for w, _ in pairs
        ]
        try:
            await self._surfaces[surface].announce(
                channel=channel,
                mentions=mentions,
                heading=f"{len(entries)} items in {route.name} are waiting for review "
                "(oldest first):",
                entries=entries,
            )
        except Exception as exc:
            log.exception("route %s: digest on %s failed", route.name, surface)
            for work, _ in pairs:
                work.failed = True
                work.notes.append(f"{surface} digest failed: {exc}")
            return
        report.digests += 1
        for work, post in pairs:
            assert post.id is not None
            work.done.add(post.id)
            work.notes.append(f"in a digest of {len(pairs)} on {surface} {channel or ''}".rstrip())
            if work.step.do == "nudge":
                report.in_digests += 1

    async def _escalate(self, work: ClaimedStep, report: SweepReport) -> None:
        step = work.step
        targets: list[Post] = []
        if step.channel:
            kind = work.route.escalation_surface(step)
            post = next(
                (p for p in work.posts if p.surface == kind and p.channel == step.channel), None
            )
            if post is None:
                post = await self._fanout.post_to(work.item, surface=kind, channel=step.channel)
            if post is None:
                work.failed = True
                work.notes.append(f"posting to {kind} {step.channel} failed")
                return
            if post not in work.posts:
                work.posts.append(post)
            work.notes.append(f"escalated to {kind} {step.channel}")
            targets = [post]
        for kind in step.mention or {}:
            on_kind = [p for p in targets if p.surface == kind] or [
                p for p in work.posts if p.surface == kind
            ]
            for post in on_kind:
                if post.id in work.done or kind not in self._surfaces:
                    continue
                await self._nudge(work, post, report)
        if not work.failed:
            report.escalated += 1

    def _unposted(self, work: ClaimedStep) -> list[str]:
        """The route's chat channels (enabled here) that have no card of the item."""
        have = {(post.surface, post.channel) for post in work.posts}
        return [
            f"{target.type} {target.channel}"
            for target in self._fanout.chat_targets(work.route)
            if (target.type, target.channel) not in have
        ]

    def _mentions(self, work: ClaimedStep, surface: str) -> list[str]:
        step = work.step
        if step.mention is not None:
            return list(step.mention.get(surface, []))  # type: ignore[call-overload]
        return list(work.route.reviewers.get(surface, []))  # type: ignore[call-overload]

    async def _record(
        self, session: AsyncSession, work: ClaimedStep, *, now: datetime, report: SweepReport
    ) -> None:
        detail = "; ".join(dict.fromkeys(work.notes)) or "done"
        assert work.run.id is not None
        if work.failed and work.run.attempts < _GIVE_UP_AFTER:
            report.failed += 1
            await step_store.post_done(session, run_id=work.run.id, post_ids=sorted(work.done))
            return  # the lease runs out and a later sweep tries the rest again
        if work.failed:
            detail = f"gave up after {work.run.attempts} attempts: {detail}"
        await step_store.finish(
            session, run=work.run, now=now, detail=detail, post_ids=sorted(work.done)
        )

    async def finish(
        self, run: StepRun, *, now: datetime, detail: str, post_ids: list[int] | None = None
    ) -> None:
        async with self._sessions() as session, session.begin():
            await step_store.finish(
                session, run=run, now=now, detail=detail, post_ids=post_ids or []
            )
