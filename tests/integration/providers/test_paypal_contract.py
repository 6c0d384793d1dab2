"""The PayPal connector against the sandbox over real loopback HTTP: OAuth2, Orders v2 and
Payments v2, PayPal-Request-Id, faults, and webhooks verified by postback and offline."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.base import OutcomeKind, ParsedNotification, ProviderRequest, WebhookSignatureError
from engine.providers.paypal import cert_url_allowed
from engine.providers.sandbox import SandboxServer
from tests.support.sandbox import closed_port, paypal_connector, then


def authorize(request_id: str, method: str = "7a8b9c0d", amount: int = 5000,
              payment: str = "pay_1") -> ProviderRequest:
    return ProviderRequest(Operation.AUTHORIZE, request_id, payment, amount, "USD", method)




def test_authorize_capture_refund_void_with_one_cached_token(server: SandboxServer) -> None:
    paypal = paypal_connector(server.base_url("paypal"))
    auth = authorize("idk_1:authorize")
    out = paypal.execute(auth)
    assert (out.kind, out.raw_status) == (OutcomeKind.SUCCEEDED, "CREATED")
    captured = paypal.execute(then(auth, Operation.CAPTURE, "idk_2:capture", 4000,
                                   out.provider_reference))
    assert (captured.kind, captured.raw_status) == (OutcomeKind.SUCCEEDED, "COMPLETED")
    assert captured.fee_minor == paypal.fee_for(4000, "USD") == 4000 * 349 // 10_000 + 49
    capture_id = captured.provider_reference
    assert capture_id and capture_id != out.provider_reference
    refund = paypal.execute(then(auth, Operation.REFUND, "idk_3:refund", 1000, capture_id))
    assert (refund.kind, refund.provider_reference) == (OutcomeKind.SUCCEEDED, capture_id)
    over = paypal.execute(then(auth, Operation.REFUND, "idk_4:refund", 3001, capture_id))
    assert (over.kind, over.raw_status) == (OutcomeKind.REJECTED, "REFUND_AMOUNT_EXCEEDED")
    second = authorize("idk_5:authorize", payment="pay_2")
    auth_id = paypal.execute(second).provider_reference
    voided = paypal.execute(then(second, Operation.VOID, "idk_6:void", 5000, auth_id))
    assert (voided.kind, voided.raw_status) == (OutcomeKind.SUCCEEDED, "VOIDED")
    late = paypal.execute(then(second, Operation.CAPTURE, "idk_7:capture", 5000, auth_id))
    assert (late.kind, late.raw_status) == (OutcomeKind.REJECTED, "AUTHORIZATION_VOIDED")
    assert len(server.sandbox.emulators["paypal"]._tokens) == 1  # type: ignore[attr-defined]


def test_declines_carry_the_processor_response(server: SandboxServer) -> None:
    out = paypal_connector(server.base_url("paypal")).execute(
        authorize("idk_1:authorize", "sandbox-insufficient-funds"))
    assert (out.kind, out.raw_status, out.reason) == (OutcomeKind.DECLINED, "DENIED",
                                                      "insufficient_funds")
    assert server.sandbox.books.charges() == []


def test_a_repeated_request_id_answers_the_latest_status_without_a_second_charge(
        server: SandboxServer) -> None:
    paypal = paypal_connector(server.base_url("paypal"))
    auth = authorize("idk_1:authorize")
    first = paypal.execute(auth)
    paypal.execute(then(auth, Operation.CAPTURE, "idk_2:capture", 5000,
                        first.provider_reference))
    again = paypal.execute(auth)
    assert (again.kind, again.raw_status, again.provider_reference) == (
        OutcomeKind.SUCCEEDED, "CAPTURED", first.provider_reference)
    assert len(server.sandbox.books.charges()) == 1


def test_timeouts_are_unknown_and_resolved_by_the_request_id(server: SandboxServer) -> None:
    paypal = paypal_connector(server.base_url("paypal"))
    after = authorize("idk_1:authorize", "sandbox-timeout-after-charge", payment="pay_a")
    before = authorize("idk_2:authorize", "sandbox-timeout-before-charge", payment="pay_b")
    assert paypal.execute(after).kind is paypal.execute(before).kind is OutcomeKind.UNKNOWN
    assert [c.payment_ref for c in server.sandbox.books.charges()] == ["pay_a"]
    assert paypal.lookup(after).kind is paypal.lookup(before).kind is OutcomeKind.SUCCEEDED
    assert sorted(c.payment_ref for c in server.sandbox.books.charges()) == ["pay_a", "pay_b"]


def test_refused_connections_and_bad_credentials(server: SandboxServer) -> None:
    gone = paypal_connector(f"http://127.0.0.1:{closed_port()}/paypal")
    assert gone.execute(authorize("idk_1:authorize")).kind is OutcomeKind.RETRYABLE
    wrong = paypal_connector(server.base_url("paypal"))
    wrong.config = replace(wrong.config, client_secret="")
    assert wrong.execute(authorize("idk_2:authorize")).kind is OutcomeKind.REJECTED
    assert server.sandbox.books.charges() == []


def test_payment_methods_are_vault_tokens(server: SandboxServer) -> None:
    paypal = paypal_connector(server.base_url("paypal"))
    for bad in ("4111 1111 1111 1111", "pm_card_visa!", "ab"):
        with pytest.raises(ValidationError, match="payment_method"):
            paypal.validate_payment_method(bad)


def test_webhooks_verified_offline_and_by_postback(server: SandboxServer) -> None:
    offline = paypal_connector(server.base_url("paypal"), verification="offline")
    postback = paypal_connector(server.base_url("paypal"), verification="postback")
    offline.execute(authorize("idk_1:authorize"))
    [webhook] = server.sandbox.due_webhooks(time.time() + 60)
    now = time.time()
    headers = webhook.headers(now)
    for connector in (offline, postback):
        [note] = connector.verify_notifications(headers, webhook.body, now, 300)
        assert isinstance(note, ParsedNotification)
        assert (note.operation, note.succeeded, note.payment_ref, note.amount_minor) == (
            Operation.AUTHORIZE, True, "pay_1", 5000)
    tampered = webhook.body.replace(b'"value":"50.00"', b'"value":"0.50"')
    for connector in (offline, postback):
        with pytest.raises(WebhookSignatureError):
            connector.verify_notifications(headers, tampered, now, 300)
        with pytest.raises(WebhookSignatureError, match="tolerance"):
            connector.verify_notifications(headers, webhook.body, now + 400, 300)
    elsewhere = {**headers, "paypal-cert-url": "http://evil.example/v1/notifications/certs/X"}
    with pytest.raises(WebhookSignatureError, match="configured PayPal host"):
        offline.verify_notifications(elsewhere, webhook.body, now, 300)
    other_hook = paypal_connector(server.base_url("paypal"), verification="postback",
                                  webhook_id="WH-SOMEONE-ELSE")
    with pytest.raises(WebhookSignatureError):
        other_hook.verify_notifications(headers, webhook.body, now, 300)
    assert json.loads(webhook.body)["event_type"] == "PAYMENT.AUTHORIZATION.CREATED"


def test_certificates_come_only_from_the_configured_host() -> None:
    base = "https://api-m.paypal.com"
    assert cert_url_allowed("https://api.paypal.com/v1/notifications/certs/CERT-1", base)
    assert cert_url_allowed("https://api-m.paypal.com/v1/notifications/certs/CERT-1", base)
    for url in ("http://api.paypal.com/v1/notifications/certs/CERT-1",
                "https://api.paypal.com.evil.io/v1/notifications/certs/CERT-1",
                "https://api.paypal.com/v1/other/CERT-1",
                "https://api.paypal.com/v1/notifications/certs/../../x"):
        assert not cert_url_allowed(url, base), url


def test_the_sandbox_like_paypal_takes_a_card_given_in_full_from_other_clients(
        server: SandboxServer) -> None:
    """Other PayPal clients may send a card in full (paysignal never does: it takes vault tokens
    only); the sandbox accepts it as PayPal does."""
    import httpx

    paypal = paypal_connector(server.base_url("paypal"))
    r = httpx.post(server.base_url("paypal") + "/v2/checkout/orders", headers={
        "Authorization": f"Bearer {paypal.access_token()}", "PayPal-Request-Id": "other-1"},
        json={"intent": "CAPTURE", "purchase_units": [
            {"custom_id": "their-order", "amount": {"currency_code": "USD", "value": "10.00"}}],
            "payment_source": {"card": {"number": "4111111111111111", "expiry": "2030-03"}}})
    assert r.status_code == 201 and r.json()["status"] == "COMPLETED"
    assert r.json()["purchase_units"][0]["payments"]["captures"][0]["status"] == "COMPLETED"
