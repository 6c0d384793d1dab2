"""The connector: PayPal's Orders v2 and Payments v2 over a thin httpx client.

- OAuth2 client credentials (`/v1/oauth2/token`), the token cached until shortly before it
  expires; `PayPal-Request-Id` on every POST.
- An order is created with `intent` AUTHORIZE (manual capture) or CAPTURE and a vaulted
  `payment_source`; its authorization (or capture) is the payment's reference from then on.
  Captures, voids and refunds go to `/v2/payments/...`. Amounts are decimal strings.
- Unknown outcomes: repeat with the same `PayPal-Request-Id` (PayPal answers the latest status
  of the original request; kept 6 hours for orders, 45 days for payments), else `GET` on the
  authorization.
- Webhooks: verified by PayPal's postback (`/v1/notifications/verify-webhook-signature`) or
  offline: RSA-SHA256 over `transmission_id|transmission_time|webhook_id|crc32(body)` with the
  certificate at `PAYPAL-CERT-URL`, fetched only from the configured PayPal API host.

A thin httpx client: PayPal's server SDK takes an environment enum, not a base URL, and does
not tell a refused connection from a read time-out."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
from engine.providers.paypal.config import (
    _SOURCE_TYPES,
    DECLINES,
    NAME,
    ORDER_KEY_RETENTION,
    PAYMENT_KEY_RETENTION,
    VAULT_TOKEN,
    WEBHOOK_ID_VARIABLE,
    PayPalConfig,
    _payment_source,
    _source_body,
)
from engine.providers.paypal.currencies import CURRENCIES
from engine.providers.paypal.models import (
    ErrorAnswer,
    Order,
    OrderPayments,
    Payment,
    TokenAnswer,
    VerificationAnswer,
)
from engine.providers.paypal.notices import parse_event
from engine.providers.paypal.protocol import amount_field, cert_url_allowed, signed_message
from engine.providers.wire import (
    MaybeSent,
    NotSent,
    WireClient,
    WireResponse,
    outcome_of,
    read_answer,
)

# --- the connector -------------------------------------------------------------------------

class PayPalConnector:
    name = NAME

    def __init__(self, config: PayPalConfig, transport: httpx.BaseTransport | None = None,
                 ) -> None:
        self.config = config
        self.client = WireClient(config.endpoint.base_url, config.endpoint.timeouts, transport)
        self._token: tuple[str, float] | None = None  # (access token, refresh after; monotonic)
        self._token_lock = threading.Lock()
        self._certs: dict[str, Any] = {}

    def validate_payment_method(self, value: object) -> str:
        kind, token = _payment_source(value) if isinstance(value, str) else ("", "")
        if not isinstance(value, str) or kind not in _SOURCE_TYPES or not VAULT_TOKEN.match(token):
            raise ValidationError("payment_method", "must be a PayPal vault token (letters, "
                                  "digits, - and _, 4 to 64 characters): a card's, or a "
                                  "wallet's as paypal:<token> or venmo:<token>")
        return value

    def method_type(self, payment_method: str) -> MethodType:
        return _SOURCE_TYPES[_payment_source(payment_method)[0]]

    def check_amount(self, amount_minor: int, currency: str) -> None:
        CURRENCIES.check(amount_minor, currency)

    def fee_for(self, amount_minor: int, currency: str) -> int:
        return self.config.pricing.capture_fee(amount_minor)

    def acknowledgement(self) -> Acknowledgement:
        return Acknowledgement()

    # --- authentication ------------------------------------------------------------------

    def access_token(self) -> str:
        """The cached OAuth2 token, fetched again a minute before it expires. Raises NotSent
        or MaybeSent like any call (a token request moves no money: both are retryable)."""
        with self._token_lock:
            if self._token and time.monotonic() < self._token[1]:
                return self._token[0]
            basic = base64.b64encode(
                f"{self.config.client_id}:{self.config.client_secret}".encode()).decode()
            r = self.client.request("POST", "/v1/oauth2/token", headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded"},
                content=b"grant_type=client_credentials")
            body = r.json()
            if r.status != 200 or "access_token" not in body:
                raise _Rejected(f"oauth2 token refused: http_{r.status} {body.get('error')}")
            token = read_answer(TokenAnswer, body, "an oauth2 token")
            self._token = (token.access_token,
                           time.monotonic() + max(0.0, token.expires_in - 60))
            return self._token[0]

    def _call(self, method: str, path: str, body: dict[str, Any] | bytes | None,
              request_id: str | None) -> WireResponse:
        """`body` as JSON, or as given when it is bytes already."""
        headers = {"Authorization": f"Bearer {self.access_token()}",
                   "Content-Type": "application/json", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id[:108]
        content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        r = self.client.request(method, path, headers=headers, content=content)
        if r.status == 401:  # the token was revoked or expired early: once more, afresh
            with self._token_lock:
                self._token = None
            headers["Authorization"] = f"Bearer {self.access_token()}"
            r = self.client.request(method, path, headers=headers, content=content)
        return r

    # --- operations ------------------------------------------------------------------------

    def _request(self, req: ProviderRequest) -> tuple[str, dict[str, Any] | None]:
        if req.operation is Operation.AUTHORIZE:
            return "/v2/checkout/orders", {
                "intent": "CAPTURE" if req.capture else "AUTHORIZE",
                "purchase_units": [{"reference_id": req.payment_ref, "custom_id": req.payment_ref,
                                    "amount": amount_field(req.amount_minor, req.currency)}],
                "payment_source": _source_body(req.payment_method, req.customer_present)}
        ref = req.provider_reference
        if req.operation is Operation.CAPTURE:
            # a capture request has no custom_id (the capture inherits the order's)
            return f"/v2/payments/authorizations/{ref}/capture", {
                "amount": amount_field(req.amount_minor, req.currency), "final_capture": True}
        if req.operation is Operation.VOID:
            return f"/v2/payments/authorizations/{ref}/void", None
        return f"/v2/payments/captures/{ref}/refund", {
            "amount": amount_field(req.amount_minor, req.currency), "custom_id": req.payment_ref,
            "invoice_id": req.request_id[:127]}

    def execute(self, req: ProviderRequest) -> ProviderOutcome:
        path, body = self._request(req)
        return self._send(req, "POST", path, body, req.request_id)

    def _send(self, req: ProviderRequest, method: str, path: str, body: dict[str, Any] | None,
              request_id: str | None) -> ProviderOutcome:
        try:
            return outcome_of(lambda: self._outcome(req, self._call(method, path, body,
                                                                    request_id)))
        except _Rejected as exc:
            return ProviderOutcome(OutcomeKind.REJECTED, str(exc)[:64])

    def _outcome(self, req: ProviderRequest, r: WireResponse) -> ProviderOutcome:
        latency = r.latency_s
        if r.status == 204:  # a void without a representation
            return ProviderOutcome(OutcomeKind.SUCCEEDED, "VOIDED", req.provider_reference,
                                   latency_s=latency)
        body = r.json()
        if r.status in (200, 201):
            if "purchase_units" in body:
                return _order_outcome(req, read_answer(Order, body, "an order"), latency)
            return _payment_outcome(req, read_answer(Payment, body, "a payment"), False,
                                    latency)
        error = read_answer(ErrorAnswer, body, f"HTTP {r.status}")
        issues = error.issues
        word = issues[0] if issues else error.name or f"http_{r.status}"
        if r.status == 429:
            return ProviderOutcome(OutcomeKind.RETRYABLE, word, latency_s=latency,
                                   retry_after_s=r.retry_after_s())
        if req.operation is Operation.VOID and "PREVIOUSLY_VOIDED" in issues:
            # the authorization is voided, which is what was asked (by this request, whose
            # first answer was lost, or by an earlier one)
            return ProviderOutcome(OutcomeKind.SUCCEEDED, word, req.provider_reference,
                                   latency_s=latency)
        if r.status >= 500 or "DUPLICATE_REQUEST_ID" in issues or r.status == 409:
            return ProviderOutcome(OutcomeKind.UNKNOWN, word, latency_s=latency)
        if r.status == 404 and req.provider_reference is None:
            return ProviderOutcome(OutcomeKind.NOT_FOUND, word, latency_s=latency)
        return ProviderOutcome(OutcomeKind.REJECTED, word, reason=error.message,
                               latency_s=latency)

    def abandon(self, req: ProviderRequest) -> ProviderOutcome:
        """An order awaiting the payer is authorized or captured only when its merchant asks
        (`/v2/checkout/orders/{id}/authorize` or `/capture`), which paysignal never does once it
        gives up: there is nothing to cancel, and PayPal lets the order expire."""
        return ProviderOutcome(OutcomeKind.DECLINED, "abandoned", req.provider_reference,
                               reason="customer_action_expired")

    def lookup(self, req: ProviderRequest) -> ProviderOutcome:
        """Repeat with the same PayPal-Request-Id while PayPal keeps it (it answers the latest
        status of the original request); else read the authorization."""
        age = timedelta(seconds=req.age_s)
        keeps = (ORDER_KEY_RETENTION if req.operation is Operation.AUTHORIZE
                 else PAYMENT_KEY_RETENTION)
        if age < keeps and (req.operation is not Operation.AUTHORIZE or req.payment_method):
            repeated = self.execute(req)
            if repeated.kind is not OutcomeKind.UNKNOWN:
                return repeated
        if req.operation in (Operation.AUTHORIZE, Operation.VOID) and req.provider_reference:
            return self._send(req, "GET", f"/v2/payments/authorizations/"
                              f"{req.provider_reference}", None, None)
        return ProviderOutcome(OutcomeKind.UNKNOWN, "not found yet: awaiting the webhook")

    # --- notifications ------------------------------------------------------------------

    def verify_notifications(self, headers: dict[str, str], body: bytes, now: float,
                             tolerance_s: float) -> list[Notification]:
        names = ("paypal-transmission-id", "paypal-transmission-time", "paypal-transmission-sig",
                 "paypal-cert-url", "paypal-auth-algo")
        if any(not headers.get(n) for n in names):
            raise WebhookSignatureError("PayPal transmission headers missing")
        tid, ttime, sig, cert_url, algo = (headers[n] for n in names)
        try:
            sent_at = datetime.fromisoformat(ttime.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise WebhookSignatureError("PAYPAL-TRANSMISSION-TIME is not a time") from None
        if abs(now - sent_at) > tolerance_s:
            raise WebhookSignatureError("transmission time outside the tolerance")
        if not self.config.webhook_id:
            raise WebhookSignatureError(f"no webhook id is configured for paypal "
                                        f"({WEBHOOK_ID_VARIABLE})")
        try:
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError
        except ValueError:
            raise MalformedNotificationError("not JSON") from None
        if self.config.verification == "offline":
            self._verify_offline(tid, ttime, sig, cert_url, algo, body)
        else:
            self._verify_postback(tid, ttime, sig, cert_url, algo, body)
        try:
            return [parse_event(event, sent_at)]
        except (KeyError, ValueError):
            raise MalformedNotificationError("not a PayPal event") from None

    def _verify_postback(self, tid: str, ttime: str, sig: str, cert_url: str, algo: str,
                         body: bytes) -> None:
        """PayPal checks its signature over the exact text it sent, so the event goes back
        as received, never parsed and encoded again."""
        fields = json.dumps({
            "auth_algo": algo, "cert_url": cert_url, "transmission_id": tid,
            "transmission_sig": sig, "transmission_time": ttime,
            "webhook_id": self.config.webhook_id})
        request = fields[:-1].encode() + b', "webhook_event": ' + body + b"}"
        try:
            r = self._call("POST", "/v1/notifications/verify-webhook-signature", request, None)
            status = (read_answer(VerificationAnswer, r.json(), "a verification")
                      .verification_status if r.status == 200 else None)
        except (NotSent, MaybeSent, _Rejected):
            status = None  # unverifiable now: refused, and PayPal delivers it again later
        if status != "SUCCESS":
            raise WebhookSignatureError(f"PayPal's verification said {status or 'nothing'}")

    def _verify_offline(self, tid: str, ttime: str, sig: str, cert_url: str, algo: str,
                        body: bytes) -> None:
        if algo != "SHA256withRSA":
            raise WebhookSignatureError(f"unsupported PAYPAL-AUTH-ALGO {algo!r}")
        if not cert_url_allowed(cert_url, self.config.endpoint.base_url):
            raise WebhookSignatureError("PAYPAL-CERT-URL is not on the configured PayPal host")
        key = self._certificate_key(cert_url)
        try:
            key.verify(base64.b64decode(sig, validate=True),
                       signed_message(tid, ttime, self.config.webhook_id or "", body),
                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            raise WebhookSignatureError("signature does not match") from None

    def _certificate_key(self, cert_url: str) -> rsa.RSAPublicKey:
        if cert_url not in self._certs:
            cert, base = urlsplit(cert_url), urlsplit(self.config.endpoint.base_url)
            try:
                if cert.netloc == base.netloc:  # through the connector's own client
                    pem = self.client.request("GET", cert.path[len(base.path.rstrip("/")):],
                                              headers={}).body
                else:  # PayPal's api. twin of the configured api-m. host
                    with httpx.Client(timeout=self.config.endpoint.timeouts.read_s) as client:
                        pem = client.get(cert_url).content
                certificate = x509.load_pem_x509_certificate(pem)
            except (NotSent, MaybeSent, httpx.HTTPError, ValueError):
                raise WebhookSignatureError("the PayPal certificate could not be fetched") from None
            key = certificate.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise WebhookSignatureError("the PayPal certificate has no RSA key")
            self._certs[cert_url] = key
        key = self._certs[cert_url]
        assert isinstance(key, rsa.RSAPublicKey)
        return key


class _Rejected(Exception):
    """PayPal refused our credentials: nothing happened, and retrying will not help."""


def _order_outcome(req: ProviderRequest, order: Order, latency: float) -> ProviderOutcome:
    if req.operation is not Operation.AUTHORIZE:
        raise MaybeSent(f"an order answered a {req.operation.value}")
    payments = order.purchase_units[0].payments if order.purchase_units else OrderPayments()
    captured = bool(payments.captures)  # intent CAPTURE: one call
    made = payments.authorizations or payments.captures
    if not made and order.status == "PAYER_ACTION_REQUIRED":  # 3-D Secure, payer approval
        return ProviderOutcome(OutcomeKind.ACTION_REQUIRED, order.status, order.id,
                               latency_s=latency, customer_action=order.customer_action())
    if not made:
        kind = OutcomeKind.SUBMITTED if order.status in ("CREATED", "SAVED", "APPROVED") else (
            OutcomeKind.DECLINED)
        return ProviderOutcome(kind, order.status, latency_s=latency)
    return _payment_outcome(req, made[0], captured, latency)


def _payment_outcome(req: ProviderRequest, payment: Payment, captured: bool,
                     latency: float) -> ProviderOutcome:
    op, status, ref = req.operation, payment.status, payment.id
    if op is Operation.REFUND:
        kind = {"COMPLETED": OutcomeKind.SUCCEEDED, "PENDING": OutcomeKind.SUBMITTED,
                "FAILED": OutcomeKind.DECLINED, "CANCELLED": OutcomeKind.DECLINED}.get(
            status, OutcomeKind.UNKNOWN)
        return ProviderOutcome(kind, f"refund {status}", req.provider_reference,
                               latency_s=latency)
    if op is Operation.VOID:
        kind = OutcomeKind.SUCCEEDED if status == "VOIDED" else OutcomeKind.NOT_FOUND
        return ProviderOutcome(kind, status, req.provider_reference, latency_s=latency)
    if status in ("DENIED", "DECLINED", "FAILED"):
        code = str(payment.processor_response.response_code if payment.processor_response
                   else None)
        return ProviderOutcome(OutcomeKind.DECLINED, status, ref,
                               reason=DECLINES.get(code, "declined"), latency_s=latency)
    if status == "PENDING":
        return ProviderOutcome(OutcomeKind.SUBMITTED, status, ref, latency_s=latency)
    if (op is Operation.CAPTURE or captured) and status in ("COMPLETED", "PARTIALLY_REFUNDED",
                                                            "REFUNDED"):
        return ProviderOutcome(OutcomeKind.SUCCEEDED, status, ref, fee_minor=payment.fee_minor,
                               latency_s=latency, captured=captured)
    if op is Operation.AUTHORIZE and status in ("CREATED", "CAPTURED", "PARTIALLY_CAPTURED",
                                                "VOIDED"):
        return ProviderOutcome(OutcomeKind.SUCCEEDED, status, ref, latency_s=latency)
    if op is Operation.CAPTURE and status == "CAPTURED":  # read from the authorization
        return ProviderOutcome(OutcomeKind.SUCCEEDED, status, None, latency_s=latency)
    if op is Operation.CAPTURE and status == "CREATED":
        return ProviderOutcome(OutcomeKind.NOT_FOUND, status, ref, latency_s=latency)
    return ProviderOutcome(OutcomeKind.UNKNOWN, status, ref, latency_s=latency)


def connect(config: PayPalConfig, transport: httpx.BaseTransport | None = None,
            ) -> PayPalConnector:
    return PayPalConnector(config, transport)
