"""The Adyen connector against the sandbox over real loopback HTTP, and the engine through
Adyen's asynchronous modifications: submitted, awaiting confirmation, settled by the webhook."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.payments.webhooks import ingest
from engine.providers.adyen import hmac_signature
from engine.providers.base import OutcomeKind, ParsedNotification, ProviderRequest, WebhookSignatureError
from engine.providers.sandbox import SandboxServer
from engine.testing import ManualClock
from paysignal.bootstrap import build_service
from paysignal.testing import virtual_environment
from tests.support.sandbox import (
    ADYEN_HMAC_KEY,
    adyen_connector,
    closed_port,
    then,
)

CARD = "test_4111111111111111|test_03|test_2030|test_737"


def authorize(request_id: str, method: str = CARD, amount: int = 5000,
              payment: str = "pay_1") -> ProviderRequest:
    return ProviderRequest(Operation.AUTHORIZE, request_id, payment, amount, "EUR", method)




def webhooks(server: SandboxServer) -> list[dict[str, object]]:
    return [json.loads(w.body)["notificationItems"][0]["NotificationRequestItem"]
            for w in server.sandbox.due_webhooks(time.time() + 60)]


def test_authorise_then_modifications_are_received_and_confirmed_by_webhook(
        server: SandboxServer) -> None:
    adyen = adyen_connector(server.base_url("adyen"))
    auth = authorize("idk_1:authorize")
    out = adyen.execute(auth)
    assert (out.kind, out.raw_status) == (OutcomeKind.SUCCEEDED, "Authorised")
    psp = out.provider_reference or ""
    capture = adyen.execute(then(auth, Operation.CAPTURE, "idk_2:capture", 3000, psp))
    assert (capture.kind, capture.raw_status, capture.provider_reference) == (
        OutcomeKind.SUBMITTED, "received", psp)
    refund = adyen.execute(then(auth, Operation.REFUND, "idk_3:refund", 4000, psp))
    assert refund.kind is OutcomeKind.SUBMITTED  # accepted now, refused later by webhook
    events = sorted((str(w["eventCode"]), w["success"], w.get("originalReference"))
                    for w in webhooks(server))  # delivered in any order, as Adyen's may be
    assert events == [("AUTHORISATION", "true", None), ("CAPTURE", "true", psp),
                      ("REFUND_FAILED", "true", psp)]


def test_refusals_map_to_declines_with_a_reason(server: SandboxServer) -> None:
    adyen = adyen_connector(server.base_url("adyen"))
    out = adyen.execute(authorize("idk_1:authorize", "shopper_1:sandboxNotEnoughBalance"))
    assert (out.kind, out.raw_status, out.reason) == (OutcomeKind.DECLINED, "Refused",
                                                      "insufficient_funds")
    assert server.sandbox.books.charges() == []


def test_same_key_replays_and_a_different_body_is_refused(server: SandboxServer) -> None:
    adyen = adyen_connector(server.base_url("adyen"))
    first, again = adyen.execute(authorize("idk_1:authorize")), adyen.execute(
        authorize("idk_1:authorize"))
    assert first.provider_reference == again.provider_reference
    other = adyen.execute(authorize("idk_1:authorize", amount=5001))
    assert (other.kind, other.raw_status) == (OutcomeKind.UNKNOWN, "errorCode 704")
    assert len(server.sandbox.books.charges()) == 1


def test_timeouts_are_unknown_and_resolved_by_repeating_the_key(server: SandboxServer) -> None:
    adyen = adyen_connector(server.base_url("adyen"))
    after = authorize("idk_1:authorize", "shopper_1:sandboxTimeoutAfterCharge", payment="pay_a")
    before = authorize("idk_2:authorize", "shopper_1:sandboxTimeoutBeforeCharge",
                       payment="pay_b")
    assert adyen.execute(after).kind is adyen.execute(before).kind is OutcomeKind.UNKNOWN
    assert [c.payment_ref for c in server.sandbox.books.charges()] == ["pay_a"]
    assert adyen.lookup(after).kind is adyen.lookup(before).kind is OutcomeKind.SUCCEEDED
    assert sorted(c.payment_ref for c in server.sandbox.books.charges()) == ["pay_a", "pay_b"]
    old = replace(after, age_s=timedelta(days=8).total_seconds())
    assert adyen.lookup(old).kind is OutcomeKind.UNKNOWN  # no lookup endpoint: the webhook


def test_refused_connection_and_server_error(server: SandboxServer) -> None:
    gone = adyen_connector(f"http://127.0.0.1:{closed_port()}/adyen")
    assert gone.execute(authorize("idk_1:authorize")).kind is OutcomeKind.RETRYABLE
    adyen = adyen_connector(server.base_url("adyen"))
    out = adyen.execute(authorize("idk_2:authorize", "shopper_1:sandboxServerError"))
    assert (out.kind, out.raw_status) == (OutcomeKind.UNKNOWN, "errorCode 901")
    assert server.sandbox.books.charges() == []


def test_payment_methods(server: SandboxServer) -> None:
    adyen = adyen_connector(server.base_url("adyen"))
    assert adyen.validate_payment_method("shopper_1:8415718415718415")
    assert adyen.validate_payment_method(CARD) == CARD
    live = adyen_connector("https://abc-checkout-live.adyenpayments.com/checkout")
    for connector, bad in ((adyen, "4111111111111111"), (adyen, "pm_card_visa"),
                           (live, CARD)):
        with pytest.raises(ValidationError, match="payment_method"):
            connector.validate_payment_method(bad)


def test_notifications_are_verified_item_by_item(server: SandboxServer) -> None:
    adyen = adyen_connector(server.base_url("adyen"))
    adyen.execute(authorize("idk_1:authorize"))
    [webhook] = server.sandbox.due_webhooks(time.time() + 60)
    [note] = adyen.verify_notifications(webhook.headers(time.time()), webhook.body,
                                        time.time(), 300)
    assert isinstance(note, ParsedNotification)
    assert (note.operation, note.succeeded, note.payment_ref, note.amount_minor,
            note.request_id) == (Operation.AUTHORIZE, True, "pay_1", 5000, "idk_1:authorize")
    assert adyen.acknowledgement().body == "[accepted]"
    tampered = webhook.body.replace(b'"value": 5000', b'"value": 5')
    with pytest.raises(WebhookSignatureError, match="does not match"):
        adyen.verify_notifications({}, tampered, time.time(), 300)
    rotated = adyen_connector(server.base_url("adyen"), keys=("AB" * 32, ADYEN_HMAC_KEY))
    assert rotated.verify_notifications({}, webhook.body, time.time(), 300)
    # the documented signing string: empty strings for missing fields
    item = {"pspReference": "7914", "merchantAccountCode": "M", "merchantReference": "r",
            "amount": {"value": 1130, "currency": "EUR"}, "eventCode": "AUTHORISATION",
            "success": "true"}
    assert hmac_signature(ADYEN_HMAC_KEY, item) == hmac_signature(
        ADYEN_HMAC_KEY, {**item, "originalReference": None})


def test_the_engine_awaits_adyens_confirmation_and_the_webhook_settles_it(
        server: SandboxServer, db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    adyen = adyen_connector(server.base_url("adyen"))
    clock = ManualClock(datetime.now(UTC))
    service = build_service(db_engine, gateways={"adyen": adyen}, toggles=None,
                            environment=virtual_environment(clock))
    created = service.create_payment("m1", "k1", {
        "amount": 5000, "currency": "EUR", "reference": "o-1", "payment_method": CARD,
        "capture": "manual", "provider": "adyen"})
    assert created.body_state().value == "authorized"
    captured = service.capture("m1", "k2", created.body["id"], 3000)
    assert (captured.status_code, captured.body_state().value) == (202, "awaiting_confirmation")
    again = service.capture("m1", "k2", created.body["id"], 3000)
    assert again.replayed and len([e for e in server.sandbox.books.entries()
                                   if e.operation == "capture"]) == 1
    results = sorted(ingest(service, "adyen", w.headers(time.time()), w.body)
                     for w in server.sandbox.due_webhooks(time.time() + 60))
    assert results == ["recorded", "settled"]  # AUTHORISATION was answered synchronously
    payment = service.get_payment("m1", created.body["id"])
    assert (payment.state.value, payment.captured_minor) == ("captured", 3000)
    assert payment.fee_minor == adyen.fee_for(3000, "EUR")
