"""The one list of providers paysignal speaks: one line per provider package. What the rest of
the system may ask of each without knowing its vocabulary: its connector from the environment,
whether it is enabled, its price and its settlement report. (Its emulator is the sandbox's
business: engine.providers.sandbox.registry.)"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from engine.domain.settlement_lines import ReportFormat
from engine.exceptions import ValidationError
from engine.providers import adyen, paypal, stripe
from engine.providers.base import Gateway
from engine.providers.spec import ProviderSpec

PROVIDERS: dict[str, ProviderSpec] = {s.name: s for s in (
    stripe.SPEC,
    adyen.SPEC,
    paypal.SPEC,
)}

# Every variable that holds a provider credential (what logs redact wherever it appears).
SECRET_VARIABLES = frozenset(v for s in PROVIDERS.values() for v in s.secret_variables)


def provider_names() -> list[str]:
    return sorted(PROVIDERS)


def report_format_of(filename: str) -> ReportFormat | None:
    """The provider report a file's name says it is, if any."""
    for spec in PROVIDERS.values():
        if spec.settlement_report.file_name.match(filename):
            return spec.settlement_report
    return None


def spec(name: str) -> ProviderSpec:
    if name not in PROVIDERS:
        raise ValidationError("provider", f"unknown provider {name!r} (known: "
                              f"{', '.join(provider_names())})")
    return PROVIDERS[name]


def enabled_providers() -> list[str]:
    """The providers whose credentials are configured (the others are disabled)."""
    return [n for n in provider_names()
            if any(os.environ.get(v) or os.environ.get(f"{v}_FILE")
                   for v in PROVIDERS[n].credentials)]


def connectors_from_environment(transport: httpx.BaseTransport | None = None,
                                env: Mapping[str, str] | None = None) -> dict[str, Gateway]:
    """A connector for every provider with credentials; ConfigurationError names a half-set
    configuration."""
    out = {}
    for name in provider_names():
        config = PROVIDERS[name].config_from_environment(env)
        if config is not None:
            out[name] = PROVIDERS[name].connect(config, transport)
    return out


def new_webhook_credentials() -> dict[str, str]:
    """A fresh credential for each provider's notifications, in its own format (a demo's, a
    simulation's or a test's)."""
    return {n: PROVIDERS[n].new_webhook_credential() for n in provider_names()}
