"""A simulated day end to end: traffic with an incident, settlement files with injected
discrepancies, reconciliation, SLO evaluation and alert routing. `paysignal demo` runs it; the
dashboard's tests seed their data with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from alerts.model import Alert
from engine.providers.sandbox import SandboxServer
from paysignal.simulation.settlement_files import Score

Step = Callable[[str], None]
ROUTING_SETTLE = timedelta(minutes=5)
CLOSE_LOOK = timedelta(hours=2)  # the fault profiles' incidents happen in the last hour


def evaluation_moments(end: datetime, duration: timedelta) -> list[datetime]:
    """When the demo evaluates SLOs and alerts during a day that ends at `end`: hourly, then
    every minute over the last two hours (as the worker does: alerts start within a minute of
    the burn that raises them)."""
    start = end - duration
    close = max(start, end - CLOSE_LOOK)
    moments = [start + timedelta(hours=h) for h in range(1, int((close - start) / timedelta(hours=1)) + 1)]
    moments += [close + timedelta(minutes=m)
                for m in range(1, int((end - close) / timedelta(minutes=1)))]
    return [m for m in moments if m < end]


@dataclass
class DemoDay:
    simulation: dict[str, Any]
    ground_truth: list[dict[str, str]]
    reconciliation: dict[str, Any]
    slos_evaluated: int
    alerts_firing: list[str]
    notifications: int
    settlement_dir: Path
    score: Score
    pages: list[tuple[str, str]] = field(default_factory=list)
    """(alert, provider or SLO) of every page-severity alert that fired during the day."""
    timings: dict[str, float] = field(default_factory=dict)
    sandbox_server: SandboxServer | None = None
    """Over loopback: the sandbox the day ran against, still serving (the caller stops it)."""


def run_day(engine: Engine, workdir: Path, *, payments: int = 2000, seed: int = 42,
            profile: str = "incident", duration: timedelta = timedelta(hours=24),
            discrepancies: int = 12, routing: Path | None = None,
            step: Step | None = None, end: datetime | None = None,
            over_loopback: bool = False, credentials: dict[str, str] | None = None,
            sandbox_port: int = 0) -> DemoDay:
    """Simulate the day ending at `end` (default: a few minutes ago), settle and reconcile it,
    evaluate SLOs and route alerts as of then. `over_loopback`: the connectors reach the
    sandbox over HTTP on a loopback port, left serving in the result."""
    import time

    from alerts.detectors import detect
    from alerts.pipeline import evaluate_alerts
    from alerts.receivers import deliver_pending
    from alerts.routing import load_config, record_routing_in_use
    from engine.settlement.run import reconcile_directory
    from paysignal.simulation.day import run_simulation
    from paysignal.simulation.settlement_files import (
        in_flight_payment_ids,
        score,
        write_settlement_files,
    )
    from slo.backends import make_backend
    from slo.evaluate import evaluate_all
    from slo.spec import load_definitions

    say = step or (lambda _: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()

    # The day ends a few minutes ago: alert routing holds a new group's first notification
    # for group_wait, so a second evaluation at "now" sends it.
    if end is None:
        end = datetime.now(UTC).replace(microsecond=0) - ROUTING_SETTLE
    now = end + ROUTING_SETTLE
    say(f"simulating {payments:,} payments over {duration} ({profile} profile, seed {seed})")
    sim = run_simulation(engine, payments=payments, seed=seed, profile=profile,
                         duration=duration, end=end, over_loopback=over_loopback,
                         credentials=credentials, sandbox_port=sandbox_port)
    lap("simulate")
    settlement_dir = workdir / "settlements"
    settlement_dir.mkdir(parents=True, exist_ok=True)
    for old in settlement_dir.iterdir():
        old.unlink()
    say(f"writing settlement files with {discrepancies} injected discrepancies")
    assert sim.sandbox is not None
    truth = write_settlement_files(sim.sandbox.books.entries(), settlement_dir,
                                   discrepancies=discrepancies, seed=seed,
                                   payment_ids=sim.payment_ids,
                                   unnotified_disputes=sim.sandbox.unnotified_disputes)
    lap("settlement_files")
    say("evaluating SLOs and alerts along the day")
    config = load_config(routing)
    record_routing_in_use(engine, routing, "demo")
    backend = make_backend("database", engine=engine)
    slos = load_definitions()
    raised: list[Alert] = []
    notifications = 0
    for at in evaluation_moments(end, duration):
        # As the worker would have: SLOs and alerts every few minutes while the day ran
        evaluate_all(engine, backend, slos, at)
        during = evaluate_alerts(engine, config, detect(engine, at), at)
        raised += during.firing
        notifications += during.notifications
    lap("slo_timeline")
    say("reconciling")
    report = reconcile_directory(engine, settlement_dir)
    lap("reconcile")
    say("evaluating SLOs")
    results = evaluate_all(engine, backend, slos, end)
    lap("slo")
    say("evaluating and routing alerts")
    alerts = evaluate_alerts(engine, config, detect(engine, end), end)
    alerts_after = evaluate_alerts(engine, config, detect(engine, end), now)
    deliver_pending(engine, config, now=now)
    lap("alerts")
    pages = sorted({(a.name, a.labels.get("provider") or a.labels.get("slo", ""))
                    for a in raised + alerts.firing if a.labels.get("severity") == "page"})
    return DemoDay(simulation=sim.figures, ground_truth=truth, reconciliation=report.as_json(),
                   slos_evaluated=len(results),
                   alerts_firing=sorted({a.name for a in alerts.firing}),
                   notifications=notifications + alerts.notifications
                   + alerts_after.notifications, pages=pages,
                   settlement_dir=settlement_dir,
                   score=score(truth, report, in_flight_payment_ids(engine)), timings=timings,
                   sandbox_server=sim.sandbox_server)
