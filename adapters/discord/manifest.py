"""What the Discord application needs: its commands, gateway intents and permissions.

``manifests/discord-app.json`` holds :func:`manifest`; ``signoff manifest discord
--app-id ID`` prints the install URL with the permission integer.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import discord

PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    create_public_threads=True,  # an edit's diff goes in a thread
    send_messages_in_threads=True,
)


def manifest() -> dict[str, Any]:
    return {
        "name": "signoff",
        "description": "Review AI drafts before they act: approve, edit or reject.",
        "scopes": ["bot", "applications.commands"],
        "permissions": str(PERMISSIONS.value),
        "permission_names": sorted(name for name, on in PERMISSIONS if on),
        "intents": {"privileged": [], "used": ["GUILDS"]},
        "commands": [
            {
                "name": "signoff",
                "description": "Drafts waiting for review",
                "type": 1,
                "options": [
                    {"type": 1, "name": "queue", "description": "Drafts waiting for you"},
                    {
                        "type": 1,
                        "name": "next",
                        "description": "The draft to review next, held for you",
                    },
                    {
                        "type": 1,
                        "name": "stats",
                        "description": "Today's numbers for this channel's routes",
                    },
                ],
            }
        ],
    }


def manifest_json() -> str:
    return json.dumps(manifest(), indent=2) + "\n"


def install_url(app_id: str) -> str:
    query = urlencode(
        {
            "client_id": app_id,
            "scope": "bot applications.commands",
            "permissions": PERMISSIONS.value,
        }
    )
    return f"https://discord.com/oauth2/authorize?{query}"
