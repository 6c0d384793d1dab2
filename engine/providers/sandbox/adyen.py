"""Adyen's side of the sandbox: Checkout v72 from the server's end, with its books, seeded
faults and HMAC-signed standard notifications."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from engine.domain.money import currency_exponent
from engine.providers.adyen.config import (
    API_KEY_VARIABLE,
    API_VERSION,
    MERCHANT_ACCOUNT_VARIABLE,
    NAME,
    REFUSALS,
    RETURN_URL_VARIABLE,
)
from engine.providers.adyen.signatures import hmac_signature
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

# Adyen's currency table (docs.adyen.com/development-resources/currency-codes): ISO 4217's
# decimals, except for these four, where Adyen's table "differs from standard".
_ADYEN_DECIMALS = {"CLP": 2, "CVE": 0, "IDR": 0, "ISK": 2}


def iso_minor(value: int, currency: str) -> int:
    """An Adyen amount (minor units of Adyen's table) in ISO 4217 minor units."""
    shift = _ADYEN_DECIMALS.get(currency, currency_exponent(currency)) - currency_exponent(
        currency)
    return value // int(10 ** shift) if shift >= 0 else value * int(10 ** -shift)


# Sandbox-only stored payment methods that force a fault or a refusal.
SANDBOX_STORED = {
    "sandboxRefused": "Refused", "sandboxNotEnoughBalance": "Not enough balance",
    "sandboxExpired": "Expired Card",
}
SILENT = "sandboxUnknownForever"  # authorised, times out, and never told of again
CHALLENGE = "sandboxChallenge"  # 3-D Secure: RedirectShopper until the shopper is done
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
    f"shopper_1:{CHALLENGE}": "sandbox only: RedirectShopper (3-D Secure) until the shopper "
                              "authenticates (Sandbox.complete_action) or it is cancelled",
}


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
        if path == f"/{API_VERSION}/cancels":
            return self._technical_cancel(body, ctx)
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
            str(b["returnUrl"])
        except (KeyError, TypeError, ValueError):
            return _error(422, "100", "Required field missing: amount, merchantAccount, "
                          "reference, paymentMethod or returnUrl")
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
            refusal = ctx.rng("refusal", key).choice(sorted(REFUSALS))
        manual = (b.get("additionalData") or {}).get("manualCapture") == "true"
        payment: dict[str, Any] = {"psp": psp, "account": account, "reference": reference, "amount": amount,
                   "captured": 0, "refunded": 0, "state": "refused" if refusal else "authorised",
                   "metadata": dict(b.get("metadata") or {}), "manual": manual}
        self._payments[psp] = payment
        answer: dict[str, Any] = {"pspReference": psp, "merchantReference": reference,
                                  "amount": amount}
        if stored == CHALLENGE and b.get("shopperInteraction") != "ContAuth":
            payment["state"] = "pending_action"  # nothing authorised until the shopper acts
            answer.update(resultCode="RedirectShopper", action={
                "type": "redirect", "method": "GET", "paymentMethodType": "scheme",
                "url": f"{ctx.public_url()}/adyen/checkoutshopper/threeDS/{psp}"})
            return lost_on_the_wire(fate, SandboxResponse.json(200, answer))
        self._conclude(ctx, payment, refusal)
        if refusal:
            answer.update(resultCode="Refused", refusalReason=refusal,
                          refusalReasonCode=REFUSALS[refusal][0])
        else:
            answer.update(resultCode="Authorised",
                          additionalData={"authCode": f"{ctx.rng('auth', key).randint(0, 999999):06d}"})
        return lost_on_the_wire(fate, SandboxResponse.json(200, answer))

    def _conclude(self, ctx: SandboxContext, payment: dict[str, Any],
                  refusal: str | None) -> None:
        """The authorisation's end: booked, captured at once unless manual, notified."""
        amount, psp = payment["amount"], payment["psp"]
        payment["state"] = "refused" if refusal else "authorised"
        ctx.books.record(BookEntry(NAME, "authorize", payment["reference"], psp,
                                   iso_minor(amount["value"], amount["currency"]),
                                   amount["currency"], "declined" if refusal else "succeeded",
                                   captured=not payment["manual"] and not refusal,
                                   provider_amount=amount["value"]))
        if not payment["manual"] and not refusal:
            payment.update(captured=amount["value"], state="captured")
        self._notify(ctx, "AUTHORISATION", psp, None, payment, amount, refusal is None, refusal)

    def complete_action(self, ctx: SandboxContext, psp: str, approved: bool) -> bool:
        """The shopper finishes (or fails) 3-D Secure: the authorisation ends and Adyen sends
        its AUTHORISATION notification."""
        payment = self._payments.get(psp)
        if payment is None or payment["state"] != "pending_action":
            return False
        self._conclude(ctx, payment, None if approved else "3D Not Authenticated")
        return True

    def _technical_cancel(self, b: dict[str, Any], ctx: SandboxContext) -> SandboxResponse:
        """`/cancels` by the merchant's reference: whatever the authorisation is or becomes is
        cancelled; one already captured is not (Adyen then notifies the cancel as failed)."""
        reference = str(b.get("paymentReference") or "")
        found = [p for p in self._payments.values() if p["reference"] == reference]
        cancel_psp = ctx.new_id("", "technical-cancel", reference)[:16].upper()
        for payment in found:
            ok = payment["state"] in ("pending_action", "authorised")
            if payment["state"] == "authorised":
                amount = payment["amount"]
                ctx.books.record(BookEntry(NAME, "void", reference, payment["psp"],
                                           iso_minor(amount["value"], amount["currency"]),
                                           amount["currency"], "succeeded"))
            if ok:
                payment["state"] = "cancelled"
            self._notify(ctx, "TECHNICAL_CANCEL", cancel_psp, payment["psp"], payment,
                         payment["amount"], ok, None)
        return SandboxResponse.json(201, {
            "merchantAccount": b.get("merchantAccount"), "paymentReference": reference,
            "pspReference": cancel_psp, "reference": b.get("reference"), "status": "received"})

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
            ctx.books.record(BookEntry(NAME, operation, payment["reference"], psp,
                                       iso_minor(value, amount["currency"]), amount["currency"],
                                       "succeeded", provider_amount=value))
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

    def announce(self, ctx: SandboxContext, key: str) -> None:
        psp = ctx.new_id("", key)[:16].upper()
        offer: dict[str, Any] = {"psp": psp, "account": "SandboxMerchantECOM", "metadata": {},
                                 "reference": f"offer-{psp}"}
        self._notify(ctx, "OFFER_CLOSED", psp, None, offer,
                     {"value": 0, "currency": "EUR"}, True, None)

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
            RETURN_URL_VARIABLE: "http://127.0.0.1:8000/checkout/returned",
            f"PAYSIGNAL_WEBHOOK_SECRET_{NAME.upper()}": webhook_credential}
