"""Read model for SLIs: the events behind the catalogue's metrics, read from the tables of
record, so the SLO module can count good and total events without Prometheus.

Append-only sources are read incrementally after a mark (an autoincrement id, or a time for
idempotency records, which have none); a reader keeps the mark and asks again for what is new.
Reconciliation figures change as days are re-run, so they are read whole for a time range."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, select

from engine.domain.states import PaymentState
from engine.storage.repository import utc
from engine.storage.tables import (
    idempotency_keys,
    payment_transitions,
    payments,
    provider_attempts,
    recon_breaks,
    recon_checkpoint_amounts,
    recon_checkpoints,
    webhook_events,
)

BREAK_AGE_LIMIT = timedelta(hours=48)
# Idempotency records are stamped when they finish; read them this long after, so none is missed.
TIME_MARK_LAG = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    labels: dict[str, str]
    value: float = 0.0  # histograms: the observed value (seconds)
    weight: int = 1  # events it stands for (lines, or minor units of one currency)


def _micros(at: datetime) -> int:
    return int(utc(at).timestamp() * 1_000_000)


BATCH = 200_000  # events per read: the rollup moves its mark batch by batch


def _provider_calls(engine: Engine, mark: int, until: datetime) -> tuple[list[Event], int]:
    t = provider_attempts.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.id, t.at, t.provider, t.operation, t.outcome, t.duration_ms)
                            .where(t.id > mark).order_by(t.id).limit(BATCH)).all()
    return ([Event(utc(r.at), {"provider": r.provider, "operation": r.operation,
                                "outcome": r.outcome}, r.duration_ms / 1000) for r in rows],
            rows[-1].id if rows else mark)


def _webhooks(engine: Engine, mark: int, until: datetime) -> tuple[list[Event], int]:
    t = webhook_events.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.id, t.received_at, t.provider, t.result)
                            .where(t.id > mark).order_by(t.id).limit(BATCH)).all()
    return ([Event(utc(r.received_at), {"provider": r.provider, "result": r.result})
             for r in rows], rows[-1].id if rows else mark)


def _http_requests(engine: Engine, mark: int, until: datetime) -> tuple[list[Event], int]:
    """Mutating API requests, as recorded with their Idempotency-Key and response code."""
    t = idempotency_keys.c
    upto = until - TIME_MARK_LAG
    since = datetime.fromtimestamp(mark / 1_000_000, UTC) if mark else datetime(1970, 1, 1,
                                                                                  tzinfo=UTC)
    with engine.connect() as conn:
        rows = conn.execute(select(t.finished_at, t.response_code).where(
            t.finished_at > since, t.finished_at <= upto, t.response_code.is_not(None))).all()
    return ([Event(utc(r.finished_at), {"status": str(r.response_code), "method": "POST"})
             for r in rows], max(mark, _micros(upto)) if upto > since else mark)


def _unknown_resolutions(engine: Engine, mark: int, until: datetime) -> tuple[list[Event], int]:
    t = payment_transitions.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.id, t.payment_id, t.at, payments.c.provider)
                            .join(payments, payments.c.id == t.payment_id)
                            .where(t.id > mark, t.from_state == PaymentState.UNKNOWN.value).order_by(t.id)
                            .limit(BATCH)).all()
        ids = sorted({r.payment_id for r in rows})
        entered: dict[str, list[tuple[int, datetime]]] = {}
        for i in range(0, len(ids), 1000):
            for e in conn.execute(select(t.payment_id, t.id, t.at).where(
                    t.payment_id.in_(ids[i:i + 1000]), t.to_state == PaymentState.UNKNOWN.value)):
                entered.setdefault(e.payment_id, []).append((e.id, utc(e.at)))
    events = []
    for r in rows:
        since = max((e for e in entered.get(r.payment_id, []) if e[0] < r.id), default=None)
        if since is not None:
            events.append(Event(utc(r.at), {"provider": r.provider},
                                max(0.0, (utc(r.at) - since[1]).total_seconds())))
    return events, rows[-1].id if rows else mark


def _webhook_lags(engine: Engine, mark: int, until: datetime) -> tuple[list[Event], int]:
    t = webhook_events.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.id, t.received_at, t.sent_at, t.provider)
                            .where(t.id > mark).order_by(t.id).limit(BATCH)).all()
    return ([Event(utc(r.received_at), {"provider": r.provider},
                   max(0.0, (utc(r.received_at) - utc(r.sent_at)).total_seconds()))
             for r in rows if r.sent_at is not None], rows[-1].id if rows else mark)


INCREMENTAL = {
    "paysignal_provider_call_duration_seconds": _provider_calls,
    "paysignal_webhook_events_total": _webhooks,
    "paysignal_webhook_processing_lag_seconds": _webhook_lags,
    "paysignal_http_requests_total": _http_requests,
    "paysignal_unknown_outcome_resolution_seconds": _unknown_resolutions,
}


def new_events(engine: Engine, metric: str, mark: int,
               until: datetime) -> tuple[list[Event], int]:
    """Events of an append-only metric recorded after `mark` (at most a batch of them), and
    the new mark. Call again until the mark stops moving."""
    return INCREMENTAL[metric](engine, mark, until)


@dataclass(frozen=True, slots=True)
class ReconciliationFigure:
    provider: str
    settled_on_start: datetime
    result: str  # matched | break
    value: int  # lines, or minor units of `currency`
    currency: str | None = None  # amounts only


def reconciliation_lines(engine: Engine, since: datetime,
                         until: datetime | None = None) -> list[ReconciliationFigure]:
    """Settlement lines matched and breaks raised, per provider-day (no money: the SLI that
    counts them never adds currencies together)."""
    c = recon_checkpoints.c
    return [ReconciliationFigure(r.provider, day, result, count)
            for r, day in _settled_days(engine, c, [c.matched_count, c.break_count], since, until)
            for result, count in (("matched", r.matched_count), ("break", r.break_count))]


def reconciliation_amounts(engine: Engine, since: datetime,
                           until: datetime | None = None) -> list[ReconciliationFigure]:
    """Amounts matched and at stake in breaks, per provider-day and currency."""
    c = recon_checkpoint_amounts.c
    return [ReconciliationFigure(r.provider, day, result, minor, r.currency)
            for r, day in _settled_days(engine, c, [c.currency, c.matched_minor, c.break_minor],
                                        since, until)
            for result, minor in (("matched", r.matched_minor), ("break", r.break_minor))]


def _settled_days(engine: Engine, c: Any, columns: list[Any], since: datetime,
                  until: datetime | None) -> list[tuple[Any, datetime]]:
    """Rows of a per-provider-day table settled from `since` to `until` (days inclusive), each
    with its day as the start of that UTC day."""
    query = select(c.provider, c.settled_on, *columns).where(c.settled_on >= since.date())
    if until is not None:
        query = query.where(c.settled_on < until.date() + timedelta(days=1))
    with engine.connect() as conn:
        return [(r, datetime.combine(r.settled_on, time(), tzinfo=UTC))
                for r in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class BreakAge:
    provider: str
    opened_at: datetime
    age: str  # under_48h | over_48h


def break_age_events(engine: Engine, since: datetime, now: datetime) -> list[BreakAge]:
    """Breaks opened since `since`, classed by whether they were handled within 48 hours."""
    b = recon_breaks.c
    out = []
    with engine.connect() as conn:
        for r in conn.execute(select(b.provider, b.status, b.opened_at, b.updated_at)
                              .where(b.opened_at >= since, b.opened_at <= now)):
            opened = utc(r.opened_at)
            handled = utc(r.updated_at) if r.status in ("resolved", "written_off") else now
            late = handled - opened > BREAK_AGE_LIMIT
            out.append(BreakAge(r.provider, opened, "over_48h" if late else "under_48h"))
    return out


@dataclass(frozen=True, slots=True)
class BreakAgeCount:
    provider: str
    age: str
    count: int


def break_ages(engine: Engine, now: datetime) -> list[BreakAgeCount]:
    counts: dict[tuple[str, str], int] = {}
    for e in break_age_events(engine, now - timedelta(days=35), now):
        counts[(e.provider, e.age)] = counts.get((e.provider, e.age), 0) + 1
    return [BreakAgeCount(p, a, n) for (p, a), n in sorted(counts.items())]


def windowed_events(engine: Engine, metric: str, start: datetime,
                    end: datetime) -> Iterator[Event]:
    """Events of the reconciliation metrics in [start, end), read whole."""
    if metric == "paysignal_reconciliation_lines":
        for a in reconciliation_lines(engine, start, end):
            if start <= a.settled_on_start < end:
                yield Event(a.settled_on_start, {"provider": a.provider, "result": a.result},
                            weight=a.value)
    elif metric == "paysignal_reconciliation_amount_minor":
        for a in reconciliation_amounts(engine, start, end):
            if start <= a.settled_on_start < end:
                yield Event(a.settled_on_start, {"provider": a.provider, "result": a.result,
                                                 "currency": a.currency or ""}, weight=a.value)
    elif metric == "paysignal_reconciliation_breaks":
        for b in break_age_events(engine, start, end):
            if b.opened_at < end:
                yield Event(b.opened_at, {"provider": b.provider, "age": b.age})
    else:
        raise KeyError(metric)


WINDOWED = ("paysignal_reconciliation_lines", "paysignal_reconciliation_amount_minor",
            "paysignal_reconciliation_breaks")
