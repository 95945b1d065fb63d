"""Routes: named review policies, loaded from the YAML route file.

The file is validated in full at start; every error names the key that is wrong, as a
dotted path (``routes.support.thresholds.auto_approve_at``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.drafting import PriceTable
from bot.errors import ConfigError
from bot.escalation import (
    DigestSettings,
    EscalationStep,
    PlannedStep,
    WorkingHours,
    following,
)
from bot.learning import AuditSettings, DriftSettings, GoldSettings, ReviewerSettings
from bot.llm_settings import LlmSettings, PriceConfig, price_table

SurfaceType = Literal["web", "slack", "discord"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SurfaceConfig(_Strict):
    type: SurfaceType
    channel: str | None = None

    @model_validator(mode="after")
    def _chat_needs_channel(self) -> SurfaceConfig:
        if self.type != "web" and not self.channel:
            raise ValueError(f"a {self.type} surface needs a channel")
        return self


class Thresholds(_Strict):
    auto_approve_at: float | None = Field(default=None, ge=0, le=1)
    auto_reject_below: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        a, r = self.auto_approve_at, self.auto_reject_below
        if a is not None and r is not None and r > a:
            raise ValueError("auto_reject_below must not be above auto_approve_at")
        return self


class WebhookTarget(_Strict):
    type: Literal["webhook"]
    url: str


class EmailTarget(_Strict):
    """Send an approved ``email`` item over SMTP (``SIGNOFF_SMTP_URL``)."""

    type: Literal["email"]
    from_: str = Field(alias="from")  # the sender address, e.g. "Support <help@example.com>"
    reply_to: str | None = None


class GitTarget(_Strict):
    """Land an approved ``code_change`` on branch ``signoff/<item id>`` of a repository."""

    type: Literal["git"]
    repository: str  # a local path or a remote URL (credentials from the environment)
    base: str | None = None  # default: the item's ``base``
    author_name: str = "signoff"
    author_email: str = "signoff@localhost"


class GithubTarget(_Strict):
    """Open a pull request for an approved ``code_change`` (``SIGNOFF_GITHUB_TOKEN``)."""

    type: Literal["github"]
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")  # owner/name
    base: str | None = None  # default: the item's ``base``


Target = Annotated[
    WebhookTarget | EmailTarget | GitTarget | GithubTarget, Field(discriminator="type")
]


class Route(_Strict):
    """One review policy. Unset ``reviewers`` for a surface means anyone there may decide."""

    name: str = ""
    surfaces: list[SurfaceConfig] = Field(default_factory=lambda: [SurfaceConfig(type="web")])
    reviewers: dict[SurfaceType, list[str]] = Field(default_factory=dict)
    quorum: int = Field(default=1, ge=1, le=20)
    allow_self_approval: bool = False
    thresholds: Thresholds = Field(default_factory=Thresholds)
    reject_reasons: list[str] = Field(default_factory=list)
    target: Target | None = None
    targets: list[Target] = Field(default_factory=list)  # a chain, released in order
    callback_hosts: list[str] = Field(default_factory=list)
    allow_private_callbacks: bool = False  # callbacks/webhooks to private addresses
    escalation: list[EscalationStep] = Field(default_factory=list)
    working_hours: WorkingHours | None = None
    expire_in_working_hours: bool = False
    digest: DigestSettings = Field(default_factory=DigestSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    drift: DriftSettings | None = None
    gold: GoldSettings | None = None
    review: ReviewerSettings = Field(default_factory=ReviewerSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)

    @model_validator(mode="after")
    def _checks(self) -> Route:
        if not self.surfaces:
            raise ValueError("surfaces: a route needs at least one surface")
        if self.target is not None and self.targets:
            raise ValueError("target and targets: give one target, or a chain in targets")
        for where, target in self.named_targets():
            if isinstance(target, WebhookTarget):
                parts = urlsplit(target.url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise ValueError(f"{where}.url: must be an http(s) URL")
                if parts.hostname not in self.callback_hosts:
                    raise ValueError(
                        f"{where}.url: host {parts.hostname!r} is not in callback_hosts"
                    )
        self._check_escalation()
        return self

    def _check_escalation(self) -> None:
        chat = {s.type for s in self.surfaces if s.type != "web"}
        expiries = [n for n, step in enumerate(self.escalation) if step.do == "expire"]
        if len(expiries) > 1:
            raise ValueError("escalation: at most one expire step")
        for n, step in enumerate(self.escalation):
            if step.do == "escalate" and step.channel and step.surface is None and len(chat) != 1:
                raise ValueError(
                    f"escalation.{n}.surface: say slack or discord for channel "
                    f"{step.channel!r} (the route has {len(chat) or 'no'} chat surfaces)"
                )

    @property
    def release_targets(self) -> list[Target]:
        """Where an approved item goes, in order (empty: nowhere)."""
        return [self.target] if self.target is not None else list(self.targets)

    def named_targets(self) -> list[tuple[str, Target]]:
        if self.target is not None:
            return [("target", self.target)]
        return [(f"targets.{n}", t) for n, t in enumerate(self.targets)]

    def escalation_surface(self, step: EscalationStep) -> str:
        """The platform of an escalate step's channel: its own, or the route's one chat."""
        if step.surface is not None:
            return step.surface
        return next(s.type for s in self.surfaces if s.type != "web")

    def first_step(self, *, posted_at: datetime) -> PlannedStep | None:
        """The first step of an item's escalation chain, or None without a chain."""
        return self.step_after(None, posted_at=posted_at)

    def step_after(self, index: int | None, *, posted_at: datetime) -> PlannedStep | None:
        """The step that fires after step ``index`` (None: the first one)."""
        return following(
            self.escalation,
            posted_at=posted_at,
            hours=self.working_hours,
            expire_in_working_hours=self.expire_in_working_hours,
            after_index=index,
        )

    def host_allowed(self, url: str) -> bool:
        """Whether ``url`` is an http(s) URL on one of the route's callback hosts."""
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.hostname in self.callback_hosts

    def may_decide(self, *, surface: str, user_id: str, groups: tuple[str, ...] = ()) -> bool:
        allowed = self.reviewers.get(surface)  # type: ignore[call-overload]
        if allowed is None:
            return True
        return user_id in allowed or any(g in allowed for g in groups)


