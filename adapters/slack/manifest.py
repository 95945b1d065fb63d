"""The Slack app manifest: what `signoff manifest slack --url …` prints and
``manifests/slack-app.yaml`` holds (for the placeholder URL)."""

from __future__ import annotations

from typing import Any

import yaml

from adapters.slack.edge import EVENTS_PATH

PLACEHOLDER_URL = "https://signoff.example.com"
BOT_SCOPES = ["chat:write", "commands", "usergroups:read"]


def manifest(*, url: str = PLACEHOLDER_URL, socket_mode: bool = False) -> dict[str, Any]:
    """A manifest for signoff at ``url``; with ``socket_mode`` Slack needs no public URL."""
    endpoint = url.rstrip("/") + EVENTS_PATH
    command: dict[str, Any] = {
        "command": "/signoff",
        "description": "Drafts waiting for you, and today's numbers",
        "usage_hint": "queue | next | stats",
        "should_escape": False,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    if not socket_mode:
        command["url"] = endpoint
        interactivity["request_url"] = endpoint
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "signoff",
            "description": "Review AI drafts before they act: approve, edit or reject.",
            "background_color": "#1d232b",
        },
        "features": {
            "bot_user": {"display_name": "signoff", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": {
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(*, url: str = PLACEHOLDER_URL, socket_mode: bool = False) -> str:
    header = (
        "# Slack app manifest for signoff (https://api.slack.com/reference/manifests).\n"
        "# Regenerate for your host: signoff manifest slack --url https://your-host [--socket]\n"
    )
    return header + yaml.safe_dump(manifest(url=url, socket_mode=socket_mode), sort_keys=False)
