"""Gold items: loading the file, mixing them in at the route's rate, keeping them
indistinguishable on the card, never releasing them, and grading decisions on them."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import yaml
from sqlmodel import col, select

from bot.app import System
from bot.auth import Integrator
from bot.errors import ConfigError, NotFound
from bot.gold import GOLD_INTEGRATOR, GoldItems, grade, load_gold_file
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from storage import outbox as outbox_store
from storage.models import ApiKey, Item
from tests.fakes.surface import RecordingSurface

GOLD = [
    {
        "kind": "email",
        "title": "Refund for order 7781",
        "content": {
            "to": ["sam@example.com"],
            "subject": "Your refund",
            "body": "Hi Sam, we have refunded 10,000 EUR for your 12 EUR order.",
        },
        "expected": "reject",
    },
    {
        "kind": "email",
        "title": "Refund for order 7790",
        "content": {
            "to": ["kim@example.com"],
            "subject": "Your refund",
            "body": "Hi Kim, your refund of 12 EUR is on its way.",
        },
        "expected": "approve",
    },
]
REAL = {"to": ["jane@example.com"], "subject": "Your refund", "body": "Hi Jane, 12 EUR back."}


@pytest.fixture
def gold_file(tmp_path: Path) -> Path:
    path = tmp_path / "gold.yaml"
    path.write_text(yaml.safe_dump(GOLD))
    return path


@pytest.fixture
def routes(gold_file: Path, tmp_path: Path) -> RouteTable:
    target = {"type": "webhook", "url": "http://127.0.0.1:9/release"}
    sure = tmp_path / "sure.json"
    sure.write_text(json.dumps([{**GOLD[0], "confidence": 0.999}]))
    return parse_routes(
        {
            "routes": {
                "support": {
                    "surfaces": [{"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.99},
                    "target": target,
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                    "gold": {"file": str(gold_file), "rate": 0.25},
                },
                "always": {
                    "surfaces": [{"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.99},
                    "target": target,
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                    "gold": {"file": str(gold_file), "rate": 1.0},
                },
                "sure": {
                    "surfaces": [{"type": "web"}],
                    "thresholds": {"auto_approve_at": 0.99},
                    "gold": {"file": str(sure), "rate": 1.0},
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                },
                "plain": {
                    "surfaces": [{"type": "web"}],
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                },
            }
        }
    )


def real(route: str, *, confidence: float | None = 0.7, **extra: object) -> ItemCreate:
    return ItemCreate(
        route=route,
        kind="email",
        title="Refund for order 1234",
        content=REAL,
        confidence=confidence,
        callback_url="http://127.0.0.1:9/callback",
        **extra,  # type: ignore[arg-type]
    )


async def gold_rows(system: System) -> list[Item]:
    async with system.sessions() as session:
        query = select(Item).where(col(Item.gold_expected).is_not(None)).order_by(col(Item.id))
        return list((await session.exec(query)).all())


# -- the file ----------------------------------------------------------------------------


def test_a_good_file_loads_in_yaml_and_json(gold_file: Path, tmp_path: Path) -> None:
    examples = load_gold_file(gold_file)
    assert [(e.title, e.expected) for e in examples] == [
        ("Refund for order 7781", "reject"),
        ("Refund for order 7790", "approve"),
    ]
    as_json = tmp_path / "gold.json"
    as_json.write_text(json.dumps(GOLD))
    assert load_gold_file(as_json) == examples


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "expected a non-empty list of gold items"),
        ({"kind": "email"}, "expected a non-empty list of gold items"),
        ([{**GOLD[0], "kind": "fax"}], "entry 0 ('Refund for order 7781'): kind: unknown kind"),
        (
            [GOLD[1], {**GOLD[0], "content": {"to": ["sam@example.com"], "body": "Hi"}}],
            "entry 1 ('Refund for order 7781'): content.subject: Field required",
        ),
        ([{**GOLD[0], "expected": "maybe"}], "entry 0 ('Refund for order 7781'): expected:"),
        ([{**GOLD[0], "colour": "red"}], "entry 0 ('Refund for order 7781'): colour: unknown key"),
        (["just text"], "entry 0: entry: Input should be a valid dictionary"),
        ([{k: v for k, v in GOLD[0].items() if k != "title"}], "entry 0: title: Field required"),
    ],
)
def test_a_bad_file_names_the_file_and_the_entry(
    tmp_path: Path, entries: object, message: str
) -> None:
    path = tmp_path / "gold.yaml"
    path.write_text(yaml.safe_dump(entries))
    with pytest.raises(ConfigError) as caught:
        load_gold_file(path)
    assert str(path) in caught.value.message and message in caught.value.message


def test_a_missing_or_unreadable_file_stops_the_start(tmp_path: Path) -> None:
    routes = parse_routes({"routes": {"r": {"gold": {"file": "nowhere/gold.yaml", "rate": 0.1}}}})
    with pytest.raises(ConfigError, match=r"routes\.r\.gold\.file: gold file .*nowhere"):
        GoldItems.from_routes(routes, sessions=None, clock=None, base=tmp_path)  # type: ignore[arg-type]
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(ConfigError, match=r"broken\.json: not valid JSON"):
        load_gold_file(tmp_path / "broken.json")


def test_relative_paths_are_read_from_the_route_file_folder(
    tmp_path: Path, gold_file: Path
) -> None:
    routes = parse_routes({"routes": {"r": {"gold": {"file": gold_file.name, "rate": 0.1}}}})
    gold = GoldItems.from_routes(routes, sessions=None, clock=None, base=tmp_path)  # type: ignore[arg-type]
    assert len(gold.examples("r")) == 2 and gold.examples("other") == ()


def test_grading() -> None:
    assert grade(action="approve", expected="approve") is True
    assert grade(action="edit", expected="approve") is True
    assert grade(action="reject", expected="approve") is False
    assert grade(action="reject", expected="reject") is True
    assert grade(action="approve", expected="reject") is False
    assert grade(action="edit", expected="reject") is False
    assert grade(action="expire", expected="reject") is None
    with pytest.raises(ValueError, match="expected must be approve or reject"):
        grade(action="approve", expected="yes")


# -- mixing them in ----------------------------------------------------------------------


async def test_gold_items_follow_real_ones_at_about_the_rate(
    system: System, integrator: Integrator
) -> None:
    assert system.gold is not None
    system.gold.rng = random.Random(20261125)
    for _ in range(400):  # at rate 0.25
        await system.service.submit(integrator=integrator, data=real("support"))
    gold = await gold_rows(system)
    # binomial(400, 0.25): mean 100, sd 8.7; five sd either side
    assert 100 - 5 * 8.7 < len(gold) < 100 + 5 * 8.7
    assert {g.title for g in gold} == {e["title"] for e in GOLD}  # both examples drawn
    assert all(g.route == "support" and g.state == "pending" for g in gold)


async def test_no_gold_after_automatic_decisions_replays_or_on_other_routes(
    system: System, integrator: Integrator
) -> None:
    await system.service.submit(integrator=integrator, data=real("always", confidence=0.995))
    await system.service.submit(integrator=integrator, data=real("plain"))
    first = await system.service.submit(
        integrator=integrator, data=real("always"), idempotency_key="k1"
    )
    again = await system.service.submit(
        integrator=integrator, data=real("always"), idempotency_key="k1"
    )
    assert first.created and not again.created
    assert len(await gold_rows(system)) == 1  # only after the first, posted, item


async def test_a_gold_item_looks_like_any_other_on_the_card(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    item = (await system.service.submit(integrator=integrator, data=real("always"))).item
    [(real_card, _), (gold_card, _)] = surface.posts
    [gold] = await gold_rows(system)
    assert real_card.item_id == item.id and gold_card.item_id == gold.id
    assert gold_card.route == real_card.route and gold_card.kind == real_card.kind
    assert gold_card.confidence == real_card.confidence == 0.7  # borrowed from the real one
    assert gold_card.actions == real_card.actions and gold_card.requested_by is None
    assert "gold" not in json.dumps(dataclasses.asdict(gold_card), default=str).lower()
    # and as any surface or the API reads it: nothing that says gold
    public = await system.reader.get(item_id=gold.id)
    assert "gold" not in public.model_dump_json().lower()
    assert public.callback_url is None


async def test_gold_items_belong_to_the_gold_integrator(
    system: System, integrator: Integrator
) -> None:
    await system.service.submit(integrator=integrator, data=real("always"))
    await system.service.submit(integrator=integrator, data=real("always"))
    gold = await gold_rows(system)
    async with system.sessions() as session:
        owners = {
            (await session.get(ApiKey, g.integrator_id)).name  # type: ignore[union-attr]
            for g in gold
        }
    assert owners == {GOLD_INTEGRATOR}
    with pytest.raises(NotFound):  # not the submitting integrator's item
        await system.reader.get(item_id=gold[0].id, integrator_id=integrator.id)


async def test_gold_items_are_never_auto_decided(system: System, integrator: Integrator) -> None:
    """An entry's own confidence is shown, but never lets the policy decide for people."""
    await system.service.submit(integrator=integrator, data=real("sure"))
    [gold] = await gold_rows(system)
    assert gold.confidence == 0.999 and gold.state == "pending"


async def test_an_approved_gold_item_is_never_released_nor_called_back(
    system: System, integrator: Integrator
) -> None:
    item = (await system.service.submit(integrator=integrator, data=real("always"))).item
    [gold] = await gold_rows(system)
    lead = Actor(surface="web", user_id="lead", name="lead")
    decided = await system.service.decide(item_id=gold.id, action="approve", actor=lead)
    assert decided.state == "approved" and decided.release_state == "none"
    real_item = await system.service.decide(item_id=item.id, action="approve", actor=lead)
    assert real_item.release_state == "queued"  # the real one is released as ever
    async with system.sessions() as session:
        assert await outbox_store.deliveries_for(session, item_id=gold.id) == []
        purposes = {d.purpose for d in await outbox_store.deliveries_for(session, item_id=item.id)}
    assert purposes == {"release", "callback"}
