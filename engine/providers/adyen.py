"""Adyen (Checkout API v72): everything paysignal knows of it, and the only module that knows it.

- The connector: `/payments`, `/payments/{pspReference}/captures`, `/cancels`, `/refunds`;
  `X-API-Key`; `Idempotency-Key` (at most 64 characters); `resultCode` mapped; modifications
  answer `received` and are confirmed only by webhook (SUBMITTED: awaiting confirmation).
  Adyen has no lookup endpoint: an unknown outcome is resolved by repeating the request with
  the same Idempotency-Key, and otherwise by waiting for the AUTHORISATION notification.
- Standard notifications (`notificationItems`) are verified item by item: HMAC-SHA256 with the
  hex-decoded key over `pspReference:originalReference:merchantAccountCode:merchantReference:
  value:currency:eventCode:success`, base64 in `additionalData.hmacSignature`; acknowledged with
  `[accepted]`. The signature covers no timestamp, so replays are absorbed by the event-id
  dedupe (pspReference, eventCode, success), not by a time window.
- The emulator is Adyen's side of the paysignal sandbox.

A thin httpx client rather than the official SDK (Adyen 16): it takes one timeout value and
raises the same error for a refused connection and a read time-out.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx

from engine.domain.method_types import MethodType
from engine.domain.operations import Operation
from engine.exceptions import ConfigurationError, ValidationError
from engine.providers.base import (
    Acknowledgement,
    DisputeStage,
    MalformedNotificationError,
    Notification,
    OutcomeKind,
    ParsedDispute,
    ParsedNotification,
    ProviderOutcome,
    ProviderRequest,
    WebhookSignatureError,
)
from engine.providers.config import Endpoint, Pricing, env_secret, webhook_secrets
from engine.providers.sandbox import (
    BookEntry,
    Fate,
    OutgoingWebhook,
    SandboxContext,
    SandboxRequest,
    SandboxResponse,
    Wire,
    lost_on_the_wire,
)
from engine.providers.wire import MaybeSent, WireClient, WireResponse, outcome_of
from engine.settlement import lines

NAME = "adyen"
TEST_URL = "https://checkout-test.adyen.com"  # live: https://{prefix}-checkout-live.adyenpayments.com/checkout
API_VERSION = "v72"
API_KEY_VARIABLE = "PAYSIGNAL_ADYEN_API_KEY"
MERCHANT_ACCOUNT_VARIABLE = "PAYSIGNAL_ADYEN_MERCHANT_ACCOUNT"
# Adyen documents a minimum of 31 days for keys; secondary sources say 7. The safe reading.
KEY_RETENTION = timedelta(days=7)
# processing fee + a card scheme's markup, and the chargeback fee; configurable
PRICING = Pricing(60, 13, dispute_fee_minor=750)
STORED = re.compile(r"^[A-Za-z0-9_.-]{1,64}:[A-Za-z0-9]{4,64}$")  # shopperReference:storedId
ENCRYPTED_FIELDS = 4  # card number | expiry month | expiry year | security code

_REFUSALS = {  # refusalReason -> (refusalReasonCode, normalized reason)
    "Refused": ("2", "do_not_honor"), "Expired Card": ("6", "expired_card"),
    "Not enough balance": ("12", "insufficient_funds"), "FRAUD": ("20", "suspected_fraud"),
}
# Sandbox-only stored payment methods that force a fault or a refusal.
SANDBOX_STORED = {
    "sandboxRefused": "Refused", "sandboxNotEnoughBalance": "Not enough balance",
    "sandboxExpired": "Expired Card",
}
SILENT = "sandboxUnknownForever"  # authorised, times out, and never told of again
SANDBOX_FAULTS = {
    SILENT: Fate.TIMEOUT_AFTER,
    "sandboxTimeoutAfterCharge": Fate.TIMEOUT_AFTER,
    "sandboxTimeoutBeforeCharge": Fate.TIMEOUT_BEFORE,
    "sandboxServerError": Fate.SERVER_ERROR,
}
TEST_PAYMENT_METHODS = {
    "test_4111111111111111|test_03|test_2030|test_737":
        "Adyen's documented unencrypted test card fields (test hosts only): approved",
    "shopper_1:8415718415718415": "a stored card (shopperReference:storedPaymentMethodId)",
    **{f"shopper_1:{k}": f"sandbox only: refused, {v}" for k, v in SANDBOX_STORED.items()},
    "shopper_1:sandboxTimeoutAfterCharge": "sandbox only: authorised, then the answer times out",
    "shopper_1:sandboxTimeoutBeforeCharge": "sandbox only: the first request with a key times "
                                            "out before anything happens",
    "shopper_1:sandboxServerError": "sandbox only: a 500 before anything happens",
    f"shopper_1:{SILENT}": "sandbox only: authorised, times out, never repeated nor notified",
}


@dataclass(frozen=True, slots=True)
class AdyenConfig:
    endpoint: Endpoint
    api_key: str
    merchant_account: str
    hmac_keys: tuple[str, ...]  # hex, the current one first during a rotation
    pricing: Pricing = PRICING

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> AdyenConfig | None:
        key = env_secret(API_KEY_VARIABLE, env)
        if not key:
            return None
        account = env_secret(MERCHANT_ACCOUNT_VARIABLE, env)
        if not account:
            raise ConfigurationError(f"{MERCHANT_ACCOUNT_VARIABLE}: is not set (Adyen needs "
                                     "the merchant account with the API key)")
        return cls(Endpoint.from_environment(NAME, TEST_URL, env), key, account,
                   tuple(webhook_secrets(NAME, env)), Pricing.from_environment(NAME, PRICING, env))

    @property
    def is_live(self) -> bool:
        return "-live" in self.endpoint.base_url


# --- the signature scheme (both ends) -----------------------------------------------------

SIGNED_FIELDS = ("pspReference", "originalReference", "merchantAccountCode",
                 "merchantReference", "value", "currency", "eventCode", "success")


def signing_string(item: dict[str, Any]) -> str:
    amount = item.get("amount") or {}
    values = {**{k: item.get(k) for k in SIGNED_FIELDS}, "value": amount.get("value"),
              "currency": amount.get("currency")}
    return ":".join("" if values[k] is None else str(values[k]) for k in SIGNED_FIELDS)


def hmac_signature(hex_key: str, item: dict[str, Any]) -> str:
    try:
        key = binascii.unhexlify(hex_key)
    except (binascii.Error, ValueError):
        raise WebhookSignatureError("the configured Adyen HMAC key is not hex") from None
    mac = hmac.new(key, signing_string(item).encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


# --- the connector -------------------------------------------------------------------------

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
        amount = {"value": req.amount_minor, "currency": req.currency}
        account = self.config.merchant_account
        if req.operation is Operation.AUTHORIZE:
            method = self._payment_method(req.payment_method or "")
            body: dict[str, Any] = {
                "merchantAccount": account, "amount": amount, "reference": req.payment_ref,
                "paymentMethod": {k: v for k, v in method.items() if k != "_shopper"},
                # automatic capture at once (whatever the account's default delay), else manual
                **({"captureDelayHours": 0} if req.capture else
                   {"additionalData": {"manualCapture": "true"}}),
                "metadata": {"paysignal_request_id": req.request_id}}
            if "_shopper" in method:
                body.update(shopperReference=method["_shopper"], shopperInteraction="ContAuth",
                            recurringProcessingModel="CardOnFile")
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
                if body.get("status") == "received":
                    return ProviderOutcome(OutcomeKind.SUBMITTED, "received",
                                           req.provider_reference, latency_s=latency)
                raise MaybeSent(f"a modification answered {body.get('status')!r}")
            code, ref = str(body.get("resultCode")), body.get("pspReference")
            if code == "Authorised":
                fee = self.fee_for(req.amount_minor, req.currency) if req.capture else 0
                return ProviderOutcome(OutcomeKind.SUCCEEDED, code, ref, latency_s=latency,
                                       captured=req.capture, fee_minor=fee)
            if code in ("Refused", "Cancelled"):
                reason = _REFUSALS.get(str(body.get("refusalReason")), ("", "refused"))[1]
                return ProviderOutcome(OutcomeKind.DECLINED, code, ref, reason=reason,
                                       latency_s=latency)
            if code in ("Pending", "Received"):
                return ProviderOutcome(OutcomeKind.SUBMITTED, code, ref, latency_s=latency)
            # Error, or an action we cannot take server to server: the webhook will tell
            return ProviderOutcome(OutcomeKind.UNKNOWN, code, ref, latency_s=latency)
        word = f"errorCode {body.get('errorCode')}" if body.get("errorCode") else f"http_{r.status}"
        if r.status == 429:
            return ProviderOutcome(OutcomeKind.RETRYABLE, word, latency_s=latency,
                                   retry_after_s=r.retry_after_s())
        if r.status >= 500 or (r.status == 422 and body.get("errorCode") == "704"):
            # Adyen may have processed it: resolved by repeating with the key or by webhook
            return ProviderOutcome(OutcomeKind.UNKNOWN, word, latency_s=latency)
        return ProviderOutcome(OutcomeKind.REJECTED, word, reason=body.get("message"),
                               latency_s=latency)

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
        except (KeyError, ValueError, TypeError, AttributeError):
            raise MalformedNotificationError("not an Adyen notification") from None


_EVENTS = {"AUTHORISATION": (Operation.AUTHORIZE, None), "CAPTURE": (Operation.CAPTURE, None),
           "CAPTURE_FAILED": (Operation.CAPTURE, False), "CANCELLATION": (Operation.VOID, None),
           "REFUND": (Operation.REFUND, None), "REFUND_FAILED": (Operation.REFUND, False)}


# NOTIFICATION_OF_CHARGEBACK tells of a dispute before any money moves; CHARGEBACK debits it;
# CHARGEBACK_REVERSED returns it (won); SECOND_CHARGEBACK takes it again for good (lost).
_DISPUTE_EVENTS = {"NOTIFICATION_OF_CHARGEBACK": DisputeStage.OPENED,
                   "CHARGEBACK": DisputeStage.FUNDS_WITHDRAWN,
                   "CHARGEBACK_REVERSED": DisputeStage.WON,
                   "SECOND_CHARGEBACK": DisputeStage.LOST}


def parse_item(item: dict[str, Any]) -> Notification:
    if item["eventCode"] in _DISPUTE_EVENTS:
        return _parse_dispute(item)
    operation, forced = _EVENTS[item["eventCode"]]
    succeeded = item["success"] == "true" if forced is None else forced
    payment_reference = item.get("originalReference") or item["pspReference"]
    sent_at = datetime.fromisoformat(item["eventDate"]).timestamp()
    request_id = (item.get("additionalData") or {}).get("metadata.paysignal_request_id")
    return ParsedNotification(
        f"{item['pspReference']}:{item['eventCode']}:{item['success']}",
        item["merchantReference"], payment_reference, operation, succeeded,
        amount_minor=int(item["amount"]["value"]) if operation is not Operation.VOID else None,
        request_id=request_id if operation is Operation.AUTHORIZE else None, sent_at=sent_at)


def _parse_dispute(item: dict[str, Any]) -> ParsedDispute:
    extra = item.get("additionalData") or {}
    due = extra.get("defensePeriodEndsAt")
    # the dispute is known by the payment's reference and its own (the chargeback's) reference
    payment = item.get("originalReference") or item["pspReference"]
    return ParsedDispute(
        f"{item['pspReference']}:{item['eventCode']}:{item['success']}",
        str(extra.get("disputePspReference") or f"{payment}-chargeback"), payment,
        _DISPUTE_EVENTS[item["eventCode"]], int(item["amount"]["value"]),
        str(item["amount"]["currency"]), payment_ref=str(item.get("merchantReference") or ""),
        reason=str(item.get("reason") or extra.get("chargebackReasonCode") or ""),
        due_by=datetime.fromisoformat(due).timestamp() if due else None,
        sent_at=datetime.fromisoformat(item["eventDate"]).timestamp())


# --- the emulator: Adyen's side of the sandbox ---------------------------------------------

def _error(status: int, code: str, message: str, error_type: str = "validation",
           ) -> SandboxResponse:
    return SandboxResponse.json(status, {"status": status, "errorCode": code,
                                         "message": message, "errorType": error_type})


class AdyenEmulator:
    provider = NAME

    def __init__(self, hmac_key: str | None = None, company: str = "SandboxCompany") -> None:
        self.hmac_key, self.company = hmac_key, company
        self._payments: dict[str, dict[str, Any]] = {}
        self._stalled: set[str] = set()
        self._silent: set[str] = set()

    def handle(self, request: SandboxRequest, ctx: SandboxContext) -> SandboxResponse:
        api_key = request.headers.get("x-api-key")
        if not api_key:
            return _error(401, "000", "HTTP Status Response - Unauthorized", "security")
        if request.method != "POST":
            return _error(405, "905", "Method not allowed")
        try:
            body = json.loads(request.body)
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return _error(400, "702", "Structure of the request body is invalid")
        key = request.headers.get("idempotency-key")
        if key is None:
            return self._execute(request.path, body, ctx, ctx.new_id("auto"))
        if len(key) > 64:
            return _error(422, "702", "Idempotency-Key is longer than 64 characters")
        scope = (NAME, api_key, key)
        existing = ctx.idempotency.claim(scope, f"{request.path}:{json.dumps(body, sort_keys=True)}")
        if existing is not None:
            if existing.response is None or existing.fingerprint != (
                    f"{request.path}:{json.dumps(body, sort_keys=True)}"):
                return _error(422, "704", "request already processed or in progress")
            saved = existing.response
            if json.loads(saved.body or b"{}").get("pspReference") in self._silent:
                return SandboxResponse(wire=Wire.STALL)
            if ctx.fate("lookup", key, booking=False) is Fate.SERVER_ERROR:
                return _error(500, "901", "Internal error", "internal")
            return SandboxResponse(saved.status, saved.body,
                                   {**saved.headers, "idempotency-key": key})
        response = self._execute(request.path, body, ctx, key)
        if response.unbooked:
            ctx.idempotency.release(scope)
        else:
            ctx.idempotency.finish(scope, response)
        return SandboxResponse(response.status, response.body,
                               {**response.headers, "idempotency-key": key}, response.wire)

    def _execute(self, path: str, body: dict[str, Any], ctx: SandboxContext,
                 key: str) -> SandboxResponse:
        if path == f"/{API_VERSION}/payments":
            return self._authorise(body, ctx, key)
        m = re.fullmatch(rf"/{API_VERSION}/payments/([^/]+)/(captures|cancels|refunds)", path)
        if m:
            return self._modify(m.group(1), m.group(2), body, ctx, key)
        return _error(404, "000", f"no such endpoint {path}")

    def _fated(self, ctx: SandboxContext, operation: str, key: str,
               forced: Fate | None = None) -> Fate | SandboxResponse:
        return ctx.fated(operation, key, forced,
                         server_error=_error(500, "901", "Internal error", "internal"),
                         rate_limited=SandboxResponse.json(429, {
                             "status": 429, "errorCode": "429", "message": "Too many requests",
                             "errorType": "throttling"}, {"retry-after": "1"}))

    def _authorise(self, b: dict[str, Any], ctx: SandboxContext, key: str) -> SandboxResponse:
        try:
            amount: dict[str, Any] = {"value": int(b["amount"]["value"]),
                                      "currency": str(b["amount"]["currency"])}
            account, reference, method = b["merchantAccount"], str(b["reference"]), b["paymentMethod"]
        except (KeyError, TypeError, ValueError):
            return _error(422, "100", "Required field missing: amount, merchantAccount, "
                          "reference or paymentMethod")
        stored = str(method.get("storedPaymentMethodId") or "")
        if not stored and not str(method.get("encryptedCardNumber", "")).startswith(
                ("test_", "adyenjs_", "eyJ")):
            return _error(422, "129", "Invalid card number / encrypted card data")
        forced = SANDBOX_FAULTS.get(stored)
        if forced is Fate.TIMEOUT_BEFORE:
            forced = None if key in self._stalled else forced
            self._stalled.add(key)
        fate = self._fated(ctx, "authorize", key, forced)
        if isinstance(fate, SandboxResponse):
            return fate
        psp = ctx.new_id("", key)[:16].upper()
        if stored == SILENT:
            self._silent.add(psp)
        refusal = SANDBOX_STORED.get(stored)
        if refusal is None and fate is Fate.DECLINE:
            refusal = ctx.rng("refusal", key).choice(sorted(_REFUSALS))
        manual = (b.get("additionalData") or {}).get("manualCapture") == "true"
        payment: dict[str, Any] = {"psp": psp, "account": account, "reference": reference, "amount": amount,
                   "captured": 0, "refunded": 0, "state": "refused" if refusal else "authorised",
                   "metadata": dict(b.get("metadata") or {})}
        self._payments[psp] = payment
        status = "declined" if refusal else "succeeded"
        ctx.books.record(BookEntry(NAME, "authorize", reference, psp, amount["value"],
                                   amount["currency"], status, captured=not manual and not refusal))
        if not manual and not refusal:
            payment.update(captured=amount["value"], state="captured")
        self._notify(ctx, "AUTHORISATION", psp, None, payment, amount, refusal is None, refusal)
        answer: dict[str, Any] = {"pspReference": psp, "merchantReference": reference,
                                  "amount": amount}
        if refusal:
            answer.update(resultCode="Refused", refusalReason=refusal,
                          refusalReasonCode=_REFUSALS[refusal][0])
        else:
            answer.update(resultCode="Authorised",
                          additionalData={"authCode": f"{ctx.rng('auth', key).randint(0, 999999):06d}"})
        return lost_on_the_wire(fate, SandboxResponse.json(200, answer))

    def _modify(self, psp: str, kind: str, b: dict[str, Any], ctx: SandboxContext,
                key: str) -> SandboxResponse:
        payment = self._payments.get(psp)
        if payment is None:
            return _error(422, "167", "Original pspReference required for this operation")
        operation = {"captures": "capture", "cancels": "void", "refunds": "refund"}[kind]
        fate = self._fated(ctx, operation, key)
        if isinstance(fate, SandboxResponse):
            return fate
        amount = b.get("amount") or payment["amount"]
        value = int(amount["value"])
        mod_psp = ctx.new_id("", key)[:16].upper()
        ok, event = True, {"captures": "CAPTURE", "cancels": "CANCELLATION",
                           "refunds": "REFUND"}[kind]
        if kind == "captures":
            ok = payment["state"] == "authorised" and value <= payment["amount"]["value"]
            if ok:
                payment.update(captured=value, state="captured")
            else:
                event = "CAPTURE_FAILED"
        elif kind == "cancels":
            ok = payment["state"] == "authorised"
            if ok:
                payment["state"] = "cancelled"
        else:
            ok = payment["state"] == "captured" and (
                value <= payment["captured"] - payment["refunded"])
            if ok:
                payment["refunded"] += value
            else:
                event = "REFUND_FAILED"
        if ok:
            ctx.books.record(BookEntry(NAME, operation, payment["reference"], psp, value,
                                       amount["currency"], "succeeded"))
        self._notify(ctx, event, mod_psp, psp, payment, {"value": value,
                                                         "currency": amount["currency"]},
                     ok if event in ("CAPTURE", "CANCELLATION", "REFUND") else True, None,
                     reference=str(b.get("reference") or payment["reference"]))
        answer = {"merchantAccount": payment["account"], "paymentPspReference": psp,
                  "pspReference": mod_psp, "reference": b.get("reference"),
                  "status": "received"}
        if kind != "cancels":
            answer["amount"] = amount
        return lost_on_the_wire(fate, SandboxResponse.json(201, answer))

    def dispute(self, ctx: SandboxContext, provider_reference: str, amount_minor: int | None,
                outcome: str) -> str | None:
        payment = self._payments.get(provider_reference)
        if payment is None or not payment["captured"]:
            return None
        value = amount_minor or payment["captured"]
        amount = {"value": value, "currency": payment["amount"]["currency"]}
        dispute_psp = ctx.new_id("", "chargeback", provider_reference)[:16].upper()
        extra = {"disputePspReference": dispute_psp,
                 "defensePeriodEndsAt": datetime.fromtimestamp(
                     ctx.now() + 14 * 86_400, UTC).isoformat(timespec="seconds")}
        self._notify(ctx, "NOTIFICATION_OF_CHARGEBACK", dispute_psp, provider_reference,
                     payment, amount, True, "Fraud", extra=extra)
        if outcome == "open":
            return dispute_psp
        self._notify(ctx, "CHARGEBACK", dispute_psp, provider_reference, payment, amount, True,
                     "Fraud", extra=extra)
        ctx.books.record(BookEntry(NAME, "chargeback", payment["reference"], provider_reference,
                                   value, amount["currency"], "succeeded"))
        if outcome == "won":
            self._notify(ctx, "CHARGEBACK_REVERSED", dispute_psp, provider_reference, payment,
                         amount, True, "Fraud", extra=extra)
            ctx.books.record(BookEntry(NAME, "chargeback_reversal", payment["reference"],
                                       provider_reference, value, amount["currency"],
                                       "succeeded"))
        else:
            self._notify(ctx, "SECOND_CHARGEBACK", dispute_psp, provider_reference, payment,
                         amount, True, "Fraud", extra=extra)
        return dispute_psp

    def _notify(self, ctx: SandboxContext, event: str, psp: str, original: str | None,
                payment: dict[str, Any], amount: dict[str, Any], success: bool,
                reason: str | None, reference: str | None = None,
                extra: dict[str, str] | None = None) -> None:
        if not self.hmac_key or payment["psp"] in self._silent:
            return
        additional = {f"metadata.{k}": v for k, v in payment["metadata"].items()}
        item: dict[str, Any] = {
            "amount": amount, "eventCode": event,
            "eventDate": datetime.fromtimestamp(ctx.now(), UTC).isoformat(timespec="seconds"),
            "merchantAccountCode": payment["account"],
            "merchantReference": reference or payment["reference"],
            "pspReference": psp, "reason": reason or "", "success": str(success).lower(),
            "additionalData": additional if event == "AUTHORISATION" else dict(extra or {})}
        if original:
            item["originalReference"] = original
        item["additionalData"]["hmacSignature"] = hmac_signature(self.hmac_key, item)
        body = json.dumps({"live": "false", "notificationItems": [
            {"NotificationRequestItem": item}]}).encode()
        ctx.notify(OutgoingWebhook(NAME, body, f"{psp}:{event}:{item['success']}",
                                   lambda _at: {"content-type": "application/json"}))


# --- the settlement report: the Settlement details report (SDR) --------------------------

REPORT_NAME = re.compile(r"(?i)^settlement_detail_report_batch_(\d{1,9})(_[\w.-]*)?\.csv$")
REPORT_COLUMNS = [
    "Company Account", "Merchant Account", "Psp Reference", "Merchant Reference",
    "Payment Method", "Creation Date", "TimeZone", "Type", "Modification Reference",
    "Gross Currency", "Gross Debit (GC)", "Gross Credit (GC)", "Exchange Rate", "Net Currency",
    "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)", "Markup (NC)", "Scheme Fees (NC)",
    "Interchange (NC)", "Payment Method Variant", "Modification Merchant Reference",
    "Batch Number", *(f"Reserved{n}" for n in range(4, 11))]
REPORT_REQUIRED = ("Psp Reference", "Merchant Reference", "Creation Date", "TimeZone", "Type",
                   "Modification Reference", "Gross Currency", "Gross Debit (GC)",
                   "Gross Credit (GC)", "Net Currency", "Net Debit (NC)", "Net Credit (NC)",
                   "Batch Number")
FEE_COLUMNS = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")
RECORD_TYPES = {
    "Settled": lines.CHARGE, "SettledExternally": lines.CHARGE, "Refunded": lines.REFUND,
    "RefundedExternally": lines.REFUND, "RefundedReversed": lines.REFUND_REVERSAL,
    "Chargeback": lines.CHARGEBACK, "ChargebackExternally": lines.CHARGEBACK,
    "SecondChargeback": lines.CHARGEBACK, "ChargebackReversed": lines.CHARGEBACK_REVERSAL,
    "Fee": lines.FEE, "MerchantPayout": lines.PAYOUT, "InvoiceDeduction": lines.ADJUSTMENT,
    "MiscCosts": lines.ADJUSTMENT, "DepositCorrection": lines.ADJUSTMENT,
    "BalanceTransfer": lines.ADJUSTMENT,
}
# Rows that are not balance movements of the batch (Adyen's own bookkeeping rows).
SKIPPED_TYPES = frozenset({"MatchedStatement", "PaymentCost", "SettleCost", "PaidOut",
                           "ReserveAdjustment"})
_KIND_TYPE = {lines.CHARGE: "Settled", lines.REFUND: "Refunded",
              lines.REFUND_REVERSAL: "RefundedReversed", lines.CHARGEBACK: "Chargeback",
              lines.CHARGEBACK_REVERSAL: "ChargebackReversed", lines.FEE: "Fee",
              lines.PAYOUT: "MerchantPayout", lines.ADJUSTMENT: "MiscCosts"}
# The zone abbreviations Adyen writes in `TimeZone`, as UTC offsets in hours.
ZONE_OFFSETS = {"UTC": 0, "GMT": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2,
                "EET": 2, "EEST": 3, "MSK": 3, "GST": 4, "IST": 5.5, "SGT": 8, "HKT": 8,
                "AWST": 8, "JST": 9, "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13,
                "BRT": -3, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
                "PST": -8, "PDT": -7}


def _zone(label: str) -> timezone:
    offset = ZONE_OFFSETS.get(label.strip().upper())
    if offset is None:
        raise ValidationError("TimeZone", f"unknown time zone {label!r}")
    return timezone(timedelta(hours=offset))


def _debit_credit(row: dict[str, str], debit: str, credit: str, currency: str) -> int | None:
    """The signed amount of a Debit/Credit column pair (None when both are empty)."""
    out, into = row[debit], row[credit]
    if out and into:
        raise ValidationError(debit, f"both {debit!r} and {credit!r} are filled")
    if into:
        return lines.major_units(into, currency, credit, signed=False)
    if out:
        return -lines.major_units(out, currency, debit, signed=False)
    return None


def parse_report(data: bytes, filename: str) -> lines.ParsedReport:
    """Columns by header name: newer files add columns, which are ignored."""
    table = lines.CsvTable(lines.decode(data, filename), filename, REPORT_REQUIRED)

    def convert(row: dict[str, str]) -> lines.SettlementLine | None:
        record = row["Type"]
        if record in SKIPPED_TYPES:
            return None
        kind = RECORD_TYPES.get(record)
        if kind is None:
            raise ValidationError("Type", f"unknown record type {record!r}")
        net_currency = lines.currency_code(lines.required(row, "Net Currency"), "Net Currency")
        net = _debit_credit(row, "Net Debit (NC)", "Net Credit (NC)", net_currency) or 0
        fee = sum(lines.major_units(row[c], net_currency, c, signed=False)
                  for c in FEE_COLUMNS if row.get(c))
        gross_currency = (lines.currency_code(row["Gross Currency"], "Gross Currency")
                          if row["Gross Currency"] else net_currency)
        gross = _debit_credit(row, "Gross Debit (GC)", "Gross Credit (GC)", gross_currency)
        if gross is None:  # fee, payout and correction rows carry only the net
            gross, gross_currency, fee = net, net_currency, 0
        elif gross_currency == net_currency and gross - fee != net:
            raise ValidationError("Net Credit (NC)" if net >= 0 else "Net Debit (NC)",
                                  f"net {lines.major_text(net, net_currency)} is not gross "
                                  f"{lines.major_text(gross, gross_currency)} less fees "
                                  f"{lines.major_text(fee, net_currency)}")
        batch = lines.required(row, "Batch Number")
        psp, modification = row["Psp Reference"], row["Modification Reference"]
        when = lines.utc_day(lines.required(row, "Creation Date"), "Creation Date",
                             _zone(lines.required(row, "TimeZone")))
        return lines.SettlementLine(
            NAME, f"{batch}|{record}|{psp}|{modification}|{net_currency}",
            psp or modification or batch,
            row["Merchant Reference"] or None, kind, gross, fee, gross_currency, when, net,
            net_currency, f"batch {batch}")

    return lines.parse_rows(table.rows(), convert)


def _fee_parts(fee: int) -> list[int]:
    """A fee split the way Adyen itemizes it: commission, markup, scheme fees, interchange."""
    interchange, scheme, markup = fee * 5 // 10, fee * 2 // 10, fee // 10
    return [fee - interchange - scheme - markup, markup, scheme, interchange]


def batch_number(day: date, day_lines: list[lines.SettlementLine]) -> int:
    """The sandbox's batch for a settlement day's lines: the day (numbered from 2020) and three
    digits of its own, so two sandboxes' batches of one day stay apart."""
    own = int(lines.digest(*(x.provider_reference for x in day_lines[:50]), length=6), 16)
    return ((day - date(2020, 1, 1)).days + 1) * 1000 + own % 1000


