"""Each connector reads a provider's answers and notices through typed wire models: an answer
that does not fit is an unknown outcome (never a decline or a rejection, while money may have
moved), a notice that does not fit is malformed (never half-booked), and fields paysignal does
not read never matter."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.adyen.signatures import hmac_signature
from engine.providers.base import (
    MalformedNotificationError,
    OutcomeKind,
    ParsedNotification,
    ProviderOutcome,
    ProviderRequest,
)
from engine.providers.stripe import sign
from tests.support.sandbox import (
    ADYEN_HMAC_KEY,
    WEBHOOK_SECRET,
    adyen_connector,
    paypal_connector,
    stripe_connector,
)

AUTHORIZE = ProviderRequest(Operation.AUTHORIZE, "idk_1:authorize", "pay_1", 5000, "EUR",
                            "pm_card_visa")
Answer = tuple[int, object]


def transport(answer: Answer) -> httpx.MockTransport:
    """A provider that answers every call with `answer` (PayPal's token call excepted)."""
    status, body = answer

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "A21AA", "expires_in": 32400})
        return httpx.Response(status, json=body)
    return httpx.MockTransport(handle)


def stripe_answers(answer: Answer) -> ProviderOutcome:
    connector = stripe_connector("http://stripe.test", transport=transport(answer))
    return connector.execute(AUTHORIZE)


def adyen_answers(answer: Answer) -> ProviderOutcome:
    connector = adyen_connector("http://adyen.test", transport=transport(answer))
    return connector.execute(ProviderRequest(
        Operation.AUTHORIZE, "idk_1:authorize", "pay_1", 5000, "EUR",
        "test_4111|test_03|test_2030|test_737"))


def paypal_answers(answer: Answer) -> ProviderOutcome:
    connector = paypal_connector("http://paypal.test", transport=transport(answer))
    return connector.execute(ProviderRequest(
        Operation.AUTHORIZE, "idk_1:authorize", "pay_1", 5000, "EUR", "card-vault-1"))


@pytest.mark.parametrize(("call", "answer", "field"), [
    (stripe_answers, (200, {"object": "payment_intent", "id": "pi_1"}), "status"),
    (stripe_answers, (200, {"object": "payment_intent", "status": "requires_capture"}), "id"),
    (stripe_answers, (200, {"object": "payment_intent", "id": "pi_1", "status": "succeeded",
                            "latest_charge": {"balance_transaction": {"fee": "lots"}}}),
     "latest_charge"),
    (adyen_answers, (200, {"pspReference": "8815"}), "resultCode"),
    (paypal_answers, (201, {"id": "5O1", "status": "COMPLETED", "purchase_units": "all"}),
     "purchase_units"),
    (paypal_answers, (201, {"id": "5O1", "purchase_units": []}), "status"),
], ids=["stripe-no-status", "stripe-no-id", "stripe-fee-not-a-number", "adyen-no-result",
        "paypal-units-not-a-list", "paypal-no-status"])
def test_an_answer_that_does_not_fit_is_unknown_and_names_the_field(
        call: Callable[[Answer], ProviderOutcome], answer: Answer, field: str) -> None:
    outcome = call(answer)
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert field in outcome.raw_status


@pytest.mark.parametrize(("call", "answer", "kind"), [
    # an error code sent as a number is still the code: Adyen's 704 means "may have run"
    (adyen_answers, (422, {"status": 422, "errorCode": 704, "message": "in use"}),
     OutcomeKind.UNKNOWN),
    (adyen_answers, (200, {"resultCode": "Authorised", "pspReference": "8815",
                           "newField": {"nested": [1, 2]}}), OutcomeKind.SUCCEEDED),
    (stripe_answers, (402, {"error": {"type": "card_error", "code": "card_declined",
                                      "decline_code": "insufficient_funds",
                                      "payment_intent": {"id": "pi_9", "status": "x"},
                                      "request_log_url": "https://example.test/r"}}),
     OutcomeKind.DECLINED),
    (paypal_answers, (422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"field": "/x"}]}),
     OutcomeKind.REJECTED),
], ids=["adyen-numeric-code", "adyen-new-fields", "stripe-card-error", "paypal-issue-less"])
def test_answers_are_read_by_the_fields_paysignal_uses(
        call: Callable[[Answer], ProviderOutcome], answer: Answer, kind: OutcomeKind) -> None:
    assert call(answer).kind is kind


