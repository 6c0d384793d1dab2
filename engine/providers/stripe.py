"""Stripe: everything paysignal knows of it, and the only module that knows it.

- The connector speaks the PaymentIntents API: form-encoded bodies, `Idempotency-Key`, amounts in
  minor units, lower-case currencies, `metadata[paysignal_payment_id]`; errors by `type`, `code`
  and `decline_code`; `Stripe-Should-Retry` honoured; webhooks signed `t=…,v1=…`.
- The emulator is Stripe's side of the paysignal sandbox: the same protocol from the server's
  end (idempotent replays with `Idempotent-Replayed`, 409 while a key is in flight, an
  `idempotency_error` on different parameters), with its books and seeded faults.

A thin httpx client rather than the official SDK: stripe-python folds a connect failure and a
read time-out into one APIConnectionError, so the one distinction that decides whether money may
have moved would be lost (the SDK is used in the tests to prove the emulator's fidelity).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from engine.domain.method_types import MethodType
from engine.domain.operations import Operation
from engine.exceptions import ValidationError
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
from engine.providers.wire import MaybeSent, NotSent, WireClient, WireResponse, outcome_of
from engine.settlement import lines

NAME = "stripe"
LIVE_URL = "https://api.stripe.com"
API_KEY_VARIABLE = "PAYSIGNAL_STRIPE_API_KEY"
API_VERSION = "2025-09-30.clover"
# Stripe may prune a key once it is 24 hours old: a repeat is safe only well inside that.
KEY_RETENTION = timedelta(hours=23)
# Search is eventually consistent (under a minute normally, up to an hour in an outage): an
# empty search proves nothing sooner.
SEARCH_SETTLES = timedelta(hours=1)
# the published card price, 2.9% + 30, and the dispute fee (15.00); configurable
PRICING = Pricing(290, 30, dispute_fee_minor=1500)
PAYMENT_METHOD = re.compile(r"^pm_[A-Za-z0-9_]{1,250}$")

_DECLINES = {  # Stripe's documented test PaymentMethods that decline: (code, decline_code)
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card"),
    "pm_card_chargeDeclinedFraudulent": ("card_declined", "fraudulent"),
}
# Sandbox-only test values that force a fault (a real Stripe account knows none of them).
SANDBOX_FAULTS = {
    "pm_card_sandbox_timeoutAfterCharge": Fate.TIMEOUT_AFTER,
    "pm_card_sandbox_timeoutBeforeCharge": Fate.TIMEOUT_BEFORE,
    "pm_card_sandbox_serverError": Fate.SERVER_ERROR,
    "pm_card_sandbox_resetAfterCharge": Fate.RESET_AFTER,
}
SILENT = "pm_card_sandbox_lookupUnavailable"  # charges, times out, and is never looked up
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "approved (subject to the sandbox's fault profile); any other pm_ id too",
    "pm_card_chargeDeclined": "declined: card_declined / generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "declined: insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "declined: expired_card",
    "pm_card_chargeDeclinedFraudulent": "declined: fraudulent",
    "pm_card_sandbox_timeoutAfterCharge": "sandbox only: charges, then the answer times out",
    "pm_card_sandbox_timeoutBeforeCharge": "sandbox only: the first request with a key times "
                                           "out without charging; a repeat goes through",
    "pm_card_sandbox_serverError": "sandbox only: a 500 with Stripe-Should-Retry: true",
    "pm_card_sandbox_resetAfterCharge": "sandbox only: charges, then the connection resets",
    SILENT: "sandbox only: charges, times out, and every lookup fails",
}


# --- configuration ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StripeConfig:
    endpoint: Endpoint
    api_key: str
    webhook_secrets: tuple[str, ...]
    pricing: Pricing = PRICING

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> StripeConfig | None:
        """None when no API key is configured: the provider is disabled."""
        key = env_secret(API_KEY_VARIABLE, env)
        if not key:
            return None
        return cls(Endpoint.from_environment(NAME, LIVE_URL, env), key,
                   tuple(webhook_secrets(NAME, env)), Pricing.from_environment(NAME, PRICING, env))


# --- the signature scheme (both ends) -----------------------------------------------------

def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(header: str, body: bytes, secrets: tuple[str, ...] | list[str],
                     now: float, tolerance_s: float) -> int:
    """The signing time, or WebhookSignatureError. Any `v1` matching any configured secret
    passes (during a rotation Stripe signs with both)."""
    timestamp, given = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            given.append(value)
    if timestamp is None or not given:
        raise WebhookSignatureError("Stripe-Signature has no t= or no v1=")
    if abs(now - timestamp) > tolerance_s:
        raise WebhookSignatureError("timestamp outside the tolerance")
    if not secrets:
        raise WebhookSignatureError("no webhook secret is configured for stripe")
    expected = [sign(s, body, timestamp).rpartition("v1=")[2] for s in secrets]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise WebhookSignatureError("signature does not match")
    return timestamp


# --- the connector -------------------------------------------------------------------------

def _form(params: dict[str, Any]) -> bytes:
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if isinstance(value, dict):
            pairs += [(f"{name}[{k}]", str(v)) for k, v in value.items()]
        elif isinstance(value, list):
            pairs += [(f"{name}[]", str(v)) for v in value]
        else:
            pairs.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    return urlencode(pairs).encode()


class StripeConnector:
    name = NAME

    def __init__(self, config: StripeConfig, transport: httpx.BaseTransport | None = None,
                 ) -> None:
        self.config = config
        self.client = WireClient(config.endpoint.base_url, config.endpoint.timeouts, transport)

    def validate_payment_method(self, value: object) -> str:
        if not isinstance(value, str) or not PAYMENT_METHOD.match(value):
            raise ValidationError("payment_method", "must be a Stripe PaymentMethod id "
                                  "(pm_…), such as pm_card_visa")
        return value

    def method_type(self, payment_method: str) -> MethodType:
        return MethodType.CARD  # PaymentIntents are created with payment_method_types=[card]

    def fee_for(self, amount_minor: int, currency: str) -> int:
        return self.config.pricing.capture_fee(amount_minor)

    def acknowledgement(self) -> Acknowledgement:
        return Acknowledgement()

    # --- calls ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, params: dict[str, Any] | None = None,
              key: str | None = None, query: dict[str, str] | None = None) -> WireResponse:
        headers = {"Authorization": f"Bearer {self.config.api_key}",
                   "Stripe-Version": API_VERSION}
        if key:
            headers["Idempotency-Key"] = key
        if params is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.client.request(method, path, headers=headers,
                                   content=_form(params) if params is not None else None,
                                   params=query)

    def _params(self, req: ProviderRequest) -> tuple[str, dict[str, Any]]:
        expand = ["latest_charge.balance_transaction"]
        if req.operation is Operation.AUTHORIZE:
            return "/v1/payment_intents", {
                "amount": req.amount_minor, "currency": req.currency.lower(),
                "payment_method": req.payment_method, "confirm": True,
                "capture_method": "automatic" if req.capture else "manual",
                "payment_method_types": ["card"],
                "metadata": {"paysignal_payment_id": req.payment_ref,
                             "paysignal_request_id": req.request_id},
                "expand": expand}
        intent = req.provider_reference or ""
        if req.operation is Operation.CAPTURE:
            return f"/v1/payment_intents/{intent}/capture", {
                "amount_to_capture": req.amount_minor, "expand": expand}
        if req.operation is Operation.VOID:
            return f"/v1/payment_intents/{intent}/cancel", {}
        return "/v1/refunds", {"payment_intent": intent, "amount": req.amount_minor,
                               "metadata": {"paysignal_payment_id": req.payment_ref,
                                            "paysignal_request_id": req.request_id}}

    def execute(self, req: ProviderRequest) -> ProviderOutcome:
        path, params = self._params(req)
        return self._send(req, "POST", path, params, key=req.request_id)

    def _send(self, req: ProviderRequest, method: str, path: str,
              params: dict[str, Any] | None, key: str | None = None,
              query: dict[str, str] | None = None) -> ProviderOutcome:
        return outcome_of(lambda: self._outcome(req, self._call(method, path, params, key,
                                                                query)))

    def _outcome(self, req: ProviderRequest, r: WireResponse) -> ProviderOutcome:
        body = r.json()
        latency = r.latency_s
        if r.status == 200:
            if body.get("object") == "refund":
                return _refund_outcome(body, latency)
            if body.get("object") == "search_result":
                found = body.get("data") or []
                if not found:
                    return ProviderOutcome(OutcomeKind.NOT_FOUND, "no such payment_intent")
                body = found[0]
            return _intent_outcome(req.operation, body, latency)
        raw_error = body.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        word = str(error.get("code") or error.get("type") or f"http_{r.status}")
        should_retry = r.headers.get("stripe-should-retry")
        if r.status == 402:  # a card error: the attempt was made and declined
            return ProviderOutcome(OutcomeKind.DECLINED, word,
                                   (error.get("payment_intent") or {}).get("id"),
                                   reason=error.get("decline_code") or error.get("code"),
                                   latency_s=latency)
        if r.status == 429:
            return ProviderOutcome(OutcomeKind.RETRYABLE, "rate_limit", latency_s=latency,
                                   retry_after_s=r.retry_after_s())
        if r.status == 409 or error.get("type") == "idempotency_error":
            # the key is in flight at Stripe, or was first used with other parameters: what
            # became of the first use is for the lookup to find
            return ProviderOutcome(OutcomeKind.UNKNOWN, word, latency_s=latency)
        if r.status >= 500:
            kind = OutcomeKind.RETRYABLE if should_retry == "true" else OutcomeKind.UNKNOWN
            return ProviderOutcome(kind, word, latency_s=latency)
        if r.status == 404 and req.provider_reference is None:
            return ProviderOutcome(OutcomeKind.NOT_FOUND, word, latency_s=latency)
        return ProviderOutcome(OutcomeKind.REJECTED, word, reason=error.get("message"),
                               latency_s=latency)

    # --- what became of an earlier attempt --------------------------------------------------

    def lookup(self, req: ProviderRequest) -> ProviderOutcome:
        """Repeat the request with its Idempotency-Key while Stripe keeps keys (it replays the
        saved answer, or runs the request once if it never arrived); else read the
        PaymentIntent, by id, or by a search on the metadata carrying our payment id."""
        age = timedelta(seconds=req.age_s)
        repeatable = req.operation is not Operation.AUTHORIZE or req.payment_method is not None
        if age < KEY_RETENTION and repeatable:
            repeated = self.execute(req)
            if repeated.kind is not OutcomeKind.UNKNOWN:
                return repeated
        if req.operation is Operation.REFUND:
            return self._find_refund(req)
        if req.provider_reference:
            return self._send(req, "GET", f"/v1/payment_intents/{req.provider_reference}", None)
        found = self._send(req, "GET", "/v1/payment_intents/search", None, query={
            "query": f"metadata['paysignal_payment_id']:'{req.payment_ref}'"})
        if found.kind is OutcomeKind.NOT_FOUND and age < SEARCH_SETTLES:
            return ProviderOutcome(OutcomeKind.UNKNOWN, "not found yet (search lags)")
        return found

    def _find_refund(self, req: ProviderRequest) -> ProviderOutcome:
        try:
            r = self._call("GET", "/v1/refunds", None, None,
                           {"payment_intent": req.provider_reference or "", "limit": "100"})
            body = r.json()
        except (NotSent, MaybeSent) as exc:
            return ProviderOutcome(OutcomeKind.UNKNOWN, f"lookup failed: {exc}")
        if r.status != 200:
            return ProviderOutcome(OutcomeKind.UNKNOWN, f"lookup failed: http_{r.status}")
        for refund in body.get("data") or []:
            if (refund.get("metadata") or {}).get("paysignal_request_id") == req.request_id:
                return _refund_outcome(refund, r.latency_s)
        return ProviderOutcome(OutcomeKind.NOT_FOUND, "no such refund")

    # --- notifications ----------------------------------------------------------------------

    def verify_notifications(self, headers: dict[str, str], body: bytes, now: float,
                             tolerance_s: float) -> list[Notification]:
        header = headers.get("stripe-signature")
        if not header:
            raise WebhookSignatureError("no Stripe-Signature header")
        sent_at = verify_signature(header, body, self.config.webhook_secrets, now, tolerance_s)
        try:
            return [parse_event(json.loads(body), sent_at)]
        except (KeyError, ValueError, TypeError, AttributeError):
            raise MalformedNotificationError("not a Stripe event") from None


def _fee(intent: dict[str, Any]) -> int:
    charge = intent.get("latest_charge")
    if isinstance(charge, dict) and isinstance(charge.get("balance_transaction"), dict):
        return int(charge["balance_transaction"].get("fee") or 0)
    return 0


def _intent_outcome(op: Operation, pi: dict[str, Any], latency: float) -> ProviderOutcome:
    """What a PaymentIntent's status says about the operation asked for."""
    status, ref = str(pi.get("status")), pi.get("id")
    if not isinstance(ref, str):
        raise MaybeSent("a PaymentIntent without an id")

    def out(kind: OutcomeKind, reason: str | None = None, fee: int = 0,
            captured: bool = False) -> ProviderOutcome:
        return ProviderOutcome(kind, status, ref, reason=reason, fee_minor=fee, latency_s=latency,
                               captured=captured)

    if status == "processing":
        return out(OutcomeKind.UNKNOWN)
    if op is Operation.AUTHORIZE:
        if status == "succeeded":  # automatic capture: authorized and captured in one call
            return out(OutcomeKind.SUCCEEDED, fee=_fee(pi), captured=True)
        if status == "requires_capture":
            return out(OutcomeKind.SUCCEEDED)
        error = pi.get("last_payment_error") or {}
        if status in ("requires_payment_method", "canceled"):
            return out(OutcomeKind.DECLINED, error.get("decline_code") or error.get("code")
                       or status)
        return out(OutcomeKind.DECLINED, status)  # requires_action: no shopper to send it to
    if op is Operation.CAPTURE:
        if status == "succeeded":
            return out(OutcomeKind.SUCCEEDED, fee=_fee(pi))
        return out(OutcomeKind.NOT_FOUND if status == "requires_capture" else
                   OutcomeKind.REJECTED)
    if op is Operation.VOID:
        if status == "canceled":
            return out(OutcomeKind.SUCCEEDED)
        return out(OutcomeKind.NOT_FOUND if status == "requires_capture" else
                   OutcomeKind.REJECTED)
    raise MaybeSent(f"a PaymentIntent answered a {op.value}")


