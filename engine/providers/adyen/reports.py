"""Adyen's Settlement details report (SDR): read, and written by the sandbox."""

from __future__ import annotations

import re
from datetime import timedelta, timezone

from engine.domain import settlement_lines as lines
from engine.exceptions import ValidationError
from engine.providers.adyen.config import NAME

REPORT_NAME = re.compile(r"(?i)^settlement_detail_report_batch_(\d{1,9})(_[\w.-]*)?\.csv$")


REPORT_REQUIRED = ("Psp Reference", "Merchant Reference", "Creation Date", "TimeZone", "Type",
                   "Modification Reference", "Gross Currency", "Gross Debit (GC)",
                   "Gross Credit (GC)", "Net Currency", "Net Debit (NC)", "Net Credit (NC)",
                   "Batch Number")


FEE_COLUMNS = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")


RECORD_TYPES = {
    "Settled": lines.CHARGE, "SettledExternally": lines.CHARGE, "Refunded": lines.REFUND,
    "RefundedExternally": lines.REFUND, "RefundedReversed": lines.REFUND_REVERSAL,
    "Chargeback": lines.CHARGEBACK, "ChargebackExternally": lines.CHARGEBACK,
    "SecondChargeback": lines.CHARGEBACK, "ChargebackReversed": lines.CHARGEBACK_REVERSAL,
    "Fee": lines.FEE, "MerchantPayout": lines.PAYOUT, "InvoiceDeduction": lines.ADJUSTMENT,
    "MiscCosts": lines.ADJUSTMENT, "DepositCorrection": lines.ADJUSTMENT,
    "BalanceTransfer": lines.ADJUSTMENT,
}


# Rows that are not balance movements of the batch (Adyen's own bookkeeping rows).
SKIPPED_TYPES = frozenset({"MatchedStatement", "PaymentCost", "SettleCost", "PaidOut",
                           "ReserveAdjustment"})


# The zone abbreviations Adyen writes in `TimeZone`, as UTC offsets in hours.
ZONE_OFFSETS = {"UTC": 0, "GMT": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2,
                "EET": 2, "EEST": 3, "MSK": 3, "GST": 4, "IST": 5.5, "SGT": 8, "HKT": 8,
                "AWST": 8, "JST": 9, "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13,
                "BRT": -3, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
                "PST": -8, "PDT": -7}


def _zone(label: str) -> timezone:
    offset = ZONE_OFFSETS.get(label.strip().upper())
    if offset is None:
        raise ValidationError("TimeZone", f"unknown time zone {label!r}")
    return timezone(timedelta(hours=offset))


def _debit_credit(row: dict[str, str], debit: str, credit: str, currency: str) -> int | None:
    """The signed amount of a Debit/Credit column pair (None when both are empty)."""
    out, into = row[debit], row[credit]
    if out and into:
        raise ValidationError(debit, f"both {debit!r} and {credit!r} are filled")
    if into:
        return lines.major_units(into, currency, credit, signed=False)
    if out:
        return -lines.major_units(out, currency, debit, signed=False)
    return None


def parse_report(data: bytes, filename: str) -> lines.ParsedReport:
    """Columns by header name: newer files add columns, which are ignored."""
    table = lines.CsvTable(lines.decode(data, filename), filename, REPORT_REQUIRED)

    def convert(row: dict[str, str]) -> lines.SettlementLine | None:
        record = row["Type"]
        if record in SKIPPED_TYPES:
            return None
        kind = RECORD_TYPES.get(record)
        if kind is None:
            raise ValidationError("Type", f"unknown record type {record!r}")
        net_currency = lines.currency_code(lines.required(row, "Net Currency"), "Net Currency")
        net = _debit_credit(row, "Net Debit (NC)", "Net Credit (NC)", net_currency) or 0
        fee = sum(lines.major_units(row[c], net_currency, c, signed=False)
                  for c in FEE_COLUMNS if row.get(c))
        gross_currency = (lines.currency_code(row["Gross Currency"], "Gross Currency")
                          if row["Gross Currency"] else net_currency)
        gross = _debit_credit(row, "Gross Debit (GC)", "Gross Credit (GC)", gross_currency)
        if gross is None:  # fee, payout and correction rows carry only the net
            gross, gross_currency, fee = net, net_currency, 0
        elif gross_currency == net_currency and gross - fee != net:
            raise ValidationError("Net Credit (NC)" if net >= 0 else "Net Debit (NC)",
                                  f"net {lines.major_text(net, net_currency)} is not gross "
                                  f"{lines.major_text(gross, gross_currency)} less fees "
                                  f"{lines.major_text(fee, net_currency)}")
        batch = lines.required(row, "Batch Number")
        psp, modification = row["Psp Reference"], row["Modification Reference"]
        when = lines.utc_day(lines.required(row, "Creation Date"), "Creation Date",
                             _zone(lines.required(row, "TimeZone")))
        return lines.SettlementLine(
            NAME, f"{batch}|{record}|{psp}|{modification}|{net_currency}",
            psp or modification or batch,
            row["Merchant Reference"] or None, kind, gross, fee, gross_currency, when, net,
            net_currency, f"batch {batch}")

    return lines.parse_rows(table.rows(), convert)


SETTLEMENT_REPORT = lines.ReportFormat(
    NAME, "Adyen Settlement details report", REPORT_NAME, parse_report,
    "\n".join([
        "CSV with one header row, named `settlement_detail_report_batch_<N>.csv` (a suffix after "
        "the number is allowed). Columns are found by name: newer files add columns, which are "
        "ignored. Amounts are unsigned decimals in the major unit, in a Debit or a Credit "
        "column (never both); fees (`Commission`, `Markup`, `Scheme Fees`, `Interchange`) are "
        "costs in the net currency; on a row where gross and net currency agree, "
        "`net = gross − fees` is checked. `Creation Date` is read in the `TimeZone` given "
        "(CET, PDT, …) and its UTC date is the line's settlement day. Adyen's bookkeeping rows "
        "(" + ", ".join(f"`{t}`" for t in sorted(SKIPPED_TYPES)) + ") are skipped. A CSV has no "
        "trailer, so the worker takes a file only once it has not changed for "
        "`PAYSIGNAL_SETTLEMENT_MIN_AGE_S`.", "",
        lines.columns_table([
            ("Psp Reference", "the payment's reference (empty on fee and payout rows)"),
            ("Merchant Reference", "our payment id"),
            ("Creation Date", "`YYYY-MM-DD HH:MM:SS` in `TimeZone`: the settlement day"),
            ("Type", "the kind of line, below"),
            ("Modification Reference", "the modification's reference; with the batch, type "
                                       "and Psp Reference, the line's identity"),
            ("Gross Currency", "ISO 4217"), ("Gross Debit (GC)", "money out"),
            ("Gross Credit (GC)", "money in"), ("Net Currency", "ISO 4217"),
            ("Net Debit (NC)", "net out (the payout amount on `MerchantPayout`)"),
            ("Net Credit (NC)", "net in"),
            ("Commission (NC), Markup (NC), Scheme Fees (NC), Interchange (NC)",
             "summed: the line's fee"),
            ("Batch Number", "the settlement batch; its `MerchantPayout` pays it out")]),
        "", lines.kinds_sentence("Type", RECORD_TYPES)]),
    complete_by_footer=False)