class RouteFile(_Strict):
    routes: dict[str, Route] = Field(min_length=1)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)  # by model name


DEFAULT_ROUTE = Route(name="default")


class RouteTable:
    """The routes in force, looked up by name."""

    def __init__(self, routes: dict[str, Route], *, prices: PriceTable | None = None) -> None:
        self._routes = routes
        self.prices = prices if prices is not None else PriceTable()  # model prices

    def get(self, name: str) -> Route | None:
        return self._routes.get(name)

    def names(self) -> list[str]:
        return sorted(self._routes)

    def allowing_private_callbacks(self) -> RouteTable:
        """These routes, each with ``allow_private_callbacks`` on (the setting
        ``SIGNOFF_ALLOW_PRIVATE_CALLBACKS`` applies to every route)."""
        return RouteTable(
            {
                name: route.model_copy(update={"allow_private_callbacks": True})
                for name, route in self._routes.items()
            },
            prices=self.prices,
        )

    @classmethod
    def default(cls) -> RouteTable:
        return cls({"default": DEFAULT_ROUTE})


def parse_routes(data: Any, *, source: str = "route file") -> RouteTable:
    """Validate a parsed route document; ConfigError names the bad key."""
    try:
        parsed = RouteFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"{loc}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
    return RouteTable(
        {name: route.model_copy(update={"name": name}) for name, route in parsed.routes.items()},
        prices=price_table(parsed.prices),
    )


def load_routes(path: Path, *, required: bool) -> RouteTable:
    """Read the route file at ``path``; without one, the built-in ``default`` route.

    ``required`` is set when the path was given explicitly: then a missing file is an error.
    """
    if not path.exists():
        if required:
            raise ConfigError(f"SIGNOFF_CONFIG: {path} does not exist")
        return RouteTable.default()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_routes(data, source=str(path))
