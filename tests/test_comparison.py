"""A/B comparisons and one-click labels in the core, on SQLite and PostgreSQL.

The display order of a comparison is drawn at submit and hidden; a reviewer's verdict
("A better" on whatever the card shows first) is recorded for the candidate it means,
and the winner is released like an approved draft. A label item's card has one button
per label; a click is an edit to that label.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import ab
from bot.app import System, create_app
from bot.auth import Integrator
from bot.card import CardChoice, CardField
from bot.choices import MAX_LABEL_BUTTONS, choice_id, click, parse_choice_id
from bot.errors import Conflict, InvalidInput
from bot.ports import Actor
from bot.routes import RouteTable, parse_routes
from bot.schemas import ItemCreate
from storage import items as item_store
from tests.fakes.receiver import Receiver
from tests.fakes.surface import RecordingSurface
from tests.process import run, signoff_env

PAIR = {"prompt": "Greet Jane", "a": "Hi Jane, this is candidate one.", "b": "Hello Jane! (two)"}
LABELS = ["billing", "refund", "spam"]


class FixedOrder(random.Random):
    """An RNG whose every draw is ``value``: 0.0 swaps the display order, 0.9 does not."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def routes(receiver: Receiver) -> RouteTable:
    return parse_routes(
        {
            "routes": {
                "prefs": {
                    "target": {"type": "webhook", "url": f"{receiver.url}/release"},
                    "callback_hosts": ["127.0.0.1"],
                    "allow_private_callbacks": True,
                },
                "pair": {"quorum": 2},
            }
        }
    )


def web(name: str) -> Actor:
    return Actor(surface="web", user_id=name, name=name)


async def compare(
    system: System, integrator: Integrator, *, swapped: bool | None = None, route: str = "prefs"
) -> str:
    if swapped is not None:
        system.service.ab_rng = FixedOrder(0.0 if swapped else 0.9)
    data = ItemCreate(route=route, kind="comparison", title="Which greeting?", content=PAIR)
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def label_item(
    system: System, integrator: Integrator, labels: list[str], route: str = "prefs"
) -> str:
    data = ItemCreate(
        route=route, kind="label", title="Tag it", content={"text": "refund?", "labels": labels}
    )
    return (await system.service.submit(integrator=integrator, data=data)).item.id


async def stored_swapped(system: System, item_id: str) -> bool | None:
    async with system.sessions() as session:
        row = await item_store.get_item(session, item_id=item_id)
        assert row is not None
        return row.ab_swapped


async def test_both_display_orders_occur_with_a_seeded_and_with_the_default_rng(
    system: System, integrator: Integrator
) -> None:
    system.service.ab_rng = random.Random(20260105)
    seeded = [await stored_swapped(system, await compare(system, integrator)) for _ in range(40)]
    assert set(seeded) == {True, False}
    replay = random.Random(20260105)
    assert seeded == [replay.random() < 0.5 for _ in range(40)]  # as drawn, and recorded

    system.service.ab_rng = random.SystemRandom()  # the default
    drawn = {await stored_swapped(system, await compare(system, integrator)) for _ in range(100)}
    assert drawn == {True, False}  # each order missing: probability 2 ** -99


async def test_other_kinds_have_no_display_order(system: System, integrator: Integrator) -> None:
    item_id = await label_item(system, integrator, LABELS)
    assert await stored_swapped(system, item_id) is None


@pytest.mark.parametrize(
    ("swapped", "verdict", "choice"),
    [
        (False, "A", "a"),
        (False, "B", "b"),
        (True, "A", "b"),
        (True, "B", "a"),
        (False, "tie", "tie"),
        (True, "tie", "tie"),
    ],
)
async def test_the_stored_preference_maps_back_to_the_right_candidate(
    system: System, integrator: Integrator, swapped: bool, verdict: str, choice: str
) -> None:
    item_id = await compare(system, integrator, swapped=swapped)
    item = await system.service.decide(
        item_id=item_id, action="approve", actor=web("ann"), choice=verdict
    )
    assert (item.state, item.outcome) == ("approved", "approved")
    text = PAIR["b"] if choice == "b" else PAIR["a"]  # a tie releases a
    assert item.final_content == {"prompt": PAIR["prompt"], "winner": choice, "text": text}
    stored = await system.reader.get(item_id=item_id)  # read back from the database
    assert stored.decisions[-1].choice == choice and stored.final_content == item.final_content


