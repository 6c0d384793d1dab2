"""Read side of the double-entry ledger: balances per account and the imbalance check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Case, Engine, case, func, select

from engine.storage.tables import journal_entries as je
from engine.storage.tables import journal_transactions as jt


@dataclass(frozen=True, slots=True)
class Imbalance:
    transaction_id: str
    currency: str
    debits_minus_credits: int


def _signed() -> Case[Any]:
    return case((je.c.side == "debit", je.c.amount_minor), else_=-je.c.amount_minor)


def balances(engine: Engine, payment_id: str | None = None) -> dict[tuple[str, str], int]:
    """(account, currency) -> debits minus credits, in minor units."""
    query = (select(je.c.account, jt.c.currency, func.sum(_signed()))
             .join(jt, jt.c.id == je.c.transaction_id)
             .group_by(je.c.account, jt.c.currency).order_by(je.c.account, jt.c.currency))
    if payment_id:
        query = query.where(jt.c.payment_id == payment_id)
    with engine.connect() as conn:
        return {(a, c): int(v) for a, c, v in conn.execute(query)}


def imbalances(engine: Engine) -> list[Imbalance]:
    """Every journal transaction whose debits and credits differ (should always be empty)."""
    query = (select(jt.c.id, jt.c.currency, func.coalesce(func.sum(_signed()), 0))
             .outerjoin(je, jt.c.id == je.c.transaction_id)
             .group_by(jt.c.id, jt.c.currency)
             .having(func.coalesce(func.sum(_signed()), 0) != 0))
    with engine.connect() as conn:
        return [Imbalance(t, c, int(v)) for t, c, v in conn.execute(query)]


def total_imbalance_minor(engine: Engine) -> int:
    return sum(abs(i.debits_minus_credits) for i in imbalances(engine))


def entries_for_payment(engine: Engine, payment_id: str) -> list[dict[str, object]]:
    query = (select(jt.c.id, jt.c.kind, jt.c.currency, jt.c.at, je.c.account, je.c.side,
                    je.c.amount_minor)
             .join(je, jt.c.id == je.c.transaction_id)
             .where(jt.c.payment_id == payment_id).order_by(jt.c.at, je.c.id))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
