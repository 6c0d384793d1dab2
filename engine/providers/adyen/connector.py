"""The connector: Adyen's Checkout API v72 over a thin httpx client.

`/payments`, `/payments/{pspReference}/captures`, `/cancels`, `/refunds`; `X-API-Key`;
`Idempotency-Key` (at most 64 characters); `resultCode` mapped; modifications answer `received`
and are confirmed only by notification (SUBMITTED: awaiting confirmation). Adyen has no lookup
endpoint: an unknown outcome is resolved by repeating the request with the same
Idempotency-Key, and otherwise by waiting for the AUTHORISATION notification. Standard
notifications are verified item by item and acknowledged with `[accepted]`; the signature covers
no timestamp, so replays are absorbed by the event-id dedupe, not by a time window."""

from __future__ import annotations

import hmac
import json
from datetime import timedelta
from typing import Any

import httpx

from engine.domain.method_types import MethodType
from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.adyen.config import (
    API_VERSION,
    ENCRYPTED_FIELDS,
    KEY_RETENTION,
    NAME,
    REFUSALS,
    STORED,
    AdyenConfig,
)
from engine.providers.adyen.currencies import CURRENCIES
from engine.providers.adyen.models import ErrorAnswer, ModificationAnswer, PaymentAnswer
from engine.providers.adyen.notices import parse_item
from engine.providers.adyen.signatures import hmac_signature
from engine.providers.base import (
    Acknowledgement,
    MalformedNotificationError,
    Notification,
    OutcomeKind,
    ProviderOutcome,
    ProviderRequest,
    WebhookSignatureError,
)
from engine.providers.wire import MaybeSent, WireClient, WireResponse, outcome_of, read_answer

# --- the connector -------------------------------------------------------------------------

# resultCodes that wait for the shopper (docs.adyen.com/online-payments/payment-result-codes)
SHOPPER_ACTIONS = frozenset(("RedirectShopper", "IdentifyShopper", "ChallengeShopper",
                             "PresentToShopper"))

