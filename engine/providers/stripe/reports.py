"""Stripe's itemized reports (balance change from activity, payout reconciliation): read, and
written by the sandbox."""

from __future__ import annotations

import re

from engine.domain import settlement_lines as lines
from engine.exceptions import ValidationError
from engine.providers.stripe.config import NAME

REPORT_REQUIRED = ("balance_transaction_id", "currency", "gross", "fee", "net",
                   "reporting_category")


REPORTING_CATEGORIES = {
    "charge": lines.CHARGE, "refund": lines.REFUND, "refund_failure": lines.REFUND_REVERSAL,
    "dispute": lines.CHARGEBACK, "dispute_reversal": lines.CHARGEBACK_REVERSAL,
    "fee": lines.FEE, "payout": lines.PAYOUT, "payout_reversal": lines.ADJUSTMENT,
    "partial_capture_reversal": lines.ADJUSTMENT, "transfer": lines.ADJUSTMENT,
    "transfer_reversal": lines.ADJUSTMENT, "other_adjustment": lines.ADJUSTMENT,
    "tax": lines.ADJUSTMENT, "network_cost": lines.FEE,
}


REPORT_NAME = re.compile(r"(?i)^[\w.-]*(balance_change_from_activity|payout_reconciliation)"
                         r"[\w.-]*\.csv$")


def parse_report(data: bytes, filename: str) -> lines.ParsedReport:
    """Either itemized report (both carry balance transactions); columns by header name."""
    table = lines.CsvTable(lines.decode(data, filename), filename, REPORT_REQUIRED)
    day_column = next((c for c in ("available_on_utc", "available_on") if table.has(c)), None)
    if day_column is None:
        raise lines.FileRejectedError(filename, "header lacks 'available_on_utc' (or "
                                      "'available_on'): the settlement day of each line")

    def convert(row: dict[str, str]) -> lines.SettlementLine:
        category = row["reporting_category"]
        kind = REPORTING_CATEGORIES.get(category)
        if kind is None:
            raise ValidationError("reporting_category", f"unknown category {category!r}")
        currency = lines.currency_code(row["currency"], "currency")
        gross = lines.major_units(row["gross"], currency, "gross")
        fee = lines.major_units(row["fee"], currency, "fee")
        net = lines.major_units(row["net"], currency, "net")
        if gross - fee != net:
            raise ValidationError("net", f"{row['net']} is not gross - fee "
                                         f"({row['gross']} - {row['fee']})")
        source = row.get("source_id", "")
        reference = row.get("payment_intent_id") or row.get("charge_id") or source
        payout = row.get("automatic_payout_id") or (source if kind == lines.PAYOUT else "")
        return lines.SettlementLine(
            NAME, lines.required(row, "balance_transaction_id"),
            reference or lines.required(row, "balance_transaction_id"),
            row.get("payment_metadata[paysignal_payment_id]") or None, kind, gross, fee,
            currency, lines.utc_day(lines.required(row, day_column), day_column), net, currency,
            payout or None)

    return lines.parse_rows(table.rows(), convert)


SETTLEMENT_REPORT = lines.ReportFormat(
    NAME, "Stripe itemized reports (balance change from activity, payout reconciliation)",
    REPORT_NAME, parse_report,
    "\n".join([
        "CSV with one header row; columns are found by name, in any order, and columns paysignal "
        "does not use are ignored. Amounts are decimals in the currency's major unit, currency "
        "codes lower case; `net` must equal `gross - fee`. Gross is negative for money out "
        "(refunds, disputes, payouts). Files named like `…balance_change_from_activity…csv` or "
        "`…payout_reconciliation…csv`. A CSV has no trailer, so the worker takes a file only "
        "once it has not changed for `PAYSIGNAL_SETTLEMENT_MIN_AGE_S`.", "",
        lines.columns_table([
            ("balance_transaction_id", "the line's identity: a line is never imported twice "
                                       "(required)"),
            ("available_on_utc", "settlement day (or `available_on`; one is required)"),
            ("currency", "ISO 4217, any case (required)"),
            ("gross", "signed amount (required)"), ("fee", "the fee (required)"),
            ("net", "gross − fee (required; checked)"),
            ("reporting_category", "the kind of line, below (required)"),
            ("payment_intent_id", "the payment's reference (optional; else `charge_id`, else "
                                  "`source_id`)"),
            ("payment_metadata[paysignal_payment_id]", "our payment id (optional)"),
            ("automatic_payout_id", "the payout that pays the line out (optional)")]),
        "", lines.kinds_sentence("reporting_category", REPORTING_CATEGORIES)]),
    complete_by_footer=False)
