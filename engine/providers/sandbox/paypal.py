"""PayPal's side of the sandbox: Orders v2 and Payments v2 from the server's end, with its
books, seeded faults, and notices signed with its own certificate."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from engine.providers.paypal.config import (
    CERT_PATH,
    DECLINES,
    NAME,
)
from engine.providers.paypal.protocol import signed_message
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
from engine.providers.sandbox.paypal_tokens import SANDBOX_DECLINES, SANDBOX_FAULTS, SILENT
from engine.providers.sandbox.paypal_wire import (
    AmountRefused,
    iso_minor,
    iso_time,
    paypal_json,
    paypal_units,
    paypal_value,
    public_view,
    receivable,
    self_signed_certificate,
)


def _error(status: int, name: str, message: str, issue: str | None = None) -> SandboxResponse:
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": "sandbox"}
    if issue:
        body["details"] = [{"issue": issue, "description": message}]
    return SandboxResponse.json(status, body)


class PayPalEmulator:
    provider = NAME

    def __init__(self, webhook_id: str | None = None) -> None:
        self.webhook_id = webhook_id
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._tokens: dict[str, tuple[float, str]] = {}  # token -> (expires at, client id)
        self._orders: dict[str, dict[str, Any]] = {}
        self._auths: dict[str, dict[str, Any]] = {}
        self._captures: dict[str, dict[str, Any]] = {}
        self._stalled: set[str] = set()
        self._silent: set[str] = set()
        self._sent: dict[str, bytes] = {}  # event id -> the exact body sent
        self.cert_pem = self_signed_certificate(self._key)
        self.cert_path = CERT_PATH + "CERT-paysignal-sandbox"

    def handle(self, request: SandboxRequest, ctx: SandboxContext) -> SandboxResponse:
        path = request.path.rstrip("/")
        if path == "/v1/oauth2/token":
            return self._token(request, ctx)
        if path == self.cert_path and request.method == "GET":
            return SandboxResponse(200, self.cert_pem, {"content-type": "application/x-pem-file"})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expires, client_id = self._tokens.get(token, (0.0, ""))
        if expires < ctx.now():
            return _error(401, "AUTHENTICATION_FAILURE", "Authentication failed due to "
                          "invalid authentication credentials or a missing Authorization header.")
        if path == "/v1/notifications/verify-webhook-signature" and request.method == "POST":
            return self._verify(request.body or b"{}")
        if request.method == "GET":
            return self._read(path, ctx)
        try:
            body = json.loads(request.body) if request.body else {}
        except ValueError:
            return _error(400, "INVALID_REQUEST", "Request is not well-formed.", "MALFORMED_REQUEST_JSON")
        request_id = request.headers.get("paypal-request-id") or ctx.new_id("auto-")
        scope = (NAME, client_id, request_id)
        existing = ctx.idempotency.claim(scope, path)
        if existing is not None:
            if existing.response is None:
                return _error(422, "UNPROCESSABLE_ENTITY", "The request id is in use by a "
                              "request still being processed.", "DUPLICATE_REQUEST_ID")
            if self._concerns_silent(existing.response):
                return SandboxResponse(wire=Wire.STALL)
            if ctx.fate("lookup", request_id, booking=False) is Fate.SERVER_ERROR:
                return _error(503, "SERVICE_UNAVAILABLE", "Service Unavailable.")
            return self._latest(existing.response)
        response = self._execute(path, body, ctx, request_id)
        if response.unbooked:
            ctx.idempotency.release(scope)
        else:
            ctx.idempotency.finish(scope, response)
        return response

    def _concerns_silent(self, saved: SandboxResponse) -> bool:
        return any(s.encode() in saved.body for s in self._silent)

    def _token(self, request: SandboxRequest, ctx: SandboxContext) -> SandboxResponse:
        auth = request.headers.get("authorization", "")
        try:
            client_id, _, secret = base64.b64decode(auth.removeprefix("Basic ")).decode(
                ).partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id, secret = "", ""
        if not auth.startswith("Basic ") or not client_id or not secret or (
                b"grant_type=client_credentials" not in request.body):
            return SandboxResponse.json(401, {"error": "invalid_client",
                                              "error_description": "Client Authentication failed"})
        token = ctx.new_id("A21AA", client_id)
        self._tokens[token] = (ctx.now() + 32400, client_id)
        return SandboxResponse.json(200, {"scope": "https://uri.paypal.com/services/payments",
                                          "access_token": token, "token_type": "Bearer",
                                          "app_id": "APP-SANDBOX", "expires_in": 32400,
                                          "nonce": ctx.new_id("", "nonce")})

    def _latest(self, saved: SandboxResponse) -> SandboxResponse:
        """PayPal answers a repeated request id with the latest status of the original."""
        try:
            body = json.loads(saved.body)
        except ValueError:
            return SandboxResponse(saved.status, saved.body, saved.headers)
        current = (self._orders.get(body.get("id", "")) or self._captures.get(body.get("id", ""))
                   or self._auths.get(body.get("id", "")) or body)
        return SandboxResponse.json(saved.status, current)

    def _fated(self, ctx: SandboxContext, operation: str, key: str,
               forced: Fate | None = None) -> Fate | SandboxResponse:
        return ctx.fated(operation, key, forced,
                         server_error=_error(500, "INTERNAL_SERVER_ERROR",
                                             "An internal server error occurred."),
                         rate_limited=SandboxResponse.json(429, {
                             "name": "RATE_LIMIT_REACHED", "message": "Too many requests."},
                             {"retry-after": "1"}))

    def _execute(self, path: str, b: dict[str, Any], ctx: SandboxContext,
                 key: str) -> SandboxResponse:
        if path == "/v2/checkout/orders":
            return self._order(b, ctx, key)
        m = re.fullmatch(r"/v2/payments/authorizations/([^/]+)/(capture|void)", path)
        if m:
            return self._authorization_action(m.group(1), m.group(2), b, ctx, key)
        m = re.fullmatch(r"/v2/payments/captures/([^/]+)/refund", path)
        if m:
            return self._refund(m.group(1), b, ctx, key)
        return _error(404, "RESOURCE_NOT_FOUND", f"no such endpoint {path}")

    def _order(self, b: dict[str, Any], ctx: SandboxContext, key: str) -> SandboxResponse:
        try:
            unit = b["purchase_units"][0]
            amount = {"currency_code": str(unit["amount"]["currency_code"]),
                      "value": str(unit["amount"]["value"])}
            minor = paypal_units(amount)
            intent = b["intent"]
            source = b["payment_source"]
            vault = (source.get("card") or source.get("paypal") or source.get("venmo")
                     or {}).get("vault_id")
            card_number = (source.get("card") or {}).get("number")
        except AmountRefused as exc:
            return _error(422, "UNPROCESSABLE_ENTITY", str(exc), exc.issue)
        except (KeyError, IndexError, TypeError, ValueError):
            return _error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                          "incorrect, or violates schema.", "MISSING_REQUIRED_PARAMETER")
        if intent not in ("AUTHORIZE", "CAPTURE") or not (vault or card_number):
            return _error(422, "UNPROCESSABLE_ENTITY", "payment_source or intent invalid",
                          "PAYMENT_SOURCE_INFO_CANNOT_BE_VERIFIED")
        forced = SANDBOX_FAULTS.get(str(vault))
        if forced is Fate.TIMEOUT_BEFORE:
            forced = None if key in self._stalled else forced
            self._stalled.add(key)
        fate = self._fated(ctx, "authorize", key, forced)
        if isinstance(fate, SandboxResponse):
            return fate
        code = SANDBOX_DECLINES.get(str(vault))
        if code is None and fate is Fate.DECLINE:
            code = ctx.rng("decline", key).choice(sorted(DECLINES))
        order_id = ctx.new_id("", key)[:17].upper()
        custom = str(unit.get("custom_id") or unit.get("reference_id") or "")
        resource_id = ctx.new_id("", key, "payment")[:17].upper()
        kind = "authorizations" if intent == "AUTHORIZE" else "captures"
        resource: dict[str, Any] = {
            "id": resource_id, "status": "DENIED" if code else (
                "CREATED" if intent == "AUTHORIZE" else "COMPLETED"),
            "amount": amount, "custom_id": custom,
            "processor_response": {"response_code": code or "0000"},
            "supplementary_data": {"related_ids": {"order_id": order_id}},
            "create_time": iso_time(ctx.now())}
        if intent == "CAPTURE" and not code:
            resource.update(receivable(minor, amount["currency_code"]), refunded=0)
        order = {"id": order_id, "intent": intent, "status": "COMPLETED",
                 "purchase_units": [{"reference_id": unit.get("reference_id", "default"),
                                     "custom_id": custom, "amount": amount,
                                     "payments": {kind: [resource]}}],
                 "create_time": iso_time(ctx.now())}
        self._orders[order_id] = order
        (self._auths if kind == "authorizations" else self._captures)[resource_id] = resource
        resource["_order"] = order_id
        if vault == SILENT:
            self._silent.update((order_id, resource_id))
        ctx.books.record(BookEntry(NAME, "authorize", custom, resource_id,
                                   iso_minor(minor, amount["currency_code"]),
                                   amount["currency_code"], "declined" if code else "succeeded",
                                   captured=intent == "CAPTURE" and not code,
                                   provider_amount=minor))
        if not code:
            self._event(ctx, "PAYMENT.AUTHORIZATION.CREATED" if intent == "AUTHORIZE"
                        else "PAYMENT.CAPTURE.COMPLETED", resource, "authorization")
        response = SandboxResponse.json(201, public_view(order))
        return lost_on_the_wire(fate, response)

    def _authorization_action(self, auth_id: str, action: str, b: dict[str, Any],
                              ctx: SandboxContext, key: str) -> SandboxResponse:
        auth = self._auths.get(auth_id)
        if auth is None:
            return _error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                          "INVALID_RESOURCE_ID")
        fate = self._fated(ctx, "capture" if action == "capture" else "void", key)
        if isinstance(fate, SandboxResponse):
            return fate
        if auth["status"] != "CREATED":
            issue = {"VOIDED": "PREVIOUSLY_VOIDED" if action == "void" else "AUTHORIZATION_VOIDED",
                     "CAPTURED": "AUTHORIZATION_ALREADY_CAPTURED",
                     "DENIED": "AUTHORIZATION_DENIED"}.get(auth["status"], "INVALID_STATE")
            return _error(422, "UNPROCESSABLE_ENTITY", "The requested action could not be "
                          "performed.", issue)
        if action == "void":
            auth["status"] = "VOIDED"
            currency = auth["amount"]["currency_code"]
            units = paypal_units(auth["amount"])
            ctx.books.record(BookEntry(NAME, "void", auth["custom_id"], auth_id,
                                       iso_minor(units, currency), currency, "succeeded",
                                       provider_amount=units))
            self._event(ctx, "PAYMENT.AUTHORIZATION.VOIDED", auth, "authorization")
            return lost_on_the_wire(fate, SandboxResponse(204))
        amount = b.get("amount") or auth["amount"]
        try:
            minor = paypal_units(amount)
        except AmountRefused as exc:
            return _error(422, "UNPROCESSABLE_ENTITY", str(exc), exc.issue)
        if minor > paypal_units(auth["amount"]):
            return _error(422, "UNPROCESSABLE_ENTITY", "Capture amount exceeds the authorized "
                          "amount.", "CAPTURE_AMOUNT_EXCEEDS_AUTHORIZED")
        currency = amount["currency_code"]
        capture = {"id": ctx.new_id("", key)[:17].upper(), "status": "COMPLETED",
                   "amount": amount, "custom_id": auth["custom_id"], "final_capture": True,
                   **receivable(minor, currency),
                   "supplementary_data": {"related_ids": {
                       "authorization_id": auth_id,
                       "order_id": auth["supplementary_data"]["related_ids"]["order_id"]}},
                   "refunded": 0, "create_time": iso_time(ctx.now()),
                   "links": [{"rel": "up", "href": f"/v2/payments/authorizations/{auth_id}"}]}
        self._captures[capture["id"]] = capture
        auth["status"] = "CAPTURED"
        ctx.books.record(BookEntry(NAME, "capture", auth["custom_id"], capture["id"],
                                   iso_minor(minor, currency), currency, "succeeded",
                                   provider_amount=minor))
        self._event(ctx, "PAYMENT.CAPTURE.COMPLETED", capture, "capture")
        return lost_on_the_wire(fate, SandboxResponse.json(201, public_view(capture)))

    def _refund(self, capture_id: str, b: dict[str, Any], ctx: SandboxContext,
                key: str) -> SandboxResponse:
        capture = self._captures.get(capture_id)
        if capture is None:
            return _error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                          "INVALID_RESOURCE_ID")
        fate = self._fated(ctx, "refund", key)
        if isinstance(fate, SandboxResponse):
            return fate
        amount = b.get("amount") or capture["amount"]
        try:
            minor = paypal_units(amount)
        except AmountRefused as exc:
            return _error(422, "UNPROCESSABLE_ENTITY", str(exc), exc.issue)
        if minor > paypal_units(capture["amount"]) - capture["refunded"]:
            return _error(422, "UNPROCESSABLE_ENTITY", "The refund amount must be less than "
                          "or equal to the capture amount that has not yet been refunded.",
                          "REFUND_AMOUNT_EXCEEDED")
        capture["refunded"] += minor
        capture["status"] = ("REFUNDED" if capture["refunded"] == paypal_units(capture["amount"])
                             else "PARTIALLY_REFUNDED")
        refund = {"id": ctx.new_id("", key)[:17].upper(), "status": "COMPLETED",
                  "amount": amount, "custom_id": b.get("custom_id") or capture["custom_id"],
                  "invoice_id": b.get("invoice_id"), "create_time": iso_time(ctx.now()),
                  "links": [{"rel": "up", "href": f"/v2/payments/captures/{capture_id}"}]}
        ctx.books.record(BookEntry(NAME, "refund", capture["custom_id"], capture_id,
                                   iso_minor(minor, amount["currency_code"]),
                                   amount["currency_code"], "succeeded", provider_amount=minor))
        self._event(ctx, "PAYMENT.CAPTURE.REFUNDED", refund, "refund")
        return lost_on_the_wire(fate, SandboxResponse.json(201, refund))

    def _read(self, path: str, ctx: SandboxContext) -> SandboxResponse:
        if ctx.fate("lookup", path, booking=False) is Fate.SERVER_ERROR:
            return _error(503, "SERVICE_UNAVAILABLE", "Service Unavailable.")
        m = re.fullmatch(r"/v2/(checkout/orders|payments/authorizations|payments/captures)/([^/]+)",
                         path)
        store = {"checkout/orders": self._orders, "payments/authorizations": self._auths,
                 "payments/captures": self._captures}
        found = store[m.group(1)].get(m.group(2)) if m else None
        if m and m.group(2) in self._silent:
            return _error(503, "SERVICE_UNAVAILABLE", "Service Unavailable.")
        if found is None:
            return _error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                          "INVALID_RESOURCE_ID")
        return SandboxResponse.json(200, public_view(found))

    def _verify(self, raw: bytes) -> SandboxResponse:
        """The postback check, as PayPal does it: our own signature over the exact text of the
        event we sent, which the request must carry as sent (not parsed and encoded again)."""
        try:
            b = json.loads(raw)
            sent = self._sent.get(str(b["webhook_event"]["id"]), b"")
            message = signed_message(b["transmission_id"], b["transmission_time"],
                                     b["webhook_id"], sent)
            self._key.public_key().verify(base64.b64decode(b["transmission_sig"]), message,
                                          padding.PKCS1v15(), hashes.SHA256())
            ok = b["webhook_id"] == self.webhook_id and bool(sent) and sent in raw
        except (KeyError, TypeError, ValueError, binascii.Error, InvalidSignature):
            ok = False
        return SandboxResponse.json(200, {"verification_status": "SUCCESS" if ok else "FAILURE"})

    def dispute(self, ctx: SandboxContext, provider_reference: str, amount_minor: int | None,
                outcome: str) -> str | None:
        capture = self._captures.get(provider_reference)
        if capture is None:  # a payment captured from an authorization is known by the latter
            capture = next((c for c in self._captures.values()
                            if ((c.get("supplementary_data") or {}).get("related_ids") or {})
                            .get("authorization_id") == provider_reference), None)
        if capture is None:
            return None
        minor = amount_minor or paypal_units(capture["amount"])
        currency = capture["amount"]["currency_code"]
        dispute_id = "PP-D-" + ctx.new_id("", "dispute", capture["id"])[:10].upper()
        dispute: dict[str, Any] = {
            "id": dispute_id, "dispute_id": dispute_id,
            "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
            "status": "WAITING_FOR_SELLER_RESPONSE",
            "dispute_amount": {"currency_code": currency,
                               "value": paypal_value(minor, currency)},
            "disputed_transactions": [{"seller_transaction_id": provider_reference,
                                       "custom": capture["custom_id"]}],
            "seller_response_due_date": iso_time(ctx.now() + 10 * 86_400),
            "create_time": iso_time(ctx.now())}
        self._event(ctx, "CUSTOMER.DISPUTE.CREATED", dict(dispute), "dispute")
        ctx.books.record(BookEntry(NAME, "chargeback", capture["custom_id"], provider_reference,
                                   minor, currency, "succeeded"))
        if outcome == "open":
            return dispute_id
        code = "RESOLVED_SELLER_FAVOUR" if outcome == "won" else "RESOLVED_BUYER_FAVOUR"
        self._event(ctx, "CUSTOMER.DISPUTE.RESOLVED",
                    {**dispute, "status": "RESOLVED", "dispute_outcome": {"outcome_code": code}},
                    "dispute")
        if outcome == "won":
            ctx.books.record(BookEntry(NAME, "chargeback_reversal", capture["custom_id"],
                                       provider_reference, minor, currency, "succeeded"))
        return dispute_id

    def announce(self, ctx: SandboxContext, key: str) -> None:
        self._event(ctx, "BILLING.SUBSCRIPTION.CREATED", {
            "id": "I-" + ctx.new_id("", key)[:12].upper(), "status": "APPROVAL_PENDING"},
            "subscription")

    def _event(self, ctx: SandboxContext, event_type: str, resource: dict[str, Any],
               resource_type: str) -> None:
        if not self.webhook_id or resource["id"] in self._silent:
            return
        event_id = "WH-" + ctx.new_id("", event_type, resource["id"])[:24].upper()
        body = paypal_json({"id": event_id, "event_version": "1.0",
                            "create_time": iso_time(ctx.now()), "resource_type": resource_type,
                            "event_type": event_type,
                            "summary": event_type.replace(".", " ").lower(),
                            "resource": public_view(resource)})
        self._sent[event_id] = body
        webhook_id, key, cert_path = self.webhook_id, self._key, self.cert_path

        def headers(at: int) -> dict[str, str]:
            transmission_id = ctx.new_id("", "transmission", event_id)[:36]
            when = iso_time(at)
            sig = key.sign(signed_message(transmission_id, when, webhook_id, body),
                           padding.PKCS1v15(), hashes.SHA256())
            return {"content-type": "application/json",
                    "paypal-transmission-id": transmission_id,
                    "paypal-transmission-time": when,
                    "paypal-transmission-sig": base64.b64encode(sig).decode(),
                    "paypal-cert-url": f"{ctx.public_url()}/paypal{cert_path}",
                    "paypal-auth-algo": "SHA256withRSA"}

        ctx.notify(OutgoingWebhook(NAME, body, event_id, headers))
