"""PayPal's configuration: its host (sandbox or live), client credentials, webhook id and how
notices are verified, how long it keeps request ids, its processor decline codes, its price, and
the payment sources a vaulted token is used as."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine.domain.method_types import MethodType
from engine.exceptions import ConfigurationError
from engine.providers.config import Endpoint, Pricing, env_secret

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


def _source_body(payment_method: str | None, customer_present: bool = True) -> dict[str, Any]:
    kind, token = _payment_source(payment_method or "")
    source: dict[str, Any] = {"vault_id": token}
    if kind == "card" and not customer_present:  # a merchant-initiated charge on a stored card
        source["stored_credential"] = {"payment_initiator": "MERCHANT",
                                       "payment_type": "UNSCHEDULED", "usage": "SUBSEQUENT"}
    return {kind: source}
CERT_PATH = "/v1/notifications/certs/"

DECLINES = {  # processor response code -> normalized reason
    "5120": "insufficient_funds", "0500": "do_not_honor", "5400": "expired_card",
    "9500": "suspected_fraud"}


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
