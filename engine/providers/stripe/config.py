"""Stripe's configuration: its host, credentials, API version, the time it keeps
idempotency keys, and its published price."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from engine.providers.config import Endpoint, Pricing, env_secret, webhook_secrets

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
# a PaymentMethod, or one attached to a Customer as cus_…:pm_… (Stripe charges an attached
# PaymentMethod only with its `customer`)
PAYMENT_METHOD = re.compile(r"^(?:(cus_[A-Za-z0-9]{1,250}):)?(pm_[A-Za-z0-9_]{1,250})$")


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
