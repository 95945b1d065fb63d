"""Block Kit cards: escaping, Slack's limits, action ids."""

from __future__ import annotations

import json

from adapters.slack.blocks import (
    MAX_BLOCKS,
    MAX_SECTION,
    action_id,
    card_blocks,
    escape,
    fallback_text,
    parse_action_id,
)
from bot.card import CardField
from tests.cards import sample_card

URL = "http://127.0.0.1:8000/items/itm_1"


card = sample_card


def texts(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_a_card_has_header_context_fields_body_and_buttons() -> None:
    blocks = card_blocks(card(), web_url=URL)
    assert [b["type"] for b in blocks] == ["header", "context", "section", "section", "actions"]
    assert "route support · confidence 0.82 · requested by sam" in texts(blocks)
    buttons = blocks[-1]["elements"]
    assert [b["action_id"] for b in buttons] == [
        "signoff:approve:itm_1",
        "signoff:edit:itm_1",
        "signoff:reject:itm_1",
    ]
    assert [b.get("style") for b in buttons] == ["primary", None, "danger"]


def test_action_ids_round_trip() -> None:
    assert parse_action_id(action_id("reject", "itm_01ABC")) == ("reject", "itm_01ABC")
    assert parse_action_id("other:thing") is None


def test_draft_text_cannot_notify_anyone() -> None:
    evil = "<!channel> <!here> <@U123> <https://evil.example|your bank> & co"
    blocks = card_blocks(card(title=evil, body=evil, fields=(CardField("To", evil),)), web_url=URL)
    dumped = texts(blocks) + fallback_text(card(title=evil))
    for raw in ("<!channel>", "<!here>", "<@U123>", "<https://evil"):
        assert raw not in dumped
    assert "&lt;!channel&gt;" in dumped and "&amp; co" in dumped


def test_a_decided_card_has_a_status_and_no_buttons() -> None:
    blocks = card_blocks(
        card(actions=(), status="Approved by ann · 4 min after posting"), web_url=URL
    )
    assert blocks[-1]["type"] == "context" and "Approved by ann" in texts(blocks)
    assert all(b["type"] != "actions" for b in blocks)


def test_long_content_stays_within_the_limits_and_links_to_the_rest() -> None:
    body = ("All work and no play makes Jack a dull boy <&>. " * 250)[:10_000]
    diff = "--- a/x\n+++ b/x\n@@ -1,1500 +1,1500 @@\n" + "".join(
        f"-line {n} = old_value({n})\n+line {n} = new_value({n}) # & <tag>\n" for n in range(750)
    )
    for c in (card(body=body), card(kind="code_change", body=None, diff=diff)):
        blocks = card_blocks(c, web_url=URL)
        assert len(blocks) <= MAX_BLOCKS
        sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
        assert all(len(t) <= MAX_SECTION for t in sections)
    diff_blocks = card_blocks(card(kind="code_change", body=None, diff=diff), web_url=URL)
    assert diff_blocks[-2]["text"]["text"].startswith("_…about ")
    assert f"<{URL}|open the full draft in signoff>" in diff_blocks[-2]["text"]["text"]
    shown = "".join(
        b["text"]["text"]
        for b in diff_blocks
        if b["type"] == "section" and "text" in b and b["text"]["text"].startswith("```")
    )
    assert shown.count("```") % 2 == 0  # every chunk is its own closed code block
    body_blocks = card_blocks(card(body=body), web_url=URL)
    whole = "".join(b["text"]["text"] for b in body_blocks[3:-1])
    assert whole == escape(body)  # 10,000 characters fit in 50 blocks: nothing cut


def test_a_long_title_is_clipped_without_breaking_an_entity() -> None:
    blocks = card_blocks(card(title="&" * 200), web_url=URL)
    header = blocks[0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("&amp;…")
