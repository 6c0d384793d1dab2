"""A payment the provider asks the customer to act on (3-D Secure) is never a decline: it waits,
non-final, with what brings the customer back; it ends by the provider's word, or by expiry,
which cancels the attempt at the provider first so that no charge lands after paysignal said
no."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from engine.domain.states import PaymentState
from engine.payments.idempotency import ServiceResponse
from engine.payments.service import PaymentService
from engine.read_models.ledger import balances, total_imbalance_minor
from engine.testing import payment_request
from paysignal.simulation.day import deliver_webhooks
from paysignal.testing import make_service

THREE_DS = "pm_card_authenticationRequired"


def create(service: PaymentService, key: str = "k", capture: str = "automatic",
           ) -> ServiceResponse:
    return service.create_payment("m1", key, {**payment_request(provider="stripe"),
                                              "payment_method": THREE_DS, "capture": capture})


def test_authentication_is_a_state_with_the_next_action_and_success_charges_once(
        db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    answer = create(service)
    body = answer.body
    assert (answer.status_code, body["state"]) == (202, "requires_customer_action")
    action = body["customer_action"]
    assert action["type"] == "use_stripe_sdk" and action["client_secret"].startswith("pi_")
    assert sandbox.books.charges() == [] and balances(db_engine, body["id"]) == {}
    assert service.get_payment("m1", body["id"]).state is PaymentState.REQUIRES_CUSTOMER_ACTION
    assert sandbox.complete_action("stripe", body["provider_reference"], approved=True)
    results = deliver_webhooks(service, sandbox, every_pending=True)
    assert results["settled"] == 1
    payment = service.get_payment("m1", body["id"])
    assert (payment.state, payment.captured_minor) == (PaymentState.CAPTURED, 2500)
    assert payment.customer_action is None
    assert len(sandbox.books.charges()) == 1 and total_imbalance_minor(db_engine) == 0


def test_failed_authentication_is_a_decline(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    body = create(service).body
    sandbox.complete_action("stripe", body["provider_reference"], approved=False)
    deliver_webhooks(service, sandbox, every_pending=True)
    payment = service.get_payment("m1", body["id"])
    assert payment.state is PaymentState.DECLINED and sandbox.books.charges() == []


def test_expiry_cancels_at_the_provider_first_so_no_late_charge_lands(db_engine: Engine) -> None:
    service, sandbox, clock = make_service(db_engine)
    body = create(service).body
    assert service.expire_customer_actions() == {"expired": 0, "completed": 0,
                                                 "still_waiting": 0}  # not yet due
    clock.advance(timedelta(hours=1, seconds=1).total_seconds())
    assert service.expire_customer_actions()["expired"] == 1
    payment = service.get_payment("m1", body["id"])
    assert (payment.state, payment.decline_reason) == (PaymentState.DECLINED,
                                                       "customer_action_expired")
    # the customer comes back too late: the provider cancelled the attempt, nothing charges
    assert not sandbox.complete_action("stripe", body["provider_reference"], approved=True)
    assert sandbox.books.charges() == []
    assert service.get_payment("m1", body["id"]).state is PaymentState.DECLINED


def test_a_customer_who_finished_before_expiry_is_charged_once_even_if_the_notice_is_lost(
        db_engine: Engine) -> None:
    service, sandbox, clock = make_service(db_engine)
    body = create(service, capture="manual").body
    sandbox.complete_action("stripe", body["provider_reference"], approved=True)
    sandbox.due_webhooks(float("inf"))  # the notice is lost on its way
    clock.advance(7200)
    assert service.expire_customer_actions()["completed"] == 1
    payment = service.get_payment("m1", body["id"])
    assert payment.state is PaymentState.AUTHORIZED  # Stripe refused the cancel: it was held
    assert len(sandbox.books.charges()) == 1



def test_a_merchant_initiated_charge_tells_stripe_and_is_never_left_waiting(
        db_engine: Engine) -> None:
    """off_session: Stripe asks nobody to authenticate; a card that needs it is declined
    (authentication_required) instead of waiting for a customer who is not there."""
    service, sandbox, _ = make_service(db_engine)
    body = service.create_payment("m1", "k", {**payment_request(provider="stripe"),
                                              "payment_method": THREE_DS,
                                              "initiator": "merchant"}).body
    assert (body["state"], body["decline_reason"]) == ("declined", "authentication_required")
    assert "customer_action" not in body and sandbox.books.charges() == []


def test_adyen_redirects_the_shopper_and_its_notice_or_its_expiry_ends_it(
        db_engine: Engine) -> None:
    service, sandbox, clock = make_service(db_engine)
    request = {**payment_request(provider="adyen"),
               "payment_method": "shopper_1:sandboxChallenge"}
    finished = service.create_payment("m1", "a", {**request, "reference": "o-a"}).body
    abandoned = service.create_payment("m1", "b", {**request, "reference": "o-b"}).body
    for body in (finished, abandoned):
        assert body["state"] == "requires_customer_action"
        assert body["customer_action"]["type"] == "redirect"
        assert body["customer_action"]["url"].endswith(body["provider_reference"])
    assert sandbox.complete_action("adyen", finished["provider_reference"], approved=True)
    assert deliver_webhooks(service, sandbox, every_pending=True)["settled"] == 1
    assert service.get_payment("m1", finished["id"]).state is PaymentState.CAPTURED
    clock.advance(3601)
    assert service.expire_customer_actions()["expired"] == 1
    payment = service.get_payment("m1", abandoned["id"])
    assert (payment.state, payment.decline_reason) == (PaymentState.DECLINED,
                                                       "customer_action_expired")
    assert not sandbox.complete_action("adyen", abandoned["provider_reference"], approved=True)
    assert [c.payment_ref for c in sandbox.books.charges()] == [finished["id"]]
    assert total_imbalance_minor(db_engine) == 0
