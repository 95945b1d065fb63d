"""Confidence in hundredths: bin ``k`` holds ``k/100 <= confidence < (k+1)/100``, bin 100
holds exactly 1.0.

Calibration counts decisions per bin in the database, so the same comparisons must
place a confidence in the same bin in SQL and in Python: both compare against the same
floats (``k / 100``) with ``>=``, as the policy compares a confidence with a threshold.
Rounding ``confidence * 100`` would not do (``0.29 * 100`` is ``28.999…``), and SQLite and
PostgreSQL cast floats to integers differently.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from sqlalchemy import case, literal

BINS = 101
EDGES: tuple[float, ...] = tuple(k / 100 for k in range(BINS))


def bin_of(confidence: float) -> int:
    """The bin of ``confidence`` (0 to 1)."""
    return max(0, min(BINS - 1, bisect_right(EDGES, confidence) - 1))


def confidence_bin(column: Any) -> Any:
    """A SQL expression for the bin of ``column``: a balanced tree of ``CASE`` (seven
    comparisons a row), the same on SQLite and PostgreSQL."""
    return _tree(column, 0, BINS)


def _tree(column: Any, low: int, high: int) -> Any:
    # bins low..high-1, for a value already known to be >= EDGES[low]
    if high - low == 1:
        return literal(low)
    mid = (low + high) // 2
    return case((column >= EDGES[mid], _tree(column, mid, high)), else_=_tree(column, low, mid))
