"""Discord cards: one embed within Discord's limits, long content attached, no mentions."""

from __future__ import annotations

from adapters.discord.embeds import DESCRIPTION, TOTAL, card_message
from tests.cards import sample_card

URL = "http://127.0.0.1:8000/items/itm_1"


card = sample_card


def test_an_email_card() -> None:
    message = card_message(card(), web_url=URL)
    embed = message.embed
    assert embed.title == "Refund" and embed.url == URL
    names = [f.name for f in embed.fields]
    assert names == ["Route", "Confidence", "Requested by", "Due", "To", "Subject"]
    assert embed.description == "Hi Jane" and message.files == []


def test_mentions_are_switched_off() -> None:
    message = card_message(card(body="@everyone @here <@123> <@&456>"), web_url=URL)
    mentions = message.allowed_mentions.to_dict()
    assert mentions == {"parse": []}  # no users, roles, everyone: nobody is notified


def test_a_3000_line_diff_fits_and_is_attached_whole() -> None:
    diff = "--- a/x.py\n+++ b/x.py\n@@ -1,3000 +1,3000 @@\n" + "".join(
        f"-old_line_{n} = {n}\n+new_line_{n} = {n} ```\n" for n in range(1500)
    )
    message = card_message(card(kind="code_change", body="Why: speed", diff=diff), web_url=URL)
    embed = message.embed
    assert len(embed) <= TOTAL and len(embed.description or "") <= DESCRIPTION
    [attached] = message.files
    assert attached.filename == "itm_1.diff"
    assert attached.fp.read().decode() == diff
    assert "```diff\n--- a/x.py" in (embed.description or "")
    assert "(3,003 lines" in (embed.description or "")
    # a ``` inside the draft cannot close the code block early
    assert (embed.description or "").count("```") == 2


def test_a_decided_card_shows_its_status() -> None:
    message = card_message(card(actions=(), status="Rejected by lead: wrong amount"), web_url=URL)
    status = [f for f in message.embed.fields if f.name == "Status"]
    assert status and status[0].value == "Rejected by lead: wrong amount"
    assert message.embed.colour is not None and message.embed.colour.value == 0xC0362C
