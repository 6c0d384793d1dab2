"""Stripe's side of the sandbox: the PaymentIntents protocol from the server's end (idempotent
replays with `Idempotent-Replayed`, 409 while a key is in flight, an `idempotency_error` on
different parameters), with its books, seeded faults and signed events."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

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
from engine.providers.sandbox.stripe_cards import (
    AUTHENTICATION_REQUIRED,
    DECLINES,
    SANDBOX_FAULTS,
    SILENT,
)
from engine.providers.sandbox.stripe_wire import (
    error,
    iso_minor,
    never_executed,
    refused_amount,
    unflatten,
)
from engine.providers.stripe.config import API_KEY_VARIABLE, API_VERSION, NAME, PRICING
from engine.providers.stripe.signatures import sign

# --- the emulator: Stripe's side of the sandbox --------------------------------------------

class StripeEmulator:
    provider = NAME

    def __init__(self, webhook_secret: str | None = None) -> None:
        self.webhook_secret = webhook_secret
        self._intents: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._silent: set[str] = set()
        self._stalled: set[str] = set()  # keys whose forced time-out before charging has fired

    def handle(self, request: SandboxRequest, ctx: SandboxContext) -> SandboxResponse:
        auth = request.headers.get("authorization", "")
        if not (auth.startswith("Bearer sk_test_") or auth.startswith("Basic ")):
            return error(401, "invalid_request_error",
                          "Invalid API Key provided (the sandbox takes any sk_test_ key)")
        try:
            params = unflatten(parse_qsl(request.body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return error(400, "invalid_request_error", "the body is not form-encoded text")
        path, method = request.path.rstrip("/"), request.method
        if method == "GET":
            return self._read(path, request, ctx)
        key = request.headers.get("idempotency-key")
        if key is None or method != "POST":
            return self._execute(path, params, ctx, key or ctx.new_id("auto_"))
        if len(key) > 255:
            return error(400, "invalid_request_error", "Idempotency-Key is longer than 255")
        scope = (NAME, auth, key)
        fingerprint = f"{path}?{json.dumps(params, sort_keys=True)}"
        existing = ctx.idempotency.claim(scope, fingerprint)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                return error(400, "idempotency_error", "Keys for idempotent requests can only "
                              "be used with the same parameters they were first used with.")
            if existing.response is None:
                return error(409, "idempotency_error", "There is currently another in-progress "
                              "request using this Idempotent Key.", "idempotency_key_in_use")
            saved = existing.response
            if self._concerns_silent(saved):
                return SandboxResponse(wire=Wire.STALL)
            if ctx.fate("lookup", key, booking=False) is Fate.SERVER_ERROR:
                return error(503, "api_error", "Stripe is temporarily unavailable.")
            # a replay answers on the wire, even when the first answer was lost on it
            return SandboxResponse(saved.status, saved.body,
                                   {**saved.headers, "idempotent-replayed": "true"})
        response = self._execute(path, params, ctx, key)
        if never_executed(response):
            ctx.idempotency.release(scope)  # nothing is saved: a repeat runs afresh
        else:
            ctx.idempotency.finish(scope, response)
        return response

    def _concerns_silent(self, saved: SandboxResponse) -> bool:
        try:
            return json.loads(saved.body or b"{}").get("id") in self._silent
        except ValueError:
            return False

    # --- POST ---------------------------------------------------------------------------

    def _execute(self, path: str, params: dict[str, Any], ctx: SandboxContext,
                 key: str) -> SandboxResponse:
        if path == "/v1/payment_intents":
            return self._create(params, ctx, key)
        m = re.fullmatch(r"/v1/payment_intents/([^/]+)/(capture|cancel)", path)
        if m:
            return self._modify(m.group(1), m.group(2), params, ctx, key)
        if path == "/v1/refunds":
            return self._refund(params, ctx, key)
        return error(404, "invalid_request_error", f"Unrecognized request URL (POST: {path})")

    def _fated(self, ctx: SandboxContext, operation: str, key: str,
               forced: Fate | None = None) -> Fate | SandboxResponse:
        return ctx.fated(operation, key, forced, server_error=SandboxResponse.json(500, {"error": {
            "type": "api_error", "message": "An error occurred with our connection to Stripe. "
            "Request was retried 0 times."}}, {"stripe-should-retry": "true"}),
            rate_limited=SandboxResponse.json(429, {"error": {
                "type": "invalid_request_error", "code": "rate_limit",
                "message": "Too many requests hit the API too quickly."}}, {"retry-after": "1"}))

    def _create(self, p: dict[str, Any], ctx: SandboxContext, key: str) -> SandboxResponse:
        try:
            amount, currency = int(p["amount"]), str(p["currency"])
        except (KeyError, ValueError):
            return error(400, "invalid_request_error", "Missing required param: amount.",
                          "parameter_missing", param="amount")
        if (refused := refused_amount(amount, currency.upper())) is not None:
            return error(400, "invalid_request_error", *refused, param="amount")
        method = str(p.get("payment_method") or "")
        if not method.startswith("pm_"):
            return error(400, "invalid_request_error", f"No such PaymentMethod: '{method}'",
                          "resource_missing", param="payment_method")
        forced = SANDBOX_FAULTS.get(method) or (Fate.TIMEOUT_AFTER if method == SILENT else None)
        if forced is Fate.TIMEOUT_BEFORE:  # once per key: a repeat then goes through
            forced = None if key in self._stalled else forced
            self._stalled.add(key)
        fate = self._fated(ctx, "authorize", key, forced)
        if isinstance(fate, SandboxResponse):
            return fate
        automatic = p.get("capture_method", "automatic") != "manual"
        pi_id = ctx.new_id("pi_", key)
        metadata = dict(p.get("metadata") or {})
        pi: dict[str, Any] = {
            "id": pi_id, "object": "payment_intent", "amount": amount, "currency": currency,
            "amount_capturable": 0, "amount_received": 0, "capture_method":
            "automatic" if automatic else "manual", "confirmation_method": "automatic",
            "created": int(ctx.now()), "livemode": False, "metadata": metadata,
            "payment_method": method, "payment_method_types": p.get("payment_method_types",
                                                                    ["card"]),
            "status": "requires_confirmation", "latest_charge": None,
            "last_payment_error": None, "client_secret": f"{pi_id}_secret_sandbox"}
        self._intents[pi_id] = pi
        declined = DECLINES.get(method)
        if method in AUTHENTICATION_REQUIRED and p.get("off_session") in ("true", True):
            declined = ("authentication_required", "authentication_required")  # no one to ask
        if declined is None and fate is Fate.DECLINE:
            declined = ("card_declined", ctx.rng("decline", key).choice(
                ["insufficient_funds", "do_not_honor", "expired_card", "fraudulent"]))
        if p.get("confirm") not in ("true", True):
            return SandboxResponse.json(200, self._expanded(pi, p))
        if declined is not None:
            code, decline_code = declined
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {"type": "card_error", "code": code,
                                        "decline_code": decline_code}
            self._book(ctx, "authorize", pi, amount, "declined")
            self._event(ctx, "payment_intent.payment_failed", pi)
            return error(402, "card_error", "Your card was declined.", code,
                          decline_code=decline_code, payment_intent=pi)
        if method in AUTHENTICATION_REQUIRED:  # 3-D Secure: the customer decides, later
            pi.update(status="requires_action", next_action={
                "type": "use_stripe_sdk", "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "stripe_js": f"{ctx.public_url()}/three_d_secure/{pi_id}"}})
            return lost_on_the_wire(fate, SandboxResponse.json(200, self._expanded(pi, p)))
        if method == SILENT:
            self._silent.add(pi_id)
        self._charge(ctx, pi)
        return lost_on_the_wire(fate, SandboxResponse.json(200, self._expanded(pi, p)))

    def _charge(self, ctx: SandboxContext, pi: dict[str, Any]) -> None:
        pi.update(latest_charge=ctx.new_id("ch_", pi["id"]), next_action=None)
        amount = pi["amount"]
        if pi["capture_method"] == "automatic":
            pi.update(status="succeeded", amount_received=amount)
            self._book(ctx, "authorize", pi, amount, "succeeded", captured=True)
            self._event(ctx, "payment_intent.succeeded", pi)
        else:
            pi.update(status="requires_capture", amount_capturable=amount)
            self._book(ctx, "authorize", pi, amount, "succeeded")
            self._event(ctx, "payment_intent.amount_capturable_updated", pi)

    def complete_action(self, ctx: SandboxContext, pi_id: str, approved: bool) -> bool:
        """The customer finishes (or fails) the authentication an intent waits for: it
        charges (the charge is booked now, whatever paysignal said meanwhile) or it fails."""
        pi = self._intents.get(pi_id)
        if pi is None or pi["status"] != "requires_action":
            return False
        if approved:
            self._charge(ctx, pi)
            return True
        pi.update(status="requires_payment_method", next_action=None, last_payment_error={
            "type": "card_error", "code": "payment_intent_authentication_failure"})
        self._event(ctx, "payment_intent.payment_failed", pi)
        return True

    def _modify(self, pi_id: str, action: str, p: dict[str, Any], ctx: SandboxContext,
                key: str) -> SandboxResponse:
        pi = self._intents.get(pi_id)
        if pi is None:
            return error(404, "invalid_request_error", f"No such payment_intent: '{pi_id}'",
                          "resource_missing", param="intent")
        operation = "capture" if action == "capture" else "void"
        fate = self._fated(ctx, operation, key)
        if isinstance(fate, SandboxResponse):
            return fate
        cancellable = ("requires_capture", "requires_action", "requires_payment_method",
                       "requires_confirmation")
        if pi["status"] not in (("requires_capture",) if action == "capture" else cancellable):
            return error(400, "invalid_request_error", "This PaymentIntent could not be "
                          f"{'captured' if action == 'capture' else 'canceled'} because it has a "
                          f"status of {pi['status']}.", "payment_intent_unexpected_state",
                          payment_intent=pi)
        if action == "capture":
            amount = int(p.get("amount_to_capture") or pi["amount_capturable"])
            if (refused := refused_amount(amount, pi["currency"].upper())) is not None:
                return error(400, "invalid_request_error", *refused, param="amount_to_capture")
            if amount > pi["amount_capturable"]:
                return error(400, "invalid_request_error", "amount_to_capture is greater than "
                              "the amount capturable", "amount_too_large",
                              param="amount_to_capture")
            pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
            self._book(ctx, "capture", pi, amount, "succeeded")
            self._event(ctx, "payment_intent.succeeded", pi)
        else:
            authorized = pi["status"] == "requires_capture"
            pi.update(status="canceled", amount_capturable=0, next_action=None,
                      cancellation_reason=p.get("cancellation_reason"))
            if authorized:  # a hold released; before any charge there is nothing to book
                self._book(ctx, "void", pi, pi["amount"], "succeeded")
            self._event(ctx, "payment_intent.canceled", pi)
        return lost_on_the_wire(fate, SandboxResponse.json(200, self._expanded(pi, p)))

    def _refund(self, p: dict[str, Any], ctx: SandboxContext, key: str) -> SandboxResponse:
        pi = self._intents.get(str(p.get("payment_intent")))
        if pi is None:
            return error(404, "invalid_request_error", "No such payment_intent: "
                          f"'{p.get('payment_intent')}'", "resource_missing",
                          param="payment_intent")
        fate = self._fated(ctx, "refund", key)
        if isinstance(fate, SandboxResponse):
            return fate
        refunded = sum(r["amount"] for r in self._refunds.values()
                       if r["payment_intent"] == pi["id"] and r["status"] == "succeeded")
        amount = int(p.get("amount") or pi["amount_received"] - refunded)
        if (refused := refused_amount(amount, pi["currency"].upper())) is not None:
            return error(400, "invalid_request_error", *refused, param="amount")
        if pi["status"] != "succeeded" or amount > pi["amount_received"] - refunded:
            return error(400, "invalid_request_error", "Refund amount is greater than the "
                          "unrefunded amount on the charge.", "amount_too_large",
                          param="amount")
        refund = {"id": ctx.new_id("re_", key), "object": "refund", "amount": amount,
                  "currency": pi["currency"], "payment_intent": pi["id"],
                  "charge": pi["latest_charge"], "status": "succeeded",
                  "metadata": dict(p.get("metadata") or {}), "created": int(ctx.now())}
        self._refunds[refund["id"]] = refund
        currency = pi["currency"].upper()
        ctx.books.record(BookEntry(NAME, "refund", pi["metadata"].get(
            "paysignal_payment_id", ""), pi["id"], iso_minor(amount, currency), currency,
            "succeeded", provider_amount=amount))
        if pi["payment_method"] == "pm_card_pendingRefund":  # Stripe's test method for it
            answer = {**refund, "status": "pending"}
            self._event(ctx, "refund.created", answer)
            self._event(ctx, "refund.updated", refund, after_s=60)
            return lost_on_the_wire(fate, SandboxResponse.json(200, answer))
        self._event(ctx, "refund.created", refund)
        return lost_on_the_wire(fate, SandboxResponse.json(200, refund))

    def _book(self, ctx: SandboxContext, operation: str, pi: dict[str, Any], amount: int,
              status: str, captured: bool = False) -> None:
        currency = pi["currency"].upper()
        ctx.books.record(BookEntry(NAME, operation, pi["metadata"].get("paysignal_payment_id",
                                                                       ""),
                                   pi["id"], iso_minor(amount, currency), currency, status,
                                   captured, provider_amount=amount))

    def _expanded(self, pi: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        out = dict(pi)
        if "latest_charge.balance_transaction" in (p.get("expand") or []) and pi["latest_charge"]:
            fee = PRICING.capture_fee(pi["amount_received"]) if pi["amount_received"] else 0
            out["latest_charge"] = {"id": pi["latest_charge"], "object": "charge",
                                    "balance_transaction": {
                                        "id": "txn_" + pi["latest_charge"][3:], "object":
                                        "balance_transaction", "amount": pi["amount_received"],
                                        "currency": pi["currency"], "exchange_rate": None,
                                        "fee": fee, "net": pi["amount_received"] - fee}}
        return out

    # --- GET ------------------------------------------------------------------------------

    def _read(self, path: str, request: SandboxRequest, ctx: SandboxContext) -> SandboxResponse:
        if ctx.fate("lookup", path, booking=False) is Fate.SERVER_ERROR:
            return error(503, "api_error", "Stripe is temporarily unavailable.")
        if path == "/v1/payment_intents/search":
            query = (request.query.get("query") or [""])[0]
            m = re.fullmatch(r"metadata\['([A-Za-z0-9_]+)'\]:'([^']*)'", query)
            if not m:
                return error(400, "invalid_request_error", f"unsupported search query {query!r}",
                              param="query")
            found = [pi for pi in self._intents.values()
                     if pi["metadata"].get(m.group(1)) == m.group(2)]
            if any(pi["id"] in self._silent for pi in found):
                return error(503, "api_error", "Stripe is temporarily unavailable.")
            return SandboxResponse.json(200, {"object": "search_result", "data": found,
                                              "has_more": False, "url": path})
        m = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
        if m:
            pi = self._intents.get(m.group(1))
            if pi is None:
                return error(404, "invalid_request_error", f"No such payment_intent: "
                              f"'{m.group(1)}'", "resource_missing", param="intent")
            if pi["id"] in self._silent:
                return error(503, "api_error", "Stripe is temporarily unavailable.")
            return SandboxResponse.json(200, pi)
        if path == "/v1/refunds":
            intent = (request.query.get("payment_intent") or [""])[0]
            data = [r for r in self._refunds.values() if r["payment_intent"] == intent]
            return SandboxResponse.json(200, {"object": "list", "data": data,
                                              "has_more": False, "url": path})
        return error(404, "invalid_request_error", f"Unrecognized request URL (GET: {path})")

    # --- webhooks ---------------------------------------------------------------------------

    def dispute(self, ctx: SandboxContext, provider_reference: str, amount_minor: int | None,
                outcome: str) -> str | None:
        pi = self._intents.get(provider_reference)
        if pi is None or not pi["amount_received"]:
            return None
        amount = amount_minor or pi["amount_received"]
        dispute = {"id": ctx.new_id("dp_", "dispute", pi["id"]), "object": "dispute",
                   "amount": amount, "currency": pi["currency"], "charge": pi["latest_charge"],
                   "payment_intent": pi["id"], "reason": "fraudulent",
                   "status": "needs_response", "created": int(ctx.now()),
                   "evidence_details": {"due_by": int(ctx.now()) + 7 * 86_400}}
        payment_ref = pi["metadata"].get("paysignal_payment_id", "")
        self._event(ctx, "charge.dispute.created", dict(dispute))  # funds withdrawn at once
        ctx.books.record(BookEntry(NAME, "chargeback", payment_ref, pi["id"], amount,
                                   pi["currency"].upper(), "succeeded"))
        if outcome != "open":
            self._event(ctx, "charge.dispute.closed", {**dispute, "status": outcome})
        if outcome == "won":
            ctx.books.record(BookEntry(NAME, "chargeback_reversal", payment_ref, pi["id"],
                                       amount, pi["currency"].upper(), "succeeded"))
        return str(dispute["id"])

    def announce(self, ctx: SandboxContext, key: str) -> None:
        self._event(ctx, "customer.created", {"id": ctx.new_id("cus_", key), "object":
                                              "customer", "metadata": {}})

    def _event(self, ctx: SandboxContext, type_: str, obj: dict[str, Any],
               after_s: float = 0.0) -> None:
        if not self.webhook_secret or obj["id"] in self._silent:
            return
        event_id = ctx.new_id("evt_", type_, obj["id"])
        body = json.dumps({"id": event_id, "object": "event", "api_version": API_VERSION,
                           "created": int(ctx.now()), "type": type_, "livemode": False,
                           "data": {"object": obj}}).encode()
        secret = self.webhook_secret
        ctx.notify(OutgoingWebhook(NAME, body, event_id, lambda at: {
            "content-type": "application/json", "stripe-signature": sign(secret, body, at)},
            after_s))


# --- the registry's view -------------------------------------------------------------------



def sandbox_environment(base_url: str, webhook_credential: str) -> dict[str, str]:
    """The variables that point the connector at a sandbox (configuration only)."""
    return {f"PAYSIGNAL_{NAME.upper()}_BASE_URL": base_url,
            API_KEY_VARIABLE: "sk_test_paysignal_sandbox",
            f"PAYSIGNAL_WEBHOOK_SECRET_{NAME.upper()}": webhook_credential}