def test_a_stripe_event_whose_amount_is_not_a_number_is_malformed() -> None:
    intent: dict[str, object] = {
        "id": "pi_1", "status": "succeeded", "currency": "eur", "amount": 5000,
        "amount_received": "lots",
        "capture_method": "automatic", "metadata": {"paysignal_payment_id": "pay_1"}}
    event = {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": intent}}
    body = json.dumps(event).encode()
    now = int(time.time())
    headers = {"stripe-signature": sign(WEBHOOK_SECRET, body, now)}
    with pytest.raises(MalformedNotificationError):
        stripe_connector("http://stripe.test").verify_notifications(headers, body, now, 300)
    intent["amount_received"] = 5000
    body = json.dumps(event).encode()
    headers = {"stripe-signature": sign(WEBHOOK_SECRET, body, now)}
    [note] = stripe_connector("http://stripe.test").verify_notifications(headers, body, now, 300)
    assert isinstance(note, ParsedNotification)
    assert (note.operation, note.amount_minor, note.captured) == (Operation.AUTHORIZE, 5000, True)


def test_an_adyen_item_whose_amount_is_not_a_number_is_malformed() -> None:
    item: dict[str, object] = {
        "eventCode": "AUTHORISATION", "success": "true", "pspReference": "8815",
        "merchantReference": "pay_1", "merchantAccountCode": "SandboxMerchantECOM",
        "eventDate": "2026-12-07T10:00:00+01:00", "amount": {"value": "5k", "currency": "EUR"}}
    item["additionalData"] = {"hmacSignature": hmac_signature(ADYEN_HMAC_KEY, item)}
    body = json.dumps({"live": "false", "notificationItems": [
        {"NotificationRequestItem": item}]}).encode()
    with pytest.raises(MalformedNotificationError):
        adyen_connector("http://adyen.test").verify_notifications({}, body, time.time(), 300)


def recording(answer: Answer, sent: list[httpx.Request]) -> httpx.MockTransport:
    inner = transport(answer)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return inner.handle_request(request)
    return httpx.MockTransport(handle)


@pytest.mark.parametrize(("latest_charge", "fee"), [
    ({"balance_transaction": {"fee": 175, "currency": "eur"}}, 175),  # stated, in EUR
    # in the account's settlement currency (USD): no fee in EUR, so the configured price
    ({"balance_transaction": {"fee": 190, "currency": "usd", "exchange_rate": 1.08}}, None),
    ("ch_1", None),  # not expanded: the configured price, as a notification would book
], ids=["stated", "other-currency", "not-expanded"])
def test_stripe_books_its_stated_fee_only_in_the_payments_currency(
        latest_charge: object, fee: int | None) -> None:
    answer = {"object": "payment_intent", "id": "pi_1", "status": "succeeded",
              "currency": "eur", "amount": 5000, "latest_charge": latest_charge}
    stripe = stripe_connector("http://stripe.test", transport=transport((200, answer)))
    outcome = stripe.execute(AUTHORIZE)
    assert outcome.captured
    assert outcome.fee_minor == (stripe.fee_for(5000, "EUR") if fee is None else fee)


def test_a_paypal_capture_sends_no_custom_id_and_a_refund_does() -> None:
    sent: list[httpx.Request] = []
    answer = (201, {"id": "2GG", "status": "COMPLETED"})
    paypal = paypal_connector("http://paypal.test", transport=recording(answer, sent))
    paypal.execute(ProviderRequest(Operation.CAPTURE, "idk_1:capture", "pay_1", 5000, "EUR",
                                   provider_reference="0VF"))
    paypal.execute(ProviderRequest(Operation.REFUND, "idk_1:refund", "pay_1", 500, "EUR",
                                   provider_reference="2GG"))
    capture, refund = (json.loads(r.content) for r in sent if r.url.path.startswith("/v2/"))
    assert "custom_id" not in capture and refund["custom_id"] == "pay_1"


def test_a_paypal_void_of_a_voided_authorization_is_done_not_refused() -> None:
    answer = (422, {"name": "UNPROCESSABLE_ENTITY", "details": [
        {"issue": "PREVIOUSLY_VOIDED", "description": "Authorization has been previously "
                                                      "voided and hence cannot be voided again."}]})
    paypal = paypal_connector("http://paypal.test", transport=transport(answer))
    void = ProviderRequest(Operation.VOID, "idk_1:void", "pay_1", 5000, "EUR",
                           provider_reference="0VF")
    assert paypal.execute(void).kind is OutcomeKind.SUCCEEDED
    assert paypal.lookup(void).kind is OutcomeKind.SUCCEEDED


def test_adyen_sends_a_return_url_and_an_error_result_is_final() -> None:
    """`Error` is final at Adyen ("the reason is given in the refusalReason field"): a
    payment left unknown would wait for a notification that never changes it."""
    sent: list[httpx.Request] = []
    answer = (200, {"resultCode": "Error", "pspReference": "8815",
                    "refusalReason": "Acquirer Error"})
    outcome = adyen_connector("http://adyen.test", transport=recording(answer, sent)).execute(
        ProviderRequest(Operation.AUTHORIZE, "idk_1:authorize", "pay_1", 5000, "EUR",
                        "test_4111|test_03|test_2030|test_737"))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.DECLINED, "error")
    assert json.loads(sent[0].content)["returnUrl"] == "https://shop.test/checkout/returned"


