"""The sandbox's PayPal STL: written from its books for a day, footers and all."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone

from engine.domain import settlement_lines as lines
from engine.providers.paypal.reports import Totals, add_totals

REPORT_COLUMNS = [
    "Transaction ID", "Invoice ID", "PayPal Reference ID", "PayPal Reference ID Type",
    "Transaction Event Code", "Transaction Initiation Date", "Transaction Completion Date",
    "Transaction Debit or Credit", "Gross Transaction Amount", "Gross Transaction Currency",
    "Fee Debit or Credit", "Fee Amount", "Fee Currency", "Custom Field", "Consumer ID",
    "Payment Tracking ID", "Store ID", "Bank Reference ID", "Credit Transactional Fee",
    "Credit Promotional Fee", "Credit Term"]


_KIND_CODE = {lines.CHARGE: "T0006", lines.REFUND: "T1107", lines.CHARGEBACK: "T1201",
              lines.CHARGEBACK_REVERSAL: "T1202", lines.FEE: "T0106", lines.PAYOUT: "T0400",
              lines.ADJUSTMENT: "T0200", lines.REFUND_REVERSAL: "T1202"}


def _stl_time(moment: datetime) -> str:
    return moment.astimezone(_PACIFIC).strftime("%Y/%m/%d %H:%M:%S %z")


_PACIFIC = timezone(timedelta(hours=-8))


def render_report(day_lines: list[lines.SettlementLine], day: date,
                  payout_offsets: Mapping[str, int] | None = None) -> dict[str, bytes]:
    """The sandbox's STL for a day: one section, the day's withdrawal per currency last, and
    footers that agree with the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    start = datetime.combine(day, datetime.min.time(), _PACIFIC)
    writer.writerow(["RH", _stl_time(start + timedelta(days=1, hours=4)), "A", "PAYSIGNALSBX", 9])
    writer.writerow(["FH", 1])
    writer.writerow(["SH", _stl_time(start), _stl_time(start + timedelta(seconds=86_399)),
                     "PAYSIGNALSBX", ""])
    writer.writerow(["CH", *REPORT_COLUMNS])
    totals: Totals = {}
    nets: dict[str, int] = {}
    rows = 0

    def row(transaction: str, reference: str, code: str, amount: int, fee: int, currency: str,
            custom: str, n: int) -> None:
        nonlocal rows
        when = _stl_time(start - timedelta(days=1) + timedelta(seconds=n % 86_400))
        direction, fee_direction = ("CR" if amount > 0 else "DR"), ("CR" if fee < 0 else "DR")
        writer.writerow(["SB", transaction, "", reference, "TXN" if reference else "", code,
                         when, when, direction, abs(amount), currency, fee_direction, abs(fee),
                         currency, custom, "", "", "", "", "", "", ""])
        add_totals(totals, currency, direction, abs(amount), fee_direction, abs(fee))
        rows += 1

    direct_charges: set[str] = set()
    for n, line in enumerate(day_lines):
        transaction = line.line_id or hashlib.sha256(
            f"{line.provider_reference}|{line.kind}|{n}".encode()).hexdigest()[:17].upper()
        # a capture's own transaction is the payment's reference; a second charge of the same
        # payment (or a line given its own id) is a transaction of its own that refers to it
        direct = (line.kind == lines.CHARGE and not line.line_id
                  and line.provider_reference not in direct_charges)
        if direct:
            direct_charges.add(line.provider_reference)
        row(line.provider_reference if direct else transaction,
            "" if direct else line.provider_reference, _KIND_CODE[line.kind], line.amount_minor,
            line.fee_minor, line.currency, line.payment_reference or "", n)
        nets[line.currency] = nets.get(line.currency, 0) + line.amount_minor - line.fee_minor
    for currency, net in sorted(nets.items()):
        row(lines.digest("withdrawal", day, currency,
                         *(x.provider_reference for x in day_lines[:50]), length=17),
            "", "T0400", -(net + (payout_offsets or {}).get(currency, 0)), 0, currency, "",
            86_000)
    footer = [[currency, *figures] for currency, figures in sorted(totals.items())]
    for figures in footer:
        writer.writerow(["SF", *figures])
    writer.writerow(["SC", rows])
    for figures in footer:
        writer.writerow(["RF", *figures])
    writer.writerow(["RC", rows])
    writer.writerow(["FF", rows])
    return {f"STL-{day.strftime('%Y%m%d')}.01.009.CSV": ("\ufeff" + out.getvalue()).encode()}
