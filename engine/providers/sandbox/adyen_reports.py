"""The sandbox's Adyen Settlement details report: written from its books for a day."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone

from engine.domain import settlement_lines as lines

REPORT_COLUMNS = [
    "Company Account", "Merchant Account", "Psp Reference", "Merchant Reference",
    "Payment Method", "Creation Date", "TimeZone", "Type", "Modification Reference",
    "Gross Currency", "Gross Debit (GC)", "Gross Credit (GC)", "Exchange Rate", "Net Currency",
    "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)", "Markup (NC)", "Scheme Fees (NC)",
    "Interchange (NC)", "Payment Method Variant", "Modification Merchant Reference",
    "Batch Number", *(f"Reserved{n}" for n in range(4, 11))]


_KIND_TYPE = {lines.CHARGE: "Settled", lines.REFUND: "Refunded",
              lines.REFUND_REVERSAL: "RefundedReversed", lines.CHARGEBACK: "Chargeback",
              lines.CHARGEBACK_REVERSAL: "ChargebackReversed", lines.FEE: "Fee",
              lines.PAYOUT: "MerchantPayout", lines.ADJUSTMENT: "MiscCosts"}


def _fee_parts(fee: int) -> list[int]:
    """A fee split the way Adyen itemizes it: commission, markup, scheme fees, interchange."""
    interchange, scheme, markup = fee * 5 // 10, fee * 2 // 10, fee // 10
    return [fee - interchange - scheme - markup, markup, scheme, interchange]


def batch_number(day: date, day_lines: list[lines.SettlementLine]) -> int:
    """The sandbox's batch for a settlement day's lines: the day (numbered from 2020) and three
    digits of its own, so two sandboxes' batches of one day stay apart."""
    own = int(lines.digest(*(x.provider_reference for x in day_lines[:50]), length=6), 16)
    return ((day - date(2020, 1, 1)).days + 1) * 1000 + own % 1000


def render_report(day_lines: list[lines.SettlementLine], day: date,
                  payout_offsets: Mapping[str, int] | None = None) -> dict[str, bytes]:
    """The sandbox's settlement details report for the day's batch, its payout rows last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    batch = batch_number(day, day_lines)
    cet = timezone(timedelta(hours=1))
    nets: dict[str, int] = {}

    def money(minor: int | None, currency: str) -> str:
        return "" if not minor else lines.major_text(minor, currency)

    for n, line in enumerate(day_lines):
        currency = line.currency
        when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(seconds=n % 86_400)
        net = line.amount_minor - line.fee_minor
        nets[currency] = nets.get(currency, 0) + net
        parts = _fee_parts(line.fee_minor) if line.fee_minor > 0 else [0, 0, 0, 0]
        modification = line.line_id or ("" if line.kind == lines.CHARGE else hashlib.sha256(
            f"{line.provider_reference}|{n}".encode()).hexdigest()[:16].upper())
        writer.writerow([
            "PaysignalCo", "PaysignalECOM", line.provider_reference,
            line.payment_reference or "", "visa", when.astimezone(cet).strftime(
                "%Y-%m-%d %H:%M:%S"), "CET", _KIND_TYPE[line.kind], modification or psp_of(n),
            currency, money(-line.amount_minor if line.amount_minor < 0 else None, currency),
            money(line.amount_minor if line.amount_minor > 0 else None, currency), "1",
            currency, money(-net if net < 0 else None, currency),
            money(net if net > 0 else None, currency),
            *(money(p, currency) for p in parts), "visa", "", batch, *([""] * 7)])
    for currency, net in sorted(nets.items()):
        net += (payout_offsets or {}).get(currency, 0)
        when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23)
        writer.writerow([
            "PaysignalCo", "PaysignalECOM", "", "", "", when.astimezone(cet).strftime(
                "%Y-%m-%d %H:%M:%S"), "CET", "MerchantPayout",
            f"TX{lines.digest(batch, currency, *(x.provider_reference for x in day_lines[:50]))}"
            f"XT batch {batch}, PaysignalECOM", currency, "", "", "", currency,
            money(net if net > 0 else None, currency), money(-net if net < 0 else None, currency),
            "", "", "", "", "", "", batch, *([""] * 7)])
    return {f"settlement_detail_report_batch_{batch}.csv": out.getvalue().encode()}


def psp_of(n: int) -> str:
    return f"{n:016d}"
