"""SLO maths against hand-computed cases."""

from datetime import UTC, datetime, timedelta

import pytest

from slo import maths
from slo.maths import DEFAULT_BURN_WINDOWS, Counts


def test_the_budget_is_exactly_spent_at_the_boundary() -> None:
    b = maths.budget(Counts(good=990, total=1000), target=0.99)  # 10 bad events allowed, 10 used
    assert b.allowed_bad == pytest.approx(10) and b.consumed_bad == 10
    assert b.consumed == pytest.approx(1.0) and b.remaining == 0.0
    one_less = maths.budget(Counts(good=991, total=1000), target=0.99)
    assert one_less.remaining == pytest.approx(0.1) and one_less.remaining_bad == pytest.approx(1)


def test_zero_traffic_meets_the_objective_and_burns_nothing() -> None:
    nothing = Counts(0, 0)
    assert maths.attainment(nothing) == 1.0 and maths.burn_rate(nothing, 0.999) == 0.0
    assert maths.budget(nothing, 0.999).remaining == 1.0
    assert maths.time_to_exhaustion(maths.budget(nothing, 0.999), timedelta(days=28), 0) is None


def test_burn_rate_and_time_to_exhaustion() -> None:
    # 99.9 % objective, 1 % errors: burning 10x; half the budget left of a 30-day window
    assert maths.burn_rate(Counts(990, 1000), 0.999) == pytest.approx(10.0)
    half = maths.Budget(allowed_bad=100, consumed_bad=50, consumed=0.5)
    assert maths.time_to_exhaustion(half, timedelta(days=30), 10.0) == timedelta(days=1.5)


def _windows(error_ratio_by_window: dict[timedelta, float], total: int = 100_000,
             ) -> dict[timedelta, Counts]:
    return {w: Counts(total - round(total * r), total) for w, r in error_ratio_by_window.items()}


SPANS = sorted({w.long for w in DEFAULT_BURN_WINDOWS} | {w.short for w in DEFAULT_BURN_WINDOWS})


def test_two_percent_of_a_30_day_budget_in_one_hour_pages_and_half_speed_stays_quiet() -> None:
    target = 0.999  # budget: 0.1 % of events
    # 2 % of the 30-day budget in 1 h is a burn of 0.02 * 720 = 14.4x: error ratio 1.44 %
    fast = {w: (0.0144 if w <= timedelta(hours=1) else 0.0005) for w in SPANS}
    fired = maths.firing_conditions(DEFAULT_BURN_WINDOWS, _windows(fast), target, 50)
    assert [(c.severity, c.tier) for c in fired] == [("page", "1h")]
    slow = {w: 0.0005 for w in SPANS}  # 0.5x everywhere
    assert maths.firing_conditions(DEFAULT_BURN_WINDOWS, _windows(slow), target, 50) == []


def test_a_fast_tier_inhibits_the_slower_ones_so_one_incident_pages_once() -> None:
    everywhere = {w: 0.05 for w in SPANS}  # 50x over every window
    fired = maths.firing_conditions(DEFAULT_BURN_WINDOWS, _windows(everywhere), 0.999, 50)
    assert [c.tier for c in fired] == ["1h", "6h", "1d", "3d"]
    assert fired[0].inhibited_by is None
    assert all(c.inhibited_by == "1h" for c in fired[1:])


def test_the_short_window_must_agree_so_a_recovered_incident_stops_paging() -> None:
    recovered = {w: 0.05 for w in SPANS} | {timedelta(minutes=5): 0.0}
    fired = maths.firing_conditions(DEFAULT_BURN_WINDOWS, _windows(recovered), 0.999, 50)
    assert "1h" not in [c.tier for c in fired]


def test_low_traffic_never_fires_on_a_handful_of_failures() -> None:
    few = {w: Counts(7, 10) for w in SPANS}  # 30 % errors but only 10 events
    assert maths.firing_conditions(DEFAULT_BURN_WINDOWS, few, 0.999, min_events=50) == []
    assert maths.firing_conditions(DEFAULT_BURN_WINDOWS, few, 0.999, min_events=10) != []


@pytest.mark.parametrize(("at", "unit", "start"), [
    (datetime(2028, 2, 29, 13, 5, tzinfo=UTC), "M", datetime(2028, 2, 1, tzinfo=UTC)),
    (datetime(2026, 11, 22, 9, tzinfo=UTC), "w", datetime(2026, 11, 16, tzinfo=UTC)),
    (datetime(2026, 8, 15, tzinfo=UTC), "Q", datetime(2026, 7, 1, tzinfo=UTC)),
    (datetime(2026, 8, 15, 23, 59, tzinfo=UTC), "d", datetime(2026, 8, 15, tzinfo=UTC)),
])
def test_calendar_windows_start_at_their_period(at: datetime, unit: str, start: datetime) -> None:
    assert maths.calendar_window_start(at, unit) == start


@pytest.mark.slow
def test_timeslices_count_good_slices_among_slices_with_traffic() -> None:
    slices = [Counts(99, 100), Counts(90, 100), Counts(0, 0), Counts(10, 10)]
    assert maths.timeslice_counts(slices, 0.95) == Counts(good=2, total=3)
