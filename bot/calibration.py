"""Calibration: how often drafts of each confidence were acceptable, and the thresholds
that keep automatic decisions within a target error.

The evidence is every verdict people gave on a route's drafts:

- a human decision: approved or edited means the draft was acceptable (an edit was
  needed, but the draft was a reasonable start), rejected means it was not;
- an audit of an automatic decision: an auto-approval judged *correct* or an
  auto-rejection judged *wrong* means the draft was acceptable, and the reverse not.

Recommending ``auto_approve_at``: the lowest confidence ``c`` (in hundredths) such that,
over every draft with confidence ≥ ``c``, the upper end of the 95 % Wilson interval of
the share *not* acceptable is under the target. ``auto_reject_below`` likewise: the
highest ``c`` such that, over every draft with confidence < ``c``, the upper bound of
the share that *was* acceptable is under the target. When no ``c`` gets the bound under
the target, there is not enough data yet, and the report says so instead. Thresholds
are only placed where there is evidence: ``auto_approve_at`` at a confidence some draft
had, ``auto_reject_below`` just above one, so a recommendation never reaches into a
range nobody has judged.

Counting is done in the database per hundredth of confidence (:mod:`storage.bins`), so
a report over any number of decisions takes constant memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.audits import AUTO_OUTCOMES, BANDS, Band, band_of_bin, draft_was_acceptable
from bot.errors import InvalidInput
from bot.overrides import ThresholdOverrides
from bot.routes import Route, Thresholds
from storage import audits as audit_store
from storage import calibration as calibration_store
from storage import config_changes as change_store
from storage.bins import BINS
from storage.db import SessionFactory
from storage.models import ConfigChange

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
DEFAULT_TARGET = 0.01  # the target error where none is given (nor a route's drift target)


def wilson(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n``; (0, 1) for n = 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    return max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator)


def clean_run_needed(target: float, *, z: float = Z95) -> int:
    """How many verdicts without a single error it takes for the Wilson upper bound
    (``z² / (n + z²)``) to get under ``target``."""
    return math.floor(z * z * (1 - target) / target) + 1


@dataclass(slots=True)
class Tally:
    """Verdicts on drafts of one confidence bin."""

    n: int = 0
    acceptable: int = 0

    def add(self, count: int, *, acceptable: bool) -> None:
        self.n += count
        self.acceptable += count if acceptable else 0


def tally(
    *,
    outcomes: Iterable[tuple[int, str, int]],
    verdicts: Iterable[tuple[int, str, str, int]],
) -> list[Tally]:
    """One tally per bin (0-100) from human outcome counts (bin, outcome, count) and
    audit verdict counts (bin, auto outcome, verdict, count)."""
    bins = [Tally() for _ in range(BINS)]
    for hundredths, outcome, n in outcomes:
        bins[hundredths].add(n, acceptable=outcome in ("approved", "edited"))
    for hundredths, auto_outcome, verdict, n in verdicts:
        if auto_outcome in AUTO_OUTCOMES:
            bins[hundredths].add(
                n, acceptable=draft_was_acceptable(auto_outcome=auto_outcome, verdict=verdict)
            )
    return bins


@dataclass(frozen=True, slots=True)
class BandRow:
    """One line of the report: a band, its verdicts and its observed accuracy (the share
    of acceptable drafts) with the 95 % Wilson interval; audits and how often the
    auditors agreed with the policy."""

    band: Band
    n: int
    acceptable: int
    low: float
    high: float
    audits: int
    agreed: int

    @property
    def accuracy(self) -> float | None:
        return self.acceptable / self.n if self.n else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.audits if self.audits else None


def band_rows(
    bins: Sequence[Tally], verdicts: Sequence[tuple[int, str, str, int]]
) -> list[BandRow]:
    """The per-band lines, highest band first."""
    n = [0] * 10
    good = [0] * 10
    audits = [0] * 10
    agreed = [0] * 10
    for hundredths, t in enumerate(bins):
        index = band_of_bin(hundredths).index
        n[index] += t.n
        good[index] += t.acceptable
    for hundredths, _, verdict, count in verdicts:
        index = band_of_bin(hundredths).index
        audits[index] += count
        agreed[index] += count if verdict == "correct" else 0
    rows = []
    for band in BANDS:
        i = band.index
        low, high = wilson(good[i], n[i])
        rows.append(BandRow(band, n[i], good[i], low, high, audits[i], agreed[i]))
    return rows


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A recommended threshold, or None with the reason there is not enough data.

    ``n``, ``errors`` and ``upper`` describe the drafts the threshold would decide
    automatically: how many, how many of those the decision would get wrong, and the
    upper bound of that error rate."""

    key: str  # auto_approve_at | auto_reject_below
    value: float | None
    n: int
    errors: int
    upper: float | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "n": self.n,
            "errors": self.errors,
            "error_upper_bound": self.upper,
            "note": self.note,
        }


