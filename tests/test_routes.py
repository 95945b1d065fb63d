"""The route file: validated at start, every error naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.routes import load_routes, parse_routes


def route(**overrides: Any) -> dict[str, Any]:
    return {"routes": {"r": {"surfaces": [{"type": "web"}], **overrides}}}


def test_full_example_parses() -> None:
    table = parse_routes(
        route(
            surfaces=[
                {"type": "slack", "channel": "C1"},
                {"type": "discord", "channel": "2"},
                {"type": "web"},
            ],
            reviewers={"slack": ["U1", "S2"], "web": ["lead"]},
            quorum=2,
            allow_self_approval=False,
            thresholds={"auto_approve_at": 0.99, "auto_reject_below": 0.2},
            reject_reasons=["wrong facts"],
            target={"type": "webhook", "url": "https://hooks.example.com/x"},
            callback_hosts=["hooks.example.com"],
        )
    )
    r = table.get("r")
    assert r is not None and r.name == "r" and r.quorum == 2
    assert r.may_decide(surface="slack", user_id="U9", groups=("S2",))
    assert not r.may_decide(surface="web", user_id="intern")
    assert r.may_decide(surface="discord", user_id="anyone")  # no list for discord


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (route(qourum=2), "routes.r.qourum: unknown key"),
        (route(quorum=0), "routes.r.quorum: Input should be greater than or equal to 1"),
        (route(thresholds={"auto_approve_at": 1.5}), "routes.r.thresholds.auto_approve_at"),
        (route(surfaces=[{"type": "slack"}]), "a slack surface needs a channel"),
        (route(surfaces=[{"type": "teams"}]), "routes.r.surfaces.0.type"),
        (
            route(target={"type": "webhook", "url": "https://evil.example.com/"}),
            "target.url: host 'evil.example.com' is not in callback_hosts",
        ),
        (route(target={"type": "fax"}), "routes.r.target"),
        (
            route(thresholds={"auto_approve_at": 0.5, "auto_reject_below": 0.6}),
            "auto_reject_below must not be above auto_approve_at",
        ),
        ({"routes": {}}, "routes: "),
        ({"rutes": {}}, "rutes: unknown key"),
    ],
)
def test_bad_config_names_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_routes(doc)
    assert message in err.value.message


def test_without_a_file_the_default_route_posts_to_the_web(tmp_path: Path) -> None:
    table = load_routes(tmp_path / "missing.yaml", required=False)
    default = table.get("default")
    assert table.names() == ["default"] and default is not None
    assert [s.type for s in default.surfaces] == ["web"]


def test_an_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SIGNOFF_CONFIG: .* does not exist"):
        load_routes(tmp_path / "missing.yaml", required=True)


def test_bad_yaml_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "signoff.yaml"
    path.write_text("routes: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_routes(path, required=True)