def _refund_outcome(refund: dict[str, Any], latency: float) -> ProviderOutcome:
    status = str(refund.get("status"))
    ref = (refund.get("payment_intent") if isinstance(refund.get("payment_intent"), str)
           else None)
    kind = {"succeeded": OutcomeKind.SUCCEEDED, "pending": OutcomeKind.SUBMITTED,
            "requires_action": OutcomeKind.SUBMITTED, "failed": OutcomeKind.DECLINED,
            "canceled": OutcomeKind.DECLINED}.get(status, OutcomeKind.UNKNOWN)
    return ProviderOutcome(kind, f"refund {status}", ref,
                           reason=refund.get("failure_reason"), latency_s=latency)


_EVENT_OPERATIONS = {  # event type -> (operation, succeeded)
    "payment_intent.amount_capturable_updated": (Operation.AUTHORIZE, True),
    "payment_intent.payment_failed": (Operation.AUTHORIZE, False),
    "payment_intent.succeeded": (Operation.CAPTURE, True),
    "payment_intent.canceled": (Operation.VOID, True),
    "refund.created": (Operation.REFUND, True),
    "refund.failed": (Operation.REFUND, False),
}


# Stripe withdraws the disputed amount when the dispute is created; `funds_reinstated` and a
# `closed` dispute with status `won` return it.
_DISPUTE_EVENTS = {"charge.dispute.created": DisputeStage.FUNDS_WITHDRAWN,
                   "charge.dispute.funds_withdrawn": DisputeStage.FUNDS_WITHDRAWN,
                   "charge.dispute.funds_reinstated": DisputeStage.WON,
                   "charge.dispute.updated": DisputeStage.OPENED}