def recommend_approve_at(bins: Sequence[Tally], *, target: float) -> Recommendation:
    """The lowest ``c`` whose drafts at ≥ ``c`` keep the upper bound of the share not
    acceptable under ``target``."""
    n = bad = 0
    best: tuple[int, int, int, float] | None = None
    closest: tuple[float, int, int] | None = None  # the smallest bound seen, for the note
    for k in range(BINS - 1, -1, -1):
        n += bins[k].n
        bad += bins[k].n - bins[k].acceptable
        if n == 0:
            continue
        upper = wilson(bad, n)[1]
        if closest is None or upper < closest[0]:
            closest = (upper, k, n)
        if upper < target and bins[k].n:  # a threshold where there is evidence
            best = (k, n, bad, upper)
    if best is None:
        return _not_enough("auto_approve_at", target, closest, at_least=True)
    k, n, bad, upper = best
    return Recommendation(
        "auto_approve_at",
        k / 100,
        n,
        bad,
        upper,
        f"drafts at ≥ {k / 100:.2f}: {bad:,} of {n:,} not acceptable ({_pct(bad / n)}), "
        f"upper bound {_pct(upper, 2)} < {_pct(target)}",
    )


def recommend_reject_below(bins: Sequence[Tally], *, target: float) -> Recommendation:
    """The highest ``c`` whose drafts below ``c`` keep the upper bound of the share
    that was acceptable under ``target``."""
    n = good = 0
    best: tuple[int, int, int, float] | None = None
    closest: tuple[float, int, int] | None = None
    for k in range(1, BINS):  # threshold k/100 covers the bins below k
        n += bins[k - 1].n
        good += bins[k - 1].acceptable
        if n == 0:
            continue
        upper = wilson(good, n)[1]
        if closest is None or upper < closest[0]:
            closest = (upper, k, n)
        if upper < target and bins[k - 1].n:  # just above a confidence seen
            best = (k, n, good, upper)
    if best is None:
        return _not_enough("auto_reject_below", target, closest, at_least=False)
    k, n, good, upper = best
    return Recommendation(
        "auto_reject_below",
        k / 100,
        n,
        good,
        upper,
        f"drafts below {k / 100:.2f}: {good:,} of {n:,} acceptable ({_pct(good / n)}), "
        f"upper bound {_pct(upper, 2)} < {_pct(target)}",
    )


