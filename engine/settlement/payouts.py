"""Payouts: each provider's transfer to the bank, as its settlement report states it (Stripe's
`payout` line and the lines carrying its `automatic_payout_id`, Adyen's `MerchantPayout` per batch
and net currency, PayPal's T0400 withdrawal and its section's lines). A payout's amount must be the
net of the lines it pays out; a difference is a `payout_lines_mismatch` break."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update

from engine.domain.settlement_lines import PAYOUT, digest
from engine.settlement.kinds import kinds_of
from engine.settlement.reconcile import Break, record_breaks
from engine.storage.tables import payouts, recon_breaks, settlement_lines

PAYOUT_KINDS = kinds_of("payout")


@dataclass(frozen=True, slots=True)
class PayoutCheck:
    payouts: int
    opened: list[Break]
    closed: list[Break]


def payout_id(provider: str, reference: str, currency: str) -> str:
    return f"pyo_{digest(provider, reference, currency, length=24).lower()}"


def refresh_payouts(engine: Engine, provider: str, days: set[date],
                    actor: str = "reconciler") -> PayoutCheck:
    """Record the payouts whose payout line settles on `days`, or that lines of those days are
    paid out by, with the net of their lines; check each against it."""
    if not days:
        return PayoutCheck(0, [], [])
    lines = settlement_lines.c
    now = datetime.now(UTC)
    with engine.begin() as conn:
        references = set(conn.execute(select(lines.payout_reference).where(
            lines.provider == provider, lines.settled_on.in_(sorted(days)),
            lines.payout_reference.is_not(None)).distinct()).scalars())
        if not references:
            return PayoutCheck(0, [], [])
        found: list[tuple[date, Break]] = []
        count = 0
        for reference, currency, amount, paid_on in _payout_lines(conn, provider, references):
            net, line_count = _lines_net(conn, provider, reference, currency)
            pid = payout_id(provider, reference, currency)
            _upsert(conn, pid, provider, reference, currency, amount, net, line_count, paid_on,
                    now)
            count += 1
            if amount != net:
                found.append((paid_on, Break("payout_lines_mismatch", provider, reference, None,
                                             currency, net, amount, currency, pid)))
        opened, closed = record_breaks(
            conn, found, PAYOUT_KINDS, and_(recon_breaks.c.provider == provider,
                                            recon_breaks.c.provider_reference.in_(
                                                sorted(references))), actor, now)
    return PayoutCheck(count, opened, closed)


def _payout_lines(conn: Connection, provider: str, references: set[str],
                  ) -> list[tuple[str, str, int, date]]:
    lines = settlement_lines.c
    rows = conn.execute(select(lines.payout_reference, lines.net_currency,
                               func.sum(lines.net_minor), func.min(lines.settled_on))
                        .where(lines.provider == provider, lines.kind == PAYOUT,
                               lines.payout_reference.in_(sorted(references)))
                        .group_by(lines.payout_reference, lines.net_currency)).all()
    return [(str(r[0]), str(r[1]), -int(r[2]), r[3]) for r in rows]


def _lines_net(conn: Connection, provider: str, reference: str, currency: str,
               ) -> tuple[int, int]:
    lines = settlement_lines.c
    net, count = conn.execute(select(func.coalesce(func.sum(lines.net_minor), 0), func.count())
                              .where(lines.provider == provider,
                                     lines.payout_reference == reference,
                                     lines.net_currency == currency, lines.kind != PAYOUT)).one()
    return int(net), int(count)


def _upsert(conn: Connection, pid: str, provider: str, reference: str, currency: str,
            amount: int, net: int, line_count: int, paid_on: date, now: datetime) -> None:
    figures = {"amount_minor": amount, "lines_net_minor": net, "line_count": line_count,
               "paid_on": paid_on, "updated_at": now}
    if conn.execute(update(payouts).where(payouts.c.id == pid).values(**figures)).rowcount:
        return
    conn.execute(insert(payouts).values(id=pid, provider=provider, reference=reference,
                                        currency=currency, **figures))


def list_payouts(engine: Engine, *, provider: str | None = None, status: str | None = None,
                 ) -> list[dict[str, Any]]:
    """Payouts, newest first, with where each stands: `arrived` (a bank credit matched it),
    `in_transit`."""
    query = select(payouts).order_by(payouts.c.paid_on.desc(), payouts.c.provider,
                                     payouts.c.currency)
    if provider:
        query = query.where(payouts.c.provider == provider)
    if status == "arrived":
        query = query.where(payouts.c.bank_credit_id.is_not(None))
    elif status == "in_transit":
        query = query.where(payouts.c.bank_credit_id.is_(None))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        open_breaks = conn.execute(select(recon_breaks.c.line_key, recon_breaks.c.kind).where(
            recon_breaks.c.status.in_(("open", "investigating")),
            or_(*(recon_breaks.c.kind == k for k in (*PAYOUT_KINDS, *kinds_of("bank")))))).all()
    problems: dict[str, list[str]] = {}
    for key, kind in open_breaks:
        problems.setdefault(str(key), []).append(str(kind))
    for r in rows:
        r["status"] = "arrived" if r["bank_credit_id"] else "in_transit"
        r["breaks"] = sorted(problems.get(str(r["id"]), []))
    return rows