_CLOSED = {"won": DisputeStage.WON, "lost": DisputeStage.LOST,
           "warning_closed": DisputeStage.WON}


def parse_event(event: dict[str, Any], sent_at: float) -> Notification:
    if event["type"].startswith("charge.dispute."):
        return _parse_dispute(event, sent_at)
    operation, succeeded = _EVENT_OPERATIONS[event["type"]]
    obj = event["data"]["object"]
    metadata = obj.get("metadata") or {}
    captured = None
    if operation is Operation.CAPTURE and obj.get("capture_method") != "manual":
        operation, captured = Operation.AUTHORIZE, True  # an automatic-capture intent's one call
    if operation is Operation.REFUND:
        if obj.get("status") == "failed":
            succeeded = False
        return ParsedNotification(event["id"], metadata["paysignal_payment_id"],
                                  obj["payment_intent"], operation, succeeded,
                                  amount_minor=obj["amount"],
                                  request_id=metadata.get("paysignal_request_id"),
                                  sent_at=float(sent_at))
    amount = {Operation.CAPTURE: obj.get("amount_received"),
              Operation.AUTHORIZE: obj.get("amount")}.get(operation, obj.get("amount"))
    if captured:
        amount = obj.get("amount_received")
    request_id = (metadata.get("paysignal_request_id") if operation is Operation.AUTHORIZE
                  else None)  # the intent's metadata names the request that created it
    return ParsedNotification(event["id"], metadata["paysignal_payment_id"], obj["id"],
                              operation, succeeded, amount_minor=amount,
                              request_id=request_id, sent_at=float(sent_at), captured=captured)


