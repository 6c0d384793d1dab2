"""The sandbox's Stripe itemized balance-change report: written from its books for a day."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from engine.domain import settlement_lines as lines

REPORT_COLUMNS = ["balance_transaction_id", "created_utc", "available_on_utc", "currency", "gross",
                  "fee", "net", "reporting_category", "source_id", "description",
                  "payment_intent_id", "automatic_payout_id",
                  "payment_metadata[paysignal_payment_id]"]


_KIND_CATEGORY = {lines.CHARGE: "charge", lines.REFUND: "refund",
                  lines.REFUND_REVERSAL: "refund_failure", lines.CHARGEBACK: "dispute",
                  lines.CHARGEBACK_REVERSAL: "dispute_reversal", lines.FEE: "fee",
                  lines.PAYOUT: "payout", lines.ADJUSTMENT: "other_adjustment"}


def render_report(day_lines: list[lines.SettlementLine], day: date,
                  payout_offsets: Mapping[str, int] | None = None) -> dict[str, bytes]:
    """The sandbox's itemized balance-change report for a day: each line, then one payout per
    currency of the day's net (its `automatic_payout_id` on every line it pays out)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    available = f"{day.isoformat()} 00:00:00"
    nets: dict[str, int] = {}
    batch = lines.digest(day, *(x.provider_reference for x in day_lines[:50]), length=12)

    def payout_of(currency: str) -> str:
        return f"po_{batch.lower()}{currency.lower()}"

    for n, line in enumerate(day_lines):
        currency = line.currency
        payout = payout_of(currency)
        net = line.amount_minor - line.fee_minor
        nets[currency] = nets.get(currency, 0) + net
        created = (datetime.combine(day, datetime.min.time(), UTC) - timedelta(days=1)
                   + timedelta(seconds=n % 86_400))
        writer.writerow([
            line.line_id or "txn_" + lines.digest(line.provider_reference, line.kind, n,
                                                  length=24).lower(),
            created.strftime("%Y-%m-%d %H:%M:%S"), available, currency.lower(),
            lines.major_text(line.amount_minor, currency),
            lines.major_text(line.fee_minor, currency), lines.major_text(net, currency),
            _KIND_CATEGORY[line.kind],
            ("ch_" if line.kind == lines.CHARGE else "re_" if line.kind == lines.REFUND
             else "dp_") + lines.digest(line.provider_reference, n, length=24).lower(),
            "", line.provider_reference, payout, line.payment_reference or ""])
    for currency, net in sorted(nets.items()):
        payout = payout_of(currency)
        paid = net + (payout_offsets or {}).get(currency, 0)
        writer.writerow([f"txn_{payout}", f"{day.isoformat()} 06:00:00", available,
                         currency.lower(), lines.major_text(-paid, currency), "0",
                         lines.major_text(-paid, currency), "payout", payout,
                         "STRIPE PAYOUT", "", payout, ""])
    return {f"Itemized_balance_change_from_activity_{day.isoformat()}_to_"
            f"{(day + timedelta(days=1)).isoformat()}_UTC.csv": out.getvalue().encode()}
