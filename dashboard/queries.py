"""What the dashboard shows, read from the tables of record. Pure reads: no Streamlit here.

Amounts stay integer minor units per currency; they are never summed across currencies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, case, exists, func, or_, select

from alerts.catalogue import BY_NAME
from dashboard.filters import Filters
from engine.domain.money import Money
from engine.domain.states import PaymentState
from engine.payments.toggles import audit_trail, current_modes, policy_notes
from engine.read_models.payments import payment_detail
from engine.settlement.breaks import list_breaks
from engine.settlement.reconcile import Break
from engine.storage.repository import utc
from engine.storage.tables import (
    alert_notifications,
    alert_silences,
    alert_states,
    duplicate_risk_events,
    idempotency_keys,
    outbox,
    payments,
    recon_breaks,
    recon_checkpoints,
    slo_evaluations,
)
from slo.links import incident_url, runbook_url

OPEN_BREAK = ("open", "investigating")
RISK_OUTCOMES = ("replayed", "conflict", "in_flight", "shadow_replay", "shadow_conflict")


def money(amount_minor: int | None, currency: str | None) -> str:
    """12345, EUR -> 'EUR 123.45' (exact: integer arithmetic, no floats)."""
    if amount_minor is None or pd.isna(amount_minor) or not isinstance(currency, str) \
            or not currency:
        return "—"
    return Money(int(amount_minor), currency).display()


def payment_filters(f: Filters, created: bool = True) -> list[Any]:
    """The sidebar's provider, currency and merchant on payments (and the days, on their
    creation, if `created`)."""
    p = payments.c
    where: list[Any] = []
    if created:
        where += [p.created_at >= f.since, p.created_at < f.until]
    if f.provider:
        where.append(p.provider == f.provider)
    if f.currency:
        where.append(p.currency == f.currency)
    if f.merchant:
        where.append(p.merchant_id == f.merchant)
    return where


def _frame(rows: Any, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


# --- Overview: engineering ---------------------------------------------------------------

def payment_states(engine: Engine, f: Filters) -> pd.DataFrame:
    """Payments created in the range: count and amount per state and currency."""
    p = payments.c
    query = (select(p.state, p.currency, func.count(), func.sum(p.amount_minor))
             .where(*payment_filters(f)).group_by(p.state, p.currency)
             .order_by(p.state, p.currency))
    with engine.connect() as conn:
        frame = _frame(conn.execute(query), ["state", "currency", "payments", "amount_minor"])
    frame["amount_minor"] = frame["amount_minor"].astype("int64")
    return frame


def duplicate_risk(engine: Engine, f: Filters) -> pd.DataFrame:
    """Per provider: requests that met an existing key, and shadow-mode would-be duplicates."""
    e = duplicate_risk_events.c
    where = [e.at >= f.since, e.at < f.until]
    if f.provider:
        where.append(e.provider == f.provider)
    if f.merchant:
        where.append(e.merchant_id == f.merchant)
    query = select(e.provider, *[func.sum(case((e.outcome == o, 1), else_=0)).label(o)
                                 for o in RISK_OUTCOMES]).where(*where).group_by(e.provider)
    with engine.connect() as conn:
        frame = _frame(conn.execute(query.order_by(e.provider)),
                       ["provider", *RISK_OUTCOMES])
    return frame.astype({o: "int64" for o in RISK_OUTCOMES})


@dataclass(frozen=True)
class UnknownOutcomes:
    provider: str
    open: int
    oldest_since: datetime | None

    def age_minutes(self, now: datetime) -> float | None:
        oldest = utc(self.oldest_since)
        return None if oldest is None else round((now - oldest).total_seconds() / 60, 1)


def unknown_outcomes(engine: Engine, f: Filters) -> list[UnknownOutcomes]:
    """Payments whose provider outcome is unknown now (whenever they were created)."""
    p = payments.c
    query = (select(p.provider, func.count(), func.min(p.updated_at))
             .where(p.state == PaymentState.UNKNOWN.value, *payment_filters(f, created=False))
             .group_by(p.provider).order_by(p.provider))
    with engine.connect() as conn:
        return [UnknownOutcomes(r[0], r[1], utc(r[2])) for r in conn.execute(query)]


def duplicate_charges(engine: Engine, f: Filters) -> pd.DataFrame:
    """Duplicate charges reconciliation found at the providers, settled in the range."""
    b = recon_breaks.c
    where = [b.kind == "duplicate_charge", b.settled_on >= f.start, b.settled_on <= f.end]
    if f.provider:
        where.append(b.provider == f.provider)
    if f.currency:
        where.append(b.currency == f.currency)
    query = (select(b.provider, b.currency, b.status, func.count(), func.sum(b.actual_minor))
             .where(*where).group_by(b.provider, b.currency, b.status)
             .order_by(b.provider, b.currency, b.status))
    with engine.connect() as conn:
        return _frame(conn.execute(query),
                      ["provider", "currency", "status", "breaks", "charged_minor"])


# --- Overview: finance -------------------------------------------------------------------

def reconciliation_status(engine: Engine, f: Filters) -> pd.DataFrame:
    """Per provider and settlement day: matched %, open breaks (count and amount per
    currency) and sign-off."""
    c, b = recon_checkpoints.c, recon_breaks.c
    where = [c.settled_on >= f.start, c.settled_on <= f.end]
    if f.provider:
        where.append(c.provider == f.provider)
    with engine.connect() as conn:
        days = _frame(conn.execute(select(c.provider, c.settled_on, c.matched_count,
                                          c.break_count, c.signed_off_by, c.signed_off_at)
                                   .where(*where).order_by(c.settled_on.desc(), c.provider)),
                      ["provider", "day", "matched", "breaks", "signed_off_by", "signed_off_at"])
        open_where = [b.status.in_(OPEN_BREAK), b.settled_on >= f.start, b.settled_on <= f.end]
        if f.provider:
            open_where.append(b.provider == f.provider)
        if f.currency:
            open_where.append(b.currency == f.currency)
        open_rows = conn.execute(select(b.provider, b.settled_on, b.kind, b.provider_reference,
                                        b.payment_id, b.currency, b.expected_minor,
                                        b.actual_minor, b.expected_currency)
                                 .where(*open_where)).all()
    stakes: dict[tuple[str, Any], tuple[int, dict[str, int]]] = {}
    for r in open_rows:  # what each break puts at stake, by the one rule (Break.at_stake)
        n, by_currency = stakes.get((r.provider, r.settled_on), (0, {}))
        currency, minor = Break(r.kind, r.provider, r.provider_reference, r.payment_id,
                                r.currency, r.expected_minor, r.actual_minor,
                                r.expected_currency).at_stake()
        if currency:
            by_currency[currency] = by_currency.get(currency, 0) + minor
        stakes[(r.provider, r.settled_on)] = (n + 1, by_currency)
    opened = {key: (n, [money(minor, currency) for currency, minor in by_currency.items()])
              for key, (n, by_currency) in stakes.items()}
    known = set(zip(days["provider"], days["day"], strict=True))
    unreconciled = [k for k in opened if k not in known]  # e.g. expected on a day with no file
    if unreconciled:
        extra = pd.DataFrame([{"provider": p, "day": d, "matched": 0, "breaks": 0,
                               "signed_off_by": None, "signed_off_at": None}
                              for p, d in unreconciled])
        days = pd.concat([days, extra], ignore_index=True)\
            .sort_values(["day", "provider"], ascending=[False, True], ignore_index=True)
    checked = days["matched"] + days["breaks"]
    days["matched_pct"] = (100 * days["matched"] / checked.where(checked > 0)).round(2)
    days["open_breaks"] = [opened.get((p, d), (0, []))[0]
                           for p, d in zip(days["provider"], days["day"], strict=True)]
    days["open_amount"] = [", ".join(sorted(opened.get((p, d), (0, []))[1])) or "—"
                           for p, d in zip(days["provider"], days["day"], strict=True)]
    days["signed_off"] = days["signed_off_by"].notna()
    return days[["provider", "day", "matched_pct", "matched", "breaks", "open_breaks",
                 "open_amount", "signed_off", "signed_off_by"]]


# --- SLOs and alerts ---------------------------------------------------------------------

HISTORY_POINTS = 120  # per SLO: enough for a burn-down, bounded however often the worker ran


def _evenly(ids: list[int], points: int) -> list[int]:
    """Up to `points` of `ids`, evenly spread, always with the first and the last."""
    if len(ids) <= points:
        return ids
    return [ids[round(k * (len(ids) - 1) / (points - 1))] for k in range(points)]


def slo_history(engine: Engine, since: datetime, slo: str | None = None,
                points: int = HISTORY_POINTS) -> pd.DataFrame:
    """Stored evaluations since `since`, at most `points` per SLO evenly spread over the range
    (the latest always among them), oldest first. The worker stores one per SLO per minute, so
    only the chosen ones' results are read and parsed."""
    s = slo_evaluations.c
    where = [s.at >= since] + ([s.slo == slo] if slo else [])
    ids: dict[str, list[int]] = {}
    rows = []
    with engine.connect() as conn:
        for name, id_ in conn.execute(select(s.slo, s.id).where(*where)
                                      .order_by(s.slo, s.at, s.id)):
            ids.setdefault(name, []).append(id_)
        chosen = [i for per_slo in ids.values() for i in _evenly(per_slo, points)]
        for start in range(0, len(chosen), 500):
            for name, at, result in conn.execute(
                    select(s.slo, s.at, s.result).where(s.id.in_(chosen[start:start + 500]))):
                r = json.loads(result)
                rows.append({"slo": name, "at": utc(at), "display_name": r["display_name"],
                             "owner": r["owner"], "provider": r.get("provider"),
                             "sli": r["sli"], "objective": r["objective"],
                             "budget_remaining": r["budget_remaining"],
                             "burn_rates": r["burn_rates"], "conditions": r["conditions"],
                             "policy": r["policy"], "events": r["events"]["total"],
                             "window": r["window"]["duration"],
                             "window_start": datetime.fromisoformat(r["window"]["start"]),
                             "exhaustion_in_seconds": r["exhaustion_in_seconds"]})
    frame = pd.DataFrame(rows, columns=["slo", "at", "display_name", "owner", "provider", "sli",
                                        "objective",
                                        "budget_remaining", "burn_rates", "conditions", "policy",
                                        "events", "window", "window_start",
                                        "exhaustion_in_seconds"])
    return frame.sort_values(["slo", "at"], ignore_index=True)