def _parse_dispute(event: dict[str, Any], sent_at: float) -> ParsedDispute:
    dispute = event["data"]["object"]
    if event["type"] == "charge.dispute.closed":
        stage = _CLOSED[dispute["status"]]
    else:
        stage = _DISPUTE_EVENTS[event["type"]]
    due = (dispute.get("evidence_details") or {}).get("due_by")
    return ParsedDispute(event["id"], dispute["id"], dispute["payment_intent"], stage,
                         int(dispute["amount"]), str(dispute["currency"]).upper(),
                         reason=str(dispute.get("reason") or ""),
                         due_by=float(due) if due else None, sent_at=float(sent_at))


# --- the emulator: Stripe's side of the sandbox --------------------------------------------

def _error(status: int, type_: str, message: str, code: str | None = None,
           **extra: Any) -> SandboxResponse:
    error: dict[str, Any] = {"type": type_, "message": message, **extra}
    if code:
        error["code"] = code
    return SandboxResponse.json(status, {"error": error})


def _unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back to a structure: a[b]=1 -> {a: {b: 1}}, a[]=1 -> {a: [1]}."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        m = re.fullmatch(r"([^\[]+)\[([^\]]*)\]", name)
        if not m:
            out[name] = value
        elif m.group(2) == "":
            out.setdefault(m.group(1), []).append(value)
        else:
            out.setdefault(m.group(1), {})[m.group(2)] = value
    return out


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
            return _error(401, "invalid_request_error",
                          "Invalid API Key provided (the sandbox takes any sk_test_ key)")
        try:
            params = _unflatten(parse_qsl(request.body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return _error(400, "invalid_request_error", "the body is not form-encoded text")
        path, method = request.path.rstrip("/"), request.method
        if method == "GET":
            return self._read(path, request, ctx)
        key = request.headers.get("idempotency-key")
        if key is None or method != "POST":
            return self._execute(path, params, ctx, key or ctx.new_id("auto_"))
        if len(key) > 255:
            return _error(400, "invalid_request_error", "Idempotency-Key is longer than 255")
        scope = (NAME, auth, key)
        fingerprint = f"{path}?{json.dumps(params, sort_keys=True)}"
        existing = ctx.idempotency.claim(scope, fingerprint)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                return _error(400, "idempotency_error", "Keys for idempotent requests can only "
                              "be used with the same parameters they were first used with.")
            if existing.response is None:
                return _error(409, "idempotency_error", "There is currently another in-progress "
                              "request using this Idempotent Key.", "idempotency_key_in_use")
            saved = existing.response
            if self._concerns_silent(saved):
                return SandboxResponse(wire=Wire.STALL)
            if ctx.fate("lookup", key, booking=False) is Fate.SERVER_ERROR:
                return _error(503, "api_error", "Stripe is temporarily unavailable.")
            # a replay answers on the wire, even when the first answer was lost on it
            return SandboxResponse(saved.status, saved.body,
                                   {**saved.headers, "idempotent-replayed": "true"})
        response = self._execute(path, params, ctx, key)
        if _never_executed(response):
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
        return _error(404, "invalid_request_error", f"Unrecognized request URL (POST: {path})")

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
            return _error(400, "invalid_request_error", "Missing required param: amount.",
                          "parameter_missing", param="amount")
        method = str(p.get("payment_method") or "")
        if not method.startswith("pm_"):
            return _error(400, "invalid_request_error", f"No such PaymentMethod: '{method}'",
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
        declined = _DECLINES.get(method)
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
            return _error(402, "card_error", "Your card was declined.", code,
                          decline_code=decline_code, payment_intent=pi)
        charge_id = ctx.new_id("ch_", key)
        pi["latest_charge"] = charge_id
        if method == SILENT:
            self._silent.add(pi_id)
        if automatic:
            pi.update(status="succeeded", amount_received=amount)
            self._book(ctx, "authorize", pi, amount, "succeeded", captured=True)
            self._event(ctx, "payment_intent.succeeded", pi)
        else:
            pi.update(status="requires_capture", amount_capturable=amount)
            self._book(ctx, "authorize", pi, amount, "succeeded")
            self._event(ctx, "payment_intent.amount_capturable_updated", pi)
        return lost_on_the_wire(fate, SandboxResponse.json(200, self._expanded(pi, p)))

    def _modify(self, pi_id: str, action: str, p: dict[str, Any], ctx: SandboxContext,
                key: str) -> SandboxResponse:
        pi = self._intents.get(pi_id)
        if pi is None:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{pi_id}'",
                          "resource_missing", param="intent")
        operation = "capture" if action == "capture" else "void"
        fate = self._fated(ctx, operation, key)
        if isinstance(fate, SandboxResponse):
            return fate
        if pi["status"] != "requires_capture":
            return _error(400, "invalid_request_error", "This PaymentIntent could not be "
                          f"{'captured' if action == 'capture' else 'canceled'} because it has a "
                          f"status of {pi['status']}.", "payment_intent_unexpected_state",
                          payment_intent=pi)
        if action == "capture":
            amount = int(p.get("amount_to_capture") or pi["amount_capturable"])
            if amount > pi["amount_capturable"]:
                return _error(400, "invalid_request_error", "amount_to_capture is greater than "
                              "the amount capturable", "amount_too_large",
                              param="amount_to_capture")
            pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
            self._book(ctx, "capture", pi, amount, "succeeded")
            self._event(ctx, "payment_intent.succeeded", pi)
        else:
            pi.update(status="canceled", amount_capturable=0,
                      cancellation_reason=p.get("cancellation_reason"))
            self._book(ctx, "void", pi, pi["amount"], "succeeded")
            self._event(ctx, "payment_intent.canceled", pi)
        return lost_on_the_wire(fate, SandboxResponse.json(200, self._expanded(pi, p)))

    def _refund(self, p: dict[str, Any], ctx: SandboxContext, key: str) -> SandboxResponse:
        pi = self._intents.get(str(p.get("payment_intent")))
        if pi is None:
            return _error(404, "invalid_request_error", "No such payment_intent: "
                          f"'{p.get('payment_intent')}'", "resource_missing",
                          param="payment_intent")
        fate = self._fated(ctx, "refund", key)
        if isinstance(fate, SandboxResponse):
            return fate
        refunded = sum(r["amount"] for r in self._refunds.values()
                       if r["payment_intent"] == pi["id"] and r["status"] == "succeeded")
        amount = int(p.get("amount") or pi["amount_received"] - refunded)
        if pi["status"] != "succeeded" or amount > pi["amount_received"] - refunded:
            return _error(400, "invalid_request_error", "Refund amount is greater than the "
                          "unrefunded amount on the charge.", "amount_too_large",
                          param="amount")
        refund = {"id": ctx.new_id("re_", key), "object": "refund", "amount": amount,
                  "currency": pi["currency"], "payment_intent": pi["id"],
                  "charge": pi["latest_charge"], "status": "succeeded",
                  "metadata": dict(p.get("metadata") or {}), "created": int(ctx.now())}
        self._refunds[refund["id"]] = refund
        ctx.books.record(BookEntry(NAME, "refund", pi["metadata"].get(
            "paysignal_payment_id", ""), pi["id"], amount, pi["currency"].upper(), "succeeded"))
        self._event(ctx, "refund.created", refund)
        return lost_on_the_wire(fate, SandboxResponse.json(200, refund))

    def _book(self, ctx: SandboxContext, operation: str, pi: dict[str, Any], amount: int,
              status: str, captured: bool = False) -> None:
        ctx.books.record(BookEntry(NAME, operation, pi["metadata"].get("paysignal_payment_id",
                                                                       ""),
                                   pi["id"], amount, pi["currency"].upper(), status, captured))

    def _expanded(self, pi: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        out = dict(pi)
        if "latest_charge.balance_transaction" in (p.get("expand") or []) and pi["latest_charge"]:
            fee = PRICING.capture_fee(pi["amount_received"]) if pi["amount_received"] else 0
            out["latest_charge"] = {"id": pi["latest_charge"], "object": "charge",
                                    "balance_transaction": {
                                        "id": "txn_" + pi["latest_charge"][3:], "object":
                                        "balance_transaction", "amount": pi["amount_received"],
                                        "fee": fee, "net": pi["amount_received"] - fee}}
        return out

    # --- GET ------------------------------------------------------------------------------

    def _read(self, path: str, request: SandboxRequest, ctx: SandboxContext) -> SandboxResponse:
        if ctx.fate("lookup", path, booking=False) is Fate.SERVER_ERROR:
            return _error(503, "api_error", "Stripe is temporarily unavailable.")
        if path == "/v1/payment_intents/search":
            query = (request.query.get("query") or [""])[0]
            m = re.fullmatch(r"metadata\['([A-Za-z0-9_]+)'\]:'([^']*)'", query)
            if not m:
                return _error(400, "invalid_request_error", f"unsupported search query {query!r}",
                              param="query")
            found = [pi for pi in self._intents.values()
                     if pi["metadata"].get(m.group(1)) == m.group(2)]
            if any(pi["id"] in self._silent for pi in found):
                return _error(503, "api_error", "Stripe is temporarily unavailable.")
            return SandboxResponse.json(200, {"object": "search_result", "data": found,
                                              "has_more": False, "url": path})
        m = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
        if m:
            pi = self._intents.get(m.group(1))
            if pi is None:
                return _error(404, "invalid_request_error", f"No such payment_intent: "
                              f"'{m.group(1)}'", "resource_missing", param="intent")
            if pi["id"] in self._silent:
                return _error(503, "api_error", "Stripe is temporarily unavailable.")
            return SandboxResponse.json(200, pi)
        if path == "/v1/refunds":
            intent = (request.query.get("payment_intent") or [""])[0]
            data = [r for r in self._refunds.values() if r["payment_intent"] == intent]
            return SandboxResponse.json(200, {"object": "list", "data": data,
                                              "has_more": False, "url": path})
        return _error(404, "invalid_request_error", f"Unrecognized request URL (GET: {path})")

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

    def _event(self, ctx: SandboxContext, type_: str, obj: dict[str, Any]) -> None:
        if not self.webhook_secret or obj["id"] in self._silent:
            return
        event_id = ctx.new_id("evt_", type_, obj["id"])
        body = json.dumps({"id": event_id, "object": "event", "api_version": API_VERSION,
                           "created": int(ctx.now()), "type": type_, "livemode": False,
                           "data": {"object": obj}}).encode()
        secret = self.webhook_secret
        ctx.notify(OutgoingWebhook(NAME, body, event_id, lambda at: {
            "content-type": "application/json", "stripe-signature": sign(secret, body, at)}))


def _never_executed(response: SandboxResponse) -> bool:
    """Stripe saves no result for a request that failed validation, was rate limited, or
    never began executing; a repeat with the key then runs afresh."""
    if response.unbooked:
        return True
    if response.status == 400:
        code = (json.loads(response.body).get("error") or {}).get("code")
        return code in ("parameter_missing", "resource_missing")
    return False


# --- the settlement report: itemized balance change from activity / payout reconciliation ---

REPORT_REQUIRED = ("balance_transaction_id", "currency", "gross", "fee", "net",
                   "reporting_category")
REPORT_COLUMNS = ["balance_transaction_id", "created_utc", "available_on_utc", "currency", "gross",
                  "fee", "net", "reporting_category", "source_id", "description",
                  "payment_intent_id", "automatic_payout_id",
                  "payment_metadata[paysignal_payment_id]"]
REPORTING_CATEGORIES = {
    "charge": lines.CHARGE, "refund": lines.REFUND, "refund_failure": lines.REFUND_REVERSAL,
    "dispute": lines.CHARGEBACK, "dispute_reversal": lines.CHARGEBACK_REVERSAL,
    "fee": lines.FEE, "payout": lines.PAYOUT, "payout_reversal": lines.ADJUSTMENT,
    "partial_capture_reversal": lines.ADJUSTMENT, "transfer": lines.ADJUSTMENT,
    "transfer_reversal": lines.ADJUSTMENT, "other_adjustment": lines.ADJUSTMENT,
    "tax": lines.ADJUSTMENT, "network_cost": lines.FEE,
}
_KIND_CATEGORY = {lines.CHARGE: "charge", lines.REFUND: "refund",
                  lines.REFUND_REVERSAL: "refund_failure", lines.CHARGEBACK: "dispute",
                  lines.CHARGEBACK_REVERSAL: "dispute_reversal", lines.FEE: "fee",
                  lines.PAYOUT: "payout", lines.ADJUSTMENT: "other_adjustment"}
REPORT_NAME = re.compile(r"(?i)^[\w.-]*(balance_change_from_activity|payout_reconciliation)"
                         r"[\w.-]*\.csv$")


def parse_report(data: bytes, filename: str) -> lines.ParsedReport:
    """Either itemized report (both carry balance transactions); columns by header name."""
    table = lines.CsvTable(lines.decode(data, filename), filename, REPORT_REQUIRED)
    day_column = next((c for c in ("available_on_utc", "available_on") if table.has(c)), None)
    if day_column is None:
        raise lines.FileRejectedError(filename, "header lacks 'available_on_utc' (or "
                                      "'available_on'): the settlement day of each line")

    def convert(row: dict[str, str]) -> lines.SettlementLine:
        category = row["reporting_category"]
        kind = REPORTING_CATEGORIES.get(category)
        if kind is None:
            raise ValidationError("reporting_category", f"unknown category {category!r}")
        currency = lines.currency_code(row["currency"], "currency")
        gross = lines.major_units(row["gross"], currency, "gross")
        fee = lines.major_units(row["fee"], currency, "fee")
        net = lines.major_units(row["net"], currency, "net")
        if gross - fee != net:
            raise ValidationError("net", f"{row['net']} is not gross - fee "
                                         f"({row['gross']} - {row['fee']})")
        source = row.get("source_id", "")
        reference = row.get("payment_intent_id") or row.get("charge_id") or source
        payout = row.get("automatic_payout_id") or (source if kind == lines.PAYOUT else "")
        return lines.SettlementLine(
            NAME, lines.required(row, "balance_transaction_id"),
            reference or lines.required(row, "balance_transaction_id"),
            row.get("payment_metadata[paysignal_payment_id]") or None, kind, gross, fee,
            currency, lines.utc_day(lines.required(row, day_column), day_column), net, currency,
            payout or None)

    return lines.parse_rows(table.rows(), convert)


def render_report(day_lines: list[lines.SettlementLine], day: date,
                  payout_offsets: Mapping[str, int] | None = None) -> dict[str, bytes]:
    """The sandbox's itemized balance-change report for a day: each line, then one payout per
    currency of the day's net (its `automatic_payout_id` on every line it pays out)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    available = f"{day.isoformat()} 00:00:00"
    nets: dict[str, int] = {}
    batch = lines.digest(day, *(x.provider_reference for x in day_lines[:50]), length=12)

    def payout_of(currency: str) -> str:
        return f"po_{batch.lower()}{currency.lower()}"

    for n, line in enumerate(day_lines):
        currency = line.currency
        payout = payout_of(currency)
        net = line.amount_minor - line.fee_minor
        nets[currency] = nets.get(currency, 0) + net
        created = (datetime.combine(day, datetime.min.time(), UTC) - timedelta(days=1)
                   + timedelta(seconds=n % 86_400))
        writer.writerow([
            line.line_id or "txn_" + lines.digest(line.provider_reference, line.kind, n,
                                                  length=24).lower(),
            created.strftime("%Y-%m-%d %H:%M:%S"), available, currency.lower(),
            lines.major_text(line.amount_minor, currency),
            lines.major_text(line.fee_minor, currency), lines.major_text(net, currency),
            _KIND_CATEGORY[line.kind],
            ("ch_" if line.kind == lines.CHARGE else "re_" if line.kind == lines.REFUND
             else "dp_") + lines.digest(line.provider_reference, n, length=24).lower(),
            "", line.provider_reference, payout, line.payment_reference or ""])
    for currency, net in sorted(nets.items()):
        payout = payout_of(currency)
        paid = net + (payout_offsets or {}).get(currency, 0)
        writer.writerow([f"txn_{payout}", f"{day.isoformat()} 06:00:00", available,
                         currency.lower(), lines.major_text(-paid, currency), "0",
                         lines.major_text(-paid, currency), "payout", payout,
                         "STRIPE PAYOUT", "", payout, ""])
    return {f"Itemized_balance_change_from_activity_{day.isoformat()}_to_"
            f"{(day + timedelta(days=1)).isoformat()}_UTC.csv": out.getvalue().encode()}


SETTLEMENT_REPORT = lines.ReportFormat(
    NAME, "Stripe itemized reports (balance change from activity, payout reconciliation)",
    REPORT_NAME, parse_report, render_report,
    "\n".join([
        "CSV with one header row; columns are found by name, in any order, and columns paysignal "
        "does not use are ignored. Amounts are decimals in the currency's major unit, currency "
        "codes lower case; `net` must equal `gross - fee`. Gross is negative for money out "
        "(refunds, disputes, payouts). Files named like `…balance_change_from_activity…csv` or "
        "`…payout_reconciliation…csv`. A CSV has no trailer, so the worker takes a file only "
        "once it has not changed for `PAYSIGNAL_SETTLEMENT_MIN_AGE_S`.", "",
        lines.columns_table([
            ("balance_transaction_id", "the line's identity: a line is never imported twice "
                                       "(required)"),
            ("available_on_utc", "settlement day (or `available_on`; one is required)"),
            ("currency", "ISO 4217, any case (required)"),
            ("gross", "signed amount (required)"), ("fee", "the fee (required)"),
            ("net", "gross − fee (required; checked)"),
            ("reporting_category", "the kind of line, below (required)"),
            ("payment_intent_id", "the payment's reference (optional; else `charge_id`, else "
                                  "`source_id`)"),
            ("payment_metadata[paysignal_payment_id]", "our payment id (optional)"),
            ("automatic_payout_id", "the payout that pays the line out (optional)")]),
        "", lines.kinds_sentence("reporting_category", REPORTING_CATEGORIES)]),
    complete_by_footer=False)


# --- the registry's view -------------------------------------------------------------------

SANDBOX_METHODS = {  # neutral behaviour -> this provider's test payment method
    "approve": "pm_card_visa",
    "decline_insufficient_funds": "pm_card_chargeDeclinedInsufficientFunds",
    "decline_do_not_honor": "pm_card_chargeDeclined",
    "timeout_after_charge": "pm_card_sandbox_timeoutAfterCharge",
    "timeout_before_charge": "pm_card_sandbox_timeoutBeforeCharge",
    "server_error": "pm_card_sandbox_serverError",
    "unknown_forever": SILENT,
}


def sandbox_environment(base_url: str, webhook_credential: str) -> dict[str, str]:
    """The variables that point the connector at a sandbox (configuration only)."""
    return {f"PAYSIGNAL_{NAME.upper()}_BASE_URL": base_url,
            API_KEY_VARIABLE: "sk_test_paysignal_sandbox",
            f"PAYSIGNAL_WEBHOOK_SECRET_{NAME.upper()}": webhook_credential}


def connect(config: StripeConfig, transport: httpx.BaseTransport | None = None,
            ) -> StripeConnector:
    return StripeConnector(config, transport)
