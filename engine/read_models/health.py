"""Read model for operational detectors: what is stuck, unbalanced or at risk right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select

from engine.domain.states import PaymentState
from engine.settlement.reconcile import Break
from engine.storage.repository import utc
from engine.storage.tables import (
    alert_notifications,
    outbox,
    payments,
    recon_breaks,
    retry_refusals,
    webhook_rejections,
)


@dataclass(frozen=True, slots=True)
class StaleUnknown:
    provider: str
    count: int
    oldest_since: datetime


def stale_unknown_outcomes(engine: Engine, older_than: datetime | None = None,
                           state: PaymentState = PaymentState.UNKNOWN) -> list[StaleUnknown]:
    """Per provider: payments still unknown — or, with `state`, still awaiting the provider's
    confirmation — since before `older_than`, when given."""
    query = (select(payments.c.provider, func.count(), func.min(payments.c.updated_at))
             .where(payments.c.state == state.value)
             .group_by(payments.c.provider))
    if older_than is not None:
        query = query.where(payments.c.updated_at < older_than)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [StaleUnknown(p, n, utc(first)) for p, n, first in rows]


@dataclass(slots=True)
class OpenBreaks:
    provider: str
    kind: str
    count: int
    at_stake: dict[str, int]  # currency -> minor units in doubt (Break.at_stake), per currency
    oldest_opened_at: datetime


def open_breaks_by_kind(engine: Engine) -> list[OpenBreaks]:
    b = recon_breaks.c
    out: dict[tuple[str, str], OpenBreaks] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(b.provider, b.kind, b.provider_reference, b.payment_id,
                                   b.currency, b.expected_minor, b.actual_minor,
                                   b.expected_currency, b.opened_at)
                            .where(b.status.in_(("open", "investigating")))).all()
    for r in rows:
        opened = utc(r.opened_at)
        group = out.setdefault((r.provider, r.kind), OpenBreaks(r.provider, r.kind, 0, {}, opened))
        group.count += 1
        group.oldest_opened_at = min(group.oldest_opened_at, opened)
        currency, minor = Break(r.kind, r.provider, r.provider_reference, r.payment_id,
                                r.currency, r.expected_minor, r.actual_minor,
                                r.expected_currency).at_stake()
        if currency:
            group.at_stake[currency] = group.at_stake.get(currency, 0) + minor
    return sorted(out.values(), key=lambda g: (g.provider, g.kind))


def oldest_pending_outbox_event(engine: Engine) -> tuple[int, datetime | None]:
    with engine.connect() as conn:
        count, first = conn.execute(select(func.count(), func.min(outbox.c.occurred_at))
                                    .where(outbox.c.published_at.is_(None))).one()
    return count, utc(first)


def notification_states(engine: Engine, since: datetime) -> list[tuple[str, str, int]]:
    """(receiver, delivered | pending | failing, count) of alert notifications since `since`."""
    n = alert_notifications.c
    state = case((n.delivered_at.is_not(None), "delivered"), (n.attempts > 0, "failing"),
                 else_="pending")
    with engine.connect() as conn:
        rows = conn.execute(select(n.receiver, state, func.count()).where(n.created_at >= since)
                            .group_by(n.receiver, state)).all()
    return [(r, s, c) for r, s, c in rows]


def rejected_webhooks(engine: Engine, since: datetime) -> list[tuple[str, int]]:
    """(provider, notifications refused for a bad signature) since `since`."""
    w = webhook_rejections.c
    with engine.connect() as conn:
        rows = conn.execute(select(w.provider, func.sum(w.count)).where(
            w.reason == "bad_signature", w.minute >= _minute(since)).group_by(w.provider)).all()
    return [(p, int(n)) for p, n in rows]


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def retry_refusal_counts(engine: Engine, since: datetime) -> list[tuple[str, int]]:
    """(provider, retries the retry budget refused) since `since`."""
    r = retry_refusals.c
    with engine.connect() as conn:
        rows = conn.execute(select(r.provider, func.count()).where(r.at >= since)
                            .group_by(r.provider)).all()
    return [(p, n) for p, n in rows]
