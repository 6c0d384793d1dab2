"""A simulated 20-minute provider incident makes the page condition true within 5 minutes of
simulated time; a calm run over the same period makes no condition true."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.storage import db
from paysignal.simulation.day import run_simulation
from slo.backends import make_backend
from slo.evaluate import evaluate_all
from slo.spec import load_definitions

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
INCIDENT_START = END - timedelta(hours=1)  # the "incident" profile's adyen window


def _evaluations(template: Path, target: Path, profile: str, at: datetime) -> list:
    target.write_bytes(template.read_bytes())
    engine = db.make_engine(f"sqlite:///{target}")
    run_simulation(engine, payments=900, seed=11, profile=profile,
                   duration=timedelta(hours=3), end=END)
    return evaluate_all(engine, make_backend("database", engine=engine), load_definitions(), at)


@pytest.mark.slow
def test_the_incident_pages_within_five_minutes_and_a_calm_run_stays_quiet(
        sqlite_template: Path, tmp_path: Path) -> None:
    at = INCIDENT_START + timedelta(minutes=5)
    incident = {r.slo.name: r for r in _evaluations(sqlite_template, tmp_path / "a.sqlite",
                                                         "incident", at)}
    adyen = incident["authorization-technical-success-adyen"]
    pages = [c for c in adyen.conditions if c.severity == "page" and not c.inhibited_by]
    assert pages and pages[0].tier in ("1h", "6h"), adyen.as_json()
    assert adyen.policy and "adyen" in adyen.policy[0]
    for provider in ("stripe", "paypal"):  # the healthy providers do not page
        assert incident[f"authorization-technical-success-{provider}"].conditions == []
    before = INCIDENT_START - timedelta(minutes=1)
    calm = _evaluations(sqlite_template, tmp_path / "b.sqlite", "calm", at)
    assert all(r.conditions == [] for r in calm), [r.as_json() for r in calm if r.conditions]
    early = _evaluations(sqlite_template, tmp_path / "c.sqlite", "incident", before)
    assert all(r.conditions == [] for r in early)
