"""Settlement reports in each provider's real format: hand-written examples, bad rows, whole-file
rejections, and imports that never double or drop a line."""

import os
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from engine.domain.settlement_lines import FileRejectedError, SettlementLine
from engine.exceptions import ValidationError
from engine.providers.registry import PROVIDERS
from engine.providers.sandbox.registry import SANDBOXED
from engine.settlement.importer import SupersedeRefusedError, import_file
from engine.settlement.run import reconcile_directory
from engine.storage.tables import (
    settlement_file_audit,
    settlement_files,
    settlement_lines,
    settlement_row_errors,
)

EXAMPLES = Path(__file__).parents[2] / "data" / "settlement"
STRIPE = "Itemized_balance_change_from_activity_2026-03-02_to_2026-03-03_UTC.csv"
ADYEN = "settlement_detail_report_batch_42.csv"
PAYPAL = "STL-20260302.01.009.CSV"
DAY = date(2026, 3, 2)


def count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def stored(engine: Engine) -> list[tuple[object, ...]]:
    c = settlement_lines.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(
            c.provider, c.kind, c.provider_reference, c.payment_reference, c.amount_minor,
            c.fee_minor, c.currency, c.net_minor, c.net_currency, c.settled_on,
            c.payout_reference).order_by(c.provider, c.line_no))]


