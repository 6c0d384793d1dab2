"""Detectors over the engine's tables and the stored SLO evaluations: each alert carries its
numbers, owner, runbook, dashboard link and a stable fingerprint."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from alerts.detectors import Thresholds, detect
from engine.storage.tables import outbox, payments, recon_breaks, slo_evaluations

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _payment(pid: str, state: str, updated: datetime) -> dict[str, object]:
    return {"id": pid, "merchant_id": "m", "amount_minor": 1000, "currency": "EUR",
            "provider": "adyen", "reference": pid, "capture_mode": "automatic",
            "state": state, "created_at": updated, "updated_at": updated}


@pytest.mark.slow
def test_each_detector_fires_with_its_numbers(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(insert(payments), [_payment("pay_a", "unknown", NOW - timedelta(minutes=40)),
                                        _payment("pay_b", "unknown", NOW - timedelta(minutes=20)),
                                        _payment("pay_c", "unknown", NOW - timedelta(minutes=2))])
        conn.execute(insert(recon_breaks).values(
            id="brk_1", provider="stripe", settled_on=NOW.date(), kind="duplicate_charge",
            provider_reference="ch_1", payment_id="pay_x", currency="EUR", expected_minor=2500,
            actual_minor=2500, status="open", opened_at=NOW - timedelta(hours=1),
            updated_at=NOW))
        conn.execute(insert(outbox).values(event_id="evt_1", payment_id="pay_a",
                                           name="payment.captured", payload="{}",
                                           occurred_at=NOW - timedelta(minutes=9)))
        conn.execute(insert(slo_evaluations).values(
            slo="authorization-technical-success-adyen", at=NOW - timedelta(minutes=1),
            evaluated_at=NOW, backend="database", result=json.dumps({
                "name": "authorization-technical-success-adyen",
                "display_name": "Authorization technical success (adyen)",
                "owner": "payments", "provider": "adyen", "objective": 0.995,
                "window": {"duration": "30d"}, "budget": {"consumed": 0.021},
                "policy": [], "conditions": [
                    {"tier": "1h", "severity": "page", "factor": 14.4,
                     "windows": {"long": "1h", "short": "5m"},
                     "burn_rates": {"long": 14.9, "short": 20.0}, "inhibited_by": None},
                    {"tier": "6h", "severity": "page", "factor": 6,
                     "windows": {"long": "6h", "short": "30m"},
                     "burn_rates": {"long": 7.0, "short": 9.0}, "inhibited_by": "1h"}]})))
    alerts = {a.name: a for a in detect(db_engine, NOW, Thresholds())}
    assert set(alerts) == {"UnknownOutcomesStale", "DuplicateChargeFound", "OutboxBacklog",
                           "SLOBurnRatePage"}
    stale = alerts["UnknownOutcomesStale"]
    assert stale.labels["provider"] == "adyen" and stale.summary.startswith("2 adyen")
    assert "oldest for 40 min" in stale.summary
    dup = alerts["DuplicateChargeFound"]
    assert "(EUR 25.00 taken twice)" in dup.summary and dup.labels["team"] == "payments+finance"
    page = alerts["SLOBurnRatePage"]
    assert page.summary == ("Authorization technical success (adyen) 92.5% over 1h "
                            "(objective 99.50%), burning the 30d budget at 14.9x; 2.1% of it gone")
    assert page.labels["burn_tier"] == "1h" and page.labels["slo"].endswith("adyen")
    assert page.runbook_url.endswith("/runbooks?alert=SLOBurnRatePage")
    assert "/incident?alert=SLOBurnRatePage&" in page.dashboard_url
    assert "provider=adyen" in page.dashboard_url and "slo=authorization" in page.dashboard_url
    again = {a.name: a.fingerprint for a in detect(db_engine, NOW, Thresholds())}
    assert again == {name: a.fingerprint for name, a in alerts.items()}  # stable


def test_bad_signature_spikes_and_failing_deliveries_show(db_engine: Engine) -> None:
    from engine.read_models.health import notification_states
    from engine.storage.tables import webhook_rejections

    with db_engine.begin() as conn:
        conn.execute(insert(webhook_rejections), [
            {"provider": "paypal", "reason": "bad_signature", "count": count,
             "minute": NOW.replace(second=0) - timedelta(minutes=i)}
            for i, count in ((1, 3), (4, 4), (30, 50))])  # the last is outside the 15 minutes
    alerts = [a for a in detect(db_engine, NOW, Thresholds()) if a.name ==
              "WebhookSignatureFailures"]
    assert len(alerts) == 1 and alerts[0].summary.startswith("7 paypal notifications")
    quiet = detect(db_engine, NOW, Thresholds(bad_signatures=8))
    assert "WebhookSignatureFailures" not in {a.name for a in quiet}
    assert notification_states(db_engine, NOW - timedelta(days=1)) == []


def test_retries_refused_by_the_budget_raise_an_alert(db_engine: Engine) -> None:
    from engine.testing import ManualClock, payment_method, payment_request
    from paysignal.settings import load_settings
    from paysignal.testing import make_service

    clock = ManualClock(NOW)
    service, _, _ = make_service(db_engine, clock=clock, settings=load_settings(
        {"PAYSIGNAL_RETRY_BUDGET_RATIO": "0", "PAYSIGNAL_RETRY_BUDGET_MIN_RETRIES": "0"}))
    # Stripe's 500 with Stripe-Should-Retry: true is retryable (PayPal's 5xx is not: unknown)
    service.create_payment("m", "k1", payment_request(
        payment_method=payment_method("stripe", "server_error"), provider="stripe"))
    alerts = [a for a in detect(db_engine, NOW + timedelta(minutes=1), Thresholds())
              if a.name == "RetryBudgetExhausted"]
    assert len(alerts) == 1 and alerts[0].labels["provider"] == "stripe"
    assert "refused 1 retries to stripe" in alerts[0].summary



@pytest.mark.slow
def test_amounts_at_stake_are_told_per_currency_never_added_together(db_engine: Engine) -> None:
    def brk(n: int, currency: str, expected: int, actual: int,
            kind: str = "amount_mismatch") -> dict[str, object]:
        return {"id": f"brk_{n}", "provider": "adyen", "settled_on": NOW.date(),
                "kind": kind, "provider_reference": f"ref_{n}", "payment_id": f"pay_{n}",
                "currency": currency, "expected_currency": currency, "expected_minor": expected,
                "actual_minor": actual, "status": "open",
                "opened_at": NOW - timedelta(hours=50), "updated_at": NOW}

    with db_engine.begin() as conn:
        conn.execute(insert(recon_breaks), [
            brk(1, "JPY", 10_000, 7_000), brk(2, "KWD", 5_000, 4_000),
            brk(3, "USD", 1_000, 1_200), brk(4, "USD", 2_000, 2_050),
            {**brk(5, "EUR", 48_477, 48_477, "currency_mismatch"), "expected_currency": "GBP"}])
    aged = next(a for a in detect(db_engine, NOW, Thresholds())
                if a.name == "ReconciliationBreaksAged")
    assert aged.summary.startswith("5 open reconciliation breaks at adyen, EUR 484.77 + "
                                   "JPY 3,000 + KWD 1.000 + USD 2.50 at stake")
    assert aged.details["amount_minor_by_currency"] == {"EUR": 48_477, "JPY": 3_000,
                                                        "KWD": 1_000, "USD": 250}


def test_payments_left_waiting_for_their_customer_past_expiry_raise_a_ticket(
        db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(insert(payments), [
            _payment("pay_s", "requires_customer_action", NOW - timedelta(minutes=90)),
            _payment("pay_t", "requires_customer_action", NOW - timedelta(minutes=20))])
    [stuck] = [a for a in detect(db_engine, NOW, Thresholds())
               if a.name == "CustomerActionsStuck"]
    assert stuck.summary.startswith("1 adyen payments have waited for their customer for over "
                                    "1 h 15 min") and "oldest for 1 h 30 min" in stuck.summary
    assert stuck.labels["severity"] == "ticket" and stuck.labels["team"] == "payments"
    assert not [a for a in detect(db_engine, NOW, Thresholds(
        customer_action_after=timedelta(hours=2))) if a.name == "CustomerActionsStuck"]
