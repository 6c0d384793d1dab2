"""State transitions, the audit trail and unknown outcomes, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import Engine, select

from engine.domain.states import PaymentState
from engine.exceptions import (
    AmountExceedsAvailableError,
    InvalidTransitionError,
    UnknownOutcomeUnresolvedError,
)
from engine.providers.sandbox.faults import FaultProfile, Faults
from engine.read_models.ledger import balances, total_imbalance_minor
from engine.storage.tables import payment_transitions
from engine.testing import payment_method, payment_request
from paysignal.testing import make_service


def audit(engine: Engine, payment_id: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(payment_transitions.c.from_state, payment_transitions.c.to_state,
                   payment_transitions.c.actor)
            .where(payment_transitions.c.payment_id == payment_id)
            .order_by(payment_transitions.c.id))]


@pytest.mark.parametrize("provider", ["stripe", "adyen", "paypal"])
def test_automatic_capture_is_one_provider_call_and_audits_every_step(
        db_engine: Engine, provider: str) -> None:
    service, sandbox, _ = make_service(db_engine)
    body = service.create_payment("m1", "k", payment_request(provider=provider),
                                  trace_id="abc123").body
    assert body["state"] == "captured" and body["captured_amount"] == 2500
    assert [(f, t) for f, t, _ in audit(db_engine, body["id"])] == [
        ("created", "authorizing"), ("authorizing", "captured")]
    [charge] = sandbox.books.charges()
    assert charge.captured and [e.operation for e in sandbox.books.entries()] == ["authorize"]
    assert total_imbalance_minor(db_engine) == 0
    assert service.get_payment("m1", body["id"]).fee_minor == service.gateways[
        provider].fee_for(2500, "USD")
    with db_engine.connect() as conn:
        traces = conn.execute(select(payment_transitions.c.trace_id)).scalars().all()
    assert set(traces) == {"abc123"}


def test_declined_payment_records_the_normalized_reason(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    body = service.create_payment("m1", "k", payment_request(
        payment_method=payment_method("adyen", "decline_insufficient_funds"), provider="adyen")).body
    assert body["state"] == "declined" and body["decline_reason"] == "insufficient_funds"
    assert sandbox.books.charges() == []
    assert balances(db_engine, body["id"]) == {}


def test_void_releases_the_hold(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request(capture="manual")).body["id"]
    assert service.void("m1", "v", pid).body["state"] == "voided"
    assert all(v == 0 for v in balances(db_engine, pid).values())
    with pytest.raises(InvalidTransitionError):
        service.capture("m1", "c", pid)


def test_refunds_beyond_the_captured_amount_are_refused_and_change_nothing(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request(capture="manual")).body["id"]
    service.capture("m1", "c", pid, 2000)
    service.refund("m1", "r1", pid, 1500)
    trail = audit(db_engine, pid)
    with pytest.raises(AmountExceedsAvailableError) as info:
        service.refund("m1", "r2", pid, 501)
    assert info.value.field == "amount" and info.value.available == 500
    assert audit(db_engine, pid) == trail
    assert service.refund("m1", "r3", pid, 500).body["state"] == "refunded"
    payable = balances(db_engine, pid)[("merchant_payable:m1", "USD")]
    assert payable == 0  # captured 2000, refunded 2000


def test_timeout_after_charge_becomes_unknown_then_resolves_by_asking_the_provider(
        db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    response = service.create_payment("m1", "k", payment_request(
        payment_method=payment_method("paypal", "timeout_after_charge"), capture="manual", provider="paypal"))
    assert response.status_code == 202 and response.body["state"] == "unknown"
    assert len(sandbox.books.charges()) == 1
    assert service.resolve_unknown_outcomes() == {"resolved": 1, "still_unknown": 0}
    payment = service.get_payment("m1", response.body["id"])
    assert payment.state is PaymentState.AUTHORIZED and payment.provider_reference
    assert len(sandbox.books.charges()) == 1  # resolved without a second charge


@pytest.mark.parametrize("provider", ["stripe", "adyen", "paypal"])
def test_a_timeout_before_the_charge_resolves_by_repeating_the_request_once(
        db_engine: Engine, provider: str) -> None:
    """Nothing happened at the provider; the resolver repeats the request with its key (each
    provider's own way), so the customer is charged exactly once, not refused."""
    service, sandbox, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request(
        provider=provider, capture="manual",
        payment_method=payment_method(provider, "timeout_before_charge"))).body["id"]
    assert service.get_payment("m1", pid).state is PaymentState.UNKNOWN
    assert sandbox.books.charges() == []
    service.resolve_unknown(pid)
    assert service.get_payment("m1", pid).state is PaymentState.AUTHORIZED
    assert len(sandbox.books.charges()) == 1