async def test_a_on_a_swapped_card_is_b(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    item_id = await compare(system, integrator, swapped=True)
    [(card, _)] = surface.posts
    assert [(s.label, s.value) for s in card.sections] == [
        ("Prompt", PAIR["prompt"]),
        ("A", PAIR["b"]),  # the card shows b first, as "A"
        ("B", PAIR["a"]),
    ]
    item = await click(
        service=system.service,
        reader=system.reader,
        item_id=item_id,
        verb="choose",
        value="A",
        actor=web("ann"),
    )
    assert item.decisions[-1].choice == "b"
    assert item.final_content == {"prompt": PAIR["prompt"], "winner": "b", "text": PAIR["b"]}


async def test_both_bad_rejects(system: System, integrator: Integrator) -> None:
    item_id = await compare(system, integrator, swapped=True)
    item = await click(
        service=system.service,
        reader=system.reader,
        item_id=item_id,
        verb="choose",
        value="both_bad",
        actor=web("ann"),
    )
    assert (item.state, item.outcome, item.release_state) == ("rejected", "rejected", "none")
    assert item.decisions[-1].choice == "both_bad"
    assert item.decisions[-1].reason_text == "both bad" and item.final_content is None


async def test_the_webhook_release_carries_the_winner(
    system: System, integrator: Integrator, receiver: Receiver
) -> None:
    item_id = await compare(system, integrator, swapped=False)
    await system.service.decide(item_id=item_id, action="approve", actor=web("ann"), choice="B")
    await system.worker.run_once()
    [release] = [r for r in receiver.accepted() if r.path == "/release"]
    sent = json.loads(release.body)["item"]
    assert sent["final_content"] == {"prompt": PAIR["prompt"], "winner": "b", "text": PAIR["b"]}
    assert sent["content"] == PAIR and sent["decisions"][-1]["choice"] == "b"
    assert "ab_swapped" not in sent  # the order stays inside signoff


async def test_the_reviewer_never_sees_which_candidate_is_which(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    for swapped in (False, True):
        await compare(system, integrator, swapped=swapped)
    plain, swapped_card = (card for card, _ in surface.posts)
    assert [c.text for c in plain.choices] == ["A better", "B better", "Tie", "Both bad"]
    assert [c.value for c in plain.choices] == ["A", "B", "tie", "both_bad"]
    assert plain.actions == () and plain.body is None and plain.fields == ()
    assert [(s.label, s.value) for s in plain.sections] == [
        ("Prompt", PAIR["prompt"]),
        ("A", PAIR["a"]),
        ("B", PAIR["b"]),
    ]
    # Nothing on the card but the order of the two outputs tells the cards apart: no
    # field, label or button names the candidate ("a"/"b") or the order.
    prompt, first, second = plain.sections
    assert swapped_card == dataclasses.replace(
        plain,
        item_id=swapped_card.item_id,
        sections=(prompt, CardField("A", second.value, False), CardField("B", first.value, False)),
    )
    assert not {"ab_swapped", "swapped"} & set(plain.__dataclass_fields__)


async def test_a_decided_comparison_card_still_shows_both_outputs(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    item_id = await compare(system, integrator, swapped=True)
    await system.service.decide(item_id=item_id, action="approve", actor=web("ann"), choice="A")
    card, _ = surface.updates[-1]
    assert [s.value for s in card.sections][1:] == [PAIR["b"], PAIR["a"]]
    assert card.choices == () and card.status is not None
    assert card.status.startswith("Approved by ann")


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"action": "approve"}, "choice", "a comparison is decided with a choice"),
        ({"action": "edit", "content": {"a": "x"}}, "choice", "decided with a choice"),
        ({"action": "approve", "choice": "C"}, "choice", "'C' is not a comparison verdict"),
        ({"action": "approve", "choice": "both_bad"}, "action", "decided as reject"),
        ({"action": "reject", "choice": "A", "reason_text": "x"}, "action", "as approve"),
    ],
)
async def test_a_comparison_needs_a_fitting_choice(
    system: System, integrator: Integrator, kwargs: dict[str, Any], field: str, words: str
) -> None:
    item_id = await compare(system, integrator)
    with pytest.raises(InvalidInput) as err:
        await system.service.decide(item_id=item_id, actor=web("ann"), **kwargs)
    assert err.value.field == field and words in err.value.message
    assert (await system.reader.get(item_id=item_id)).state == "pending"


