"""SLO maths, pure: counts of good and total events in, budgets, burn rates and multi-window
burn-rate conditions out (Google SRE workbook, chapter 5). No I/O, no clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Severity = Literal["page", "ticket"]


@dataclass(frozen=True, slots=True)
class Counts:
    good: int
    total: int

    @property
    def bad(self) -> int:
        return self.total - self.good

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.good + other.good, self.total + other.total)


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """Fire when the burn rate over both the long and the short window is at least `factor`."""

    long: timedelta
    short: timedelta
    factor: float
    severity: Severity

    @property
    def tier(self) -> str:
        return _duration_label(self.long)


DEFAULT_BURN_WINDOWS = (
    BurnWindow(timedelta(hours=1), timedelta(minutes=5), 14.4, "page"),
    BurnWindow(timedelta(hours=6), timedelta(minutes=30), 6.0, "page"),
    BurnWindow(timedelta(days=1), timedelta(hours=2), 3.0, "ticket"),
    BurnWindow(timedelta(days=3), timedelta(hours=6), 1.0, "ticket"),
)
DEFAULT_MIN_EVENTS = 50  # fewer events than this in a long window never fire a condition


def _duration_label(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def attainment(c: Counts) -> float:
    """Good / total; with no events the objective is met (1.0)."""
    return c.good / c.total if c.total else 1.0


def error_budget_ratio(target: float) -> float:
    """1 - target without binary noise (1 - 0.999 is 0.0010000000000000009 in floats)."""
    return round(1.0 - target, 12)


def burn_rate(c: Counts, target: float) -> float:
    """How fast the budget burns: the error rate divided by the allowed error rate. 1.0 spends
    exactly the whole budget over the SLO window."""
    if not c.total:
        return 0.0
    return (c.bad / c.total) / error_budget_ratio(target)


@dataclass(frozen=True, slots=True)
class Budget:
    allowed_bad: float  # events the window may fail and still meet the objective
    consumed_bad: int
    consumed: float  # fraction of the budget spent (can exceed 1)

    @property
    def remaining(self) -> float:
        """Fraction left, 0..1 (0 when spent or overspent)."""
        return max(0.0, 1.0 - self.consumed)

    @property
    def remaining_bad(self) -> float:
        return max(0.0, self.allowed_bad - self.consumed_bad)


def budget(c: Counts, target: float) -> Budget:
    allowed = error_budget_ratio(target) * c.total
    if allowed == 0:
        return Budget(0.0, c.bad, 1.0 if c.bad else 0.0)
    return Budget(allowed, c.bad, c.bad / allowed)


def time_to_exhaustion(b: Budget, window: timedelta, current_burn: float) -> timedelta | None:
    """At the current burn rate, when the rest of the budget is gone (None: not burning)."""
    if current_burn <= 0:
        return None
    if b.remaining <= 0:
        return timedelta(0)
    return window * (b.remaining / current_burn)


@dataclass(frozen=True, slots=True)
class Condition:
    tier: str
    severity: Severity
    factor: float
    long_window: str
    short_window: str
    long_burn: float
    short_burn: float
    inhibited_by: str | None = None  # a faster firing tier of the same SLO

    def as_json(self) -> dict[str, object]:
        return {"tier": self.tier, "severity": self.severity, "factor": self.factor,
                "windows": {"long": self.long_window, "short": self.short_window},
                "burn_rates": {"long": round(self.long_burn, 4),
                               "short": round(self.short_burn, 4)},
                "inhibited_by": self.inhibited_by}


def firing_conditions(windows: tuple[BurnWindow, ...], counts: dict[timedelta, Counts],
                      target: float, min_events: int) -> list[Condition]:
    """Multi-window multi-burn-rate conditions that hold. `counts` has every long and short
    window. A long window with fewer than `min_events` events never fires (low traffic: a
    handful of failures is not an incident). Slower tiers are marked inhibited by the fastest
    firing one, so one incident pages once."""
    firing = []
    for w in sorted(windows, key=lambda w: w.long):
        long_c, short_c = counts[w.long], counts[w.short]
        if long_c.total < min_events:
            continue
        long_burn, short_burn = burn_rate(long_c, target), burn_rate(short_c, target)
        threshold = w.factor * (1 - 1e-9)  # exactly at the factor counts, despite float noise
        if long_burn >= threshold and short_burn >= threshold:
            firing.append(Condition(w.tier, w.severity, w.factor, _duration_label(w.long),
                                    _duration_label(w.short), long_burn, short_burn))
    if not firing:
        return []
    fastest = firing[0].tier
    return [firing[0]] + [Condition(c.tier, c.severity, c.factor, c.long_window,
                                    c.short_window, c.long_burn, c.short_burn, fastest)
                          for c in firing[1:]]


def calendar_window_start(at: datetime, unit: str) -> datetime:
    """Start of the calendar-aligned window containing `at` (unit: d, w, M, Q or Y)."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":
        return day - timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    if unit == "Q":
        return day.replace(day=1, month=3 * ((day.month - 1) // 3) + 1)
    if unit == "Y":
        return day.replace(day=1, month=1)
    raise ValueError(f"unknown calendar unit {unit!r}")


def timeslice_counts(slices: list[Counts], slice_target: float) -> Counts:
    """Timeslices budgeting: a slice with traffic is good when its ratio meets `slice_target`;
    slices without traffic are not counted."""
    with_traffic = [s for s in slices if s.total]
    good = sum(1 for s in with_traffic if attainment(s) >= slice_target - 1e-12)
    return Counts(good, len(with_traffic))


def round_sig(value: float, digits: int = 6) -> float:
    return 0.0 if value == 0 or math.isinf(value) else round(value, digits)