def test_adyen_without_a_return_url_refuses_to_start_naming_the_variable() -> None:
    from engine.exceptions import ConfigurationError
    from engine.providers.adyen.config import AdyenConfig

    env = {"PAYSIGNAL_ADYEN_API_KEY": "AQE_key", "PAYSIGNAL_ADYEN_MERCHANT_ACCOUNT": "ShopECOM"}
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_ADYEN_RETURN_URL=''"):
        AdyenConfig.from_environment(env)
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_ADYEN_RETURN_URL='shop.test'"):
        AdyenConfig.from_environment({**env, "PAYSIGNAL_ADYEN_RETURN_URL": "shop.test"})
    config = AdyenConfig.from_environment(
        {**env, "PAYSIGNAL_ADYEN_RETURN_URL": "https://shop.test/back"})
    assert config is not None and config.return_url == "https://shop.test/back"


def test_stripe_charges_a_customers_payment_method_with_its_customer() -> None:
    from urllib.parse import parse_qs

    sent: list[httpx.Request] = []
    answer = (200, {"object": "payment_intent", "id": "pi_1", "status": "requires_capture"})
    stripe = stripe_connector("http://stripe.test", transport=recording(answer, sent))
    token = stripe.validate_payment_method("cus_Q1w2E3:pm_1PaBcD")
    stripe.execute(ProviderRequest(Operation.AUTHORIZE, "idk_1:authorize", "pay_1", 5000,
                                   "EUR", token))
    form = parse_qs(sent[0].content.decode())
    assert (form["customer"], form["payment_method"]) == (["cus_Q1w2E3"], ["pm_1PaBcD"])
    with pytest.raises(ValidationError, match="payment_method"):
        stripe.validate_payment_method("cus_Q1w2E3:4242424242424242")



