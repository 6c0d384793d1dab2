"""PayPal (Orders v2 and Payments v2): everything paysignal knows of it, and the only module
that knows it.

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
- The emulator is PayPal's side of the paysignal sandbox (it signs with its own certificate).

A thin httpx client: PayPal's server SDK takes an environment enum, not a base URL, and does
not tell a refused connection from a read time-out.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import re
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from engine.domain.method_types import MethodType
from engine.domain.money import Money
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
from engine.providers.config import Endpoint, Pricing, env_secret
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

NAME = "paypal"
SANDBOX_URL = "https://api-m.sandbox.paypal.com"  # live: https://api-m.paypal.com
CLIENT_ID_VARIABLE = "PAYSIGNAL_PAYPAL_CLIENT_ID"
CLIENT_SECRET_VARIABLE = "PAYSIGNAL_PAYPAL_CLIENT_SECRET"
WEBHOOK_ID_VARIABLE = "PAYSIGNAL_PAYPAL_WEBHOOK_ID"
VERIFY_VARIABLE = "PAYSIGNAL_PAYPAL_WEBHOOK_VERIFICATION"  # postback (default) | offline
ORDER_KEY_RETENTION = timedelta(hours=5)  # PayPal keeps order request ids 6 hours
PAYMENT_KEY_RETENTION = timedelta(days=44)  # and payments' 45 days
# the published card price, 3.49% + 49 (a refund returns the percentage part), and the
# dispute fee; configurable
PRICING = Pricing(349, 49, dispute_fee_minor=2000, refund_returns_percentage=True)
VAULT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
# A vaulted payment token is used as payment_source.<kind>.vault_id: cards and PayPal wallets
# (developer.paypal.com/limited-release/vault-payment-methods/orders-api: "Vaulting is
# currently supported for two payment method types: cards and PayPal"), Venmo with Vault v3.
# paysignal's payment_method says the kind as a prefix; a bare token is a card.
_SOURCE_TYPES = {"card": MethodType.CARD, "paypal": MethodType.WALLET,
                 "venmo": MethodType.WALLET}


def _payment_source(payment_method: str) -> tuple[str, str]:
    """(payment_source kind, vault id) of a payment_method: `[card:|paypal:|venmo:]<token>`."""
    kind, _, token = payment_method.rpartition(":")
    return kind or "card", token


def _source_body(payment_method: str | None) -> dict[str, Any]:
    kind, token = _payment_source(payment_method or "")
    return {kind: {"vault_id": token}}
CERT_PATH = "/v1/notifications/certs/"

_DECLINES = {  # processor response code -> normalized reason
    "5120": "insufficient_funds", "0500": "do_not_honor", "5400": "expired_card",
    "9500": "suspected_fraud"}
# Sandbox-only vault tokens that force a decline or a fault.
SANDBOX_DECLINES = {"sandbox-insufficient-funds": "5120", "sandbox-do-not-honor": "0500",
                    "sandbox-expired": "5400"}
SILENT = "sandbox-unknown-forever"  # authorized, times out, and never answered about again
SANDBOX_FAULTS = {SILENT: Fate.TIMEOUT_AFTER,
                  "sandbox-timeout-after-charge": Fate.TIMEOUT_AFTER,
                  "sandbox-timeout-before-charge": Fate.TIMEOUT_BEFORE,
                  "sandbox-server-error": Fate.SERVER_ERROR}
TEST_PAYMENT_METHODS = {
    "7a8b9c0d": "any vault token: approved (subject to the sandbox's fault profile)",
    **{k: f"sandbox only: declined, processor response {v} ({_DECLINES[v]})"
       for k, v in SANDBOX_DECLINES.items()},
    "sandbox-timeout-after-charge": "sandbox only: authorized, then the answer times out",
    "sandbox-timeout-before-charge": "sandbox only: the first request with an id times out "
                                     "before anything happens",
    "sandbox-server-error": "sandbox only: a 500 before anything happens",
    SILENT: "sandbox only: authorized, times out, never answered about nor notified",
}


@dataclass(frozen=True, slots=True)
class PayPalConfig:
    endpoint: Endpoint
    client_id: str
    client_secret: str
    webhook_id: str | None
    verification: str = "postback"
    pricing: Pricing = PRICING

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> PayPalConfig | None:
        client_id = env_secret(CLIENT_ID_VARIABLE, env)
        secret = env_secret(CLIENT_SECRET_VARIABLE, env)
        if not client_id and not secret:
            return None
        if not client_id or not secret:
            missing = CLIENT_ID_VARIABLE if not client_id else CLIENT_SECRET_VARIABLE
            raise ConfigurationError(f"{missing}: is not set (PayPal needs both)")
        verification = env_secret(VERIFY_VARIABLE, env) or "postback"
        if verification not in ("postback", "offline"):
            raise ConfigurationError(f"{VERIFY_VARIABLE}: {verification!r} is neither "
                                     "'postback' nor 'offline'")
        return cls(Endpoint.from_environment(NAME, SANDBOX_URL, env), client_id, secret,
                   env_secret(WEBHOOK_ID_VARIABLE, env), verification,
                   Pricing.from_environment(NAME, PRICING, env))


def _amount(minor: int, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": Money(minor, currency).to_decimal_string()}


def _minor(amount: dict[str, Any]) -> int:
    return Money.from_decimal_string(str(amount["value"]), str(amount["currency_code"]),
                                     "amount.value").amount_minor


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str,
                   body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def cert_url_allowed(cert_url: str, base_url: str) -> bool:
    """Only a certificate on the configured PayPal API host (or its api. twin: PayPal serves
    certificates from api.paypal.com for api-m.paypal.com), over the same scheme."""
    cert, base = urlsplit(cert_url), urlsplit(base_url)
    hosts = {base.netloc, base.netloc.replace("api-m.", "api.", 1)}
    prefix = base.path.rstrip("/") if base.netloc == cert.netloc else ""
    return (cert.scheme == base.scheme and cert.netloc in hosts
            and cert.path.startswith(prefix + CERT_PATH) and ".." not in cert.path)


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
            expires_in = float(body.get("expires_in") or 300)
            self._token = (str(body["access_token"]),
                           time.monotonic() + max(0.0, expires_in - 60))
            return self._token[0]

    def _call(self, method: str, path: str, body: dict[str, Any] | None,
              request_id: str | None) -> WireResponse:
        headers = {"Authorization": f"Bearer {self.access_token()}",
                   "Content-Type": "application/json", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id[:108]
        r = self.client.request(method, path, headers=headers,
                                content=json.dumps(body).encode() if body is not None else None)
        if r.status == 401:  # the token was revoked or expired early: once more, afresh
            with self._token_lock:
                self._token = None
            headers["Authorization"] = f"Bearer {self.access_token()}"
            r = self.client.request(method, path, headers=headers, content=json.dumps(
                body).encode() if body is not None else None)
        return r

    # --- operations ------------------------------------------------------------------------

    def _request(self, req: ProviderRequest) -> tuple[str, dict[str, Any] | None]:
        if req.operation is Operation.AUTHORIZE:
            return "/v2/checkout/orders", {
                "intent": "CAPTURE" if req.capture else "AUTHORIZE",
                "purchase_units": [{"reference_id": req.payment_ref, "custom_id": req.payment_ref,
                                    "amount": _amount(req.amount_minor, req.currency)}],
                "payment_source": _source_body(req.payment_method)}
        ref = req.provider_reference
        if req.operation is Operation.CAPTURE:
            return f"/v2/payments/authorizations/{ref}/capture", {
                "amount": _amount(req.amount_minor, req.currency), "final_capture": True,
                "custom_id": req.payment_ref}
        if req.operation is Operation.VOID:
            return f"/v2/payments/authorizations/{ref}/void", None
        return f"/v2/payments/captures/{ref}/refund", {
            "amount": _amount(req.amount_minor, req.currency), "custom_id": req.payment_ref,
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
            return _resource_outcome(req, body, latency)
        issues = [str(d.get("issue")) for d in body.get("details") or [] if isinstance(d, dict)]
        word = issues[0] if issues else str(body.get("name") or f"http_{r.status}")
        if r.status == 429:
            return ProviderOutcome(OutcomeKind.RETRYABLE, word, latency_s=latency,
                                   retry_after_s=r.retry_after_s())
        if r.status >= 500 or "DUPLICATE_REQUEST_ID" in issues or r.status == 409:
            return ProviderOutcome(OutcomeKind.UNKNOWN, word, latency_s=latency)
        if r.status == 404 and req.provider_reference is None:
            return ProviderOutcome(OutcomeKind.NOT_FOUND, word, latency_s=latency)
        return ProviderOutcome(OutcomeKind.REJECTED, word, reason=body.get("message"),
                               latency_s=latency)

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
            self._verify_postback(tid, ttime, sig, cert_url, algo, event)
        try:
            return [parse_event(event, sent_at)]
        except (KeyError, ValueError, TypeError, AttributeError):
            raise MalformedNotificationError("not a PayPal event") from None

    def _verify_postback(self, tid: str, ttime: str, sig: str, cert_url: str, algo: str,
                         event: dict[str, Any]) -> None:
        try:
            r = self._call("POST", "/v1/notifications/verify-webhook-signature", {
                "auth_algo": algo, "cert_url": cert_url, "transmission_id": tid,
                "transmission_sig": sig, "transmission_time": ttime,
                "webhook_id": self.config.webhook_id, "webhook_event": event}, None)
            status = r.json().get("verification_status") if r.status == 200 else None
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


def _resource_outcome(req: ProviderRequest, body: dict[str, Any],
                      latency: float) -> ProviderOutcome:
    op = req.operation
    captured = False
    if op is Operation.AUTHORIZE and "purchase_units" in body:  # an order
        payments = (body["purchase_units"][0].get("payments") or {})
        captured = bool(payments.get("captures"))  # intent CAPTURE: one call
        auths = payments.get("authorizations") or payments.get("captures") or []
        if not auths:
            word = str(body.get("status"))
            kind = OutcomeKind.SUBMITTED if word in ("CREATED", "SAVED", "APPROVED") else (
                OutcomeKind.DECLINED)
            return ProviderOutcome(kind, word, latency_s=latency,
                                   reason="payer_action_required")
        body = auths[0]
    status, ref = str(body.get("status")), body.get("id")
    if op is Operation.REFUND:
        kind = {"COMPLETED": OutcomeKind.SUCCEEDED, "PENDING": OutcomeKind.SUBMITTED,
                "FAILED": OutcomeKind.DECLINED, "CANCELLED": OutcomeKind.DECLINED}.get(
            status, OutcomeKind.UNKNOWN)
        return ProviderOutcome(kind, f"refund {status}", req.provider_reference,
                               latency_s=latency)
    if op is Operation.VOID:
        kind = OutcomeKind.SUCCEEDED if status == "VOIDED" else OutcomeKind.NOT_FOUND
        return ProviderOutcome(kind, status, req.provider_reference, latency_s=latency)
    if status == "DENIED" or status == "DECLINED" or status == "FAILED":
        code = str((body.get("processor_response") or {}).get("response_code"))
        return ProviderOutcome(OutcomeKind.DECLINED, status, ref,
                               reason=_DECLINES.get(code, "declined"), latency_s=latency)
    if status == "PENDING":
        return ProviderOutcome(OutcomeKind.SUBMITTED, status, ref, latency_s=latency)
    if (op is Operation.CAPTURE or captured) and status in ("COMPLETED", "PARTIALLY_REFUNDED",
                                                            "REFUNDED"):
        breakdown = body.get("seller_receivable_breakdown") or {}
        fee = _minor(breakdown["paypal_fee"]) if "paypal_fee" in breakdown else 0
        return ProviderOutcome(OutcomeKind.SUCCEEDED, status, ref, fee_minor=fee,
                               latency_s=latency, captured=captured)
    if op is Operation.AUTHORIZE and status in ("CREATED", "CAPTURED", "PARTIALLY_CAPTURED",
                                                "VOIDED"):
        return ProviderOutcome(OutcomeKind.SUCCEEDED, status, ref, latency_s=latency)
    if op is Operation.CAPTURE and status == "CAPTURED":  # read from the authorization
        return ProviderOutcome(OutcomeKind.SUCCEEDED, status, None, latency_s=latency)
    if op is Operation.CAPTURE and status == "CREATED":
        return ProviderOutcome(OutcomeKind.NOT_FOUND, status, ref, latency_s=latency)
    return ProviderOutcome(OutcomeKind.UNKNOWN, status, ref, latency_s=latency)


_EVENTS = {  # event_type -> (operation, succeeded)
    "PAYMENT.AUTHORIZATION.CREATED": (Operation.AUTHORIZE, True),
    "PAYMENT.AUTHORIZATION.VOIDED": (Operation.VOID, True),
    "PAYMENT.CAPTURE.COMPLETED": (Operation.CAPTURE, True),
    "PAYMENT.CAPTURE.DENIED": (Operation.CAPTURE, False),
    "PAYMENT.CAPTURE.REFUNDED": (Operation.REFUND, True),
}


# PayPal holds the disputed amount when the dispute is created; the outcome decides it.
_OUTCOMES = {"RESOLVED_SELLER_FAVOUR": DisputeStage.WON, "CANCELED_BY_BUYER": DisputeStage.WON,
             "RESOLVED_BUYER_FAVOUR": DisputeStage.LOST, "RESOLVED_WITH_PAYOUT": DisputeStage.LOST}


def parse_event(event: dict[str, Any], sent_at: float) -> Notification:
    if event["event_type"].startswith("CUSTOMER.DISPUTE."):
        return _parse_dispute(event, sent_at)
    operation, succeeded = _EVENTS[event["event_type"]]
    resource = event["resource"]
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    captured = None
    if operation is Operation.CAPTURE and "authorization_id" not in related:
        operation, captured = Operation.AUTHORIZE, True  # an intent CAPTURE order's one call
    amount = (_minor(resource["amount"])
              if operation is not Operation.VOID and "amount" in resource else None)
    reference = resource["id"]
    if operation is Operation.REFUND:  # a refund names its capture in its links
        up = [link["href"] for link in resource.get("links", []) if link.get("rel") == "up"]
        reference = up[0].rstrip("/").rsplit("/", 1)[-1] if up else resource["id"]
    return ParsedNotification(event["id"], resource["custom_id"], reference, operation,
                              succeeded, amount_minor=amount, sent_at=sent_at, captured=captured)


def _parse_dispute(event: dict[str, Any], sent_at: float) -> ParsedDispute:
    dispute = event["resource"]
    [transaction] = dispute["disputed_transactions"][:1]
    stage = DisputeStage.FUNDS_WITHDRAWN
    if event["event_type"] == "CUSTOMER.DISPUTE.RESOLVED":
        stage = _OUTCOMES[dispute["dispute_outcome"]["outcome_code"]]
    due = dispute.get("seller_response_due_date")
    return ParsedDispute(
        event["id"], dispute["dispute_id"], transaction["seller_transaction_id"], stage,
        _minor(dispute["dispute_amount"]), dispute["dispute_amount"]["currency_code"],
        payment_ref=str(transaction.get("custom") or ""), reason=str(dispute.get("reason", "")),
        due_by=datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp() if due else None,
        sent_at=sent_at)


# --- the emulator: PayPal's side of the sandbox --------------------------------------------

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
        self.cert_pem = _self_signed(self._key)
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
            return self._verify(json.loads(request.body or b"{}"))
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
            minor = _minor(amount)
            intent = b["intent"]
            source = b["payment_source"]
            vault = (source.get("card") or source.get("paypal") or source.get("venmo")
                     or {}).get("vault_id")
            card_number = (source.get("card") or {}).get("number")
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
            code = ctx.rng("decline", key).choice(sorted(_DECLINES))
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
            "create_time": _iso(ctx.now())}
        if intent == "CAPTURE" and not code:
            resource.update(_receivable(minor, amount["currency_code"]), refunded=0)
        order = {"id": order_id, "intent": intent, "status": "COMPLETED",
                 "purchase_units": [{"reference_id": unit.get("reference_id", "default"),
                                     "custom_id": custom, "amount": amount,
                                     "payments": {kind: [resource]}}],
                 "create_time": _iso(ctx.now())}
        self._orders[order_id] = order
        (self._auths if kind == "authorizations" else self._captures)[resource_id] = resource
        resource["_order"] = order_id
        if vault == SILENT:
            self._silent.update((order_id, resource_id))
        ctx.books.record(BookEntry(NAME, "authorize", custom, resource_id, minor,
                                   amount["currency_code"], "declined" if code else "succeeded",
                                   captured=intent == "CAPTURE" and not code))
        if not code:
            self._event(ctx, "PAYMENT.AUTHORIZATION.CREATED" if intent == "AUTHORIZE"
                        else "PAYMENT.CAPTURE.COMPLETED", resource, "authorization")
        response = SandboxResponse.json(201, _public(order))
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
            issue = {"VOIDED": "AUTHORIZATION_VOIDED", "CAPTURED": "AUTHORIZATION_ALREADY_CAPTURED",
                     "DENIED": "AUTHORIZATION_DENIED"}.get(auth["status"], "INVALID_STATE")
            return _error(422, "UNPROCESSABLE_ENTITY", "The requested action could not be "
                          "performed.", issue)
        if action == "void":
            auth["status"] = "VOIDED"
            ctx.books.record(BookEntry(NAME, "void", auth["custom_id"], auth_id,
                                       _minor(auth["amount"]),
                                       auth["amount"]["currency_code"], "succeeded"))
            self._event(ctx, "PAYMENT.AUTHORIZATION.VOIDED", auth, "authorization")
            return lost_on_the_wire(fate, SandboxResponse(204))
        amount = b.get("amount") or auth["amount"]
        minor = _minor(amount)
        if minor > _minor(auth["amount"]):
            return _error(422, "UNPROCESSABLE_ENTITY", "Capture amount exceeds the authorized "
                          "amount.", "CAPTURE_AMOUNT_EXCEEDS_AUTHORIZED")
        currency = amount["currency_code"]
        capture = {"id": ctx.new_id("", key)[:17].upper(), "status": "COMPLETED",
                   "amount": amount, "custom_id": auth["custom_id"], "final_capture": True,
                   **_receivable(minor, currency),
                   "supplementary_data": {"related_ids": {
                       "authorization_id": auth_id,
                       "order_id": auth["supplementary_data"]["related_ids"]["order_id"]}},
                   "refunded": 0, "create_time": _iso(ctx.now()),
                   "links": [{"rel": "up", "href": f"/v2/payments/authorizations/{auth_id}"}]}
        self._captures[capture["id"]] = capture
        auth["status"] = "CAPTURED"
        ctx.books.record(BookEntry(NAME, "capture", auth["custom_id"], capture["id"], minor,
                                   currency, "succeeded"))
        self._event(ctx, "PAYMENT.CAPTURE.COMPLETED", capture, "capture")
        return lost_on_the_wire(fate, SandboxResponse.json(201, _public(capture)))

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
        minor = _minor(amount)
        if minor > _minor(capture["amount"]) - capture["refunded"]:
            return _error(422, "UNPROCESSABLE_ENTITY", "The refund amount must be less than "
                          "or equal to the capture amount that has not yet been refunded.",
                          "REFUND_AMOUNT_EXCEEDED")
        capture["refunded"] += minor
        capture["status"] = ("REFUNDED" if capture["refunded"] == _minor(capture["amount"])
                             else "PARTIALLY_REFUNDED")
        refund = {"id": ctx.new_id("", key)[:17].upper(), "status": "COMPLETED",
                  "amount": amount, "custom_id": b.get("custom_id") or capture["custom_id"],
                  "invoice_id": b.get("invoice_id"), "create_time": _iso(ctx.now()),
                  "links": [{"rel": "up", "href": f"/v2/payments/captures/{capture_id}"}]}
        ctx.books.record(BookEntry(NAME, "refund", capture["custom_id"], capture_id, minor,
                                   amount["currency_code"], "succeeded"))
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
        return SandboxResponse.json(200, _public(found))

    def _verify(self, b: dict[str, Any]) -> SandboxResponse:
        """The postback check, as PayPal does it: our own signature over the event."""
        try:
            message = signed_message(b["transmission_id"], b["transmission_time"],
                                     b["webhook_id"], _canonical(b["webhook_event"]))
            self._key.public_key().verify(base64.b64decode(b["transmission_sig"]), message,
                                          padding.PKCS1v15(), hashes.SHA256())
            ok = b["webhook_id"] == self.webhook_id
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
        minor = amount_minor or _minor(capture["amount"])
        currency = capture["amount"]["currency_code"]
        dispute_id = "PP-D-" + ctx.new_id("", "dispute", capture["id"])[:10].upper()
        dispute: dict[str, Any] = {
            "id": dispute_id, "dispute_id": dispute_id,
            "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
            "status": "WAITING_FOR_SELLER_RESPONSE",
            "dispute_amount": {"currency_code": currency,
                               "value": Money(minor, currency).to_decimal_string()},
            "disputed_transactions": [{"seller_transaction_id": provider_reference,
                                       "custom": capture["custom_id"]}],
            "seller_response_due_date": _iso(ctx.now() + 10 * 86_400),
            "create_time": _iso(ctx.now())}
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

    def _event(self, ctx: SandboxContext, event_type: str, resource: dict[str, Any],
               resource_type: str) -> None:
        if not self.webhook_id or resource["id"] in self._silent:
            return
        event_id = "WH-" + ctx.new_id("", event_type, resource["id"])[:24].upper()
        body = _canonical({"id": event_id, "event_version": "1.0", "create_time": _iso(ctx.now()),
                           "resource_type": resource_type, "event_type": event_type,
                           "summary": event_type.replace(".", " ").lower(),
                           "resource": _public(resource)})
        webhook_id, key, cert_path = self.webhook_id, self._key, self.cert_path

        def headers(at: int) -> dict[str, str]:
            transmission_id = ctx.new_id("", "transmission", event_id)[:36]
            when = _iso(at)
            sig = key.sign(signed_message(transmission_id, when, webhook_id, body),
                           padding.PKCS1v15(), hashes.SHA256())
            return {"content-type": "application/json",
                    "paypal-transmission-id": transmission_id,
                    "paypal-transmission-time": when,
                    "paypal-transmission-sig": base64.b64encode(sig).decode(),
                    "paypal-cert-url": f"{ctx.public_url()}/paypal{cert_path}",
                    "paypal-auth-algo": "SHA256withRSA"}

        ctx.notify(OutgoingWebhook(NAME, body, event_id, headers))


def _receivable(minor: int, currency: str) -> dict[str, Any]:
    """A capture's seller_receivable_breakdown at the published price."""
    fee = PRICING.capture_fee(minor)
    return {"seller_receivable_breakdown": {
        "gross_amount": {"currency_code": currency,
                         "value": Money(minor, currency).to_decimal_string()},
        "paypal_fee": {"currency_code": currency,
                       "value": Money(fee, currency).to_decimal_string()},
        "net_amount": {"currency_code": currency,
                       "value": Money(minor - fee, currency).to_decimal_string()}}}


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if not k.startswith("_") and k != "refunded"}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "paysignal-sandbox")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