class AdyenConnector:
    name = NAME

    def __init__(self, config: AdyenConfig, transport: httpx.BaseTransport | None = None,
                 ) -> None:
        self.config = config
        self.client = WireClient(config.endpoint.base_url, config.endpoint.timeouts, transport)

    def validate_payment_method(self, value: object) -> str:
        if not isinstance(value, str):
            value = ""
        if STORED.match(value):
            return value
        fields = value.split("|")
        if len(fields) == ENCRYPTED_FIELDS and all(fields):
            if any(f.startswith("test_") for f in fields) and self.config.is_live:
                raise ValidationError("payment_method", "Adyen's test_ card fields are refused "
                                      "on a live account")
            if all(f.startswith(("adyenjs_", "eyJ", "test_")) for f in fields):
                return value
        raise ValidationError("payment_method", "must be an Adyen stored payment method "
                              "(shopperReference:storedPaymentMethodId) or the four encrypted "
                              "card fields joined by | (number|month|year|security code)")

    def method_type(self, payment_method: str) -> MethodType:
        return MethodType.CARD  # every paymentMethod paysignal sends is of type "scheme"

    def check_amount(self, amount_minor: int, currency: str) -> None:
        CURRENCIES.check(amount_minor, currency)

    def fee_for(self, amount_minor: int, currency: str) -> int:
        return self.config.pricing.capture_fee(amount_minor)

    def acknowledgement(self) -> Acknowledgement:
        return Acknowledgement(200, "[accepted]", "text/plain")

    def _payment_method(self, value: str) -> dict[str, Any]:
        if STORED.match(value):
            shopper, stored = value.split(":", 1)
            return {"type": "scheme", "storedPaymentMethodId": stored, "_shopper": shopper}
        number, month, year, cvc = value.split("|")
        return {"type": "scheme", "encryptedCardNumber": number, "encryptedExpiryMonth": month,
                "encryptedExpiryYear": year, "encryptedSecurityCode": cvc}

    def _request(self, req: ProviderRequest) -> tuple[str, dict[str, Any]]:
        amount = {"value": CURRENCIES.to_provider(req.amount_minor, req.currency),
                  "currency": req.currency}
        account = self.config.merchant_account
        if req.operation is Operation.AUTHORIZE:
            method = self._payment_method(req.payment_method or "")
            body: dict[str, Any] = {
                "merchantAccount": account, "amount": amount, "reference": req.payment_ref,
                "paymentMethod": {k: v for k, v in method.items() if k != "_shopper"},
                # automatic capture at once (whatever the account's default delay), else manual
                **({"captureDelayHours": 0} if req.capture else
                   {"additionalData": {"manualCapture": "true"}}),
                "returnUrl": self.config.return_url,
                "metadata": {"paysignal_request_id": req.request_id}}
            if "_shopper" in method:  # a stored card: who is there decides both fields
                # (docs.adyen.com/online-payments/tokenization/create-and-use-tokens)
                body.update(shopperReference=method["_shopper"], **(
                    {"shopperInteraction": "Ecommerce", "recurringProcessingModel": "CardOnFile"}
                    if req.customer_present else
                    {"shopperInteraction": "ContAuth",
                     "recurringProcessingModel": "UnscheduledCardOnFile"}))
            return f"/{API_VERSION}/payments", body
        path = {Operation.CAPTURE: "captures", Operation.VOID: "cancels",
                Operation.REFUND: "refunds"}[req.operation]
        body = {"merchantAccount": account, "reference": req.payment_ref}
        if req.operation is not Operation.VOID:
            body["amount"] = amount
        return f"/{API_VERSION}/payments/{req.provider_reference}/{path}", body

    def execute(self, req: ProviderRequest) -> ProviderOutcome:
        path, body = self._request(req)
        return outcome_of(lambda: self._outcome(req, self.client.request("POST", path, headers={
            "X-API-Key": self.config.api_key, "Idempotency-Key": req.request_id[:64],
            "Content-Type": "application/json"}, content=json.dumps(body).encode())))

    def _outcome(self, req: ProviderRequest, r: WireResponse) -> ProviderOutcome:
        body, latency = r.json(), r.latency_s
        if r.status in (200, 201):
            if req.operation is not Operation.AUTHORIZE:
                status = read_answer(ModificationAnswer, body, "a modification").status
                if status == "received":
                    return ProviderOutcome(OutcomeKind.SUBMITTED, "received",
                                           req.provider_reference, latency_s=latency)
                raise MaybeSent(f"a modification answered {status!r}")
            answer = read_answer(PaymentAnswer, body, "a payment")
            code, ref = answer.result_code, answer.psp_reference
            if code == "Authorised":
                fee = self.fee_for(req.amount_minor, req.currency) if req.capture else 0
                return ProviderOutcome(OutcomeKind.SUCCEEDED, code, ref, latency_s=latency,
                                       captured=req.capture, fee_minor=fee)
            if code in ("Refused", "Cancelled", "Error"):  # each final (Adyen's resultCode docs)
                reason = REFUSALS.get(str(answer.refusal_reason), ("", code.lower()))[1]
                return ProviderOutcome(OutcomeKind.DECLINED, code, ref, reason=reason,
                                       latency_s=latency)
            if code in ("Pending", "Received"):
                return ProviderOutcome(OutcomeKind.SUBMITTED, code, ref, latency_s=latency)
            if code in SHOPPER_ACTIONS:  # the shopper decides; AUTHORISATION tells the end
                return ProviderOutcome(OutcomeKind.ACTION_REQUIRED, code, ref, latency_s=latency,
                                       customer_action=answer.customer_action())
            # an action we cannot take server to server: the webhook will tell
            return ProviderOutcome(OutcomeKind.UNKNOWN, code, ref, latency_s=latency)
        error = read_answer(ErrorAnswer, body, f"HTTP {r.status}")
        word = f"errorCode {error.error_code}" if error.error_code else f"http_{r.status}"
        if r.status == 429:
            return ProviderOutcome(OutcomeKind.RETRYABLE, word, latency_s=latency,
                                   retry_after_s=r.retry_after_s())
        if r.status >= 500 or (r.status == 422 and error.error_code == "704"):
            # Adyen may have processed it: resolved by repeating with the key or by webhook
            return ProviderOutcome(OutcomeKind.UNKNOWN, word, latency_s=latency)
        return ProviderOutcome(OutcomeKind.REJECTED, word, reason=error.message,
                               latency_s=latency)

    def abandon(self, req: ProviderRequest) -> ProviderOutcome:
        """A technical cancel by our reference (`/cancels` with `paymentReference`): Adyen
        cancels whatever the authorisation becomes, so nothing is charged after it answers
        `received` (docs.adyen.com/online-payments/cancel)."""
        body = {"merchantAccount": self.config.merchant_account,
                "paymentReference": req.payment_ref, "reference": f"{req.payment_ref}-abandon"}
        return outcome_of(lambda: self._abandoned(self.client.request(
            "POST", f"/{API_VERSION}/cancels", headers={
                "X-API-Key": self.config.api_key,
                "Idempotency-Key": f"{req.request_id}:abandon"[:64],
                "Content-Type": "application/json"}, content=json.dumps(body).encode())))

    @staticmethod
    def _abandoned(r: WireResponse) -> ProviderOutcome:
        if r.status in (200, 201) and read_answer(ModificationAnswer, r.json(),
                                                  "a cancel").status == "received":
            return ProviderOutcome(OutcomeKind.DECLINED, "received", reason=(
                "customer_action_expired"), latency_s=r.latency_s)
        return ProviderOutcome(OutcomeKind.UNKNOWN, f"http_{r.status}", latency_s=r.latency_s)

    def lookup(self, req: ProviderRequest) -> ProviderOutcome:
        """Adyen has no lookup: repeat with the same Idempotency-Key while Adyen keeps it (it
        answers what it answered the first time, or runs the request once if it never
        arrived); otherwise wait for the notification."""
        age = timedelta(seconds=req.age_s)
        if age < KEY_RETENTION and (req.operation is not Operation.AUTHORIZE
                                    or req.payment_method):
            return self.execute(req)
        return ProviderOutcome(OutcomeKind.UNKNOWN, "no lookup at Adyen: awaiting the webhook")

    def verify_notifications(self, headers: dict[str, str], body: bytes, now: float,
                             tolerance_s: float) -> list[Notification]:
        try:
            items = [i["NotificationRequestItem"] for i in json.loads(body)["notificationItems"]]
            signatures = [str(i["additionalData"]["hmacSignature"]) for i in items]
        except (KeyError, ValueError, TypeError):
            raise WebhookSignatureError("not a signed Adyen notification") from None
        if not self.config.hmac_keys:
            raise WebhookSignatureError("no HMAC key is configured for adyen")
        for item, given in zip(items, signatures, strict=True):
            if not any(hmac.compare_digest(given, hmac_signature(k, item))
                       for k in self.config.hmac_keys):
                raise WebhookSignatureError("hmacSignature does not match")
        try:
            return [parse_item(i) for i in items]
        except (KeyError, ValueError):
            raise MalformedNotificationError("not an Adyen notification") from None


def connect(config: AdyenConfig, transport: httpx.BaseTransport | None = None,
            ) -> AdyenConnector:
    return AdyenConnector(config, transport)