def latest_slos(history: pd.DataFrame) -> pd.DataFrame:
    if history.empty:
        return history
    return history.sort_values("at").groupby("slo", as_index=False).tail(1)\
        .sort_values("slo", ignore_index=True)


def firing_conditions(conditions: list[dict[str, Any]]) -> list[str]:
    """A stored evaluation keeps only the conditions that held; those not inhibited by a
    faster tier are firing."""
    return [f"{c['severity']} ({c['tier']})" for c in conditions if not c.get("inhibited_by")]


def by_urgency(latest: pd.DataFrame) -> list[dict[str, Any]]:
    """Latest evaluations, the SLO a reader should see first first: firing pages, then
    tickets, then the least budget left."""
    def urgency(row: dict[str, Any]) -> tuple[int, float]:
        firing = firing_conditions(row["conditions"])
        rank = 0 if any(c.startswith("page") for c in firing) else 1 if firing else 2
        return rank, float(row["budget_remaining"])

    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()}
                                     for r in latest.to_dict("records")]
    return sorted(records, key=urgency)


def alerts(engine: Engine, status: str | None = None, since: datetime | None = None,
           f: Filters | None = None) -> pd.DataFrame:
    """Alert states, firing first then newest; with runbook links and owners."""
    a = alert_states.c
    query = select(a.fingerprint, a.name, a.labels, a.status, a.summary, a.details,
                   a.starts_at, a.ends_at, a.last_seen_at)
    if status:
        query = query.where(a.status == status)
    if since:
        query = query.where(or_(a.status == "firing", a.last_seen_at >= since))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(a.status, a.last_seen_at.desc())).all()
    out = []
    for r in rows:
        labels = json.loads(r.labels)
        if f is not None and f.provider and labels.get("provider") not in (None, f.provider):
            continue
        spec = BY_NAME.get(r.name)
        out.append({"alert": r.name, "status": r.status, "severity": labels.get("severity", ""),
                    "team": labels.get("team", spec.team if spec else ""),
                    "summary": r.summary, "runbook": runbook_url(r.name),
                    "incident": incident_url(labels, utc(r.starts_at)),
                    "labels": ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                                        if k not in ("alertname", "severity", "team")),
                    "starts_at": utc(r.starts_at), "ends_at": utc(r.ends_at),
                    "fingerprint": r.fingerprint})
    return pd.DataFrame(out, columns=["alert", "status", "severity", "team", "summary",
                                      "runbook", "incident", "labels", "starts_at", "ends_at",
                                      "fingerprint"])


