"""The providers' own official Python SDKs against the sandbox, changing only the base URL:
proof that the sandbox speaks the real protocols, not only our connectors' idea of them."""

from __future__ import annotations

from typing import cast

import Adyen
import pytest
import stripe
from Adyen.exceptions import AdyenAPIUnprocessableEntity
from stripe.params import PaymentIntentCreateParams

from engine.providers.sandbox import SandboxServer


def test_stripe_python_creates_confirms_captures_refunds_and_sees_replays(
        server: SandboxServer) -> None:
    client = stripe.StripeClient("sk_test_sdk", base_addresses={
        "api": server.base_url("stripe")}, max_network_retries=0)
    params = cast(PaymentIntentCreateParams, {
        "amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "capture_method": "manual", "payment_method_types": ["card"],
        "metadata": {"order": "A-1"}})
    intent = client.v1.payment_intents.create(params, {"idempotency_key": "sdk-1"})
    assert (intent.status, intent.amount_capturable, intent.metadata["order"]) == (
        "requires_capture", 2000, "A-1")
    replayed = client.v1.payment_intents.create(params, {"idempotency_key": "sdk-1"})
    assert replayed.id == intent.id and replayed.last_response is not None
    assert replayed.last_response.headers["idempotent-replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        client.v1.payment_intents.create(cast(PaymentIntentCreateParams, {**params, "amount": 2001}),
                                         {"idempotency_key": "sdk-1"})
    captured = client.v1.payment_intents.capture(intent.id, {"amount_to_capture": 1500})
    assert (captured.status, captured.amount_received) == ("succeeded", 1500)
    refund = client.v1.refunds.create({"payment_intent": intent.id, "amount": 500})
    assert (refund.status, refund.amount, refund.payment_intent) == ("succeeded", 500,
                                                                      intent.id)
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(cast(
            PaymentIntentCreateParams, {**params, "payment_method": "pm_card_chargeDeclined"}))
    assert declined.value.code == "card_declined"
    assert len(server.sandbox.books.charges()) == 1


def test_adyen_python_authorises_captures_refunds_and_replays(server: SandboxServer) -> None:
    adyen = Adyen.Adyen(xapikey="AQE_sdk_key", platform="test")
    base = server.base_url("adyen") + "/v72"
    adyen.checkout.payments_api.baseUrl = base
    adyen.checkout.modifications_api.baseUrl = base
    request = {"merchantAccount": "SandboxECOM", "reference": "sdk-1",
               "returnUrl": "https://shop.test/checkout/returned",
               "amount": {"value": 1500, "currency": "EUR"},
               "paymentMethod": {"type": "scheme", "encryptedCardNumber": "test_4111111111111111",
                                 "encryptedExpiryMonth": "test_03",
                                 "encryptedExpiryYear": "test_2030",
                                 "encryptedSecurityCode": "test_737"},
               "additionalData": {"manualCapture": "true"}}
    first = adyen.checkout.payments_api.payments(request, idempotency_key="sdk-key-1")
    again = adyen.checkout.payments_api.payments(request, idempotency_key="sdk-key-1")
    assert first.message["resultCode"] == "Authorised"
    assert again.message["pspReference"] == first.message["pspReference"]
    psp = first.message["pspReference"]
    modifications = adyen.checkout.modifications_api
    captured = modifications.capture_authorised_payment(
        {"merchantAccount": "SandboxECOM", "amount": {"value": 1500, "currency": "EUR"}}, psp)
    assert (captured.message["status"], captured.message["paymentPspReference"]) == (
        "received", psp)
    refunded = modifications.refund_captured_payment(
        {"merchantAccount": "SandboxECOM", "amount": {"value": 500, "currency": "EUR"}}, psp)
    assert refunded.message["status"] == "received"
    with pytest.raises(AdyenAPIUnprocessableEntity):  # same key, another body: 422 704
        adyen.checkout.payments_api.payments({**request, "reference": "sdk-2"},
                                             idempotency_key="sdk-key-1")
    assert len(server.sandbox.books.charges()) == 1