# --- the settlement report: STL --------------------------------------------------------------

REPORT_NAME = re.compile(r"(?i)^STL-(\d{8})\.(\d{2})\.(\d{3})\.CSV$")
REPORT_COLUMNS = [
    "Transaction ID", "Invoice ID", "PayPal Reference ID", "PayPal Reference ID Type",
    "Transaction Event Code", "Transaction Initiation Date", "Transaction Completion Date",
    "Transaction Debit or Credit", "Gross Transaction Amount", "Gross Transaction Currency",
    "Fee Debit or Credit", "Fee Amount", "Fee Currency", "Custom Field", "Consumer ID",
    "Payment Tracking ID", "Store ID", "Bank Reference ID", "Credit Transactional Fee",
    "Credit Promotional Fee", "Credit Term"]
REPORT_REQUIRED = ("Transaction ID", "PayPal Reference ID", "Transaction Event Code",
                   "Transaction Debit or Credit", "Gross Transaction Amount",
                   "Gross Transaction Currency", "Fee Debit or Credit", "Fee Amount",
                   "Custom Field")
EVENT_CODES = {
    "T0002": lines.CHARGE, "T0003": lines.CHARGE, "T0006": lines.CHARGE,
    "T1107": lines.REFUND, "T1106": lines.CHARGEBACK, "T1201": lines.CHARGEBACK,
    "T1202": lines.CHARGEBACK_REVERSAL, "T0106": lines.FEE, "T1108": lines.FEE,
    "T0400": lines.PAYOUT, "T0200": lines.ADJUSTMENT, "T0201": lines.ADJUSTMENT,
    "T1110": lines.ADJUSTMENT, "T1111": lines.ADJUSTMENT,
}
_KIND_CODE = {lines.CHARGE: "T0006", lines.REFUND: "T1107", lines.CHARGEBACK: "T1201",
              lines.CHARGEBACK_REVERSAL: "T1202", lines.FEE: "T0106", lines.PAYOUT: "T0400",
              lines.ADJUSTMENT: "T0200", lines.REFUND_REVERSAL: "T1202"}
