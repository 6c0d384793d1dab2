"""What each provider should settle, read from our own ledger: captures (with their fees) and
refunds, each expected on the day after it happened (T+1, in UTC). The simulator's files and the
matcher both start from here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, select

from engine.adapters.repository import utc
from engine.adapters.tables import journal_entries as je
from engine.adapters.tables import journal_transactions as jt
from engine.adapters.tables import payments

SETTLEMENT_DELAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ExpectedLine:
    provider: str
    provider_reference: str
    payment_id: str
    kind: str  # charge | refund
    amount_minor: int  # signed like settlement lines: charges positive, refunds negative
    fee_minor: int
    currency: str
    expected_on: date


def expected_settlement(engine: Engine, provider: str | None = None) -> list[ExpectedLine]:
    query = (select(jt.c.id, jt.c.payment_id, jt.c.kind, jt.c.currency, jt.c.at, je.c.account,
                    je.c.side, je.c.amount_minor, payments.c.provider,
                    payments.c.provider_reference)
             .join(je, je.c.transaction_id == jt.c.id)
             .join(payments, payments.c.id == jt.c.payment_id)
             .where(jt.c.kind.in_(("capture", "provider_fee", "refund")))
             .order_by(jt.c.at, jt.c.id))
    if provider:
        query = query.where(payments.c.provider == provider)
    captures: dict[str, dict[str, object]] = {}
    fees: dict[str, int] = {}
    refunds: list[ExpectedLine] = []
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    for r in rows:
        on = utc(r.at).date() + SETTLEMENT_DELAY  # type: ignore[union-attr]
        if r.kind == "capture" and r.account.startswith("provider_receivable:") \
                and r.side == "debit":
            captures[r.payment_id] = {"row": r, "on": on}
        elif r.kind == "provider_fee" and r.side == "debit":
            fees[r.payment_id] = fees.get(r.payment_id, 0) + r.amount_minor
        elif r.kind == "refund" and r.side == "debit":
            refunds.append(ExpectedLine(r.provider, r.provider_reference, r.payment_id, "refund",
                                        -r.amount_minor, 0, r.currency, on))
    charges = [ExpectedLine(c["row"].provider, c["row"].provider_reference,  # type: ignore[attr-defined]
                            pid, "charge", c["row"].amount_minor, fees.get(pid, 0),  # type: ignore[attr-defined]
                            c["row"].currency, c["on"])  # type: ignore[attr-defined,arg-type]
               for pid, c in captures.items()]
    return charges + refunds
