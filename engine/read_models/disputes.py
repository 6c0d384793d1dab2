"""Disputes as finance and the card schemes see them: each provider's monthly dispute ratio
(disputes opened in a month over payments captured in that month, Visa's way of counting) and the
open disputes with their deadlines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from engine.storage.tables import disputes, journal_transactions, payments


@dataclass(frozen=True, slots=True)
class DisputeRate:
    provider: str
    month: date  # its first day
    disputes: int
    captured: int  # payments captured that month

    @property
    def ratio(self) -> float:
        return self.disputes / self.captured if self.captured else 0.0


def month_bounds(at: datetime) -> tuple[datetime, datetime]:
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def dispute_rates(engine: Engine, at: datetime) -> list[DisputeRate]:
    """Each provider's dispute ratio for the calendar month (UTC) of `at`."""
    start, end = month_bounds(at)
    jt = journal_transactions.c
    with engine.connect() as conn:
        opened = {str(p): int(n) for p, n in conn.execute(
            select(disputes.c.provider, func.count())
            .where(disputes.c.opened_at >= start, disputes.c.opened_at < end)
            .group_by(disputes.c.provider))}
        captured = {str(p): int(n) for p, n in conn.execute(
            select(payments.c.provider, func.count(func.distinct(jt.payment_id)))
            .select_from(journal_transactions.join(payments, payments.c.id == jt.payment_id))
            .where(jt.kind == "capture", jt.at >= start, jt.at < end)
            .group_by(payments.c.provider))}
    return [DisputeRate(p, start.date(), opened.get(p, 0), captured.get(p, 0))
            for p in sorted(set(opened) | set(captured))]


def list_disputes(engine: Engine, *, status: str | None = None,
                  provider: str | None = None) -> list[dict[str, Any]]:
    """Disputes, the ones whose evidence is due soonest first."""
    query = select(disputes).order_by(disputes.c.status != "open", disputes.c.due_by,
                                      disputes.c.opened_at)
    if status:
        query = query.where(disputes.c.status == status)
    if provider:
        query = query.where(disputes.c.provider == provider)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