async def test_only_a_comparison_takes_a_choice(system: System, integrator: Integrator) -> None:
    item_id = await label_item(system, integrator, LABELS)
    with pytest.raises(InvalidInput, match="only a comparison takes a choice") as err:
        await system.service.decide(item_id=item_id, action="approve", actor=web("a"), choice="A")
    assert err.value.field == "choice"


async def test_under_a_quorum_each_choice_is_an_approval_and_the_last_one_wins(
    system: System, integrator: Integrator
) -> None:
    item_id = await compare(system, integrator, swapped=False, route="pair")
    first = await system.service.decide(
        item_id=item_id, action="approve", actor=web("ann"), choice="A"
    )
    assert (first.state, first.approvals, first.decisions[-1].choice) == ("pending", 1, "a")
    with pytest.raises(Conflict, match="already approved"):
        await system.service.decide(item_id=item_id, action="approve", actor=web("ann"), choice="B")
    done = await system.service.decide(
        item_id=item_id, action="approve", actor=web("bob"), choice="B"
    )
    assert done.state == "approved" and [d.choice for d in done.decisions] == ["a", "b"]
    assert done.final_content is not None and done.final_content["winner"] == "b"


def test_verdicts_map_to_candidates_in_both_orders() -> None:
    for verdict in ab.VERDICTS:
        for swapped in (False, True):
            choice = ab.candidate(verdict, swapped=swapped)
            shown = ab.shown(PAIR, swapped=swapped)
            if verdict in ("A", "B"):  # the text the reviewer preferred is the winner's
                assert shown[verdict.lower()] == PAIR[choice]
            else:
                assert choice == verdict


def test_choice_ids_fit_the_chat_limits_and_round_trip() -> None:
    item_id = "itm_" + "Z" * 26
    for verb, value in (("choose", "both_bad"), ("label", str(MAX_LABEL_BUTTONS - 1))):
        custom = choice_id(item_id, CardChoice(verb, value, "x"))
        assert len(custom) <= 100 and parse_choice_id(custom) == (verb, item_id, value)
    assert parse_choice_id("signoff:approve:itm_X") is None
    assert parse_choice_id("signoff:choose:itm_X:A:extra") is None


# -- one-click labels --------------------------------------------------------------------


async def test_a_label_card_has_a_button_per_label(
    system: System, integrator: Integrator, surface: RecordingSurface
) -> None:
    await label_item(system, integrator, LABELS)
    await label_item(system, integrator, [f"l{n}" for n in range(MAX_LABEL_BUTTONS + 1)])
    (few, _), (many, _) = surface.posts
    assert [(c.verb, c.value, c.text) for c in few.choices] == [
        ("label", "0", "billing"),
        ("label", "1", "refund"),
        ("label", "2", "spam"),
    ]
    assert few.actions == ("approve", "edit", "reject")
    assert many.choices == ()  # more than ten: the Edit form picks them


async def test_a_label_click_decides_with_that_label(
    system: System, integrator: Integrator
) -> None:
    item_id = await label_item(system, integrator, LABELS)
    item = await click(
        service=system.service,
        reader=system.reader,
        item_id=item_id,
        verb="label",
        value="1",
        actor=web("ann"),
    )
    assert (item.state, item.outcome) == ("approved", "edited")
    assert item.final_content == {"text": "refund?", "labels": ["refund"]}
    assert item.decisions[-1].content_after == {"text": "refund?", "labels": ["refund"]}


