"""The finance break queue: lifecycle with audit, sign-off with override, CSV exports."""

import csv
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from engine.domain.money import CURRENCY_EXPONENTS, Money
from engine.settlement.breaks import (
    InvalidBreakTransitionError,
    SignOffRefusedError,
    list_breaks,
    move_break,
    show_break,
    sign_off,
)
from engine.settlement.kinds import BREAK_KINDS
from engine.settlement.run import reconcile_directory
from paysignal.cli import app
from paysignal.simulation.day import run_simulation
from paysignal.simulation.settlement_files import write_settlement_files


@pytest.fixture
def reconciled(db_engine: Engine, tmp_path: Path) -> Engine:
    sim = run_simulation(db_engine, payments=120, seed=4, profile="calm")
    assert sim.sandbox is not None
    write_settlement_files(sim.sandbox.books.entries(), tmp_path / "s", discrepancies=8, seed=4)
    reconcile_directory(db_engine, tmp_path / "s")
    return db_engine


@pytest.mark.slow
def test_a_break_moves_through_its_lifecycle_and_every_action_is_audited(reconciled: Engine) -> None:
    brk = list_breaks(reconciled, status="open", kind="amount_mismatch")[0]
    move_break(reconciled, brk["id"], "investigating", actor="fin-anna", note="asked provider",
               owner="fin-anna")
    done = move_break(reconciled, brk["id"], "resolved", actor="fin-anna",
                      note="provider corrected the amount")
    assert done["status"] == "resolved" and done["owner"] == "fin-anna"
    assert [(a["from_status"], a["to_status"], a["actor"]) for a in done["audit"]] == [
        ("open", "investigating", "fin-anna"), ("investigating", "resolved", "fin-anna")]
    with pytest.raises(InvalidBreakTransitionError):
        move_break(reconciled, brk["id"], "open", actor="x", note="reopen?")
    assert show_break(reconciled, brk["id"])["status"] == "resolved"
    with pytest.raises(DBAPIError, match="append-only"), reconciled.begin() as conn:
        conn.execute(text("DELETE FROM recon_break_audit"))


@pytest.mark.slow
def test_sign_off_with_open_breaks_needs_an_audited_override(reconciled: Engine) -> None:
    brk = list_breaks(reconciled, status="open")[0]
    with pytest.raises(SignOffRefusedError, match="open breaks"):
        sign_off(reconciled, brk["provider"], brk["settled_on"], actor="cfo")
    row = sign_off(reconciled, brk["provider"], brk["settled_on"], actor="cfo",
                   override="below materiality; tracked in FIN-12")
    assert row["signed_off_by"] == "cfo" and "FIN-12" in row["sign_off_override"]
    with pytest.raises(SignOffRefusedError, match="not been reconciled"):
        sign_off(reconciled, "stripe", brk["settled_on"].replace(year=2001), actor="cfo")


@pytest.mark.slow
def test_breaks_and_checkpoints_export_as_csv_and_parquet_from_the_cli(
        reconciled: Engine, db_url: str, tmp_path: Path) -> None:
    import pandas as pd

    runner = CliRunner()
    r = runner.invoke(app, ["breaks", "list", "--status", "open", "--export",
                            str(tmp_path / "breaks.csv"), "--database-url", db_url])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "breaks.csv").read_text())))
    assert len(rows) == len(list_breaks(reconciled, status="open")) and rows[0]["kind"]
    for row in rows:  # every amount with its currency, in minor and in major units
        for side, currency in (("expected", row["expected_currency"] or row["currency"]),
                               ("actual", row["currency"])):
            if row[f"{side}_minor"]:
                exponent = CURRENCY_EXPONENTS[currency]
                assert Decimal(row[f"{side}_major"]) == Decimal(row[f"{side}_minor"]).scaleb(
                    -exponent)
    r = runner.invoke(app, ["breaks", "checkpoints", "--export", str(tmp_path / "cp.csv"),
                            "--database-url", db_url])
    assert r.exit_code == 0, r.output
    days = list(csv.DictReader(io.StringIO((tmp_path / "cp.csv").read_text())))
    assert {"currency", "matched_minor", "matched_major", "break_minor"} <= set(days[0])
    assert len({(d["provider"], d["settled_on"], d["currency"]) for d in days}) == len(days)
    assert {d["currency"] for d in days} >= {"USD", "EUR", "JPY"}
    for what in ("list", "checkpoints"):
        target = tmp_path / f"{what}.parquet"
        r = runner.invoke(app, ["breaks", what, "--export", str(target), "--database-url", db_url])
        assert r.exit_code == 0, r.output
        frame = pd.read_parquet(target)
        if what == "list":
            assert len(frame) == len(list_breaks(reconciled))
            assert str(frame["expected_minor"].dtype) == "Int64"  # money never becomes float
            assert set(frame["kind"]) <= set(BREAK_KINDS)
        else:
            assert frame["matched_count"].sum() > 0
    refused = runner.invoke(app, ["breaks", "list", "--export", str(tmp_path / "x.xlsx"),
                                  "--database-url", db_url])
    assert refused.exit_code == 2 and "export" in refused.output and ".parquet" in refused.output
    assert not (tmp_path / "x.xlsx").exists()
    brk = rows[0]["id"]
    assert runner.invoke(app, ["breaks", "assign", brk, "--owner", "bob", "--actor", "bob",
                               "--database-url", db_url]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["breaks", "show", brk, "--json", "--database-url",
                                           db_url]).stdout)
    assert shown["status"] == "investigating" and shown["owner"] == "bob"
    assert shown["opened_at"].endswith("+00:00")  # timestamps carry their timezone
    human = runner.invoke(app, ["breaks", "show", brk, "--database-url", db_url])
    assert brk in human.stdout and "open → investigating" in human.stdout
    assert "expected → actual:" in human.stdout
    bad = runner.invoke(app, ["breaks", "resolve", "brk_nope", "--actor", "a", "--note", "n",
                              "--database-url", db_url])
    assert bad.exit_code == 2 and "no break" in bad.output


