"""PayPal's settlement report (STL): read with its footers checked, and written by the sandbox."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from datetime import date

from engine.domain import settlement_lines as lines
from engine.exceptions import ValidationError
from engine.providers.paypal.config import NAME

REPORT_NAME = re.compile(r"(?i)^STL-(\d{8})\.(\d{2})\.(\d{3})\.CSV$")


REPORT_REQUIRED = ("Transaction ID", "PayPal Reference ID", "Transaction Event Code",
                   "Transaction Debit or Credit", "Gross Transaction Amount",
                   "Gross Transaction Currency", "Fee Debit or Credit", "Fee Amount",
                   "Custom Field")


EVENT_CODES = {
    "T0002": lines.CHARGE, "T0003": lines.CHARGE, "T0006": lines.CHARGE,
    "T1107": lines.REFUND, "T1106": lines.CHARGEBACK, "T1201": lines.CHARGEBACK,
    "T1202": lines.CHARGEBACK_REVERSAL, "T0106": lines.FEE, "T1108": lines.FEE,
    "T0400": lines.PAYOUT, "T0200": lines.ADJUSTMENT, "T0201": lines.ADJUSTMENT,
    "T1110": lines.ADJUSTMENT, "T1111": lines.ADJUSTMENT,
}


_FOOTERS = ("RF", "RC", "FF")


Totals = dict[str, list[int]]  # currency -> [gross CR, gross DR, fee CR, fee DR]


def _records(text: str, filename: str) -> list[tuple[int, list[str], str]]:
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            values = next(csv.reader([raw], strict=True))
        except csv.Error as exc:
            raise lines.FileRejectedError(filename, f"line {number}: unreadable CSV ({exc})"
                                          ) from None
        out.append((number, [v.strip() for v in values], raw))
    return out


def add_totals(totals: Totals, currency: str, direction: str, amount: int, fee_direction: str,
         fee: int) -> None:
    t = totals.setdefault(currency, [0, 0, 0, 0])
    t[0 if direction == "CR" else 1] += amount
    t[2 if fee_direction == "CR" else 3] += fee


def _footer_totals(values: list[str], filename: str, number: int) -> tuple[str, list[int]]:
    try:
        return values[1].upper(), [int(v) for v in values[2:6]]
    except (IndexError, ValueError):
        raise lines.FileRejectedError(filename, f"line {number}: unreadable {values[0]} "
                                      "footer (currency, gross CR, gross DR, fee CR, fee DR)"
                                      ) from None


def _count(values: list[str], filename: str, number: int) -> int:
    try:
        return int(values[1])
    except (IndexError, ValueError):
        raise lines.FileRejectedError(filename, f"line {number}: unreadable {values[0]} "
                                      "count") from None


def _check(kind: str, declared: Totals, found: Totals, filename: str) -> None:
    for currency in sorted(set(declared) | set(found)):
        want, got = declared.get(currency, [0] * 4), found.get(currency, [0] * 4)
        if want != got:
            labels = ("gross CR", "gross DR", "fee CR", "fee DR")
            diff = "; ".join(f"{label} {w} declared, {g} in the rows"
                             for label, w, g in zip(labels, want, got, strict=True) if w != g)
            raise lines.FileRejectedError(filename, f"{kind} footer for {currency} does not "
                                          f"match the rows: {diff}")


def parse_report(data: bytes, filename: str) -> lines.ParsedReport:
    """RH, FH, SH, CH, then SB rows; each section closes with SF (per currency) and SC, the
    report with RF and RC, the file with FF. The footers must agree with the rows, or the
    whole file is rejected; without them the file is incomplete and rejected too."""
    records = _records(lines.decode(data, filename), filename)
    if not records or records[0][1][0] != "RH":
        raise lines.FileRejectedError(filename, "does not start with an RH report header")
    present = {values[0] for _, values, _ in records}
    # a report without transactions has no per-currency footer (RF), only its counts
    needed = _FOOTERS if "SB" in present else ("RC", "FF")
    missing = [f for f in needed if f not in present]
    if missing:
        raise lines.FileRejectedError(filename, f"incomplete: no {'/'.join(missing)} "
                                      "footer (truncated, or still being written?)")
    header: list[str] | None = None
    section_day: date | None = None
    section_start = 0
    out = lines.ParsedReport()
    report_rows = file_rows = section_rows = 0
    report_totals: Totals = {}
    section_totals: Totals = {}
    declared_section: Totals = {}
    declared_report: Totals = {}
    for number, values, raw in records:
        record = values[0]
        if record == "CH":
            header = values[1:]
            absent = [c for c in REPORT_REQUIRED if c not in header]
            if absent:
                raise lines.FileRejectedError(filename, "CH column header lacks "
                                              + ", ".join(repr(c) for c in absent))
        elif record == "SH":
            try:
                section_day = lines.timestamp(values[1], "SH period start").date()
            except (IndexError, ValidationError) as exc:
                raise lines.FileRejectedError(filename, f"line {number}: unreadable SH section "
                                              f"header ({exc})") from None
            section_rows, section_totals, declared_section = 0, {}, {}
            section_start = len(out.lines)
        elif record == "SB":
            if header is None or section_day is None:
                raise lines.FileRejectedError(filename, f"line {number}: an SB row before the "
                                              "SH and CH headers")
            section_rows, report_rows, file_rows = (section_rows + 1, report_rows + 1,
                                                    file_rows + 1)
            if len(values) - 1 != len(header):
                out.errors.append(lines.RowError(
                    number, f"wrong number of columns: {len(values) - 1}, expected "
                    f"{len(header)}", raw))
                continue
            row = dict(zip(header, values[1:], strict=True))
            try:
                line, signed = _line(row, section_day)
            except ValidationError as exc:
                out.errors.append(lines.RowError(number, f"{exc.field}: {exc.reason}", raw))
                continue
            for totals in (section_totals, report_totals):
                add_totals(totals, *signed)
            out.lines.append(lines.with_line_no(line, number))
        elif record == "SF":
            currency, figures = _footer_totals(values, filename, number)
            declared_section[currency] = figures
        elif record == "SC":
            if _count(values, filename, number) != section_rows:
                raise lines.FileRejectedError(filename, f"SC footer counts "
                                              f"{values[1]} rows, the section has "
                                              f"{section_rows}")
            _check("SF", declared_section, section_totals, filename)
            out.lines[section_start:] = _paid_out(out.lines[section_start:])
        elif record == "RF":
            currency, figures = _footer_totals(values, filename, number)
            declared_report[currency] = figures
        elif record == "RC":
            if _count(values, filename, number) != report_rows:
                raise lines.FileRejectedError(filename, f"RC footer counts {values[1]} rows, "
                                              f"the report has {report_rows}")
            _check("RF", declared_report, report_totals, filename)
        elif record == "FF" and _count(values, filename, number) != file_rows:
            raise lines.FileRejectedError(filename, f"FF footer counts {values[1]} rows, "
                                          f"the file has {file_rows}")
    return out


def _paid_out(section: list[lines.SettlementLine]) -> list[lines.SettlementLine]:
    """A withdrawal (T0400) pays out its section's net in its currency: its lines carry it as
    their payout (a currency with several withdrawals in one section is left unassigned)."""
    withdrawals: dict[str, list[str]] = {}
    for line in section:
        if line.kind == lines.PAYOUT:
            withdrawals.setdefault(line.currency, []).append(line.provider_reference)
    return [replace(line, payout_reference=withdrawals[line.currency][0])
            if line.kind != lines.PAYOUT and len(withdrawals.get(line.currency, [])) == 1
            else line for line in section]


def _line(row: dict[str, str], day: date,
          ) -> tuple[lines.SettlementLine, tuple[str, str, int, str, int]]:
    code = row["Transaction Event Code"]
    kind = EVENT_CODES.get(code)
    if kind is None:
        raise ValidationError("Transaction Event Code", f"unknown T-code {code!r}")
    direction, fee_direction = row["Transaction Debit or Credit"], row["Fee Debit or Credit"]
    if direction not in ("CR", "DR"):
        raise ValidationError("Transaction Debit or Credit", f"{direction!r} is not CR or DR")
    if fee_direction not in ("CR", "DR", ""):
        raise ValidationError("Fee Debit or Credit", f"{fee_direction!r} is not CR or DR")
    currency = lines.currency_code(row["Gross Transaction Currency"],
                                   "Gross Transaction Currency")
    fee_currency = row.get("Fee Currency") or currency
    if fee_currency.upper() != currency:
        raise ValidationError("Fee Currency", f"{fee_currency!r} differs from the gross "
                                              f"currency {currency}")
    gross = lines.minor_units(row["Gross Transaction Amount"], "Gross Transaction Amount")
    fee = lines.minor_units(row["Fee Amount"] or "0", "Fee Amount")
    amount = gross if direction == "CR" else -gross
    fee_cost = -fee if fee_direction == "CR" else fee
    transaction = lines.required(row, "Transaction ID")
    line = lines.SettlementLine(
        NAME, f"{transaction}|{code}", row["PayPal Reference ID"] or transaction,
        row["Custom Field"] or None, kind, amount, fee_cost, currency, day, amount - fee_cost,
        currency, transaction if kind == lines.PAYOUT else None)
    return line, (currency, direction, gross, fee_direction or "DR", fee)


SETTLEMENT_REPORT = lines.ReportFormat(
    NAME, "PayPal Settlement report (STL)", REPORT_NAME, parse_report,
    "\n".join([
        "Named `STL-yyyymmdd.NN.009.CSV`; UTF-8 (a byte-order mark is allowed); every record "
        "starts with its type: `RH` report header, `FH` file header, `SH` section header (its "
        "period start is the settlement day of the section's rows), `CH` column names, `SB` one "
        "transaction, then the footers: `SF` per-currency section totals and `SC` the section's "
        "row count, `RF`/`RC` the same for the report, `FF` the file's row count. Amounts are "
        "unsigned integers of minor units with their direction in `CR`/`DR` fields. Every "
        "footer is checked against the rows: a file whose footers disagree with its body, or "
        "that lacks `RF`, `RC` or `FF` (truncated, or still being written), is rejected whole "
        "with the reason. SB columns are found by the names in `CH`.", "",
        lines.columns_table([
            ("Transaction ID", "with the event code, the line's identity"),
            ("PayPal Reference ID", "the payment's reference (the capture or authorization a "
                                    "refund or capture acts on); else `Transaction ID`"),
            ("Transaction Event Code", "the T-code: the kind of line, below"),
            ("Transaction Debit or Credit", "`CR` money in, `DR` money out"),
            ("Gross Transaction Amount", "unsigned minor units"),
            ("Gross Transaction Currency", "ISO 4217"),
            ("Fee Debit or Credit", "`DR` a fee charged, `CR` a fee returned"),
            ("Fee Amount", "unsigned minor units"), ("Custom Field", "our payment id")]),
        "", lines.kinds_sentence("Transaction Event Code", EVENT_CODES)]),
    complete_by_footer=True)