_FOOTERS = ("RF", "RC", "FF")
Totals = dict[str, list[int]]  # currency -> [gross CR, gross DR, fee CR, fee DR]


def _records(text: str, filename: str) -> list[tuple[int, list[str], str]]:
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            values = next(csv.reader([raw], strict=True))
        except csv.Error as exc:
            raise lines.FileRejectedError(filename, f"line {number}: unreadable CSV ({exc})"
                                          ) from None
        out.append((number, [v.strip() for v in values], raw))
    return out


def _add(totals: Totals, currency: str, direction: str, amount: int, fee_direction: str,
         fee: int) -> None:
    t = totals.setdefault(currency, [0, 0, 0, 0])
    t[0 if direction == "CR" else 1] += amount
    t[2 if fee_direction == "CR" else 3] += fee


def _footer_totals(values: list[str], filename: str, number: int) -> tuple[str, list[int]]:
    try:
        return values[1].upper(), [int(v) for v in values[2:6]]
    except (IndexError, ValueError):
        raise lines.FileRejectedError(filename, f"line {number}: unreadable {values[0]} "
                                      "footer (currency, gross CR, gross DR, fee CR, fee DR)"
                                      ) from None


def _count(values: list[str], filename: str, number: int) -> int:
    try:
        return int(values[1])
    except (IndexError, ValueError):
        raise lines.FileRejectedError(filename, f"line {number}: unreadable {values[0]} "
                                      "count") from None


