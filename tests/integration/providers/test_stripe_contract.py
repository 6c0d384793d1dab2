"""The Stripe connector against the sandbox over real loopback HTTP: each operation, status
mapping, idempotency behaviour, fault class and webhook case."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.base import OutcomeKind, ParsedNotification, ProviderRequest, WebhookSignatureError
from engine.providers.sandbox import Sandbox, SandboxServer
from engine.providers.sandbox.faults import FaultProfile, Faults
from engine.providers.sandbox.stripe import StripeEmulator
from engine.providers.stripe import sign
from tests.support.sandbox import (
    WEBHOOK_SECRET,
    closed_port,
    sandbox_server,
    stripe_connector,
    then,
)

AUTH = {"Authorization": "Bearer sk_test_contract"}


def authorize(request_id: str, method: str = "pm_card_visa", amount: int = 5000,
              payment: str = "pay_1") -> ProviderRequest:
    return ProviderRequest(Operation.AUTHORIZE, request_id, payment, amount, "EUR", method)




def charges(server: SandboxServer) -> int:
    return len(server.sandbox.books.charges())


def test_authorize_partial_capture_and_two_refunds(server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    auth = authorize("idk_1:authorize")
    out = stripe.execute(auth)
    assert (out.kind, out.raw_status) == (OutcomeKind.SUCCEEDED, "requires_capture")
    assert out.provider_reference and out.provider_reference.startswith("pi_")
    pi = out.provider_reference
    captured = stripe.execute(then(auth, Operation.CAPTURE, "idk_2:capture", 4000, pi))
    assert (captured.kind, captured.raw_status) == (OutcomeKind.SUCCEEDED, "succeeded")
    assert captured.fee_minor == stripe.fee_for(4000, "EUR") == 4000 * 290 // 10_000 + 30
    first = stripe.execute(then(auth, Operation.REFUND, "idk_3:refund", 1500, pi))
    rest = stripe.execute(then(auth, Operation.REFUND, "idk_4:refund", 2500, pi))
    too_much = stripe.execute(then(auth, Operation.REFUND, "idk_5:refund", 1, pi))
    assert [first.kind, rest.kind] == [OutcomeKind.SUCCEEDED] * 2
    assert first.provider_reference == pi  # the next operation needs the intent, not re_
    assert too_much.kind is OutcomeKind.REJECTED and too_much.raw_status == "amount_too_large"
    ops = [(e.operation, e.amount_minor) for e in server.sandbox.books.entries()]
    assert ops == [("authorize", 5000), ("capture", 4000), ("refund", 1500), ("refund", 2500)]


def test_void_and_a_capture_after_it_is_rejected(server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    auth = authorize("idk_1:authorize")
    pi = stripe.execute(auth).provider_reference or ""
    assert stripe.execute(then(auth, Operation.VOID, "idk_2:void", 5000, pi)).raw_status == (
        "canceled")
    late = stripe.execute(then(auth, Operation.CAPTURE, "idk_3:capture", 5000, pi))
    assert (late.kind, late.raw_status) == (OutcomeKind.REJECTED,
                                            "payment_intent_unexpected_state")


@pytest.mark.parametrize(("method", "reason"), [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
])
def test_documented_declining_test_cards_are_declines(server: SandboxServer, method: str,
                                                      reason: str) -> None:
    out = stripe_connector(server.base_url("stripe")).execute(authorize("idk_1:authorize",
                                                                        method))
    assert (out.kind, out.reason) == (OutcomeKind.DECLINED, reason)
    assert out.provider_reference and out.provider_reference.startswith("pi_")
    assert charges(server) == 0


def test_a_replayed_key_answers_the_saved_result_and_charges_once(server: SandboxServer,
                                                                  ) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    first, again = (stripe.execute(authorize("idk_1:authorize")) for _ in range(2))
    assert replace(first, latency_s=0) == replace(again, latency_s=0) and charges(server) == 1
    body = {"amount": "5000", "currency": "eur", "payment_method": "pm_card_visa",
            "confirm": "true"}
    url = server.base_url("stripe") + "/v1/payment_intents"
    headers = {**AUTH, "Idempotency-Key": "raw-1"}
    one, two = (httpx.post(url, data=body, headers=headers) for _ in range(2))
    assert "idempotent-replayed" not in one.headers
    assert two.headers["idempotent-replayed"] == "true" and two.json() == one.json()
    other = httpx.post(url, data={**body, "amount": "5001"}, headers=headers)
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert charges(server) == 2


def test_a_key_in_flight_gets_409_and_the_connector_calls_it_unknown() -> None:
    slow = FaultProfile("slow", "", Faults(latency_mean_s=0.4, latency_p99_s=0.4))
    sandbox = Sandbox([StripeEmulator()], profile=slow, sleep=lambda s: time.sleep(0.4))
    with SandboxServer(sandbox) as server:
        stripe = stripe_connector(server.base_url("stripe"))
        results = []
        first = threading.Thread(target=lambda: results.append(
            stripe.execute(authorize("idk_1:authorize"))))
        first.start()
        time.sleep(0.15)
        second = stripe.execute(authorize("idk_1:authorize"))
        first.join()
    assert (second.kind, second.raw_status) == (OutcomeKind.UNKNOWN, "idempotency_key_in_use")
    assert results[0].kind is OutcomeKind.SUCCEEDED and charges(server) == 1


def test_a_refused_connection_is_retryable_and_nothing_is_charged(server: SandboxServer,
                                                                  ) -> None:
    out = stripe_connector(f"http://127.0.0.1:{closed_port()}/stripe").execute(
        authorize("idk_1:authorize"))
    assert out.kind is OutcomeKind.RETRYABLE and out.raw_status.startswith("not sent")
    assert charges(server) == 0


def test_a_read_timeout_after_the_charge_is_unknown_and_the_lookup_finds_the_one_charge(
        server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    req = authorize("idk_1:authorize", "pm_card_sandbox_timeoutAfterCharge")
    started = time.monotonic()
    out = stripe.execute(req)
    assert out.kind is OutcomeKind.UNKNOWN and "ReadTimeout" in out.raw_status
    assert time.monotonic() - started < 2.0  # the read time-out, not the server's stall
    assert charges(server) == 1
    found = stripe.lookup(req)
    assert (found.kind, found.raw_status) == (OutcomeKind.SUCCEEDED, "requires_capture")
    assert found.provider_reference == server.sandbox.books.charges()[0].provider_reference
    assert charges(server) == 1


def test_a_reset_after_the_charge_is_unknown_too(server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    req = authorize("idk_1:authorize", "pm_card_sandbox_resetAfterCharge")
    assert stripe.execute(req).kind is OutcomeKind.UNKNOWN
    assert stripe.lookup(req).kind is OutcomeKind.SUCCEEDED and charges(server) == 1


def test_a_timeout_before_the_charge_is_unknown_and_the_lookup_charges_once(
        server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    req = authorize("idk_1:authorize", "pm_card_sandbox_timeoutBeforeCharge")
    assert stripe.execute(req).kind is OutcomeKind.UNKNOWN and charges(server) == 0
    assert stripe.lookup(req).kind is OutcomeKind.SUCCEEDED
    assert stripe.lookup(req).kind is OutcomeKind.SUCCEEDED and charges(server) == 1


def test_an_old_attempt_is_found_by_searching_the_metadata_not_by_repeating(
        server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    req = authorize("idk_1:authorize", payment="pay_old")
    stripe.execute(req)
    old = replace(req, payment_method=None, age_s=timedelta(days=2).total_seconds())
    found = stripe.lookup(old)
    assert found.kind is OutcomeKind.SUCCEEDED and charges(server) == 1
    never = replace(old, payment_ref="pay_never", request_id="idk_9:authorize")
    assert stripe.lookup(never).kind is OutcomeKind.NOT_FOUND
    recent = replace(never, age_s=timedelta(minutes=5).total_seconds())
    assert stripe.lookup(recent).kind is OutcomeKind.UNKNOWN  # search may still lag


def test_a_provider_that_never_answers_leaves_the_outcome_unknown(server: SandboxServer,
                                                                  ) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    req = authorize("idk_1:authorize", "pm_card_sandbox_lookupUnavailable")
    assert stripe.execute(req).kind is OutcomeKind.UNKNOWN
    assert stripe.lookup(req).kind is OutcomeKind.UNKNOWN
    assert stripe.lookup(replace(req, age_s=timedelta(days=2).total_seconds())
                         ).kind is OutcomeKind.UNKNOWN
    assert charges(server) == 1


def test_should_retry_500_and_429_are_retryable_and_charge_nothing() -> None:
    errors = FaultProfile("errors", "", Faults(server_error=1.0))
    limited = FaultProfile("limited", "", Faults(rate_limited=1.0))
    for profile, word, wait in ((errors, "api_error", None), (limited, "rate_limit", 1.0)):
        with sandbox_server(profile) as server:
            out = stripe_connector(server.base_url("stripe")).execute(
                authorize("idk_1:authorize"))
            assert (out.kind, out.raw_status, out.retry_after_s) == (
                OutcomeKind.RETRYABLE, word, wait)
            assert charges(server) == 0


def test_a_wrong_api_key_is_rejected_not_retried(server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    stripe.config = replace(stripe.config, api_key="rk_live_nope")
    out = stripe.execute(authorize("idk_1:authorize"))
    assert out.kind is OutcomeKind.REJECTED and charges(server) == 0


def test_payment_methods_are_stripe_ids_never_card_numbers(server: SandboxServer) -> None:
    stripe = stripe_connector(server.base_url("stripe"))
    assert stripe.validate_payment_method("pm_card_visa") == "pm_card_visa"
    for bad in ("4242424242424242", "tok_visa", "", None):
        with pytest.raises(ValidationError, match="payment_method"):
            stripe.validate_payment_method(bad)


# --- webhooks ------------------------------------------------------------------------------

def event_from_sandbox(server: SandboxServer) -> tuple[bytes, dict[str, str]]:
    stripe = stripe_connector(server.base_url("stripe"))
    stripe.execute(authorize("idk_1:authorize"))
    [webhook] = server.sandbox.due_webhooks(time.time() + 60)
    return webhook.body, webhook.headers(time.time())


def test_a_signed_event_is_verified_and_parsed(server: SandboxServer) -> None:
    body, headers = event_from_sandbox(server)
    stripe = stripe_connector(server.base_url("stripe"))
    [note] = stripe.verify_notifications(headers, body, time.time(), 300)
    assert isinstance(note, ParsedNotification)
    assert (note.operation, note.succeeded, note.payment_ref, note.amount_minor,
            note.request_id) == (Operation.AUTHORIZE, True, "pay_1", 5000, "idk_1:authorize")
    assert note.event_id.startswith("evt_") and note.provider_reference.startswith("pi_")


def test_bad_stale_and_rotated_signatures(server: SandboxServer) -> None:
    body, headers = event_from_sandbox(server)
    stripe = stripe_connector(server.base_url("stripe"))
    now = time.time()
    with pytest.raises(WebhookSignatureError, match="does not match"):
        stripe.verify_notifications(headers, body + b" ", now, 300)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        stripe.verify_notifications(headers, body, now + 301, 300)
    assert stripe.verify_notifications(headers, body, now + 301, 600)  # tolerance configurable
    with pytest.raises(WebhookSignatureError, match="Stripe-Signature"):
        stripe.verify_notifications({}, body, now, 300)
    # during a rotation Stripe signs with both secrets; either configured one passes
    rotated = stripe_connector(server.base_url("stripe"),
                               secrets=("whsec_new-" + "x" * 30, WEBHOOK_SECRET))
    t = int(now)
    both = f"{sign('whsec_other-' + 'y' * 30, body, t)},v1={sign(WEBHOOK_SECRET, body, t)[-64:]}"
    assert rotated.verify_notifications({"stripe-signature": both}, body, now, 300)
