"""Evaluation on the database backend (SQLite and PostgreSQL): the counts equal a brute-force
count of the tables, re-evaluating never double counts, a window starts with its whole
budget, and the CLI's JSON and errors."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from engine.storage.tables import provider_attempts, slo_evaluations
from paysignal.cli.slo import app
from paysignal.simulation.day import run_simulation
from slo.backends import make_backend
from slo.evaluate import evaluate_all
from slo.spec import DEFINITIONS_DIR, load_definitions


@pytest.mark.slow
def test_counts_equal_the_tables_and_re_evaluation_never_double_counts(db_engine: Engine) -> None:
    run_simulation(db_engine, payments=90, seed=5, profile="provider-outage")
    with db_engine.connect() as conn:
        last = conn.execute(select(func.max(provider_attempts.c.at))).scalar_one()
    at = (last if last.tzinfo else last.replace(tzinfo=UTC)) + timedelta(minutes=2)
    slos = [s for s in load_definitions() if s.name == "authorization-technical-success-adyen"]
    backend = make_backend("database", engine=db_engine)
    first = evaluate_all(db_engine, backend, slos, at)[0]
    again = evaluate_all(db_engine, backend, slos, at)[0]
    attempts = provider_attempts.c
    with db_engine.connect() as conn:
        base = select(func.count()).where(
            attempts.provider == "adyen", attempts.operation == "authorize",
            attempts.at >= at - timedelta(days=30), attempts.at < at)
        total = conn.execute(base).scalar_one()
        bad = conn.execute(base.where(attempts.outcome.in_(("retryable_error", "unknown")))
                           ).scalar_one()
        stored = conn.execute(select(func.count()).select_from(slo_evaluations)).scalar_one()
    assert total > 0 and bad > 0  # the outage profile fails some adyen authorizations
    assert (first.counts.total, first.counts.bad) == (total, bad)
    assert (again.counts.total, again.counts.bad) == (total, bad)
    assert stored == 2
    assert first.as_json()["budget_remaining"] == max(0.0, round(1 - bad / (0.005 * total), 6))


def _attempt(at: datetime, outcome: str) -> dict[str, object]:
    return {"payment_id": "pay_x", "provider": "stripe", "operation": "authorize",
            "attempt": 1, "request_id": f"r-{at.timestamp()}", "outcome": outcome,
            "raw_status": "x", "duration_ms": 100, "at": at}


def test_a_calendar_window_starts_with_its_whole_budget(db_engine: Engine,
                                                        tmp_path: Path) -> None:
    text = (DEFINITIONS_DIR / "authorization-technical-success.yaml").read_text().split("---")[0]
    (tmp_path / "daily.yaml").write_text(
        text.replace("duration: 30d\n      isRolling: true",
                     "duration: 1d\n      calendar: {startTime: '2026-01-01 00:00:00', "
                     "timeZone: UTC}\n      isRolling: false"))
    slos = load_definitions(tmp_path)
    assert slos[0].window.calendar_unit == "d"
    midnight = datetime(2026, 11, 20, tzinfo=UTC)
    with db_engine.begin() as conn:
        conn.execute(insert(provider_attempts), [
            _attempt(midnight - timedelta(seconds=30), "unknown"),  # yesterday: must not leak
            _attempt(midnight + timedelta(seconds=30), "succeeded")])
    backend = make_backend("database", engine=db_engine)
    at_start = evaluate_all(db_engine, backend, slos, midnight, store=False)[0]
    assert at_start.counts.total == 0 and at_start.budget.remaining == 1.0
    assert at_start.burn_rates["1h"] == 0.0
    later = evaluate_all(db_engine, backend, slos, midnight + timedelta(minutes=5), store=False)[0]
    assert (later.counts.good, later.counts.total) == (1, 1)


def test_the_cli_prints_one_object_per_slo_and_refuses_bad_input(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--json", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert {r["name"] for r in rows} == {s.name for s in load_definitions()}
    for r in rows:
        assert {"name", "sli", "objective", "budget_remaining", "burn_rates",
                "conditions"} <= set(r)
        assert 0 <= r["budget_remaining"] <= 1 and "1h" in r["burn_rates"]
    bad_at = runner.invoke(app, ["evaluate", "--at", "yesterday", "--database-url", db_url])
    assert bad_at.exit_code == 2 and "--at" in bad_at.output
    bad_backend = runner.invoke(app, ["evaluate", "--backend", "graphite", "--database-url",
                                      db_url])
    assert bad_backend.exit_code == 2 and "not registered" in bad_backend.output
    no_url = runner.invoke(app, ["evaluate", "--backend", "prometheus", "--database-url",
                                 db_url], env={"PAYSIGNAL_PROMETHEUS_URL": ""})
    assert no_url.exit_code == 2 and "--prometheus-url" in no_url.output
    for width in ("80", "200"):  # SLO names are never cut into pieces, however narrow
        shown = runner.invoke(app, ["evaluate", "--database-url", db_url],
                              env={"COLUMNS": width})
        assert all(s.name in shown.stdout for s in load_definitions()), shown.stdout
        assert "no data" in shown.stdout  # an SLO without events says so, not 100 %


@pytest.mark.slow
@pytest.mark.parametrize("command", [["slo", "list"], ["slo", "--help"]])
def test_the_slo_commands_are_part_of_paysignal(command: list[str]) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "paysignal", *command], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "reconciliation-completeness" in result.stdout or "evaluate" in result.stdout


def test_an_exhausted_budget_leaves_a_policy_note_not_a_toggle_change(db_engine: Engine) -> None:
    from engine.payments.toggles import audit_trail, policy_notes

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with db_engine.begin() as conn:  # 40 % of stripe's authorizations failed technically
        conn.execute(insert(provider_attempts), [
            _attempt(now - timedelta(minutes=i), "retryable_error" if i % 5 < 2 else "succeeded")
            for i in range(1, 101)])
    slos = [s for s in load_definitions() if s.name == "authorization-technical-success-stripe"]
    backend = make_backend("database", engine=db_engine)
    result = evaluate_all(db_engine, backend, slos, now)[0]
    assert result.budget.remaining == 0.0
    assert result.policy == ["error budget exhausted: freeze risky rollouts for provider "
                             "stripe until “Authorization technical success (stripe)” is "
                             "met again"]
    evaluate_all(db_engine, backend, slos, now)  # unchanged policy: no second note
    notes = policy_notes(db_engine)
    assert [(n["provider"], n["slo"], n["note"]) for n in notes] == [
        ("stripe", "authorization-technical-success-stripe", result.policy[0])]
    assert audit_trail(db_engine) == []  # the toggle did not change, so no "enforce -> enforce"


def test_policy_texts_name_the_action_and_the_slo_in_plain_words() -> None:
    from slo.evaluate import _policy_action

    by_name = {s.name: s for s in load_definitions()}
    assert _policy_action(by_name["reconciliation-completeness"]) == \
        "put clearing reconciliation breaks ahead of new work"
    assert _policy_action(by_name["unknown-outcome-resolution"]) == \
        "freeze risky engine releases"


@pytest.mark.slow
def test_the_review_report_in_markdown_html_and_csv(db_engine: Engine, db_url: str,
                                                     tmp_path: Path) -> None:
    import base64
    import csv
    import io
    import re

    run_simulation(db_engine, payments=60, seed=8, profile="provider-outage")
    runner = CliRunner()
    md = runner.invoke(app, ["report", "--period", "7d", "--database-url", db_url])
    assert md.exit_code == 0, md.output
    assert md.stdout.index("## Payments") < md.stdout.index("## Finance") < md.stdout.index(
        "### Fees, disputes and payout lag")
    assert "authorization-technical-success-adyen" in md.stdout
    # finance's section: each provider's fees as the ledger holds them, per currency
    from engine.domain.money import display_amounts
    from engine.storage.tables import journal_entries, journal_transactions

    with db_engine.connect() as conn:
        fees = conn.execute(select(journal_transactions.c.currency,
                                   func.sum(journal_entries.c.amount_minor))
                            .join(journal_transactions,
                                  journal_transactions.c.id == journal_entries.c.transaction_id)
                            .where(journal_entries.c.account == "provider_fees:stripe",
                                   journal_entries.c.side == "debit")
                            .group_by(journal_transactions.c.currency)).all()
    stripe_row = next(line for line in md.stdout.splitlines() if line.startswith("| stripe |"))
    assert display_amounts({c: int(t) for c, t in fees}) in stripe_row
    page = tmp_path / "review.html"
    result = runner.invoke(app, ["report", "--format", "html", "--out", str(page),
                                 "--database-url", db_url])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    charts = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert len(charts) == len(load_definitions())
    assert base64.b64decode(charts[0]).startswith(b"\x89PNG")
    # the HTML report says what the Markdown one says, SLO by SLO
    for label in ("Worst days:", "Most bad events:", "Alerts fired:"):
        assert text.count(label) == len(load_definitions()) == md.stdout.count(label)
    assert "attained no data over 0 events" in text  # no webhooks in this traffic
    from PIL import Image

    chart = Image.open(io.BytesIO(base64.b64decode(charts[0]))).convert("L")
    under_the_plot = [chart.getpixel((x, y)) for x in range(40, chart.width)
                      for y in range(chart.height - 15, chart.height)]
    assert min(v for v in under_the_plot if isinstance(v, int | float)) < 128  # dates along the time axis
    table = runner.invoke(app, ["report", "--format", "csv", "--database-url", db_url])
    rows = {r["slo"]: r for r in csv.DictReader(io.StringIO(table.stdout))}
    adyen = rows["authorization-technical-success-adyen"]
    with db_engine.connect() as conn:
        total = conn.execute(select(func.count()).where(
            provider_attempts.c.provider == "adyen",
            provider_attempts.c.operation == "authorize")).scalar_one()
    assert int(adyen["total"]) == total
    bad = runner.invoke(app, ["report", "--period", "soon", "--database-url", db_url])
    assert bad.exit_code == 2 and "--period" in bad.output


def test_two_evaluators_rolling_up_at_once_never_count_an_event_twice(
        db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.read_models import sli_events
    from slo.backends import database

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with db_engine.begin() as conn:
        conn.execute(insert(provider_attempts),
                     [_attempt(now - timedelta(minutes=i), "succeeded") for i in range(1, 31)])
    slos = [s for s in load_definitions() if s.name == "authorization-technical-success-stripe"]
    real = sli_events.new_events
    calls: list[tuple[object, ...]] = []

    def interleaved(*args: object) -> object:
        calls.append(args)
        result = real(*args)  # type: ignore[arg-type]
        if len(calls) == 1:  # the other evaluator rolls up in between our read and our write
            database.DatabaseBackend(db_engine).prepare(slos, now)
        return result

    monkeypatch.setattr(database, "new_events", interleaved)
    with pytest.raises(database.RollupRaceError):
        database.DatabaseBackend(db_engine).prepare(slos, now)
    monkeypatch.setattr(database, "new_events", real)
    counted = database.DatabaseBackend(db_engine).counts(slos[0], now - timedelta(days=1), now)
    assert counted.total == 30  # not 60


def test_the_report_counts_bad_events_by_provider_across_read_batches(
        db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.read_models import sli_events
    from slo.report import build_report

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with db_engine.begin() as conn:
        conn.execute(insert(provider_attempts), [
            _attempt(now - timedelta(minutes=i), "unknown") for i in range(1, 8)])
    monkeypatch.setattr(sli_events, "BATCH", 2)  # the events arrive in four reads
    slos = [s for s in load_definitions() if s.name == "authorization-technical-success-stripe"]
    report = build_report(db_engine, make_backend("database", engine=db_engine), slos,
                          timedelta(days=1), now)[0]
    assert report.bad_by_provider == [("stripe", 7)]
    assert report.counts.total == 7