# What each hand-written example (tests/data/settlement, following PROVIDERS.md) must become.
EXPECTED: dict[str, list[tuple[object, ...]]] = {
    STRIPE: [
        ("stripe", "charge", "pi_1A", "pay_1001", 10000, 320, "EUR", 9680, "EUR", DAY, "po_9Z"),
        ("stripe", "refund", "pi_1A", "pay_1001", -4000, 0, "EUR", -4000, "EUR", DAY, "po_9Z"),
        ("stripe", "charge", "pi_1C", "pay_1002", 5000, 175, "JPY", 4825, "JPY", DAY, "po_9Y"),
        ("stripe", "chargeback", "pi_0990", "pay_0990", -2550, 1500, "EUR", -4050, "EUR", DAY,
         "po_9Z"),
        ("stripe", "charge", "pi_1E", "pay_1003", 12345, 388, "KWD", 11957, "KWD", DAY, "po_9X"),
        ("stripe", "fee", "txn_1F", None, -200, 0, "EUR", -200, "EUR", DAY, "po_9Z"),
        ("stripe", "payout", "po_9Z", None, -1430, 0, "EUR", -1430, "EUR", DAY, "po_9Z")],
    ADYEN: [
        ("adyen", "charge", "ABCD1234EFGH5678", "pay_1001", 10000, 180, "EUR", 9820, "EUR", DAY,
         "batch 42"),
        ("adyen", "refund", "ABCD1234EFGH5678", "pay_1001", -4000, 0, "EUR", -4000, "EUR", DAY,
         "batch 42"),
        ("adyen", "chargeback", "CHBK000000000990", "pay_0990", -3499, 750, "EUR", -4249, "EUR",
         DAY, "batch 42"),
        # gross in USD, converted at 0.92, fees and net in EUR; 00:30 CET is 23:30 UTC the day before
        ("adyen", "charge", "USDX000000001004", "pay_1004", 5000, 40, "USD", 4560, "EUR", DAY,
         "batch 42"),
        ("adyen", "fee", "Transaction Fees March 2026", None, -1200, 0, "EUR", -1200, "EUR", DAY,
         "batch 42"),
        ("adyen", "payout", "TX42XT batch 42, AcmeEU", None, -4931, 0, "EUR", -4931, "EUR", DAY,
         "batch 42")],
    PAYPAL: [
        # the section's USD withdrawal pays out its USD lines
        ("paypal", "charge", "5AB12345CD678901E", "pay_1001", 10000, 379, "USD", 9621, "USD", DAY,
         "8WD33333DD444555F"),
        # a refund returns part of the fee (fee CR): a negative fee
        ("paypal", "refund", "5AB12345CD678901E", "pay_1001", -4000, -120, "USD", -3880, "USD",
         DAY, "8WD33333DD444555F"),
        ("paypal", "chargeback", "4ZZ00000BB111222F", "pay_0990", -2500, 0, "USD", -2500, "USD",
         DAY, "8WD33333DD444555F"),
        ("paypal", "charge", "1EU22222CC333444E", "pay_1004", 2000, 100, "EUR", 1900, "EUR", DAY,
         None),
        ("paypal", "payout", "8WD33333DD444555F", None, -3241, 0, "USD", -3241, "USD", DAY,
         "8WD33333DD444555F")],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hand_written_report_imports_into_its_expected_lines(db_engine: Engine,
                                                                  name: str) -> None:
    report = import_file(db_engine, (EXAMPLES / name).read_bytes(), name)
    assert report.row_errors == [] and report.line_count == len(EXPECTED[name])
    assert stored(db_engine) == EXPECTED[name]
    # the payout pays out exactly the net of the lines before it, per currency
    nets: Counter[str] = Counter()
    for line in EXPECTED[name]:
        if line[1] != "payout":
            nets[str(line[8])] += int(str(line[7]))
    payouts = {str(line[6]): -int(str(line[4])) for line in EXPECTED[name] if line[1] == "payout"}
    assert all(nets[currency] == amount for currency, amount in payouts.items())


def test_a_report_is_recognised_by_its_name_and_a_stranger_is_refused() -> None:
    from engine.providers.registry import report_format_of

    formats = [report_format_of(n) for n in EXPECTED]
    assert {f.provider for f in formats if f is not None} == {
        "stripe", "adyen", "paypal"}
    stripe = report_format_of("payout_reconciliation.itemized.5_2026-03-02.csv")
    adyen = report_format_of("settlement_detail_report_batch_7_20260302.csv")
    assert stripe is not None and stripe.provider == "stripe"
    assert adyen is not None and adyen.provider == "adyen"
    assert report_format_of("stripe_2026-03-02.csv") is None


def test_columns_are_found_by_name_and_optional_ones_may_be_absent(db_engine: Engine) -> None:
    text = ("reporting_category,net,fee,gross,currency,balance_transaction_id,available_on\n"
            "charge,9.71,0.29,10.00,usd,txn_9,2026-03-02 00:00:00\n")
    report = import_file(db_engine, text.encode(), "balance_change_from_activity.csv")
    assert report.row_errors == []
    assert stored(db_engine) == [("stripe", "charge", "txn_9", None, 1000, 29, "USD", 971, "USD",
                                  DAY, None)]


BAD_ROWS = {
    STRIPE: [
        ("txn_9,2026-03-01 10:00:00,charge,eur,12.345,0.00,12.345,2026-03-02 00:00:00,ch_9,,,"
         "pi_9,,pay_9,", "gross: '12.345' has more decimals than EUR allows (2)"),
        ("txn_8,2026-03-01 10:00:00,charge,jpy,12.5,0,12.5,2026-03-02 00:00:00,ch_8,,,pi_8,,,",
         "more decimals than JPY allows (0)"),
        ("txn_7,2026-03-01 10:00:00,charge,eur,10000000000000000000000,0,"
         "10000000000000000000000,2026-03-02 00:00:00,ch_7,,,pi_7,,,", "gross"),
        ("txn_6,2026-03-01 10:00:00,charge,eur,100.00,1.00,90.00,2026-03-02 00:00:00,ch_6,,,"
         "pi_6,,,", "net: 90.00 is not gross - fee"),
        ("txn_5,2026-03-01 10:00:00,bonus,eur,1.00,0,1.00,2026-03-02 00:00:00,ch_5,,,pi_5,,,",
         "unknown category 'bonus'"),
        ("txn_4,2026-03-01 10:00:00,charge,xyz,1.00,0,1.00,2026-03-02 00:00:00,ch_4,,,pi_4,,,",
         "currency"),
        ("txn_3,2026-03-01,charge", "wrong number of columns: 3, expected 15"),
        ("txn_2,2026-03-01 10:00:00,charge,eur,1.00,0,1.00,02/03/2026,ch_2,,,pi_2,,,",
         "available_on_utc"),
    ],
    ADYEN: [
        ("AcmeCo,AcmeEU,PSP9,pay_9,visa,2026-03-02 11:15:00,CET,Settled,M9,EUR,,1.001,1,EUR,,1.00,"
         ",,,,visacredit,,42" + "," * 15, "Gross Credit (GC)"),
        ("AcmeCo,AcmeEU,PSP8,pay_8,visa,2026-03-02 11:15:00,CET,Settled,M8,EUR,1.00,1.00,1,EUR,,"
         "1.00,,,,,visacredit,,42" + "," * 15, "both"),
        ("AcmeCo,AcmeEU,PSP7,pay_7,visa,2026-03-02 11:15:00,XST,Settled,M7,EUR,,1.00,1,EUR,,1.00,"
         ",,,,visacredit,,42" + "," * 15, "TimeZone"),
        ("AcmeCo,AcmeEU,PSP6,pay_6,visa,2026-03-02 11:15:00,CET,Bonus,M6,EUR,,1.00,1,EUR,,1.00,"
         ",,,,visacredit,,42" + "," * 15, "unknown record type 'Bonus'"),
        ("AcmeCo,AcmeEU,PSP5,pay_5,visa,2026-03-02 11:15:00,CET,Settled,M5,EUR,,10.00,1,EUR,,9.00,"
         ",,,0.50,visacredit,,42" + "," * 15, "is not gross 10.00 less fees 0.50"),
    ],
}


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_bad_rows_are_row_errors_with_line_and_reason_and_good_rows_are_imported(
        db_engine: Engine, name: str) -> None:
    text = (EXAMPLES / name).read_text().splitlines()
    bad = BAD_ROWS[name]
    data = ("\n".join(text + [row for row, _ in bad]) + "\n").encode()
    report = import_file(db_engine, data, name)
    assert report.line_count == len(EXPECTED[name])
    assert [e.line_no for e in report.row_errors] == list(
        range(len(text) + 1, len(text) + 1 + len(bad)))
    for error, (_row, words) in zip(report.row_errors, bad, strict=True):
        assert words in error.reason, error.reason
    with db_engine.connect() as conn:
        raws = conn.execute(select(settlement_row_errors.c.raw)
                            .order_by(settlement_row_errors.c.line_no)).scalars().all()
    assert raws == [row for row, _ in bad]


def _paypal(replace: tuple[str, str] | None = None, drop: str | None = None) -> bytes:
    lines = (EXAMPLES / PAYPAL).read_text(encoding="utf-8").splitlines()
    if replace:
        lines = [line.replace(*replace) if line.startswith(replace[0][:5]) else line
                 for line in lines]
    if drop:
        lines = [line for line in lines if not line.startswith(drop)]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.mark.parametrize(("data", "reason"), [
    (_paypal(('"SC",5', '"SC",4')), "SC footer counts 4 rows, the section has 5"),
    (_paypal(('"SF","USD",10000,9741', '"SF","USD",10000,9740')),
     "SF footer for USD does not match the rows: gross DR 9740 declared, 9741 in the rows"),
    (_paypal(('"RF","EUR",2000,0,0,100', '"RF","EUR",2000,0,0,99')),
     "RF footer for EUR does not match"),
    (_paypal(('"FF",5', '"FF",6')), "FF footer counts 6 rows, the file has 5"),
    (_paypal(drop='"FF"'), "incomplete: no FF footer"),
    (_paypal(drop='"R'), "incomplete: no RF/RC footer"),
    ((EXAMPLES / PAYPAL).read_bytes()[:700], "incomplete: no RF/RC/FF footer"),
    (b"\xff\xfe garbage", "not UTF-8"),
])
def test_a_paypal_file_whose_footers_disagree_with_its_body_is_rejected_whole(
        db_engine: Engine, data: bytes, reason: str) -> None:
    with pytest.raises(FileRejectedError, match="rejected whole") as info:
        import_file(db_engine, data, PAYPAL)
    assert reason in str(info.value) and PAYPAL in str(info.value)
    assert count(db_engine, settlement_files) == 0 and count(db_engine, settlement_lines) == 0


def test_a_csv_without_its_required_columns_is_rejected_whole(db_engine: Engine) -> None:
    with pytest.raises(FileRejectedError, match="header lacks the column.*'Batch Number'"):
        import_file(db_engine, b"Psp Reference,Type\nX,Settled\n", ADYEN)
    with pytest.raises(FileRejectedError, match="available_on_utc"):
        import_file(db_engine, b"balance_transaction_id,currency,gross,fee,net,"
                    b"reporting_category\n", STRIPE)
    with pytest.raises(ValidationError, match="not a settlement report paysignal knows"):
        import_file(db_engine, b"", "stripe_2026-03-02.csv")
    with pytest.raises(ValidationError, match="no settlement report for 'acme'"):
        import_file(db_engine, b"", "x.csv", provider="acme")


def test_the_same_file_is_never_imported_twice(db_engine: Engine) -> None:
    data = (EXAMPLES / ADYEN).read_bytes()
    first = import_file(db_engine, data, ADYEN)
    again = import_file(db_engine, data, "settlement_detail_report_batch_42_copy.csv")
    assert again.already_imported and again.file_id == first.file_id
    assert count(db_engine, settlement_lines) == 6 and count(db_engine, settlement_files) == 1


def test_a_partial_file_then_the_whole_file_never_doubles_a_line(db_engine: Engine) -> None:
    """The review's case: the first lines arrive, then the whole file; each line is stored
    once (by the provider's own line identity) and the second import says how many it had."""
    whole = (EXAMPLES / STRIPE).read_text().splitlines()
    first = import_file(db_engine, ("\n".join(whole[:4]) + "\n").encode(), STRIPE)
    assert first.line_count == 3
    second = import_file(db_engine, ("\n".join(whole) + "\n").encode(), STRIPE)
    assert (second.line_count, second.duplicate_lines) == (4, 3)
    assert stored(db_engine) == EXPECTED[STRIPE]
    with db_engine.connect() as conn:
        assert conn.execute(select(settlement_files.c.duplicate_lines).where(
            settlement_files.c.id == second.file_id)).scalar_one() == 3


def test_a_corrected_file_supersedes_an_earlier_one_with_an_audit_row(db_engine: Engine) -> None:
    original = import_file(db_engine, (EXAMPLES / STRIPE).read_bytes(), STRIPE)
    corrected_text = (EXAMPLES / STRIPE).read_text().replace(
        "txn_1C,2026-03-01 12:00:00,charge,jpy,5000,175,4825",
        "txn_1C,2026-03-01 12:00:00,charge,jpy,5100,178,4922")
    with pytest.raises(SupersedeRefusedError, match="no settlement file"):
        import_file(db_engine, corrected_text.encode(), STRIPE, supersedes="stf_nope")
    adyen = import_file(db_engine, (EXAMPLES / ADYEN).read_bytes(), ADYEN)
    with pytest.raises(SupersedeRefusedError, match="adyen file"):
        import_file(db_engine, corrected_text.encode(), STRIPE, supersedes=adyen.file_id)
    corrected = import_file(db_engine, corrected_text.encode(), STRIPE,
                            supersedes=original.file_id, actor="fin-anna")
    assert corrected.line_count == 7 and corrected.duplicate_lines == 0
    c = settlement_lines.c
    with db_engine.connect() as conn:
        jpy = conn.execute(select(c.amount_minor, c.file_id).where(
            c.provider == "stripe", c.currency == "JPY")).all()
        old = conn.execute(select(settlement_files.c.status, settlement_files.c.superseded_by)
                           .where(settlement_files.c.id == original.file_id)).one()
        audit = conn.execute(select(settlement_file_audit)).one()
    assert [tuple(r) for r in jpy] == [(5100, corrected.file_id)]
    assert tuple(old) == ("superseded", corrected.file_id)
    assert (audit.file_id, audit.action, audit.actor) == (original.file_id, "superseded",
                                                          "fin-anna")
    assert "its 7 lines replaced" in audit.note
    with pytest.raises(SupersedeRefusedError, match="superseded already"):
        import_file(db_engine, corrected_text.encode() + b"\n", STRIPE,
                    supersedes=original.file_id)


def test_one_bad_value_or_a_stray_file_never_stops_the_run(db_url: str, tmp_path: Path) -> None:
    """The review's case: an amount of 10^22 raised OverflowError (SQLite) or a COPY error
    (PostgreSQL) and a stray file name raised too, so another provider's valid file was never
    imported and the worker's job failed every run. Now: a row error, a quarantined file, the
    other files imported; the next run is as calm."""
    from engine.storage import db

    engine = db.make_engine(db_url)
    drop = tmp_path / "drop"
    drop.mkdir()
    stripe = (EXAMPLES / STRIPE).read_text().replace(
        "txn_1A,2026-03-01 10:15:00,charge,eur,100.00,3.20,96.80",
        "txn_1A,2026-03-01 10:15:00,charge,eur,10000000000000000000000,3.20,"
        "9999999999999999999996.80")
    (drop / STRIPE).write_text(stripe)
    (drop / ADYEN).write_bytes((EXAMPLES / ADYEN).read_bytes())
    (drop / "notes from finance.txt").write_text("=HYPERLINK(\"x\")")
    (drop / PAYPAL).write_bytes(_paypal(drop='"FF"'))  # still being written
    (drop / ".upload.partial").write_text("…")
    report = reconcile_directory(engine, drop)
    by_name = {r.filename: r for r in report.imports}
    assert by_name[ADYEN].line_count == 6
    assert by_name[STRIPE].line_count == 6
    [error] = by_name[STRIPE].row_errors
    assert error.line_no == 2 and "beyond the largest amount" in error.reason
    skipped = {f.file: f for f in report.skipped}
    assert skipped["notes from finance.txt"].status == "quarantined"
    assert (drop / "quarantine" / "notes from finance.txt").exists()
    assert not (drop / "notes from finance.txt").exists()
    assert skipped[PAYPAL].status == "rejected" and "incomplete" in skipped[PAYPAL].reason
    assert ".upload.partial" not in skipped
    (drop / PAYPAL).write_bytes((EXAMPLES / PAYPAL).read_bytes())  # the upload finished
    again = reconcile_directory(engine, drop)
    assert {r.filename: r.already_imported for r in again.imports} == {
        STRIPE: True, ADYEN: True, PAYPAL: False}
    assert again.skipped == []
    assert count(engine, settlement_lines) == 6 + 6 + 5
    engine.dispose()


def test_a_report_without_footers_waits_until_it_has_stopped_changing(
        db_engine: Engine, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / ADYEN).write_bytes((EXAMPLES / ADYEN).read_bytes())
    (drop / PAYPAL).write_bytes((EXAMPLES / PAYPAL).read_bytes())
    report = reconcile_directory(db_engine, drop, min_age_s=60)
    assert [r.filename for r in report.imports] == [PAYPAL]  # its footers prove it complete
    assert [(f.file, f.status) for f in report.skipped] == [(ADYEN, "waiting")]
    old = time.time() - 61
    os.utime(drop / ADYEN, (old, old))
    later = reconcile_directory(db_engine, drop, min_age_s=60)
    assert {r.filename for r in later.imports} == {ADYEN, PAYPAL} and later.skipped == []
    from engine.exceptions import ConfigurationError
    from paysignal.settings import load_settings

    assert load_settings({}).settlement_min_age_s == 120.0
    assert load_settings({"PAYSIGNAL_SETTLEMENT_MIN_AGE_S": "0"}).settlement_min_age_s == 0.0
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_SETTLEMENT_MIN_AGE_S='soon'"):
        load_settings({"PAYSIGNAL_SETTLEMENT_MIN_AGE_S": "soon"})


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_sandbox_writes_each_report_the_importer_reads_back(provider: str) -> None:
    day = date(2026, 3, 3)
    lines = [SettlementLine(provider, "", "ref_1", "pay_1", "charge", 1234, 66, "USD", day),
             SettlementLine(provider, "", "ref_1", "pay_1", "refund", -500, 0, "USD", day),
             SettlementLine(provider, "", "ref_1", "pay_1", "charge", 1234, 66, "USD", day),
             SettlementLine(provider, "", "ref_2", None, "charge", 7, 0, "KWD", day),
             SettlementLine(provider, "", "ref_3", "pay_3", "charge", 1000, 40, "JPY", day)]
    report = PROVIDERS[provider].settlement_report
    files = SANDBOXED[provider].render_report(lines, day)
    [(name, data)] = files.items()
    assert report.file_name.match(name)
    parsed = report.parse(data, name)
    assert parsed.errors == []
    got = [(x.kind, x.provider_reference, x.payment_reference, x.amount_minor, x.fee_minor,
            x.currency, x.settled_on) for x in parsed.lines if x.kind != "payout"]
    assert got == [(x.kind, x.provider_reference, x.payment_reference, x.amount_minor,
                    x.fee_minor, x.currency, x.settled_on) for x in lines]
    assert len({x.line_id for x in parsed.lines}) == len(parsed.lines)  # a duplicate is its own
    payouts = {x.currency: -x.amount_minor for x in parsed.lines if x.kind == "payout"}
    assert payouts == {"USD": 1234 - 66 - 500 + 1234 - 66, "KWD": 7, "JPY": 960}


def test_a_paypal_report_of_a_day_without_transactions_is_complete(db_engine: Engine) -> None:

    [(name, data)] = SANDBOXED["paypal"].render_report([], date(2026, 3, 4)).items()
    assert b'"RF"' not in data and b'"FF",0' in data
    report = import_file(db_engine, data, name)
    assert report.line_count == 0 and report.row_errors == []
