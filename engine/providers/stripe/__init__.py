"""Stripe (PaymentIntents): everything paysignal knows of it, and the only package that knows it.
`config` (host, credentials, price), `signatures` (`Stripe-Signature`), `connector` (the calls
and what their answers mean), `notices` (events) and `reports` (itemized reports)."""

from __future__ import annotations

import secrets

from engine.providers.spec import ProviderSpec
from engine.providers.stripe.config import API_KEY_VARIABLE, NAME, PRICING, StripeConfig
from engine.providers.stripe.connector import StripeConnector, connect
from engine.providers.stripe.notices import parse_event
from engine.providers.stripe.reports import SETTLEMENT_REPORT, parse_report
from engine.providers.stripe.signatures import sign, verify_signature

WEBHOOK_SECRET_VARIABLE = "PAYSIGNAL_WEBHOOK_SECRET_STRIPE"

SPEC = ProviderSpec(
    NAME, StripeConfig.from_environment, connect, WEBHOOK_SECRET_VARIABLE, True,
    (API_KEY_VARIABLE,), (API_KEY_VARIABLE,), PRICING, SETTLEMENT_REPORT,
    lambda: "whsec_" + secrets.token_hex(24), "a PaymentMethod id, pm_…", "pm_card_visa")

__all__ = ["API_KEY_VARIABLE", "NAME", "SETTLEMENT_REPORT", "SPEC", "StripeConfig",
           "StripeConnector", "connect", "parse_event", "parse_report", "sign",
           "verify_signature"]
