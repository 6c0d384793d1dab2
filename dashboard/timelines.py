"""Reads over time for the Overview and the incident view: per provider and minute, what the
providers answered, unknown outcomes opened and resolved, duplicate-request defences, and the
periods alerts fired; per provider the figures of its tiles; per currency the money at risk.
Pure reads: no Streamlit here. Amounts stay integer minor units per currency."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, case, func, or_, select
from sqlalchemy.sql import ColumnElement

from dashboard.filters import Filters
from dashboard.queries import payment_filters
from engine.domain.states import PaymentState
from engine.settlement.reconcile import Break
from engine.storage.repository import utc
from engine.storage.tables import (
    alert_firings,
    disputes,
    duplicate_risk_events,
    payment_transitions,
    payments,
    provider_attempts,
    recon_breaks,
    sli_minutes,
)

BUCKET_MINUTES = (1, 5, 15, 60, 360, 1440)
MAX_POINTS = 360  # buckets on one time axis: readable, and cheap for the browser to draw

# What a provider call's outcome means on the charts (OutcomeKind values -> series)
CALL_SERIES = {"succeeded": "succeeded", "declined": "declined", "submitted": "submitted",
               "retryable_error": "error", "rejected": "error", "unknown": "timed out",
               "not_found": "succeeded"}
FAILING = ("error", "timed out")
RISK_SERIES = {"replayed": "idempotent replays", "conflict": "key conflicts",
               "in_flight": "in-flight rejections"}
UNKNOWN = PaymentState.UNKNOWN.value
AWAITING = PaymentState.AWAITING_CONFIRMATION.value
AT_RISK_STATES = {UNKNOWN: "unknown outcome", AWAITING: "awaiting confirmation"}


def bucket_minutes(start: datetime, end: datetime, points: int = MAX_POINTS) -> int:
    """The finest bucket that keeps the axis within `points` buckets."""
    span = max((end - start).total_seconds() / 60, 1)
    return next((m for m in BUCKET_MINUTES if span / m <= points), BUCKET_MINUTES[-1])


def _minute(engine: Engine, column: Any) -> ColumnElement[Any]:
    """The column's UTC minute, grouped in the database (a text or timestamp per dialect)."""
    if engine.dialect.name == "postgresql":
        return func.date_trunc("minute", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:%M", column)


@dataclass(frozen=True)
class Window:
    """The stretch of time a page's axis shows: the filter's days, narrowed to when anything
    happened in them (a demo day is six hours of a seven-day range)."""

    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return bucket_minutes(self.start, self.end)


def activity_window(engine: Engine, f: Filters) -> Window | None:
    a = provider_attempts.c
    where = [a.at >= f.since, a.at < f.until] + ([a.provider == f.provider] if f.provider else [])
    with engine.connect() as conn:
        first, last = conn.execute(select(func.min(a.at), func.max(a.at)).where(*where)).one()
    if first is None:
        return None
    return Window(utc(first), utc(last) + timedelta(minutes=1))


def _per_minute(engine: Engine, query: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["at", "provider", "series", "value"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["value"] = frame["value"].astype("int64")
    return frame


def timeline(engine: Engine, f: Filters, window: Window, provider: str = "") -> pd.DataFrame:
    """Per bucket of `window.minutes`, provider and series: provider calls by outcome
    (CALL_SERIES), "unknown opened" / "unknown resolved", and RISK_SERIES. Long form
    (at, provider, series, value); buckets with nothing are absent."""
    provider = provider or f.provider
    scoped = f if not provider else Filters(f.start, f.end, provider, f.currency, f.merchant)
    a, t, e, p = (provider_attempts.c, payment_transitions.c, duplicate_risk_events.c,
                  payments.c)
    calls_minute, moves_minute, risk_minute = (_minute(engine, a.at), _minute(engine, t.at),
                                               _minute(engine, e.at))
    outcome = case(*[(a.outcome == k, v) for k, v in CALL_SERIES.items()], else_="error")
    calls = (select(calls_minute, a.provider, outcome, func.count())
             .where(a.at >= window.start, a.at < window.end, a.operation == "authorize")
             .group_by(calls_minute, a.provider, outcome))
    if scoped.provider or scoped.currency or scoped.merchant:
        calls = calls.join_from(provider_attempts, payments, payments.c.id == a.payment_id)\
            .where(*payment_filters(scoped, created=False))
    opened_or_resolved = case((t.to_state == UNKNOWN, "unknown opened"),
                              else_="unknown resolved")
    moves = (select(moves_minute, p.provider, opened_or_resolved, func.count())
             .join_from(payment_transitions, payments, p.id == t.payment_id)
             .where(t.at >= window.start, t.at < window.end,
                    or_(t.to_state == UNKNOWN, t.from_state == UNKNOWN),
                    *payment_filters(scoped, created=False))
             .group_by(moves_minute, p.provider, opened_or_resolved))
    risk_series = case(*[(e.outcome == k, v) for k, v in RISK_SERIES.items()])
    risk = (select(risk_minute, e.provider, risk_series, func.count())
            .where(e.at >= window.start, e.at < window.end,
                   e.outcome.in_(list(RISK_SERIES)),
                   *([e.provider == scoped.provider] if scoped.provider else []),
                   *([e.merchant_id == scoped.merchant] if scoped.merchant else []))
            .group_by(risk_minute, e.provider, risk_series))
    frame = pd.concat([_per_minute(engine, q) for q in (calls, moves, risk)], ignore_index=True)
    if frame.empty:
        return frame
    frame["at"] = frame["at"].dt.floor(f"{window.minutes}min")
    summed: pd.DataFrame = frame.groupby(["at", "provider", "series"], as_index=False).agg(
        value=("value", "sum"))
    return summed


def failure_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """From `timeline`: per bucket and provider, the share of authorizations that failed
    technically (error) and that timed out, in percent."""
    calls = frame[frame["series"].isin(set(CALL_SERIES.values()))]
    if calls.empty:
        return pd.DataFrame(columns=["at", "provider", "series", "percent"])
    wide = calls.pivot_table(index=["at", "provider"], columns="series", values="value",
                             aggfunc="sum", fill_value=0)
    total = wide.sum(axis=1)
    out = [pd.DataFrame({"at": wide.index.get_level_values("at"),
                         "provider": wide.index.get_level_values("provider"),
                         "series": f"{name} rate",
                         "percent": (100 * wide[name] / total).round(2).values
                         if name in wide else 0.0}) for name in FAILING]
    return pd.concat(out, ignore_index=True)


def alert_bands(engine: Engine, window: Window, provider: str = "",
                now: datetime | None = None) -> pd.DataFrame:
    """Periods alerts fired that overlap the window (a firing one ends at `now`), for the
    provider given (and alerts with no provider)."""
    b = alert_firings.c
    with engine.connect() as conn:
        rows = conn.execute(select(b.name, b.labels, b.summary, b.starts_at, b.ends_at)
                            .where(b.starts_at < window.end,
                                   or_(b.ends_at.is_(None), b.ends_at > window.start))
                            .order_by(b.starts_at)).all()
    out = []
    for r in rows:
        labels = json.loads(r.labels)
        if provider and labels.get("provider") not in (None, provider):
            continue
        end = utc(r.ends_at) or now or window.end
        out.append({"alert": r.name, "severity": labels.get("severity", ""),
                    "provider": labels.get("provider", ""), "summary": r.summary,
                    "start": max(utc(r.starts_at), window.start), "end": min(end, window.end),
                    "firing": r.ends_at is None})
    return pd.DataFrame(out, columns=["alert", "severity", "provider", "summary", "start", "end",
                                      "firing"])


def provider_tiles(engine: Engine, f: Filters, now: datetime) -> pd.DataFrame:
    """Per provider with authorizations in the range: authorizations, their technical
    success, p95 latency of all its calls, unknown outcomes and submissions awaiting
    confirmation open now (with the oldest's age in minutes)."""
    a, p = provider_attempts.c, payments.c
    where = [a.at >= f.since, a.at < f.until] + ([a.provider == f.provider] if f.provider else [])
    failing = [k for k, v in CALL_SERIES.items() if v in FAILING]
    with engine.connect() as conn:
        calls = conn.execute(
            select(a.provider, func.count(),
                   func.sum(case((a.outcome.in_(failing), 1), else_=0)))
            .where(*where, a.operation == "authorize").group_by(a.provider)).all()
        durations = _p95(conn, engine, where)
        stuck = conn.execute(
            select(p.provider, p.state, func.count(), func.min(p.updated_at))
            .where(p.state.in_([UNKNOWN, AWAITING]), *payment_filters(f, created=False))
            .group_by(p.provider, p.state)).all()
    open_now = {(r[0], r[1]): (int(r[2]), utc(r[3])) for r in stuck}

    def age(key: tuple[str, str]) -> float | None:
        since = open_now.get(key, (0, None))[1]
        return None if since is None else round((now - since).total_seconds() / 60, 1)

    rows = [{"provider": name, "authorizations": int(total),
             "success": 1 - int(bad or 0) / total if total else None,
             "p95_ms": durations.get(name),
             "unknown_open": open_now.get((name, UNKNOWN), (0, None))[0],
             "unknown_oldest_min": age((name, UNKNOWN)),
             "awaiting_open": open_now.get((name, AWAITING), (0, None))[0],
             "awaiting_oldest_min": age((name, AWAITING))}
            for name, total, bad in sorted(calls)]
    return pd.DataFrame(rows, columns=["provider", "authorizations", "success", "p95_ms",
                                       "unknown_open", "unknown_oldest_min", "awaiting_open",
                                       "awaiting_oldest_min"])


def _p95(conn: Any, engine: Engine, where: list[Any]) -> dict[str, float]:
    a = provider_attempts.c
    if engine.dialect.name == "postgresql":
        return {r[0]: float(r[1]) for r in conn.execute(
            select(a.provider, func.percentile_cont(0.95).within_group(a.duration_ms))
            .where(*where).group_by(a.provider))}
    frame = pd.DataFrame([tuple(r) for r in conn.execute(
        select(a.provider, a.duration_ms).where(*where))], columns=["provider", "ms"])
    if frame.empty:
        return {}
    frame["ms"] = frame["ms"].astype("float64")
    return {str(k): float(v) for k, v in frame.groupby("provider")["ms"].quantile(0.95).items()}


def money_at_risk(engine: Engine, f: Filters) -> pd.DataFrame:
    """Per currency and kind: payments whose outcome is unknown or awaiting confirmation now,
    open reconciliation breaks (what each puts at stake) and open disputes. Never summed
    across currencies."""
    p, b, d = payments.c, recon_breaks.c, disputes.c
    with engine.connect() as conn:
        stuck = conn.execute(select(p.state, p.currency, func.count(), func.sum(p.amount_minor))
                             .where(p.state.in_(list(AT_RISK_STATES)), *payment_filters(f, created=False))
                             .group_by(p.state, p.currency)).all()
        break_where = [b.status.in_(("open", "investigating")),
                       b.settled_on >= f.start, b.settled_on <= f.end]
        if f.provider:
            break_where.append(b.provider == f.provider)
        open_breaks = conn.execute(select(b.kind, b.provider, b.provider_reference, b.payment_id,
                                          b.currency, b.expected_minor, b.actual_minor,
                                          b.expected_currency).where(*break_where)).all()
        dispute_where = [d.status == "open"] + ([d.provider == f.provider] if f.provider else [])
        open_disputes = conn.execute(select(d.currency, func.count(), func.sum(d.amount_minor))
                                     .where(*dispute_where).group_by(d.currency)).all()
    rows = [{"currency": c, "kind": AT_RISK_STATES[s], "count": int(n), "amount_minor": int(m)}
            for s, c, n, m in stuck]
    stakes: dict[str, list[int]] = {}
    for r in open_breaks:
        currency, minor = Break(r.kind, r.provider, r.provider_reference, r.payment_id,
                                r.currency, r.expected_minor, r.actual_minor,
                                r.expected_currency).at_stake()
        if currency:
            stakes.setdefault(currency, []).append(minor)
    rows += [{"currency": c, "kind": "open breaks", "count": len(v), "amount_minor": sum(v)}
             for c, v in stakes.items()]
    rows += [{"currency": c, "kind": "open disputes", "count": int(n), "amount_minor": int(m)}
             for c, n, m in open_disputes]
    frame = pd.DataFrame(rows, columns=["currency", "kind", "count", "amount_minor"])
    if f.currency:
        frame = frame[frame["currency"] == f.currency]
    return frame.sort_values(["currency", "kind"], ignore_index=True)


def affected_payments(engine: Engine, provider: str, start: datetime, end: datetime,
                      limit: int = 200) -> pd.DataFrame:
    """Payments at `provider` whose outcome went unknown, went to awaiting confirmation or
    failed between `start` and `end` (the first such move of each), with where each stands
    now."""
    t, p = payment_transitions.c, payments.c
    query = (select(t.payment_id, t.at, t.to_state, p.state, p.amount_minor, p.currency)
             .join_from(payment_transitions, payments, p.id == t.payment_id)
             .where(p.provider == provider, t.at >= start, t.at < end,
                    t.to_state.in_([UNKNOWN, AWAITING, PaymentState.FAILED.value]))
             .order_by(t.at, t.id))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([{"payment": r[0], "at": utc(r[1]), "became": r[2], "now": r[3],
                           "amount_minor": int(r[4]), "currency": r[5]} for r in rows],
                         columns=["payment", "at", "became", "now", "amount_minor", "currency"])
    return frame.drop_duplicates("payment", ignore_index=True).head(limit)


def resolutions(engine: Engine, payment_ids: list[str], since: datetime,
                limit: int = 500) -> pd.DataFrame:
    """What was done about these payments since `since`: each move out of unknown or awaiting
    confirmation, who made it (the worker's resolver, a provider notification, an operator)
    and the state it led to."""
    t = payment_transitions.c
    rows: list[Any] = []
    with engine.connect() as conn:
        for first in range(0, len(payment_ids), 500):
            rows += conn.execute(
                select(t.payment_id, t.at, t.from_state, t.to_state, t.actor, t.reason)
                .where(t.payment_id.in_(payment_ids[first:first + 500]), t.at >= since,
                       t.from_state.in_([UNKNOWN, AWAITING]))).all()
    frame = pd.DataFrame([{"payment": r[0], "at": utc(r[1]), "from": r[2], "to": r[3],
                           "by": r[4], "reason": r[5]} for r in rows],
                         columns=["payment", "at", "from", "to", "by", "reason"])
    return frame.sort_values("at", ignore_index=True).head(limit)


def state_pivot(states: pd.DataFrame) -> pd.DataFrame:
    """Payment states (rows) by currency (columns): how many payments, from `payment_states`."""
    if states.empty:
        return states
    return states.pivot_table(index="state", columns="currency", values="payments",
                              aggfunc="sum", fill_value=0).astype("int64")



@dataclass(frozen=True)
class FiringPeriod:
    alert: str
    labels: dict[str, str]
    summary: str
    starts_at: datetime
    ends_at: datetime | None


def firing_periods(engine: Engine, since: datetime, limit: int = 200) -> list[FiringPeriod]:
    """Periods alerts fired that were still going at or after `since`, newest first."""
    b = alert_firings.c
    with engine.connect() as conn:
        rows = conn.execute(select(b.name, b.labels, b.summary, b.starts_at, b.ends_at)
                            .where(or_(b.ends_at.is_(None), b.ends_at >= since))
                            .order_by(b.starts_at.desc(), b.id.desc()).limit(limit)).all()
    return [FiringPeriod(r.name, json.loads(r.labels), r.summary, utc(r.starts_at),
                         utc(r.ends_at)) for r in rows]


def find_period(engine: Engine, alert: str, labels: dict[str, str],
                starts: datetime | None) -> FiringPeriod | None:
    """The firing period of `alert` with these labels that started at `starts` (to the
    minute), or the latest one if `starts` is not given or not found."""
    b = alert_firings.c
    with engine.connect() as conn:
        rows = conn.execute(select(b.name, b.labels, b.summary, b.starts_at, b.ends_at)
                            .where(b.name == alert).order_by(b.starts_at.desc())).all()
    periods = [FiringPeriod(r.name, json.loads(r.labels), r.summary, utc(r.starts_at),
                            utc(r.ends_at)) for r in rows]
    periods = [p for p in periods if all(p.labels.get(k) == v for k, v in labels.items())]
    if starts is not None:
        exact = [p for p in periods if p.starts_at.replace(second=0, microsecond=0) == starts]
        if exact:
            return exact[0]
    return periods[0] if periods else None


def slo_window(engine: Engine, slo: str, start: datetime, end: datetime,
               objective: float) -> pd.DataFrame:
    """An SLO over its own window from its per-minute rollup: per bucket (at most MAX_POINTS
    over the stretch that has data), events, bad events, the error ratio, and the error budget
    left so far in the window (1 - bad so far / the bad events the whole window's events
    allow). Empty if the SLO keeps no per-minute rollup (the reconciliation SLOs)."""
    m = sli_minutes.c
    with engine.connect() as conn:
        rows = conn.execute(select(m.minute, m.good, m.total)
                            .where(m.slo == slo, m.minute >= start, m.minute < end)
                            .order_by(m.minute)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["at", "good", "total"])
    if frame.empty:
        return pd.DataFrame(columns=["at", "total", "bad", "error_ratio", "budget_left"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["bad"] = frame["total"] - frame["good"]
    minutes = bucket_minutes(frame["at"].iloc[0].to_pydatetime(), end)
    frame["at"] = frame["at"].dt.floor(f"{minutes}min")
    out = frame.groupby("at", as_index=False)[["total", "bad"]].sum()
    out["error_ratio"] = out["bad"] / out["total"].where(out["total"] > 0)
    allowed = (1 - objective) * float(out["total"].sum())
    out["budget_left"] = 1 - out["bad"].cumsum() / allowed if allowed > 0 else 1.0
    return out