def deliveries(engine: Engine, limit: int = 200) -> pd.DataFrame:
    n = alert_notifications.c
    query = (select(n.id, n.receiver, n.group_key, n.created_at, n.attempts, n.delivered_at,
                    n.last_error, n.payload).order_by(n.id.desc()).limit(limit))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for r in rows:
        payload = json.loads(r.payload)
        out.append({"id": r.id, "receiver": r.receiver, "status": payload.get("status", ""),
                    "alerts": len(payload.get("alerts", [])), "group": r.group_key,
                    "created_at": utc(r.created_at), "attempts": r.attempts,
                    "delivered_at": utc(r.delivered_at), "last_error": r.last_error or ""})
    return pd.DataFrame(out, columns=["id", "receiver", "status", "alerts", "group",
                                      "created_at", "attempts", "delivered_at", "last_error"])


def silences(engine: Engine) -> pd.DataFrame:
    """The latest silences, newest end first (whether one is active depends on the time)."""
    s = alert_silences.c
    with engine.connect() as conn:
        rows = conn.execute(select(alert_silences).order_by(s.ends_at.desc()).limit(200)).all()
    out = [{"id": r.id, "matchers": ", ".join(json.loads(r.matchers)), "author": r.author,
            "comment": r.comment, "starts_at": utc(r.starts_at), "ends_at": utc(r.ends_at),
            "expired_by": r.expired_by or ""} for r in rows]
    return pd.DataFrame(out, columns=["id", "matchers", "author", "comment", "starts_at",
                                      "ends_at", "expired_by"])


