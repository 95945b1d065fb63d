"""Item ids sort by creation time and do not collide."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.ids import new_item_id


def test_ids_sort_by_time_and_are_unique() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_item_id(start + timedelta(milliseconds=n)) for n in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"itm_[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)


def test_same_millisecond_ids_differ() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert len({new_item_id(now) for _ in range(1000)}) == 1000
