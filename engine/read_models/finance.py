"""Finance's view of a period: fees the providers took, disputes, and how long payouts took to
reach the bank — per provider and currency (amounts are never added across currencies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select

from engine.storage.tables import disputes, journal_entries, journal_transactions, payouts


@dataclass
class ProviderFinance:
    provider: str
    fees_minor: dict[str, int] = field(default_factory=dict)  # currency -> fee expense
    disputes_opened: int = 0
    disputed_minor: dict[str, int] = field(default_factory=dict)
    disputes_won: int = 0
    disputes_lost: int = 0
    payouts: int = 0
    payouts_arrived: int = 0
    payout_days: list[int] = field(default_factory=list)  # paid -> arrived, per arrived payout

    @property
    def mean_payout_days(self) -> float | None:
        return sum(self.payout_days) / len(self.payout_days) if self.payout_days else None


def finance_summary(engine: Engine, start: datetime, end: datetime) -> list[ProviderFinance]:
    jt, je = journal_transactions.c, journal_entries.c
    out: dict[str, ProviderFinance] = {}

    def of(provider: str) -> ProviderFinance:
        return out.setdefault(provider, ProviderFinance(provider))

    with engine.connect() as conn:
        for account, currency, side, total in conn.execute(
                select(je.account, jt.currency, je.side, func.sum(je.amount_minor))
                .join(journal_transactions, jt.id == je.transaction_id)
                .where(je.account.startswith("provider_fees:"), jt.at >= start, jt.at < end)
                .group_by(je.account, jt.currency, je.side)):
            figures = of(str(account).split(":", 1)[1]).fees_minor
            figures[currency] = figures.get(currency, 0) + (int(total) if side == "debit"
                                                            else -int(total))
        d = disputes.c
        for provider, currency, status, count, amount in conn.execute(
                select(d.provider, d.currency, d.status, func.count(), func.sum(d.amount_minor))
                .where(d.opened_at >= start, d.opened_at < end)
                .group_by(d.provider, d.currency, d.status)):
            f = of(provider)
            f.disputes_opened += int(count)
            f.disputed_minor[currency] = f.disputed_minor.get(currency, 0) + int(amount)
            if status == "won":
                f.disputes_won += int(count)
            elif status == "lost":
                f.disputes_lost += int(count)
        p = payouts.c
        for provider, paid_on, arrived_on in conn.execute(
                select(p.provider, p.paid_on, p.arrived_on)
                .where(p.paid_on >= start.date(), p.paid_on < end.date(), p.amount_minor > 0)):
            f = of(provider)
            f.payouts += 1
            if arrived_on is not None:
                f.payouts_arrived += 1
                f.payout_days.append((arrived_on - paid_on).days)
    return [out[k] for k in sorted(out)]
