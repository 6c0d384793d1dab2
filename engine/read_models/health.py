"""Read model for operational detectors: what is stuck, unbalanced or at risk right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select

from engine.domain.states import PaymentState
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
                           ) -> list[StaleUnknown]:
    """Per provider: payments still unknown (since before `older_than`, when given)."""
    query = (select(payments.c.provider, func.count(), func.min(payments.c.updated_at))
             .where(payments.c.state == PaymentState.UNKNOWN.value)
             .group_by(payments.c.provider))
    if older_than is not None:
        query = query.where(payments.c.updated_at < older_than)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [StaleUnknown(p, n, utc(first)) for p, n, first in rows]


@dataclass(frozen=True, slots=True)
class OpenBreaks:
    provider: str
    kind: str
    count: int
    amount_minor: int  # |actual - expected| summed, all currencies
    oldest_opened_at: datetime


def open_breaks_by_kind(engine: Engine) -> list[OpenBreaks]:
    b = recon_breaks.c
    # a duplicate charge puts its whole amount at stake; other breaks their difference
    at_stake = case((b.kind == "duplicate_charge", func.abs(func.coalesce(b.actual_minor, 0))),
                    else_=func.abs(func.coalesce(b.actual_minor, 0)
                                   - func.coalesce(b.expected_minor, 0)))
    with engine.connect() as conn:
        rows = conn.execute(select(b.provider, b.kind, func.count(), func.sum(at_stake),
                                   func.min(b.opened_at))
                            .where(b.status.in_(("open", "investigating")))
                            .group_by(b.provider, b.kind)).all()
    return [OpenBreaks(p, k, n, int(amount or 0), utc(first))
            for p, k, n, amount, first in rows]


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