@pytest.mark.parametrize(("call", "answer", "url"), [
    (adyen_answers, (200, {"resultCode": "RedirectShopper", "pspReference": "8815",
                           "action": {"type": "redirect", "method": "GET",
                                      "url": "https://test.adyen.com/hpp/3d/validate.shtml"}}),
     "https://test.adyen.com/hpp/3d/validate.shtml"),
    (adyen_answers, (200, {"resultCode": "ChallengeShopper", "pspReference": "8816",
                           "action": {"type": "threeDS2", "token": "eyJ0aHJ"}}), None),
    (paypal_answers, (200, {"id": "5O1", "status": "PAYER_ACTION_REQUIRED",
                            "purchase_units": [{}], "links": [
                                {"href": "https://www.paypal.com/checkoutnow?token=5O1",
                                 "rel": "payer-action"}]}),
     "https://www.paypal.com/checkoutnow?token=5O1"),
    (stripe_answers, (200, {"object": "payment_intent", "id": "pi_1", "status":
                            "requires_action", "client_secret": "pi_1_secret_x",
                            "next_action": {"type": "redirect_to_url", "redirect_to_url": {
                                "url": "https://hooks.stripe.com/3ds/pi_1"}}}),
     "https://hooks.stripe.com/3ds/pi_1"),
], ids=["adyen-redirect", "adyen-challenge", "paypal-payer-action", "stripe-redirect"])
def test_a_customer_action_is_never_a_decline_and_says_where_to_send_the_customer(
        call: Callable[[Answer], ProviderOutcome], answer: Answer, url: str | None) -> None:
    outcome = call(answer)
    assert outcome.kind is OutcomeKind.ACTION_REQUIRED and outcome.provider_reference
    assert outcome.customer_action is not None
    assert outcome.customer_action.get("url") == url



def test_each_provider_is_told_when_the_merchant_charges_without_the_customer() -> None:
    """A merchant-initiated charge says so (Stripe off_session; Adyen ContAuth with an
    unscheduled card-on-file model; PayPal a merchant stored credential); one with the
    customer there claims no such thing (Adyen: Ecommerce, CardOnFile)."""
    from urllib.parse import parse_qs

    sent: list[httpx.Request] = []
    stripe = stripe_connector("http://stripe.test", transport=recording(
        (200, {"object": "payment_intent", "id": "pi_1", "status": "requires_capture"}), sent))
    adyen = adyen_connector("http://adyen.test", transport=recording(
        (200, {"resultCode": "Authorised", "pspReference": "8815"}), sent))
    paypal = paypal_connector("http://paypal.test", transport=recording(
        (201, {"id": "5O1", "status": "COMPLETED", "purchase_units": [
            {"payments": {"authorizations": [{"id": "0VF", "status": "CREATED"}]}}]}), sent))
    for present in (True, False):
        for gateway, method in ((stripe, "pm_card_visa"), (adyen, "shopper_1:8415718415"),
                                (paypal, "7a8b9c0d")):
            gateway.execute(ProviderRequest(Operation.AUTHORIZE, "idk_1:authorize", "pay_1",
                                            5000, "EUR", method, customer_present=present))
    bodies = [r for r in sent if not r.url.path.endswith("/oauth2/token")]
    stripe_forms = [parse_qs(r.content.decode()) for r in bodies if r.url.host == "stripe.test"]
    adyen_jsons = [json.loads(r.content) for r in bodies if r.url.host == "adyen.test"]
    paypal_jsons = [json.loads(r.content) for r in bodies if r.url.host == "paypal.test"]
    assert ["off_session" in f for f in stripe_forms] == [False, True]
    assert stripe_forms[1]["off_session"] == ["true"]
    assert [(b["shopperInteraction"], b["recurringProcessingModel"]) for b in adyen_jsons] == [
        ("Ecommerce", "CardOnFile"), ("ContAuth", "UnscheduledCardOnFile")]
    cards = [b["payment_source"]["card"] for b in paypal_jsons]
    assert "stored_credential" not in cards[0]
    assert cards[1]["stored_credential"]["payment_initiator"] == "MERCHANT"