def toggles(engine: Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                    list[dict[str, Any]]]:
    """Current modes, the latest toggle changes and the latest error-budget policy notes."""
    return current_modes(engine), audit_trail(engine, 20), policy_notes(engine, 10)


# --- Payments ----------------------------------------------------------------------------

def find_payments(engine: Engine, text: str, limit: int = 50) -> pd.DataFrame:
    """Payments whose id, merchant reference or Idempotency-Key is exactly `text`."""
    text = text.strip()
    p, k = payments.c, idempotency_keys.c
    by_key = select(k.payment_id).where(k.key == text, k.payment_id.is_not(None))
    query = (select(p.id, p.merchant_id, p.state, p.amount_minor, p.currency, p.provider,
                    p.reference, p.created_at)
             .where(or_(p.id == text, p.reference == text, p.id.in_(by_key)))
             .order_by(p.created_at.desc()).limit(limit))
    with engine.connect() as conn:
        frame = _frame(conn.execute(query), ["id", "merchant", "state", "amount_minor",
                                             "currency", "provider", "reference", "created_at"])
    frame["amount"] = [money(a, c) for a, c in zip(frame["amount_minor"], frame["currency"],
                                                   strict=True)]
    return frame


def payment(engine: Engine, payment_id: str) -> dict[str, Any]:
    """One payment in full: audit trail, provider attempts, ledger entries, outbox events."""
    with engine.connect() as conn:
        merchant = conn.execute(select(payments.c.merchant_id)
                                .where(payments.c.id == payment_id)).scalar_one_or_none()
        o = outbox.c
        events = [{"event_id": r.event_id, "name": r.name, "occurred_at": utc(r.occurred_at),
                   "published_at": utc(r.published_at)}
                  for r in conn.execute(select(o.event_id, o.name, o.occurred_at,
                                               o.published_at)
                                        .where(o.payment_id == payment_id).order_by(o.id))]
        risk = [dict(r._mapping) for r in conn.execute(
            select(duplicate_risk_events.c.outcome, duplicate_risk_events.c.at)
            .where(duplicate_risk_events.c.payment_id == payment_id)
            .order_by(duplicate_risk_events.c.id))]
    detail = payment_detail(engine, merchant or "", payment_id)
    detail["outbox_events"] = events
    detail["duplicate_risk"] = risk
    return detail


# --- Reconciliation ----------------------------------------------------------------------

def break_queue(engine: Engine, f: Filters, status: str = "", kind: str = "") -> pd.DataFrame:
    rows = list_breaks(engine, status=status or None, provider=f.provider or None,
                       kind=kind or None)
    rows = [r for r in rows if f.start <= r["settled_on"] <= f.end
            and (not f.currency or r["currency"] == f.currency)]
    frame = pd.DataFrame(rows, columns=["id", "provider", "settled_on", "kind",
                                        "provider_reference", "payment_id", "currency",
                                        "expected_currency", "expected_minor", "actual_minor",
                                        "status", "owner", "age_hours"])
    frame["expected"] = [money(a, e or c) for a, e, c in zip(
        frame["expected_minor"], frame["expected_currency"], frame["currency"], strict=True)]
    frame["actual"] = [money(a, c) for a, c in zip(frame["actual_minor"], frame["currency"],
                                                   strict=True)]
    return frame