async def test_a_click_on_the_only_label_is_an_approval(
    system: System, integrator: Integrator
) -> None:
    item_id = await label_item(system, integrator, ["billing"])
    item = await click(
        service=system.service,
        reader=system.reader,
        item_id=item_id,
        verb="label",
        value="0",
        actor=web("ann"),
    )
    assert (item.outcome, item.decisions[-1].action) == ("approved", "approve")


async def test_under_a_quorum_reviewers_agree_by_clicking_the_same_label(
    system: System, integrator: Integrator
) -> None:
    item_id = await label_item(system, integrator, LABELS, route="pair")

    async def pick(who: str, n: int) -> Any:
        return await click(
            service=system.service,
            reader=system.reader,
            item_id=item_id,
            verb="label",
            value=str(n),
            actor=web(who),
        )

    assert (await pick("ann", 2)).approvals == 1
    disagreed = await pick("bob", 0)  # another label: the count restarts with bob
    assert (disagreed.state, disagreed.approvals) == ("pending", 1)
    agreed = await pick("cat", 0)
    assert agreed.state == "approved" and agreed.final_content is not None
    assert agreed.final_content["labels"] == ["billing"]
    assert [d.action for d in agreed.decisions] == ["edit", "edit", "approve"]


@pytest.mark.parametrize(
    ("verb", "value", "field"),
    [("label", "3", "label"), ("label", "x", "label"), ("pick", "0", "verb")],
)
async def test_a_bad_label_click_names_what_is_wrong(
    system: System, integrator: Integrator, verb: str, value: str, field: str
) -> None:
    item_id = await label_item(system, integrator, LABELS)
    with pytest.raises(InvalidInput) as err:
        await click(
            service=system.service,
            reader=system.reader,
            item_id=item_id,
            verb=verb,
            value=value,
            actor=web("ann"),
        )
    assert err.value.field == field


async def test_a_label_click_on_a_comparison_is_refused(
    system: System, integrator: Integrator
) -> None:
    item_id = await compare(system, integrator)
    with pytest.raises(InvalidInput, match="is a comparison, not a label item"):
        await click(
            service=system.service,
            reader=system.reader,
            item_id=item_id,
            verb="label",
            value="0",
            actor=web("ann"),
        )


async def test_over_the_api_the_order_stays_hidden_and_bad_content_is_named(
    system: System,
) -> None:
    key = (await system.keys.create(name="api")).api_key
    app = create_app(system, migrate=False, run_worker=False)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"route": "prefs", "kind": "comparison", "title": "Which?", "content": PAIR}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://signoff"
    ) as client:
        created = await client.post("/v1/items", json=body, headers=headers)
        assert created.status_code == 201, created.text
        got = await client.get(f"/v1/items/{created.json()['id']}", headers=headers)
        assert got.json() == created.json() and "ab_swapped" not in got.json()
        assert got.json()["content"] == PAIR
        bad = {**body, "content": {"prompt": "p", "a": "x"}}
        refused = await client.post("/v1/items", json=bad, headers=headers)
        assert refused.status_code == 422 and "content.b" in refused.json()["error"]["message"]


def test_the_command_line_decides_a_comparison_by_choice(tmp_path: Path) -> None:
    env = signoff_env(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/signoff.db")
    body = {"route": "default", "kind": "comparison", "title": "Which?", "content": PAIR}
    item = json.loads(run(["submit", "-", "--json"], env=env, stdin=json.dumps(body)).stdout)
    plain = run(["decide", item["id"], "approve", "--as", "ann"], env=env)
    assert plain.returncode == 2 and "a comparison is decided with a choice" in plain.stderr
    done = run(["decide", item["id"], "choose", "--choice", "both_bad", "--as", "ann"], env=env)
    assert done.returncode == 0 and "rejected" in done.stdout, done.stderr