def _check(kind: str, declared: Totals, found: Totals, filename: str) -> None:
    for currency in sorted(set(declared) | set(found)):
        want, got = declared.get(currency, [0] * 4), found.get(currency, [0] * 4)
        if want != got:
            labels = ("gross CR", "gross DR", "fee CR", "fee DR")
            diff = "; ".join(f"{label} {w} declared, {g} in the rows"
                             for label, w, g in zip(labels, want, got, strict=True) if w != g)
            raise lines.FileRejectedError(filename, f"{kind} footer for {currency} does not "
                                          f"match the rows: {diff}")


def parse_report(data: bytes, filename: str) -> lines.ParsedReport:
    """RH, FH, SH, CH, then SB rows; each section closes with SF (per currency) and SC, the
    report with RF and RC, the file with FF. The footers must agree with the rows, or the
    whole file is rejected; without them the file is incomplete and rejected too."""
    records = _records(lines.decode(data, filename), filename)
    if not records or records[0][1][0] != "RH":
        raise lines.FileRejectedError(filename, "does not start with an RH report header")
    present = {values[0] for _, values, _ in records}
    # a report without transactions has no per-currency footer (RF), only its counts
    needed = _FOOTERS if "SB" in present else ("RC", "FF")
    missing = [f for f in needed if f not in present]
    if missing:
        raise lines.FileRejectedError(filename, f"incomplete: no {'/'.join(missing)} "
                                      "footer (truncated, or still being written?)")
    header: list[str] | None = None
    section_day: date | None = None
    section_start = 0
    out = lines.ParsedReport()
    report_rows = file_rows = section_rows = 0
    report_totals: Totals = {}
    section_totals: Totals = {}
    declared_section: Totals = {}
    declared_report: Totals = {}
    for number, values, raw in records:
        record = values[0]
        if record == "CH":
            header = values[1:]
            absent = [c for c in REPORT_REQUIRED if c not in header]
            if absent:
                raise lines.FileRejectedError(filename, "CH column header lacks "
                                              + ", ".join(repr(c) for c in absent))
        elif record == "SH":
            try:
                section_day = lines.timestamp(values[1], "SH period start").date()
            except (IndexError, ValidationError) as exc:
                raise lines.FileRejectedError(filename, f"line {number}: unreadable SH section "
                                              f"header ({exc})") from None
            section_rows, section_totals, declared_section = 0, {}, {}
            section_start = len(out.lines)
        elif record == "SB":
            if header is None or section_day is None:
                raise lines.FileRejectedError(filename, f"line {number}: an SB row before the "
                                              "SH and CH headers")
            section_rows, report_rows, file_rows = (section_rows + 1, report_rows + 1,
                                                    file_rows + 1)
            if len(values) - 1 != len(header):
                out.errors.append(lines.RowError(
                    number, f"wrong number of columns: {len(values) - 1}, expected "
                    f"{len(header)}", raw))
                continue
            row = dict(zip(header, values[1:], strict=True))
            try:
                line, signed = _line(row, section_day)
            except ValidationError as exc:
                out.errors.append(lines.RowError(number, f"{exc.field}: {exc.reason}", raw))
                continue
            for totals in (section_totals, report_totals):
                _add(totals, *signed)
            out.lines.append(lines.with_line_no(line, number))
        elif record == "SF":
            currency, figures = _footer_totals(values, filename, number)
            declared_section[currency] = figures
        elif record == "SC":
            if _count(values, filename, number) != section_rows:
                raise lines.FileRejectedError(filename, f"SC footer counts "
                                              f"{values[1]} rows, the section has "
                                              f"{section_rows}")
            _check("SF", declared_section, section_totals, filename)
            out.lines[section_start:] = _paid_out(out.lines[section_start:])
        elif record == "RF":
            currency, figures = _footer_totals(values, filename, number)
            declared_report[currency] = figures
        elif record == "RC":
            if _count(values, filename, number) != report_rows:
                raise lines.FileRejectedError(filename, f"RC footer counts {values[1]} rows, "
                                              f"the report has {report_rows}")
            _check("RF", declared_report, report_totals, filename)
        elif record == "FF" and _count(values, filename, number) != file_rows:
            raise lines.FileRejectedError(filename, f"FF footer counts {values[1]} rows, "
                                          f"the file has {file_rows}")
    return out


