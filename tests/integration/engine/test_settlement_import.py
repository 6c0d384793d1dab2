"""Settlement files: each provider's format, bad rows, unreadable files, and import-once."""

from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from engine.exceptions import ValidationError
from engine.settlement.formats import FORMATS, FileRejectedError, SettlementLine
from engine.settlement.importer import import_file
from engine.storage.tables import settlement_files, settlement_lines, settlement_row_errors

DAY = date(2026, 11, 21)


def sample(provider: str) -> list[SettlementLine]:
    return [SettlementLine(provider, "ref-1", "pay_1", "charge", 1234, 33, "USD", DAY),
            SettlementLine(provider, "ref-2", None, "refund", -500, 0, "KWD", DAY),
            SettlementLine(provider, "ref-3", "pay_3", "chargeback", -1000, 0, "JPY", DAY)]


def count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize("provider", sorted(FORMATS))
def test_each_format_imports_into_the_same_normalized_lines(db_engine: Engine,
                                                            provider: str) -> None:
    data = FORMATS[provider][0](sample(provider))
    report = import_file(db_engine, provider, data, f"{provider}-2026-11-21.txt")
    assert report.row_errors == [] and not report.already_imported
    with db_engine.connect() as conn:
        rows = conn.execute(select(settlement_lines.c.provider_reference, settlement_lines.c.kind,
                                   settlement_lines.c.amount_minor, settlement_lines.c.fee_minor,
                                   settlement_lines.c.currency, settlement_lines.c.settled_on,
                                   settlement_lines.c.payment_reference)
                            .order_by(settlement_lines.c.line_no)).all()
    assert [tuple(r) for r in rows] == [
        ("ref-1", "charge", 1234, 33, "USD", DAY, "pay_1"),
        ("ref-2", "refund", -500, 0, "KWD", DAY, None),
        ("ref-3", "chargeback", -1000, 0, "JPY", DAY, "pay_3")]


@pytest.mark.parametrize("provider", sorted(FORMATS))
def test_the_same_file_is_never_imported_twice(db_engine: Engine, provider: str) -> None:
    data = FORMATS[provider][0](sample(provider))
    first = import_file(db_engine, provider, data, "a.txt")
    again = import_file(db_engine, provider, data, "renamed.txt")
    assert again.already_imported and again.file_id == first.file_id
    assert count(db_engine, settlement_lines) == 3 and count(db_engine, settlement_files) == 1


BAD_ROWS = {
    "stripe": [("txn_9,ref-9,charge,12.5,0,12.5,usd,0,2026-11-21,pay_9", "amount"),
                  ("txn_8,ref-8,charge,100,1,90,usd,0,2026-11-21,pay_8", "net"),
                  ("txn_7,ref-7,charge,100,0,100,xyz,0,2026-11-21,pay_7", "currency"),
                  ("txn_6,ref-6,charge,100", "wrong number of columns: 4, expected 10"),
                  ("txn_5,ref-5,charge,100,0,100,usd,0,21-11-2026,pay_5", "available_on")],
    "adyen": [("PaysignalECOM;ref-9;pay_9;Settled;2026-11-21 09:30:00;CET;USD;;12.345;0",
                   "Gross Credit"),
                  ("PaysignalECOM;;pay_8;Settled;2026-11-21 09:30:00;CET;USD;;1.00;0",
                   "Psp Reference"),
                  ("PaysignalECOM;ref-7;pay_7;Bonus;2026-11-21 09:30:00;CET;USD;;1.00;0", "Type"),
                  ("PaysignalECOM;ref-6;pay_6;Settled;2026-11-21 9h30;CET;USD;;1.00;0",
                   "Booking Date")],
    "paypal": [("D|ref-9|pay_9|SALE|12.345|USD|0|21/11/2026", "AMT"),
                ("D|ref-8|pay_8|SALE|1.00|USD|0|31/02/2026", "SETTLE_DATE"),
                ("D|ref-7|pay_7|SALE|1.00|XXX|0|21/11/2026", "CCY"),
                ("D|ref-6|SALE|1.00|USD|0|21/11/2026", "wrong number of columns: 7, expected 8")],
}


@pytest.mark.parametrize("provider", sorted(FORMATS))
def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_imported(
        db_engine: Engine, provider: str) -> None:
    text = FORMATS[provider][0](sample(provider)).decode().splitlines()
    bad = BAD_ROWS[provider]
    if provider == "paypal":  # keep the trailer count right: the file itself is readable
        text = text[:-1] + [row for row, _ in bad] + [f"T|{3 + len(bad)}"]
    else:
        text = text + [row for row, _ in bad]
    report = import_file(db_engine, provider, ("\n".join(text) + "\n").encode(), "mixed.txt")
    assert report.line_count == 3
    assert [e.line_no for e in report.row_errors] == list(range(5, 5 + len(bad)))
    for error, (_row, word) in zip(report.row_errors, bad, strict=True):
        assert word.lower() in error.reason.lower(), error.reason
    with db_engine.connect() as conn:
        stored = conn.execute(select(settlement_row_errors.c.line_no, settlement_row_errors.c.raw)
                              .order_by(settlement_row_errors.c.line_no)).all()
    assert [r.raw for r in stored] == [row for row, _ in bad]


@pytest.mark.parametrize(("provider", "data", "reason"), [
    ("stripe", b"not,the,header\n1,2,3\n", "header"),
    ("adyen", b"\xff\xfe garbage", "UTF-8"),
    ("paypal", b"H|PAYPAL|SETTLEMENT|20261121\nD|r|p|SALE|1.00|USD|0|21/11/2026\nT|5\n",
     "trailer says 5"),
    ("paypal", b"H|PAYPAL|SETTLEMENT|20261121\nD|r|p|SALE|1.00|USD|0|21/11/2026\n", "trailer"),
])
def test_an_unreadable_file_is_rejected_whole_and_nothing_is_written(
        db_engine: Engine, provider: str, data: bytes, reason: str) -> None:
    with pytest.raises(FileRejectedError, match=reason) as info:
        import_file(db_engine, provider, data, "broken.txt")
    assert "broken.txt" in str(info.value)
    assert count(db_engine, settlement_files) == 0 and count(db_engine, settlement_lines) == 0


def test_a_file_for_an_unknown_provider_is_refused(db_engine: Engine) -> None:
    with pytest.raises(ValidationError, match="no settlement format"):
        import_file(db_engine, "acme", b"", "x.csv")