@pytest.mark.slow
def test_a_second_sign_off_supersedes_the_first_and_both_stay_visible(
        reconciled: Engine, db_url: str, wide_terminal: None) -> None:
    brk = list_breaks(reconciled, status="open")[0]
    day = brk["settled_on"]
    sign_off(reconciled, brk["provider"], day, actor="ana", override="accepted, FIN-78")
    again = sign_off(reconciled, brk["provider"], day, actor="bo", override="again")
    assert again["signed_off_by"] == "bo"
    assert [(s["actor"], s["override"]) for s in again["sign_offs"]] == [
        ("ana", "accepted, FIN-78"), ("bo", "again")]
    assert all(s["open_breaks"] > 0 for s in again["sign_offs"])
    listed = json.loads(CliRunner().invoke(app, ["breaks", "checkpoints", "--json",
                                                 "--database-url", db_url]).stdout)
    ours = next(c for c in listed if c["provider"] == brk["provider"]
                and c["settled_on"] == str(day))
    assert [s["actor"] for s in ours["sign_offs"]] == ["ana", "bo"]
    table = CliRunner().invoke(app, ["breaks", "checkpoints", "--database-url", db_url],
                               env={"COLUMNS": "160"})
    assert "bo " in table.stdout and "(supersedes 1); override: again" in " ".join(
        table.stdout.split())
    with pytest.raises(DBAPIError, match="append-only"), reconciled.begin() as conn:
        conn.execute(text("UPDATE recon_sign_offs SET actor = 'mallory'"))


@pytest.mark.slow
def test_closing_a_closed_break_again_is_refused_with_a_clear_message(reconciled: Engine) -> None:
    brk = list_breaks(reconciled, status="open")[0]
    move_break(reconciled, brk["id"], "resolved", actor="ana", note="fixed")
    for again in ("resolved", "written_off"):
        with pytest.raises(InvalidBreakTransitionError, match="already resolved|not allowed"):
            move_break(reconciled, brk["id"], again, actor="ana", note="twice")
    audit = show_break(reconciled, brk["id"])["audit"]
    assert [(a["from_status"], a["to_status"]) for a in audit] == [("open", "resolved")]



@pytest.mark.slow
def test_breaks_list_prints_whole_ids_and_amounts_with_currencies_at_80_columns(
        reconciled: Engine, db_url: str, cli_width: Callable[[int], None]) -> None:
    cli_width(80)
    listed = CliRunner().invoke(app, ["breaks", "list", "--database-url", db_url])
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    for brk in list_breaks(reconciled):
        assert brk["id"] in listed.stdout  # whole, so it can be pasted into assign/resolve
    mismatch = next(b for b in list_breaks(reconciled) if b["kind"] == "currency_mismatch")
    assert mismatch["expected_currency"] != mismatch["currency"]  # both currencies are kept
    shown = CliRunner().invoke(app, ["breaks", "show", mismatch["id"], "--database-url", db_url])
    expected = Money(mismatch["expected_minor"], mismatch["expected_currency"]).display()
    actual = Money(mismatch["actual_minor"], mismatch["currency"]).display()
    assert f"expected → actual: {expected} → {actual}" in shown.stdout
