"""Consecutive demo days on one database: each day's reconciliation raises exactly the
discrepancies injected into that day's settlement files, no more and no fewer."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from engine.storage.tables import recon_breaks
from paysignal.simulation.demo_day import run_day


def _open_breaks(engine: Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        return {(r.kind, r.provider, r.provider_reference) for r in conn.execute(
            select(recon_breaks).where(recon_breaks.c.status.in_(("open", "investigating"))))}


@pytest.mark.slow
def test_three_consecutive_days_and_a_rerun_raise_exactly_the_injected_breaks(
        db_engine: Engine, tmp_path: Path) -> None:
    last = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    injected: set[tuple[str, str, str]] = set()
    ends = [last - timedelta(days=2), last - timedelta(days=1), last, last + timedelta(minutes=1)]
    for n, end in enumerate(ends):  # the last one repeats the third day, as a second demo run
        day = run_day(db_engine, tmp_path / f"day{n}", payments=200, seed=42, end=end,
                      discrepancies=12, profile="incident")
        truth = {(t["kind"], t["provider"], t["provider_reference"]) for t in day.ground_truth}
        assert len(truth) == 12
        assert day.score.exact, f"day {n}: {day.score.describe()}"
        opened = {(b["kind"], b["provider"], b["provider_reference"])
                  for b in day.reconciliation["opened"]}
        assert opened == truth
        injected |= truth
        assert _open_breaks(db_engine) == injected, f"after day {n}"


@pytest.mark.slow
def test_on_the_demo_day_only_the_incident_provider_pages(seeded_engine: Engine) -> None:
    """The seeded demo day (incident profile) evaluated SLOs and alerts along the day, as the
    worker would: adyen's incident paged; the healthy providers and the unknown outcomes,
    all resolved by asking the provider within seconds, paged for nothing."""
    import json

    from engine.storage.tables import alert_states, slo_evaluations

    with seeded_engine.connect() as conn:
        slo_alerts = {(r.name, json.loads(r.labels).get("slo", "")) for r in conn.execute(
            select(alert_states).where(alert_states.c.name.like("SLOBurnRate%")))}
        latest = {r.slo: json.loads(r.result) for r in conn.execute(
            select(slo_evaluations).order_by(slo_evaluations.c.id))}
    assert ("SLOBurnRatePage", "authorization-technical-success-adyen") in slo_alerts
    assert {slo for _, slo in slo_alerts} == {"authorization-technical-success-adyen"}
    unknown = latest["unknown-outcome-resolution"]
    assert unknown["events"]["total"] > 0 and unknown["sli"] == 1.0
    # the providers' notifications flow through the day, processed as soon as they arrive
    fresh = latest["webhook-processing-freshness"]
    assert fresh["events"]["total"] > 0 and fresh["sli"] >= fresh["objective"], fresh