def _paid_out(section: list[lines.SettlementLine]) -> list[lines.SettlementLine]:
    """A withdrawal (T0400) pays out its section's net in its currency: its lines carry it as
    their payout (a currency with several withdrawals in one section is left unassigned)."""
    withdrawals: dict[str, list[str]] = {}
    for line in section:
        if line.kind == lines.PAYOUT:
            withdrawals.setdefault(line.currency, []).append(line.provider_reference)
    return [replace(line, payout_reference=withdrawals[line.currency][0])
            if line.kind != lines.PAYOUT and len(withdrawals.get(line.currency, [])) == 1
            else line for line in section]


def _line(row: dict[str, str], day: date,
          ) -> tuple[lines.SettlementLine, tuple[str, str, int, str, int]]:
    code = row["Transaction Event Code"]
    kind = EVENT_CODES.get(code)
    if kind is None:
        raise ValidationError("Transaction Event Code", f"unknown T-code {code!r}")
    direction, fee_direction = row["Transaction Debit or Credit"], row["Fee Debit or Credit"]
    if direction not in ("CR", "DR"):
        raise ValidationError("Transaction Debit or Credit", f"{direction!r} is not CR or DR")
    if fee_direction not in ("CR", "DR", ""):
        raise ValidationError("Fee Debit or Credit", f"{fee_direction!r} is not CR or DR")
    currency = lines.currency_code(row["Gross Transaction Currency"],
                                   "Gross Transaction Currency")
    fee_currency = row.get("Fee Currency") or currency
    if fee_currency.upper() != currency:
        raise ValidationError("Fee Currency", f"{fee_currency!r} differs from the gross "
                                              f"currency {currency}")
    gross = lines.minor_units(row["Gross Transaction Amount"], "Gross Transaction Amount")
    fee = lines.minor_units(row["Fee Amount"] or "0", "Fee Amount")
    amount = gross if direction == "CR" else -gross
    fee_cost = -fee if fee_direction == "CR" else fee
    transaction = lines.required(row, "Transaction ID")
    line = lines.SettlementLine(
        NAME, f"{transaction}|{code}", row["PayPal Reference ID"] or transaction,
        row["Custom Field"] or None, kind, amount, fee_cost, currency, day, amount - fee_cost,
        currency, transaction if kind == lines.PAYOUT else None)
    return line, (currency, direction, gross, fee_direction or "DR", fee)