def test_capture_first_resolves_an_unknown_authorization(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request(
        payment_method=payment_method("stripe", "timeout_after_charge"), capture="manual")).body["id"]
    body = service.capture("m1", "c", pid).body
    assert body["state"] == "captured"
    assert [(f, t) for f, t, _ in audit(db_engine, pid)][1:3] == [
        ("authorizing", "unknown"), ("unknown", "authorized")]
    assert len(sandbox.books.charges()) == 1


def test_an_unresolvable_unknown_authorization_is_never_captured(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request(
        payment_method=payment_method("stripe", "unknown_forever"), capture="manual")).body["id"]
    trail = audit(db_engine, pid)
    with pytest.raises(UnknownOutcomeUnresolvedError):
        service.capture("m1", "c", pid)
    assert audit(db_engine, pid) == trail
    assert service.get_payment("m1", pid).state is PaymentState.UNKNOWN
    assert service.resolve_unknown_outcomes() == {"resolved": 0, "still_unknown": 1}


def test_retryable_errors_are_retried_with_the_same_provider_key(db_engine: Engine) -> None:
    flaky = FaultProfile("flaky", "", Faults(server_error=0.5))
    service, sandbox, _ = make_service(db_engine, faults=flaky, seed=3)
    states = [service.create_payment("m1", f"k{i}", payment_request(reference=f"o{i}")).body["state"]
              for i in range(20)]
    assert states.count("captured") >= 15  # most recover within four attempts
    assert set(states) <= {"captured", "failed", "authorized"}
    assert total_imbalance_minor(db_engine) == 0


def test_provider_fee_is_booked_on_capture(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request(amount=10_000)).body["id"]
    fee = 10_000 * 290 // 10_000 + 30
    b = balances(db_engine, pid)
    assert b[("provider_fees:stripe", "USD")] == fee
    assert b[("provider_receivable:stripe", "USD")] == 10_000 - fee
    assert service.get_payment("m1", pid).fee_minor == fee


def test_an_automatic_payment_resolved_from_unknown_is_then_captured_once(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    response = service.create_payment("m1", "k", payment_request(
        payment_method=payment_method("paypal", "timeout_after_charge"), provider="paypal"))
    assert response.status_code == 202
    assert service.resolve_unknown_outcomes() == {"resolved": 1, "still_unknown": 0}
    payment = service.get_payment("m1", response.body["id"])
    assert payment.state is PaymentState.CAPTURED and payment.captured_minor == 2500
    assert len(sandbox.books.charges()) == 1
    assert service.resolve_unknown(payment.id) is PaymentState.CAPTURED  # nothing more to do
    assert total_imbalance_minor(db_engine) == 0


def test_an_automatic_payment_the_provider_only_authorized_is_then_captured_in_full(
        db_engine: Engine) -> None:
    """Should a provider answer an automatic-capture authorization without capturing it, the
    engine captures it itself, in the same transaction's follow-up."""
    from dataclasses import replace

    service, sandbox, _ = make_service(db_engine)
    stripe = service.gateways["stripe"]
    original = stripe.execute
    stripe.execute = (  # type: ignore[method-assign]
        lambda request: original(replace(request, capture=False)))
    body = service.create_payment("m1", "k", payment_request()).body
    assert body["state"] == "captured"
    assert [(f, t) for f, t, _ in audit(db_engine, body["id"])] == [
        ("created", "authorizing"), ("authorizing", "authorized"),
        ("authorized", "capturing"), ("capturing", "captured")]
    assert [e.operation for e in sandbox.books.entries()] == ["authorize", "capture"]
    assert total_imbalance_minor(db_engine) == 0
