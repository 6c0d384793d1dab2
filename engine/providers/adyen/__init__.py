"""Adyen (Checkout API v72): everything paysignal knows of it, and the only package that knows
it. `config` (host, key, merchant account, price), `signatures` (the notification HMAC),
`connector` (the calls and what their answers mean), `notices` (standard notifications) and
`reports` (the Settlement details report)."""

from __future__ import annotations

import secrets

from engine.providers.adyen.config import API_KEY_VARIABLE, NAME, PRICING, AdyenConfig
from engine.providers.adyen.connector import AdyenConnector, connect
from engine.providers.adyen.notices import parse_item
from engine.providers.adyen.reports import SETTLEMENT_REPORT, parse_report
from engine.providers.adyen.signatures import hmac_signature
from engine.providers.spec import ProviderSpec

WEBHOOK_SECRET_VARIABLE = "PAYSIGNAL_WEBHOOK_SECRET_ADYEN"

SPEC = ProviderSpec(
    NAME, AdyenConfig.from_environment, connect, WEBHOOK_SECRET_VARIABLE, True,
    (API_KEY_VARIABLE,), (API_KEY_VARIABLE,), PRICING, SETTLEMENT_REPORT,
    lambda: secrets.token_hex(32).upper(),
    "a stored payment method, shopperReference:storedPaymentMethodId, or the four encrypted "
    "card fields joined by |", "shopper_1:8415718415718415")

__all__ = ["API_KEY_VARIABLE", "NAME", "SETTLEMENT_REPORT", "SPEC", "AdyenConfig",
           "AdyenConnector", "connect", "hmac_signature", "parse_item", "parse_report"]