def _not_enough(
    key: str, target: float, closest: tuple[float, int, int] | None, *, at_least: bool
) -> Recommendation:
    needed = clean_run_needed(target)
    if closest is None:
        seen = "no verdicts yet"
    else:
        upper, k, n = closest
        where = f"≥ {k / 100:.2f}" if at_least else f"below {k / 100:.2f}"
        seen = f"the lowest upper bound so far is {_pct(upper)} ({n:,} drafts {where})"
    return Recommendation(
        key,
        None,
        0,
        0,
        None,
        f"not enough data: {seen}; getting under {_pct(target)} takes at least "
        f"{needed:,} verdicts without a single error",
    )


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """Everything ``signoff calibrate`` prints and the dashboard plots."""

    route: str
    target_error: float
    bands: tuple[BandRow, ...]
    approve: Recommendation
    reject: Recommendation
    in_force: Thresholds
    route_file: Thresholds
    changes: tuple[ConfigChange, ...] = field(default=())

    @property
    def verdicts(self) -> int:
        return sum(b.n for b in self.bands)

    @property
    def audits(self) -> int:
        return sum(b.audits for b in self.bands)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (``signoff calibrate --json``)."""
        return {
            "route": self.route,
            "target_error": self.target_error,
            "confidence_level": 0.95,
            "verdicts": self.verdicts,
            "audits": self.audits,
            "bands": [
                {
                    "band": b.band.label,
                    "low": b.band.low,
                    "high": b.band.high,
                    "n": b.n,
                    "acceptable": b.acceptable,
                    "accuracy": b.accuracy,
                    "interval": [b.low, b.high] if b.n else None,
                    "audits": b.audits,
                    "agreement": b.agreement,
                }
                for b in self.bands
            ],
            "recommended": {
                "auto_approve_at": self.approve.as_dict(),
                "auto_reject_below": self.reject.as_dict(),
            },
            "thresholds": {
                "in_force": self.in_force.model_dump(),
                "route_file": self.route_file.model_dump(),
            },
            "config_changes": [
                {
                    "at": c.at.isoformat(),
                    "key": c.key,
                    "old_value": c.old_value,
                    "new_value": c.new_value,
                    "actor": c.actor,
                    "reason": c.reason,
                }
                for c in self.changes
            ],
        }

    def text(self) -> str:
        """The report for people, as ``signoff calibrate`` prints it."""
        lines = [
            f"Calibration of route {self.route!r}: target error {_pct(self.target_error)}, "
            f"95 % Wilson intervals",
            f"{self.verdicts:,} verdicts (human decisions and audits), {self.audits:,} audits",
            "",
        ]
        table = [("BAND", "N", "ACCEPTABLE", "ACCURACY", "95% INTERVAL", "AUDITS", "AGREEMENT")]
        for b in self.bands:
            table.append(
                (
                    b.band.label,
                    f"{b.n:,}",
                    f"{b.acceptable:,}",
                    _pct(b.accuracy) if b.accuracy is not None else "-",
                    f"{_pct(b.low)} - {_pct(b.high)}" if b.n else "-",
                    f"{b.audits:,}",
                    _pct(b.agreement) if b.agreement is not None else "-",
                )
            )
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        for row in table:
            lines.append("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        lines += ["", f"Thresholds in force: {self._thresholds_text()}"]
        for rec in (self.approve, self.reject):
            shown = f"{rec.value:.2f}" if rec.value is not None else "none"
            lines.append(f"Recommended {rec.key}: {shown} ({rec.note})")
        if self.changes:
            lines += ["", "Changes signoff made to this route (newest first):"]
            for c in self.changes:
                lines.append(
                    f"  {c.at:%Y-%m-%d %H:%M} UTC  {c.key}: {c.old_value} -> {c.new_value}  "
                    f"({c.actor}: {c.reason})"
                )
        return "\n".join(lines)

    def _thresholds_text(self) -> str:
        parts = []
        for key in ("auto_approve_at", "auto_reject_below"):
            now, filed = getattr(self.in_force, key), getattr(self.route_file, key)
            text = f"{key} {_value(now)}"
            if now != filed:
                text += f" (changed by signoff; the route file says {_value(filed)})"
            parts.append(text)
        return ", ".join(parts)


async def calibration_report(
    sessions: SessionFactory,
    *,
    route: Route,
    target_error: float,
    overrides: ThresholdOverrides | None = None,
) -> CalibrationReport:
    """Calibrate ``route`` against ``target_error`` (a share, e.g. 0.01) on every verdict
    recorded so far."""
    if not 0 < target_error < 1:
        raise InvalidInput(
            f"must be between 0 and 1 (e.g. 0.01 for 1 %), got {target_error}",
            field="target_error",
        )
    async with sessions() as session:
        outcomes = await calibration_store.outcome_counts(session, route=route.name)
        verdicts = await audit_store.verdict_counts(session, route=route.name)
        changes = await change_store.changes(session, routes=[route.name], limit=20)
    in_force = route.thresholds
    if overrides is not None:
        await overrides.refresh()
        in_force = overrides.cached(route)
    bins = tally(outcomes=outcomes, verdicts=verdicts)
    approve = recommend_approve_at(bins, target=target_error)
    reject = recommend_reject_below(bins, target=target_error)
    if approve.value is not None and reject.value is not None and reject.value > approve.value:
        reject = Recommendation(  # the two ranges must not overlap
            reject.key,
            approve.value,
            reject.n,
            reject.errors,
            reject.upper,
            reject.note + f"; capped at auto_approve_at {approve.value:.2f}",
        )
    return CalibrationReport(
        route=route.name,
        target_error=target_error,
        bands=tuple(band_rows(bins, verdicts)),
        approve=approve,
        reject=reject,
        in_force=in_force,
        route_file=route.thresholds,
        changes=tuple(changes),
    )


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if 0 < value < 0.001:
        digits = max(digits, 2)
    return f"{value * 100:.{digits}f}%"


def _value(value: float | None) -> str:
    return "unset" if value is None else f"{value:g}"
