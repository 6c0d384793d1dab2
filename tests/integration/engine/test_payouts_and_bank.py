"""The money loop's last steps: each payout is the net of the lines it pays out, and arrives at the
bank. Hand-written reports and a hand-written camt.053 statement (tests/data/settlement)."""

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from engine.domain.settlement_lines import FileRejectedError
from engine.settlement.bank import import_statement, match_bank, parse_bank_csv, parse_camt053
from engine.settlement.breaks import list_breaks
from engine.settlement.payouts import list_payouts
from engine.settlement.run import reconcile_directory
from engine.storage.tables import bank_credits

EXAMPLES = Path(__file__).parents[2] / "data" / "settlement"
REPORTS = ("Itemized_balance_change_from_activity_2026-03-02_to_2026-03-03_UTC.csv",
           "settlement_detail_report_batch_42.csv", "STL-20260302.01.009.CSV")
STATEMENT = "camt053_2026-03-09.xml"


def drop(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


def money_loop_breaks(engine: Engine) -> set[tuple[str, str, str, int | None, int | None]]:
    return {(str(b["kind"]), str(b["provider"]), str(b["provider_reference"]),
             b["expected_minor"], b["actual_minor"])
            for b in list_breaks(engine, status="open")
            if b["kind"] in ("payout_lines_mismatch", "payout_missing", "payout_amount_mismatch",
                             "bank_credit_unmatched")}


def test_a_statement_with_some_payouts_and_not_others_yields_exactly_their_breaks(
        db_engine: Engine, tmp_path: Path) -> None:
    report = reconcile_directory(db_engine, drop(tmp_path, *REPORTS, STATEMENT))
    assert money_loop_breaks(db_engine) == {
        # Adyen's batch 42 arrived 0.31 short (matched by its reference in the remittance info)
        ("payout_amount_mismatch", "adyen", "batch 42", 4931, 4900),
        # PayPal's USD withdrawal never arrived, and the statement runs to 9 March
        ("payout_missing", "paypal", "8WD33333DD444555F", 3241, None),
        # the customer's transfer is no payout
        ("bank_credit_unmatched", "bank", "ACMEBANK-0304-09", None, 12000),
    }
    payouts = {(p["provider"], p["reference"], p["currency"]): p for p in list_payouts(db_engine)}
    assert set(payouts) == {("stripe", "po_9Z", "EUR"), ("adyen", "batch 42", "EUR"),
                            ("paypal", "8WD33333DD444555F", "USD")}
    stripe = payouts[("stripe", "po_9Z", "EUR")]
    # its charge, refund, dispute and fee lines (automatic_payout_id po_9Z)
    assert (stripe["amount_minor"], stripe["lines_net_minor"], stripe["line_count"]) == (1430,
                                                                                        1430, 4)
    assert (stripe["status"], str(stripe["arrived_on"]), stripe["breaks"]) == (
        "arrived", "2026-03-03", [])
    assert payouts[("adyen", "batch 42", "EUR")]["breaks"] == ["payout_amount_mismatch"]
    assert payouts[("paypal", "8WD33333DD444555F", "USD")]["status"] == "in_transit"
    assert report.bank is not None and report.bank.matched == 2
    [statement] = report.statements
    assert (statement.credits, statement.debits_skipped, statement.pending_skipped) == (3, 1, 1)


def test_a_payout_that_is_not_the_net_of_its_lines_is_a_break(db_engine: Engine,
                                                              tmp_path: Path) -> None:
    folder = drop(tmp_path)
    adyen = (EXAMPLES / REPORTS[1]).read_text().replace(
        "MerchantPayout,\"TX42XT batch 42, AcmeEU\",EUR,,,,EUR,49.31,,",
        "MerchantPayout,\"TX42XT batch 42, AcmeEU\",EUR,,,,EUR,45.00,,")
    (folder / REPORTS[1]).write_text(adyen)
    reconcile_directory(db_engine, folder)
    assert money_loop_breaks(db_engine) == {
        ("payout_lines_mismatch", "adyen", "batch 42", 4931, 4500)}


def test_a_late_statement_closes_the_missing_payout_with_an_audit_entry(
        db_engine: Engine, tmp_path: Path) -> None:
    folder = drop(tmp_path, *REPORTS, STATEMENT)
    reconcile_directory(db_engine, folder)
    (folder / "bank-usd-2026-03.csv").write_text(
        "booking_date,amount,currency,reference,counterparty,entry_id,account\n"
        "2026-03-04,32.41,USD,PAYPAL WITHDRAWAL 8WD33333DD444555F,PayPal Europe,U-1,US-OPS-1\n"
        "2026-03-05,-5.00,USD,monthly fee,,U-2,US-OPS-1\n")
    reconcile_directory(db_engine, folder)
    assert ("payout_missing", "paypal", "8WD33333DD444555F", 3241, None) not in \
        money_loop_breaks(db_engine)
    [closed] = [b for b in list_breaks(db_engine, status="resolved")
                if b["kind"] == "payout_missing"]
    from engine.settlement.breaks import show_break

    assert "no longer found" in show_break(db_engine, str(closed["id"]))["audit"][-1]["note"]


def test_statements_are_imported_once_and_overlapping_entries_never_double(
        db_engine: Engine) -> None:
    data = (EXAMPLES / STATEMENT).read_bytes()
    first = import_statement(db_engine, data, STATEMENT)
    assert first.credits == 3
    assert import_statement(db_engine, data, "camt053_copy.xml").already_imported
    overlapping = data.replace(b"ACMEBANK-20260309-0001", b"ACMEBANK-20260309-0002")
    again = import_statement(db_engine, overlapping, "camt053_2026-03-09_v2.xml")
    assert (again.credits, again.duplicate_credits) == (0, 3)
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(bank_credits)).scalar_one() == 3
    assert match_bank(db_engine).matched == 0  # no payouts yet: nothing to match