def render_report(day_lines: list[lines.SettlementLine], day: date,
                  payout_offsets: Mapping[str, int] | None = None) -> dict[str, bytes]:
    """The sandbox's settlement details report for the day's batch, its payout rows last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    batch = batch_number(day, day_lines)
    cet = timezone(timedelta(hours=1))
    nets: dict[str, int] = {}

    def money(minor: int | None, currency: str) -> str:
        return "" if not minor else lines.major_text(minor, currency)

    for n, line in enumerate(day_lines):
        currency = line.currency
        when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(seconds=n % 86_400)
        net = line.amount_minor - line.fee_minor
        nets[currency] = nets.get(currency, 0) + net
        parts = _fee_parts(line.fee_minor) if line.fee_minor > 0 else [0, 0, 0, 0]
        modification = line.line_id or ("" if line.kind == lines.CHARGE else hashlib.sha256(
            f"{line.provider_reference}|{n}".encode()).hexdigest()[:16].upper())
        writer.writerow([
            "PaysignalCo", "PaysignalECOM", line.provider_reference,
            line.payment_reference or "", "visa", when.astimezone(cet).strftime(
                "%Y-%m-%d %H:%M:%S"), "CET", _KIND_TYPE[line.kind], modification or psp_of(n),
            currency, money(-line.amount_minor if line.amount_minor < 0 else None, currency),
            money(line.amount_minor if line.amount_minor > 0 else None, currency), "1",
            currency, money(-net if net < 0 else None, currency),
            money(net if net > 0 else None, currency),
            *(money(p, currency) for p in parts), "visa", "", batch, *([""] * 7)])
    for currency, net in sorted(nets.items()):
        net += (payout_offsets or {}).get(currency, 0)
        when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23)
        writer.writerow([
            "PaysignalCo", "PaysignalECOM", "", "", "", when.astimezone(cet).strftime(
                "%Y-%m-%d %H:%M:%S"), "CET", "MerchantPayout",
            f"TX{lines.digest(batch, currency, *(x.provider_reference for x in day_lines[:50]))}"
            f"XT batch {batch}, PaysignalECOM", currency, "", "", "", currency,
            money(net if net > 0 else None, currency), money(-net if net < 0 else None, currency),
            "", "", "", "", "", "", batch, *([""] * 7)])
    return {f"settlement_detail_report_batch_{batch}.csv": out.getvalue().encode()}


def psp_of(n: int) -> str:
    return f"{n:016d}"


SETTLEMENT_REPORT = lines.ReportFormat(
    NAME, "Adyen Settlement details report", REPORT_NAME, parse_report, render_report,
    "\n".join([
        "CSV with one header row, named `settlement_detail_report_batch_<N>.csv` (a suffix after "
        "the number is allowed). Columns are found by name: newer files add columns, which are "
        "ignored. Amounts are unsigned decimals in the major unit, in a Debit or a Credit "
        "column (never both); fees (`Commission`, `Markup`, `Scheme Fees`, `Interchange`) are "
        "costs in the net currency; on a row where gross and net currency agree, "
        "`net = gross − fees` is checked. `Creation Date` is read in the `TimeZone` given "
        "(CET, PDT, …) and its UTC date is the line's settlement day. Adyen's bookkeeping rows "
        "(" + ", ".join(f"`{t}`" for t in sorted(SKIPPED_TYPES)) + ") are skipped. A CSV has no "
        "trailer, so the worker takes a file only once it has not changed for "
        "`PAYSIGNAL_SETTLEMENT_MIN_AGE_S`.", "",
        lines.columns_table([
            ("Psp Reference", "the payment's reference (empty on fee and payout rows)"),
            ("Merchant Reference", "our payment id"),
            ("Creation Date", "`YYYY-MM-DD HH:MM:SS` in `TimeZone`: the settlement day"),
            ("Type", "the kind of line, below"),
            ("Modification Reference", "the modification's reference; with the batch, type "
                                       "and Psp Reference, the line's identity"),
            ("Gross Currency", "ISO 4217"), ("Gross Debit (GC)", "money out"),
            ("Gross Credit (GC)", "money in"), ("Net Currency", "ISO 4217"),
            ("Net Debit (NC)", "net out (the payout amount on `MerchantPayout`)"),
            ("Net Credit (NC)", "net in"),
            ("Commission (NC), Markup (NC), Scheme Fees (NC), Interchange (NC)",
             "summed: the line's fee"),
            ("Batch Number", "the settlement batch; its `MerchantPayout` pays it out")]),
        "", lines.kinds_sentence("Type", RECORD_TYPES)]),
    complete_by_footer=False)


# --- the registry's view -------------------------------------------------------------------

SANDBOX_METHODS = {
    "approve": "test_4111111111111111|test_03|test_2030|test_737",
    "decline_insufficient_funds": "shopper_1:sandboxNotEnoughBalance",
    "decline_do_not_honor": "shopper_1:sandboxRefused",
    "timeout_after_charge": "shopper_1:sandboxTimeoutAfterCharge",
    "timeout_before_charge": "shopper_1:sandboxTimeoutBeforeCharge",
    "server_error": "shopper_1:sandboxServerError",
    "unknown_forever": f"shopper_1:{SILENT}",
}


def sandbox_environment(base_url: str, webhook_credential: str) -> dict[str, str]:
    return {f"PAYSIGNAL_{NAME.upper()}_BASE_URL": base_url,
            API_KEY_VARIABLE: "AQE_paysignal_sandbox_key",
            MERCHANT_ACCOUNT_VARIABLE: "PaysignalSandboxECOM",
            f"PAYSIGNAL_WEBHOOK_SECRET_{NAME.upper()}": webhook_credential}


def connect(config: AdyenConfig, transport: httpx.BaseTransport | None = None,
            ) -> AdyenConnector:
    return AdyenConnector(config, transport)