def _stl_time(moment: datetime) -> str:
    return moment.astimezone(_PACIFIC).strftime("%Y/%m/%d %H:%M:%S %z")


_PACIFIC = timezone(timedelta(hours=-8))


def render_report(day_lines: list[lines.SettlementLine], day: date,
                  payout_offsets: Mapping[str, int] | None = None) -> dict[str, bytes]:
    """The sandbox's STL for a day: one section, the day's withdrawal per currency last, and
    footers that agree with the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    start = datetime.combine(day, datetime.min.time(), _PACIFIC)
    writer.writerow(["RH", _stl_time(start + timedelta(days=1, hours=4)), "A", "PAYSIGNALSBX", 9])
    writer.writerow(["FH", 1])
    writer.writerow(["SH", _stl_time(start), _stl_time(start + timedelta(seconds=86_399)),
                     "PAYSIGNALSBX", ""])
    writer.writerow(["CH", *REPORT_COLUMNS])
    totals: Totals = {}
    nets: dict[str, int] = {}
    rows = 0

    def row(transaction: str, reference: str, code: str, amount: int, fee: int, currency: str,
            custom: str, n: int) -> None:
        nonlocal rows
        when = _stl_time(start - timedelta(days=1) + timedelta(seconds=n % 86_400))
        direction, fee_direction = ("CR" if amount > 0 else "DR"), ("CR" if fee < 0 else "DR")
        writer.writerow(["SB", transaction, "", reference, "TXN" if reference else "", code,
                         when, when, direction, abs(amount), currency, fee_direction, abs(fee),
                         currency, custom, "", "", "", "", "", "", ""])
        _add(totals, currency, direction, abs(amount), fee_direction, abs(fee))
        rows += 1

    direct_charges: set[str] = set()
    for n, line in enumerate(day_lines):
        transaction = line.line_id or hashlib.sha256(
            f"{line.provider_reference}|{line.kind}|{n}".encode()).hexdigest()[:17].upper()
        # a capture's own transaction is the payment's reference; a second charge of the same
        # payment (or a line given its own id) is a transaction of its own that refers to it
        direct = (line.kind == lines.CHARGE and not line.line_id
                  and line.provider_reference not in direct_charges)
        if direct:
            direct_charges.add(line.provider_reference)
        row(line.provider_reference if direct else transaction,
            "" if direct else line.provider_reference, _KIND_CODE[line.kind], line.amount_minor,
            line.fee_minor, line.currency, line.payment_reference or "", n)
        nets[line.currency] = nets.get(line.currency, 0) + line.amount_minor - line.fee_minor
    for currency, net in sorted(nets.items()):
        row(lines.digest("withdrawal", day, currency,
                         *(x.provider_reference for x in day_lines[:50]), length=17),
            "", "T0400", -(net + (payout_offsets or {}).get(currency, 0)), 0, currency, "",
            86_000)
    footer = [[currency, *figures] for currency, figures in sorted(totals.items())]
    for figures in footer:
        writer.writerow(["SF", *figures])
    writer.writerow(["SC", rows])
    for figures in footer:
        writer.writerow(["RF", *figures])
    writer.writerow(["RC", rows])
    writer.writerow(["FF", rows])
    return {f"STL-{day.strftime('%Y%m%d')}.01.009.CSV": ("\ufeff" + out.getvalue()).encode()}


SETTLEMENT_REPORT = lines.ReportFormat(
    NAME, "PayPal Settlement report (STL)", REPORT_NAME, parse_report, render_report,
    "\n".join([
        "Named `STL-yyyymmdd.NN.009.CSV`; UTF-8 (a byte-order mark is allowed); every record "
        "starts with its type: `RH` report header, `FH` file header, `SH` section header (its "
        "period start is the settlement day of the section's rows), `CH` column names, `SB` one "
        "transaction, then the footers: `SF` per-currency section totals and `SC` the section's "
        "row count, `RF`/`RC` the same for the report, `FF` the file's row count. Amounts are "
        "unsigned integers of minor units with their direction in `CR`/`DR` fields. Every "
        "footer is checked against the rows: a file whose footers disagree with its body, or "
        "that lacks `RF`, `RC` or `FF` (truncated, or still being written), is rejected whole "
        "with the reason. SB columns are found by the names in `CH`.", "",
        lines.columns_table([
            ("Transaction ID", "with the event code, the line's identity"),
            ("PayPal Reference ID", "the payment's reference (the capture or authorization a "
                                    "refund or capture acts on); else `Transaction ID`"),
            ("Transaction Event Code", "the T-code: the kind of line, below"),
            ("Transaction Debit or Credit", "`CR` money in, `DR` money out"),
            ("Gross Transaction Amount", "unsigned minor units"),
            ("Gross Transaction Currency", "ISO 4217"),
            ("Fee Debit or Credit", "`DR` a fee charged, `CR` a fee returned"),
            ("Fee Amount", "unsigned minor units"), ("Custom Field", "our payment id")]),
        "", lines.kinds_sentence("Transaction Event Code", EVENT_CODES)]),
    complete_by_footer=True)


# --- the registry's view -------------------------------------------------------------------

SANDBOX_METHODS = {
    "approve": "7a8b9c0d",
    "decline_insufficient_funds": "sandbox-insufficient-funds",
    "decline_do_not_honor": "sandbox-do-not-honor",
    "timeout_after_charge": "sandbox-timeout-after-charge",
    "timeout_before_charge": "sandbox-timeout-before-charge",
    "server_error": "sandbox-server-error",
    "unknown_forever": SILENT,
}


def sandbox_environment(base_url: str, webhook_credential: str) -> dict[str, str]:
    return {f"PAYSIGNAL_{NAME.upper()}_BASE_URL": base_url,
            CLIENT_ID_VARIABLE: "paysignal-sandbox-client",
            CLIENT_SECRET_VARIABLE: "paysignal-sandbox-secret",
            WEBHOOK_ID_VARIABLE: webhook_credential}


def connect(config: PayPalConfig, transport: httpx.BaseTransport | None = None,
            ) -> PayPalConnector:
    return PayPalConnector(config, transport)
