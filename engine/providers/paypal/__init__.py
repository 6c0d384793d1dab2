"""PayPal (Orders v2 and Payments v2): everything paysignal knows of it, and the only package
that knows it. `config` (host, client credentials, webhook id, price, payment sources),
`protocol` (amounts, the signed message, certificate hosts), `connector` (the calls and what
their answers mean), `notices` (webhook events) and `reports` (STL)."""

from __future__ import annotations

import secrets

from engine.providers.paypal.config import (
    CLIENT_ID_VARIABLE,
    CLIENT_SECRET_VARIABLE,
    NAME,
    PRICING,
    WEBHOOK_ID_VARIABLE,
    PayPalConfig,
)
from engine.providers.paypal.connector import PayPalConnector, connect
from engine.providers.paypal.notices import parse_event
from engine.providers.paypal.protocol import cert_url_allowed
from engine.providers.paypal.reports import SETTLEMENT_REPORT, parse_report
from engine.providers.spec import ProviderSpec

SPEC = ProviderSpec(
    NAME, PayPalConfig.from_environment, connect, WEBHOOK_ID_VARIABLE, False,
    (CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE), (CLIENT_SECRET_VARIABLE,), PRICING,
    SETTLEMENT_REPORT, lambda: "WH-" + secrets.token_hex(10).upper(),
    "a vault token: a card's, or a wallet's as paypal:<token> or venmo:<token>", "7a8b9c0d")

__all__ = ["CLIENT_SECRET_VARIABLE", "NAME", "SETTLEMENT_REPORT", "SPEC", "PayPalConfig",
           "PayPalConnector", "cert_url_allowed", "connect", "parse_event", "parse_report"]
