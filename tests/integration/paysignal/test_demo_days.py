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
