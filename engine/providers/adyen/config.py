"""Adyen's configuration: its host (test or live), API key, merchant account, API version,
the time it keeps idempotency keys, its refusal reasons and its published price."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from engine.exceptions import ConfigurationError
from engine.providers.config import Endpoint, Pricing, env_secret, webhook_secrets

NAME = "adyen"
TEST_URL = "https://checkout-test.adyen.com"  # live: https://{prefix}-checkout-live.adyenpayments.com/checkout
API_VERSION = "v72"
API_KEY_VARIABLE = "PAYSIGNAL_ADYEN_API_KEY"
MERCHANT_ACCOUNT_VARIABLE = "PAYSIGNAL_ADYEN_MERCHANT_ACCOUNT"
# /payments requires returnUrl: where a shopper comes back after a redirect (3-D Secure)
RETURN_URL_VARIABLE = "PAYSIGNAL_ADYEN_RETURN_URL"
# Adyen documents a minimum of 31 days for keys; secondary sources say 7. The safe reading.
KEY_RETENTION = timedelta(days=7)
# processing fee + a card scheme's markup, and the chargeback fee; configurable
PRICING = Pricing(60, 13, dispute_fee_minor=750)
STORED = re.compile(r"^[A-Za-z0-9_.-]{1,64}:[A-Za-z0-9]{4,64}$")  # shopperReference:storedId
ENCRYPTED_FIELDS = 4  # card number | expiry month | expiry year | security code

REFUSALS = {  # refusalReason -> (refusalReasonCode, normalized reason)
    "Refused": ("2", "do_not_honor"), "Expired Card": ("6", "expired_card"),
    "Not enough balance": ("12", "insufficient_funds"), "FRAUD": ("20", "suspected_fraud"),
}


@dataclass(frozen=True, slots=True)
class AdyenConfig:
    endpoint: Endpoint
    api_key: str
    merchant_account: str
    hmac_keys: tuple[str, ...]  # hex, the current one first during a rotation
    return_url: str
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
        return_url = env_secret(RETURN_URL_VARIABLE, env) or ""
        if not re.fullmatch(r"https?://[^\s]{1,7990}", return_url):
            raise ConfigurationError(f"{RETURN_URL_VARIABLE}={return_url!r}: must be the http(s) "
                                     "URL a shopper returns to after a redirect (Adyen's "
                                     "/payments requires returnUrl)")
        return cls(Endpoint.from_environment(NAME, TEST_URL, env), key, account,
                   tuple(webhook_secrets(NAME, env)), return_url,
                   Pricing.from_environment(NAME, PRICING, env))

    @property
    def is_live(self) -> bool:
        return "-live" in self.endpoint.base_url
