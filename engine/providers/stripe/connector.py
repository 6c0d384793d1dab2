"""The connector: Stripe's PaymentIntents API over a thin httpx client.

Form-encoded bodies, `Idempotency-Key`, amounts in minor units, lower-case currencies,
`metadata[paysignal_payment_id]`; errors by `type`, `code` and `decline_code`;
`Stripe-Should-Retry` honoured. A thin client rather than the official SDK: stripe-python folds a
connect failure and a read time-out into one APIConnectionError, so the one distinction that
decides whether money may have moved would be lost (the SDK is used in the tests to prove the
sandbox's fidelity)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from engine.domain.method_types import MethodType
from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.base import (
    Acknowledgement,
    MalformedNotificationError,
    Notification,
    OutcomeKind,
    ProviderOutcome,
    ProviderRequest,
    WebhookSignatureError,
)
from engine.providers.stripe.config import (
    API_VERSION,
    KEY_RETENTION,
    NAME,
    PAYMENT_METHOD,
    SEARCH_SETTLES,
    StripeConfig,
)
from engine.providers.stripe.currencies import CURRENCIES
from engine.providers.stripe.models import (
    ErrorAnswer,
    IntentSearch,
    PaymentError,
    PaymentIntent,
    Refund,
    RefundList,
)
from engine.providers.stripe.notices import parse_event
from engine.providers.stripe.signatures import verify_signature
from engine.providers.wire import (
    MaybeSent,
    NotSent,
    WireClient,
    WireResponse,
    outcome_of,
    read_answer,
)

# --- the connector -------------------------------------------------------------------------

# a PaymentIntent's statuses before the customer (or paysignal) has confirmed it
_WAITING = frozenset(("requires_action", "requires_payment_method", "requires_confirmation"))

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
                                  "(pm_…, such as pm_card_visa), or cus_…:pm_… for one "
                                  "attached to a Customer")
        return value

    def method_type(self, payment_method: str) -> MethodType:
        return MethodType.CARD  # PaymentIntents are created with payment_method_types=[card]

    def check_amount(self, amount_minor: int, currency: str) -> None:
        CURRENCIES.check(amount_minor, currency)

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
        amount = CURRENCIES.to_provider(req.amount_minor, req.currency)
        if req.operation is Operation.AUTHORIZE:
            token = PAYMENT_METHOD.fullmatch(req.payment_method or "")
            customer, method = token.groups() if token else (None, req.payment_method)
            return "/v1/payment_intents", {
                "amount": amount, "currency": req.currency.lower(),
                **({"customer": customer} if customer else {}),
                "payment_method": method, "confirm": True,
                "capture_method": "automatic" if req.capture else "manual",
                "payment_method_types": ["card"],
                # the customer is not there to authenticate: Stripe then asks for no action
                # (docs.stripe.com/api/payment_intents/create#off_session)
                **({} if req.customer_present else {"off_session": True}),
                "metadata": {"paysignal_payment_id": req.payment_ref,
                             "paysignal_request_id": req.request_id},
                "expand": expand}
        intent = req.provider_reference or ""
        if req.operation is Operation.CAPTURE:
            return f"/v1/payment_intents/{intent}/capture", {
                "amount_to_capture": amount, "expand": expand}
        if req.operation is Operation.VOID:
            return f"/v1/payment_intents/{intent}/cancel", {}
        return "/v1/refunds", {"payment_intent": intent, "amount": amount,
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
                return _refund_outcome(read_answer(Refund, body, "a refund"), latency)
            if body.get("object") == "search_result":
                found = read_answer(IntentSearch, body, "a search").data
                if not found:
                    return ProviderOutcome(OutcomeKind.NOT_FOUND, "no such payment_intent")
                return self._intent_outcome(req, found[0], latency)
            return self._intent_outcome(req, read_answer(PaymentIntent, body, "a PaymentIntent"),
                                        latency)
        error = read_answer(ErrorAnswer, body, f"HTTP {r.status}").error
        word = error.code or error.type or f"http_{r.status}"
        should_retry = r.headers.get("stripe-should-retry")
        if r.status == 402:  # a card error: the attempt was made and declined
            return ProviderOutcome(OutcomeKind.DECLINED, word,
                                   error.payment_intent.id if error.payment_intent else None,
                                   reason=error.decline_code or error.code, latency_s=latency)
        if r.status == 429:
            return ProviderOutcome(OutcomeKind.RETRYABLE, "rate_limit", latency_s=latency,
                                   retry_after_s=r.retry_after_s())
        if r.status == 409 or error.type == "idempotency_error":
            # the key is in flight at Stripe, or was first used with other parameters: what
            # became of the first use is for the lookup to find
            return ProviderOutcome(OutcomeKind.UNKNOWN, word, latency_s=latency)
        if r.status >= 500:
            kind = OutcomeKind.RETRYABLE if should_retry == "true" else OutcomeKind.UNKNOWN
            return ProviderOutcome(kind, word, latency_s=latency)
        if r.status == 404 and req.provider_reference is None:
            return ProviderOutcome(OutcomeKind.NOT_FOUND, word, latency_s=latency)
        return ProviderOutcome(OutcomeKind.REJECTED, word, reason=error.message,
                               latency_s=latency)

    def _intent_outcome(self, req: ProviderRequest, pi: PaymentIntent, latency: float,
                        ) -> ProviderOutcome:
        """What a PaymentIntent's status says about the operation asked for."""
        op, status = req.operation, pi.status
        # the fee Stripe states in the payment's currency; else the configured price, as when
        # a notification tells of the capture (the settlement report has the last word)
        fee = pi.fee_in(req.currency, CURRENCIES.from_provider)
        if fee is None:
            fee = self.fee_for(req.amount_minor, req.currency)

        def out(kind: OutcomeKind, reason: str | None = None, fee: int = 0,
                captured: bool = False) -> ProviderOutcome:
            return ProviderOutcome(kind, status, pi.id, reason=reason, fee_minor=fee,
                                   latency_s=latency, captured=captured)

        if status == "processing":
            return out(OutcomeKind.UNKNOWN)
        if op is Operation.AUTHORIZE:
            if status == "succeeded":  # automatic capture: authorized and captured in one call
                return out(OutcomeKind.SUCCEEDED, fee=fee, captured=True)
            if status == "requires_capture":
                return out(OutcomeKind.SUCCEEDED)
            error = pi.last_payment_error or PaymentError()
            if status in ("requires_payment_method", "canceled"):
                return out(OutcomeKind.DECLINED, error.decline_code or error.code or status)
            if status == "requires_action":  # 3-D Secure and the like: the customer decides
                return ProviderOutcome(OutcomeKind.ACTION_REQUIRED, status, pi.id,
                                       latency_s=latency, customer_action=pi.customer_action())
            return out(OutcomeKind.DECLINED, status)
        if op is Operation.CAPTURE:
            if status == "succeeded":
                return out(OutcomeKind.SUCCEEDED, fee=fee)
            return out(OutcomeKind.NOT_FOUND if status == "requires_capture" else
                       OutcomeKind.REJECTED)
        if op is Operation.VOID:
            if status == "canceled":
                return out(OutcomeKind.SUCCEEDED)
            return out(OutcomeKind.NOT_FOUND if status == "requires_capture" else
                       OutcomeKind.REJECTED)
        raise MaybeSent(f"a PaymentIntent answered a {op.value}")

    def abandon(self, req: ProviderRequest) -> ProviderOutcome:
        """Read the PaymentIntent: one the customer finished meanwhile is what it became (a
        hold is not released); one still waiting is cancelled. Stripe refuses to cancel one
        that succeeded in between, and its answer (the intent, in the error) says so."""
        intent = req.provider_reference or ""
        read = self._send(req, "GET", f"/v1/payment_intents/{intent}", None)
        if read.raw_status not in _WAITING:
            return read
        return outcome_of(lambda: self._abandoned(req, self._call(
            "POST", f"/v1/payment_intents/{intent}/cancel",
            {"cancellation_reason": "abandoned"}, f"{req.request_id}:abandon")))

    def _abandoned(self, req: ProviderRequest, r: WireResponse) -> ProviderOutcome:
        body = r.json()
        if r.status == 200:
            pi = read_answer(PaymentIntent, body, "a PaymentIntent")
        else:
            error = read_answer(ErrorAnswer, body, f"HTTP {r.status}").error
            if error.code != "payment_intent_unexpected_state" or not isinstance(
                    body["error"].get("payment_intent"), dict):
                return ProviderOutcome(OutcomeKind.UNKNOWN, error.code or f"http_{r.status}")
            pi = read_answer(PaymentIntent, body["error"]["payment_intent"], "a PaymentIntent")
        if pi.status == "canceled":
            return ProviderOutcome(OutcomeKind.DECLINED, "canceled", pi.id,
                                   reason="customer_action_expired", latency_s=r.latency_s)
        return self._intent_outcome(req, pi, r.latency_s)

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
            if r.status != 200:
                return ProviderOutcome(OutcomeKind.UNKNOWN, f"lookup failed: http_{r.status}")
            refunds = read_answer(RefundList, r.json(), "a list of refunds").data
        except (NotSent, MaybeSent) as exc:
            return ProviderOutcome(OutcomeKind.UNKNOWN, f"lookup failed: {exc}")
        for refund in refunds:
            if refund.metadata.get("paysignal_request_id") == req.request_id:
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
            return [parse_event(body, sent_at)]
        except (KeyError, ValueError):
            raise MalformedNotificationError("not a Stripe event") from None


def _refund_outcome(refund: Refund, latency: float) -> ProviderOutcome:
    kind = {"succeeded": OutcomeKind.SUCCEEDED, "pending": OutcomeKind.SUBMITTED,
            "requires_action": OutcomeKind.SUBMITTED, "failed": OutcomeKind.DECLINED,
            "canceled": OutcomeKind.DECLINED}.get(refund.status, OutcomeKind.UNKNOWN)
    return ProviderOutcome(kind, f"refund {refund.status}", refund.intent_id,
                           reason=refund.failure_reason, latency_s=latency)


def connect(config: StripeConfig, transport: httpx.BaseTransport | None = None,
            ) -> StripeConnector:
    return StripeConnector(config, transport)
