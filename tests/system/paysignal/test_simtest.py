"""`paysignal sim-test`: seeded workloads under faults keep every invariant, a seed replays
exactly, and a planted bug is caught with the failing seed and invariant named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.outbox.relay import IdempotentConsumer
from paysignal.cli.simtest import sim_test
from paysignal.simulation.simtest import Workload, run_seed

SMALL = Workload(payments=30, crashes=1, flaky_payments=10, discrepancies=8)


def cli(*args: str):
    import typer

    app = typer.Typer()
    app.command()(sim_test)
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("profile", ["default", "chaos"])
def test_seeds_under_faults_keep_every_invariant(profile: str) -> None:
    result = cli("--seeds", "3", "--from-seed", "11", "--profile", profile, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["seeds"] == 3 and report["violations"] == []
    assert report["first_failing_seed"] is None


def test_a_seed_replays_exactly(sqlite_template: Path) -> None:
    first = run_seed(5, "chaos", sqlite_template, SMALL)
    again = run_seed(5, "chaos", sqlite_template, SMALL)
    assert first.figures == again.figures
    assert first.figures["dropped_statements"] > 0 and first.figures["relay_crashes"] == 1
    assert first.figures["notifications"].get("duplicate", 0) > 0  # duplicates were delivered


def test_a_consumer_that_forgets_to_dedupe_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def consume_without_dedupe(self, event):
        with self.engine.begin() as conn:
            self.handler(conn, event)
        return True

    monkeypatch.setattr(IdempotentConsumer, "consume", consume_without_dedupe)
    result = cli("--seeds", "3", "--from-seed", "7", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["seeds"] == 1  # it stops at the first failing seed
    assert report["first_failing_seed"] == 7
    assert report["first_failing_invariant"] == "outbox_exactly_once"
    assert report["reproduce"] == "paysignal sim-test --seeds 1 --from-seed 7 --profile default"


def test_an_unknown_profile_is_named() -> None:
    result = cli("--profile", "storm")
    assert result.exit_code == 2 and "unknown profile 'storm'" in result.output


@pytest.mark.slow
def test_two_hundred_seeds_across_the_profiles_keep_every_invariant() -> None:
    """40 seeds per fault profile (a lighter workload: a process crash in every tenth seed;
    the crash tests kill one at every recovery point), two processes side by side."""
    from engine.providers.sandbox.faults import PROFILES
    from paysignal.simulation.simtest import run_seeds

    light = Workload(payments=20, crashes=0, flaky_payments=6, discrepancies=4)
    crashing = Workload(payments=20, crashes=1, flaky_payments=6, discrepancies=4)
    ran, violations = 0, []
    for p, profile in enumerate(PROFILES):
        first = 1000 + 100 * p
        for workload, seeds in ((light, [s for s in range(first, first + 40) if s % 10]),
                                (crashing, [s for s in range(first, first + 40) if not s % 10])):
            results = run_seeds(seeds, profile, workload, workers=2)
            ran += len(results)
            violations += [(profile, r.seed, v.invariant, v.detail)
                           for r in results for v in r.violations]
    assert ran == 200 and len(PROFILES) == 5
    assert violations == []


FAKETIME_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def test_seeds_run_a_minute_before_midnight_keep_every_invariant() -> None:
    """The suite must be green at any hour: seeds started just before midnight UTC (the clock
    moved ahead with libfaketime, so files written now are older than now, as they would be)
    must not book a day's traffic on the next one."""
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    before_midnight = now.replace(hour=23, minute=59, second=10, microsecond=0)
    if before_midnight < now:
        before_midnight += timedelta(days=1)
    offset = int((before_midnight - now).total_seconds())
    program = (
        "from paysignal.simulation.simtest import Workload, run_seeds\n"
        "light = Workload(payments=20, crashes=0, flaky_payments=6, discrepancies=4)\n"
        "results = run_seeds(list(range(1401, 1407)), 'chaos', light, workers=2)\n"
        "print(sum(len(r.violations) for r in results), len(results))\n")
    env = {**os.environ, "FAKETIME": f"+{offset}", "LD_PRELOAD": str(FAKETIME_LIBRARY)}
    run = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-2:] == ["0", "6"], run.stdout