@pytest.mark.parametrize(("data", "reason"), [
    (b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;&a;'>]>"
     b"<d>&b;</d>", "not a readable XML document"),
    (b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><d>&x;</d>",
     "not a readable XML document"),
    (b"<Document><Other/></Document>", "no BkToCstmrStmt"),
    (b"not xml at all", "not a readable XML document"),
])
def test_a_hostile_or_foreign_xml_file_is_rejected_whole(data: bytes, reason: str) -> None:
    with pytest.raises(FileRejectedError, match=reason):
        parse_camt053(data, "camt053_evil.xml")


def test_bad_entries_are_row_errors_and_the_rest_is_read() -> None:
    statement = parse_bank_csv(
        b"booking_date,amount,currency,reference\n"
        b"2026-03-04,10.00,EUR,ok\n2026-03-04,1.005,EUR,too precise\n"
        b"04/03/2026,1.00,EUR,bad date\n2026-03-04,1.00,XXX,bad currency\n", "bank-x.csv")
    assert [c.amount_minor for c in statement.credits] == [1000]
    assert [(e.line_no, e.reason.split(":")[0]) for e in statement.errors] == [
        (3, "amount"), (4, "booking_date"), (5, "currency")]
    camt = (EXAMPLES / STATEMENT).read_bytes().replace(b'<Amt Ccy="EUR">14.30</Amt>',
                                                       b'<Amt Ccy="EUR">14.305</Amt>')
    parsed = parse_camt053(camt, STATEMENT)
    assert len(parsed.credits) == 2 and "more decimals than EUR allows" in parsed.errors[0].reason


def test_finance_lists_payouts_and_imports_statements_from_the_cli(
        db_engine: Engine, db_url: str, tmp_path: Path, wide_terminal: None) -> None:
    import csv
    import io
    import json

    from typer.testing import CliRunner

    from paysignal.cli import app

    reconcile_directory(db_engine, drop(tmp_path, *REPORTS))
    runner = CliRunner()
    imported = runner.invoke(app, ["bank", "import", str(EXAMPLES / STATEMENT), "--json",
                                   "--database-url", db_url])
    assert imported.exit_code == 0, imported.output
    figures = json.loads(imported.stdout)
    assert figures["payouts_matched"] == 2 and figures["as_of"] == "2026-03-09"
    assert {(b["kind"], b["reference"]) for b in figures["opened"]} == {
        ("payout_amount_mismatch", "batch 42"), ("payout_missing", "8WD33333DD444555F"),
        ("bank_credit_unmatched", "ACMEBANK-0304-09")}
    listed = runner.invoke(app, ["payouts", "list", "--database-url", db_url],
                           env={"COLUMNS": "120"})
    assert listed.exit_code == 0, listed.output
    assert "po_9Z" in listed.stdout and "arrived 2026-03-03" in listed.stdout
    assert "payout_amount_mismatch" in listed.stdout and "in transit" in listed.stdout
    transit = json.loads(runner.invoke(app, ["payouts", "list", "--status", "in_transit",
                                             "--json", "--database-url", db_url]).stdout)
    assert [(p["provider"], p["currency"], p["amount_minor"]) for p in transit] == [
        ("paypal", "USD", 3241)]
    out = tmp_path / "payouts.csv"
    assert runner.invoke(app, ["payouts", "list", "--export", str(out), "--database-url",
                               db_url]).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["reference"] for r in rows} == {"po_9Z", "batch 42", "8WD33333DD444555F"}
    bad = runner.invoke(app, ["payouts", "list", "--status", "lost", "--database-url", db_url])
    assert bad.exit_code == 2 and "--status" in bad.output
    missing = runner.invoke(app, ["bank", "import", str(tmp_path / "nope.xml"),
                                  "--database-url", db_url])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_finance_sees_each_providers_payout_lag(db_engine: Engine, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from engine.read_models.finance import finance_summary

    reconcile_directory(db_engine, drop(tmp_path, *REPORTS, STATEMENT))
    summary = {f.provider: f for f in finance_summary(
        db_engine, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))}
    assert (summary["stripe"].payouts, summary["stripe"].payout_days) == (1, [1])
    assert (summary["adyen"].payouts, summary["adyen"].payout_days) == (1, [2])
    assert (summary["paypal"].payouts, summary["paypal"].payouts_arrived) == (1, 0)
    assert summary["paypal"].mean_payout_days is None
