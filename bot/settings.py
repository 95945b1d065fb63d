"""Process settings, read from the environment (prefix ``SIGNOFF_``) and ``.env``.

Unknown ``SIGNOFF_*`` variables and bad values fail at start, naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from dotenv import dotenv_values
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

PREFIX = "SIGNOFF_"


class Settings(BaseSettings):
    # extra="ignore": a shared .env may hold other programs' keys (docker compose's
    # POSTGRES_PASSWORD); unknown SIGNOFF_ keys are refused by load_settings instead.
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite+aiosqlite:///./signoff.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    config: Path = Path("./signoff.yaml")
    public_url: str | None = None  # how browsers reach signoff, for sign-in links
    log_level: str = "info"
    # SQLite durability: NORMAL survives a crash of the process (WAL), FULL also power loss.
    sqlite_synchronous: str = Field(default="NORMAL", pattern="^(NORMAL|FULL|OFF)$")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)  # POST /v1/items:batch
    max_wait_seconds: float = Field(default=60.0, gt=0)
    release_max_attempts: int = Field(default=8, ge=1, le=100)
    release_backoff_seconds: float = Field(default=2.0, gt=0)
    release_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    release_timeout_seconds: float = Field(default=10.0, gt=0)
    # callbacks and webhook targets on loopback/private/link-local addresses (bot/netguard.py)
    allow_private_callbacks: bool = False
    # How long a release worker holds a claimed delivery before another may take it
    # (a replica killed mid-delivery); unset: 4 timeouts + 30 s. Keep it above the timeout.
    release_lease_seconds: float | None = Field(default=None, gt=0)
    # The escalation sweep: how often it runs in `serve` (off: use `signoff sweep --once`
    # from cron), and how long a claimed step is held before another sweep may take it.
    sweep_enabled: bool = True
    sweep_interval_seconds: float = Field(default=30.0, ge=1)
    sweep_lease_seconds: float = Field(default=120.0, ge=5)
    # Several replicas: how often a follower tries to become the gateway leader, and how
    # long a replica may take to stop on SIGTERM (finishing or handing back what it claimed).
    leader_retry_seconds: float = Field(default=2.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    discord_token: str | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    discord_guilds: str = ""  # comma-separated guild ids where /signoff is synced at once
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str | None = None
    openai_timeout_seconds: float = Field(default=60.0, gt=0)  # per HTTP attempt
    openai_max_retries: int = Field(default=2, ge=0, le=10)  # 429, 5xx, timeouts
    # how long one drafting run may take before another process takes the task over
    task_lease_seconds: float = Field(default=600.0, ge=10)
    smtp_url: str | None = None
    github_token: str | None = None
    github_api_url: str = "https://api.github.com"

    @property
    def base_url(self) -> str:
        """The public URL, or the listen address when none is set."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def discord_guild_ids(self) -> tuple[int, ...]:
        try:
            return tuple(int(g) for g in self.discord_guilds.split(",") if g.strip())
        except ValueError:
            raise ConfigError(
                f"SIGNOFF_DISCORD_GUILDS: expected comma-separated ids, got {self.discord_guilds!r}"
            ) from None

    @property
    def config_explicit(self) -> bool:
        return "config" in self.model_fields_set


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from ``env`` (default: the process environment) plus explicit overrides."""
    env = os.environ if env is None else env
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    names = set(env)
    if env is os.environ and Path(".env").is_file():
        names |= {k.upper() for k in dotenv_values(".env")}
    unknown = sorted(k for k in names if k.startswith(PREFIX) and k not in known)
    if unknown:
        raise ConfigError(f"unknown setting {', '.join(unknown)}")
    try:
        if env is os.environ:
            return cast(Any, Settings)(**overrides)  # type: ignore[no-any-return]
        values = {k[len(PREFIX) :].lower(): v for k, v in env.items() if k in known}
        return Settings.model_validate({**values, **overrides})
    except ValidationError as exc:
        problems = [
            f"{PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("; ".join(problems)) from None
