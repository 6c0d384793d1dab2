"""What fires now: SLO burn-rate conditions from the latest stored evaluations, and
operational detectors over the engine's read models. Every alert carries its numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from alerts.model import Alert
from engine.domain.money import Money, display_amounts
from engine.domain.states import PaymentState
from engine.read_models.disputes import dispute_rates
from engine.read_models.health import (
    oldest_pending_outbox_event,
    open_breaks_by_kind,
    rejected_webhooks,
    retry_refusal_counts,
    stale_unknown_outcomes,
)
from engine.read_models.ledger import imbalances
from engine.storage.tables import slo_evaluations


@dataclass(frozen=True)
class Thresholds:
    unknown_after: timedelta = timedelta(minutes=15)
    confirmation_after: timedelta = timedelta(minutes=30)
    # the customer-action expiry (1 h) and a grace for the worker to cancel at the provider
    customer_action_after: timedelta = timedelta(minutes=75)
    outbox_after: timedelta = timedelta(minutes=5)
    break_age: timedelta = timedelta(hours=48)
    break_amount_minor: int = 100_000
    slo_freshness: timedelta = timedelta(minutes=10)  # ignore SLO evaluations older than this
    bad_signatures: int = 5  # in the last 15 minutes, per provider
    # a provider-month's dispute ratio and count at which the card schemes start watching:
    # Visa's Dispute Monitoring Program warns at 0.65 % and 75 disputes (standard: 0.9 % and
    # 100); Mastercard's Excessive Chargeback Program monitors from 1.0 % and 100
    dispute_ratio: float = 0.0065
    dispute_min_count: int = 75


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def slo_alerts(engine: Engine, at: datetime, freshness: timedelta) -> list[Alert]:
    latest = (select(slo_evaluations.c.slo, func.max(slo_evaluations.c.id).label("id"))
              .where(slo_evaluations.c.at > at - freshness, slo_evaluations.c.at <= at)
              .group_by(slo_evaluations.c.slo).subquery())
    with engine.connect() as conn:
        rows = conn.execute(select(slo_evaluations.c.result).join(
            latest, latest.c.id == slo_evaluations.c.id)).scalars().all()
    out = []
    for row in rows:
        r = json.loads(row)
        for c in r["conditions"]:
            if c["inhibited_by"]:
                continue
            name = "SLOBurnRatePage" if c["severity"] == "page" else "SLOBurnRateTicket"
            long_window = c["windows"]["long"]
            sli = max(0.0, 1 - c["burn_rates"]["long"] * (1 - r["objective"]))
            summary = (f"{r['display_name']} {sli:.1%} over {long_window} (objective "
                       f"{r['objective']:.2%}), burning the {r['window']['duration']} budget at "
                       f"{c['burn_rates']['long']:.1f}x; {min(1.0, r['budget']['consumed']):.1%}"
                       " of it gone")
            alert = Alert.of(name, summary, {"condition": c, "policy": r["policy"]},
                             slo=r["name"], provider=r.get("provider") or "",
                             burn_tier=c["tier"])
            out.append(Alert(alert.name, {**alert.labels, "team": r["owner"]}, alert.summary,
                             alert.details))
    return out


@dataclass(slots=True)
class _OpenBreaks:
    count: int
    at_stake: dict[str, int]
    oldest: datetime


def operational_alerts(engine: Engine, at: datetime, t: Thresholds) -> list[Alert]:
    out = []
    # payments waiting for an answer too long: (state, alert, threshold, how, and what else)
    waiting = ((PaymentState.UNKNOWN, "UnknownOutcomesStale", t.unknown_after,
                "have had an unknown outcome", ""),
               (PaymentState.AWAITING_CONFIRMATION, "ConfirmationsLate", t.confirmation_after,
                "have awaited the provider's confirmation", ""),
               (PaymentState.REQUIRES_CUSTOMER_ACTION, "CustomerActionsStuck",
                t.customer_action_after, "have waited for their customer",
                " and were not cancelled at the provider"))
    for state, name, after, how, also in waiting:
        for s in stale_unknown_outcomes(engine, at - after, state):
            out.append(Alert.of(
                name, f"{s.count} {s.provider} payments {how} for over {_age(after)}{also}; "
                f"the oldest for {_age(at - s.oldest_since)}",
                {"count": s.count, "oldest_since": s.oldest_since.isoformat()},
                provider=s.provider))
    aged: dict[str, _OpenBreaks] = {}
    for b in open_breaks_by_kind(engine):
        if b.kind == "duplicate_charge":
            out.append(Alert.of(
                "DuplicateChargeFound", f"{b.count} duplicate charges at {b.provider} "
                f"({display_amounts(b.at_stake)} taken twice), found by reconciliation",
                {"count": b.count, "amount_minor_by_currency": b.at_stake}, provider=b.provider))
        totals = aged.setdefault(b.provider, _OpenBreaks(0, {}, at))
        totals.count += b.count
        for currency, minor in b.at_stake.items():
            totals.at_stake[currency] = totals.at_stake.get(currency, 0) + minor
        totals.oldest = min(totals.oldest, b.oldest_opened_at)
    for provider, totals in aged.items():
        count, age = totals.count, at - totals.oldest
        # the amount threshold applies per currency, in that currency's minor units
        if age > t.break_age or any(m > t.break_amount_minor for m in totals.at_stake.values()):
            out.append(Alert.of(
                "ReconciliationBreaksAged", f"{count} open reconciliation breaks at {provider}, "
                f"{display_amounts(totals.at_stake)} at stake, the oldest open for {_age(age)}",
                {"count": count, "amount_minor_by_currency": totals.at_stake},
                provider=provider))
    for rate in dispute_rates(engine, at):
        if rate.ratio >= t.dispute_ratio and rate.disputes >= t.dispute_min_count:
            out.append(Alert.of(
                "DisputeRateHigh", f"{rate.disputes} disputes at {rate.provider} this month "
                f"against {rate.captured} captured payments: {rate.ratio:.2%}, at or over the "
                f"{t.dispute_ratio:.2%} where the card schemes' monitoring starts",
                {"count": rate.disputes, "captured": rate.captured,
                 "ratio": round(rate.ratio, 6), "month": rate.month.isoformat()},
                provider=rate.provider))
    by_currency: dict[str, int] = {}
    for i in imbalances(engine):
        by_currency[i.currency] = by_currency.get(i.currency, 0) + abs(i.debits_minus_credits)
    for currency, amount in sorted(by_currency.items()):
        out.append(Alert.of("LedgerImbalance", f"journal transactions in {currency} are "
                            f"unbalanced by {Money(amount, currency).display()} ({amount} minor "
                            "units)", {"amount_minor": amount}, currency=currency))
    for provider, count in rejected_webhooks(engine, at - timedelta(minutes=15)):
        if count >= t.bad_signatures:
            out.append(Alert.of("WebhookSignatureFailures", f"{count} {provider} notifications "
                                "refused for bad signatures in the last 15 min",
                                {"count": count}, provider=provider))
    for provider, count in retry_refusal_counts(engine, at - timedelta(minutes=15)):
        out.append(Alert.of("RetryBudgetExhausted", f"the retry budget refused {count} retries to "
                            f"{provider} in the last 15 min", {"count": count}, provider=provider))
    pending, oldest = oldest_pending_outbox_event(engine)
    if oldest is not None and at - oldest > t.outbox_after:
        out.append(Alert.of("OutboxBacklog", f"{pending} payment events unpublished, the oldest "
                            f"for {_age(at - oldest)}", {"pending": pending}))
    return out


def detect(engine: Engine, at: datetime, thresholds: Thresholds | None = None) -> list[Alert]:
    t = thresholds or Thresholds()
    return slo_alerts(engine, at, t.slo_freshness) + operational_alerts(engine, at, t)