def has_data(engine: Engine) -> dict[str, bool]:
    """Which tables have any rows: decides the explained empty states."""
    tables = {"payments": payments, "checkpoints": recon_checkpoints,
              "evaluations": slo_evaluations, "alerts": alert_states}
    with engine.connect() as conn:
        return {name: bool(conn.execute(select(exists().select_from(table))).scalar())
                for name, table in tables.items()}


# --- finance: the money loop -----------------------------------------------------------------

def payouts_view(engine: Engine, f: Filters) -> pd.DataFrame:
    """Payouts paid in the range: expected (in transit) or arrived at the bank, with breaks."""
    from engine.settlement.payouts import list_payouts

    rows = [r for r in list_payouts(engine, provider=f.provider or None)
            if f.start <= r["paid_on"] <= f.end and (not f.currency or r["currency"] == f.currency)]
    return pd.DataFrame([{
        "paid_on": str(r["paid_on"]), "provider": r["provider"], "payout": r["reference"],
        "amount": money(int(r["amount_minor"]), str(r["currency"])),
        "lines_net": money(int(r["lines_net_minor"]), str(r["currency"])),
        "bank": f"arrived {r['arrived_on']}" if r["arrived_on"] else "in transit",
        "breaks": ", ".join(r["breaks"]) or "—"} for r in rows],
        columns=["paid_on", "provider", "payout", "amount", "lines_net", "bank", "breaks"])


def open_disputes(engine: Engine, f: Filters) -> pd.DataFrame:
    from engine.read_models.disputes import list_disputes

    rows = [r for r in list_disputes(engine, status="open", provider=f.provider or None)
            if not f.currency or r["currency"] == f.currency]
    return pd.DataFrame([{
        "evidence_due": f"{utc(r['due_by']):%Y-%m-%d %H:%M}" if r["due_by"] else "—",
        "provider": r["provider"], "payment": r["payment_id"],
        "amount": money(int(r["amount_minor"]), str(r["currency"])), "reason": r["reason"],
        "funds": "withdrawn" if r["funds_withdrawn"] else "not yet"} for r in rows],
        columns=["evidence_due", "provider", "payment", "amount", "reason", "funds"])


def fees_by_provider(engine: Engine, f: Filters) -> pd.DataFrame:
    """Fees the providers took in the range, per provider and currency (never summed across)."""
    from datetime import UTC, time, timedelta

    from engine.read_models.finance import finance_summary

    start = datetime.combine(f.start, time(), UTC)
    end = datetime.combine(f.end + timedelta(days=1), time(), UTC)
    rows = [{"provider": s.provider, "currency": c, "fees": money(m, c)}
            for s in finance_summary(engine, start, end) for c, m in sorted(s.fees_minor.items())
            if (not f.provider or s.provider == f.provider) and (not f.currency or c == f.currency)]
    return pd.DataFrame(rows, columns=["provider", "currency", "fees"])


AGE_BUCKETS = (("under 1 day", 24.0), ("1–2 days", 48.0), ("2–7 days", 168.0),
               ("over 7 days", float("inf")))


def break_aging(engine: Engine, f: Filters) -> pd.DataFrame:
    """Open breaks by age, per owner team (the catalogue's)."""
    from engine.settlement.kinds import BY_NAME as KINDS

    counts: dict[tuple[str, str], int] = {}
    for status in ("open", "investigating"):
        for r in list_breaks(engine, status=status, provider=f.provider or None):
            bucket = next(name for name, limit in AGE_BUCKETS if r["age_hours"] < limit)
            owner = KINDS[r["kind"]].owner if r["kind"] in KINDS else "finance"
            counts[(bucket, owner)] = counts.get((bucket, owner), 0) + 1
    return pd.DataFrame([{"age": name, "owner": owner, "open_breaks": counts[(name, owner)]}
                         for name, _ in AGE_BUCKETS for owner in sorted({o for _, o in counts})
                         if (name, owner) in counts], columns=["age", "owner", "open_breaks"])
