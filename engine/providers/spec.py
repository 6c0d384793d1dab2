"""What each provider package tells the rest of paysignal about itself (its `SPEC`), in neutral
words: how to configure and connect it, which variables enable it and verify its notices, its
published price and its settlement report. The registry lists the packages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from engine.domain.settlement_lines import ReportFormat
from engine.providers.base import Gateway
from engine.providers.config import Pricing


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    # the provider's configuration from the environment, or None when it has no credentials
    config_from_environment: Callable[[Mapping[str, str] | None], Any | None]
    connect_with: Callable[[Any, httpx.BaseTransport | None], Gateway]
    # the variable holding what verifies its notifications, and whether it is a secret
    webhook_variable: str
    webhook_is_secret: bool
    credentials: tuple[str, ...]  # any of these set enables the provider
    secret_variables: tuple[str, ...]  # credentials that are secrets (logs redact them)
    published_pricing: Pricing  # what the provider charges by its published price
    settlement_report: ReportFormat
    new_webhook_credential: Callable[[], str]  # a fresh one, in the provider's format
    payment_method_help: str  # what its payment-method tokens are (the API's description)
    payment_method_example: str

    def connect(self, config: Any, transport: httpx.BaseTransport | None = None) -> Gateway:
        return self.connect_with(config, transport)

    def pricing(self, env: Mapping[str, str] | None = None) -> Pricing:
        """The price configured for the provider (PAYSIGNAL_<P>_FEE_BPS, …), by default the
        published one: what reconciliation expects each settlement line's fee to be."""
        return Pricing.from_environment(self.name, self.published_pricing, env)
