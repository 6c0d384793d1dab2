"""`paysignal simulate` end to end, through the CLI, on SQLite and PostgreSQL."""

import json

import pytest
from typer.testing import CliRunner

from paysignal.cli import app

REQUIRED = ["payments", "provider_charges", "duplicate_charges", "idempotent_replays",
            "conflicts_rejected", "in_progress_rejected", "unknown_outcomes", "unknown_resolved",
            "unresolved", "retries", "ledger_imbalance_minor", "outbox_pending", "elapsed_s"]


def simulate(db_url: str, *args: str) -> dict:
    result = CliRunner().invoke(app, ["simulate", "--database-url", db_url, "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["calm", "default", "provider-outage", "chaos"])
def test_every_profile_ends_with_no_duplicates_a_balanced_ledger_and_an_empty_outbox(
        db_url: str, profile: str) -> None:
    figures = simulate(db_url, "--payments", "150", "--seed", "7", "--profile", profile)
    assert set(REQUIRED) <= set(figures)
    assert figures["payments"] == 150
    assert figures["duplicate_charges"] == 0
    assert figures["ledger_imbalance_minor"] == 0
    assert figures["outbox_pending"] == 0
    assert figures["unknown_resolved"] + figures["unresolved"] <= figures["unknown_outcomes"]
    assert figures["final_states"].get("unknown", 0) == figures["unresolved"]
    if profile != "calm":
        assert figures["unknown_outcomes"] > 0 and figures["retries"] > 0
    assert figures["idempotent_replays"] > 0


@pytest.mark.slow
def test_clients_double_click_retry_concurrently_and_reuse_keys(db_url: str) -> None:
    figures = simulate(db_url, "--payments", "400", "--seed", "3")
    assert figures["idempotent_replays"] > 0
    assert figures["conflicts_rejected"] > 0
    assert figures["in_progress_rejected"] > 0
    assert figures["duplicate_charges"] == 0


@pytest.mark.slow
def test_same_seed_and_profile_give_identical_figures(db_url: str) -> None:
    a = simulate(db_url, "--payments", "120", "--seed", "11", "--profile", "chaos")
    b = simulate(db_url, "--payments", "120", "--seed", "11", "--profile", "chaos")
    c = simulate(db_url, "--payments", "120", "--seed", "12", "--profile", "chaos")
    for f in (a, b, c):
        f.pop("elapsed_s")
    assert a == b
    assert a != c


def test_without_json_it_prints_a_readable_summary(db_url: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--database-url", db_url, "--payments", "20"])
    assert result.exit_code == 0, result.output
    assert "duplicate_charges" in result.stdout and "customers charged twice" in result.stdout


def test_an_unknown_profile_is_a_clear_error(db_url: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--database-url", db_url, "--profile", "nope"])
    assert result.exit_code == 2 and "--profile: unknown profile 'nope'" in result.output


@pytest.mark.slow
def test_two_simulations_with_settlements_then_reconcile_scores_each_against_its_truth(
        db_url: str, tmp_path) -> None:
    """The second run's files settle only its own payments, and `reconcile --dir` grades the
    run against the directory's ground truth: every injected break, and nothing else."""
    runner = CliRunner()
    for n in range(2):
        settlements = tmp_path / f"s{n}"
        simulate(db_url, "--payments", "120", "--seed", "5", "--profile", "calm",
                 "--settlements", str(settlements), "--discrepancies", "8")
        result = runner.invoke(app, ["reconcile", "--dir", str(settlements),
                                     "--database-url", db_url])
        assert result.exit_code == 0, result.output
        text = " ".join(result.stdout.split())
        assert "8 discrepancies injected: every one found, no false breaks" in text, text
        assert "breaks opened" in text
