"""The one list of providers paysignal speaks, and what the rest of the system may ask of each
without knowing its vocabulary: its connector from the environment, its emulator for the
sandbox, the variables that point it at a sandbox, and its test payment methods by neutral
behaviour."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx

from engine.exceptions import ValidationError
from engine.providers import adyen, paypal, stripe
from engine.providers.base import Gateway
from engine.providers.config import Pricing
from engine.providers.faults import PROFILES, FaultProfile
from engine.providers.sandbox import Emulator, Sandbox, SandboxTransport
from engine.settlement.lines import ReportFormat

# Every variable that holds a provider credential (what logs redact wherever it appears).
SECRET_VARIABLES = frozenset({stripe.API_KEY_VARIABLE, adyen.API_KEY_VARIABLE,
                              paypal.CLIENT_SECRET_VARIABLE})

BEHAVIOURS = ("approve", "decline_insufficient_funds", "decline_do_not_honor",
              "timeout_after_charge", "timeout_before_charge", "server_error",
              "unknown_forever")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    module: ModuleType
    config_type: Any
    # the variable holding what verifies its notifications, and whether it is a secret
    webhook_variable: str
    webhook_is_secret: bool
    credentials: tuple[str, ...]  # any of these set enables the provider
    emulator: Callable[[str | None], Emulator]
    new_webhook_credential: Callable[[], str]

    def config_from_environment(self, env: Mapping[str, str] | None = None) -> Any | None:
        return self.config_type.from_environment(env)

    def connect(self, config: Any, transport: httpx.BaseTransport | None = None) -> Gateway:
        connector: Gateway = self.module.connect(config, transport)
        return connector

    def sandbox_environment(self, base_url: str, webhook_credential: str) -> dict[str, str]:
        env: dict[str, str] = self.module.sandbox_environment(base_url, webhook_credential)
        return env

    @property
    def sandbox_methods(self) -> Mapping[str, str]:
        methods: Mapping[str, str] = self.module.SANDBOX_METHODS
        return methods

    @property
    def published_pricing(self) -> Pricing:
        """What the provider charges by its published price (what its sandbox charges)."""
        pricing: Pricing = self.module.PRICING
        return pricing

    def pricing(self, env: Mapping[str, str] | None = None) -> Pricing:
        """The price configured for the provider (PAYSIGNAL_<P>_FEE_BPS, …), by default the
        published one: what reconciliation expects each settlement line's fee to be."""
        return Pricing.from_environment(self.name, self.published_pricing, env)

    @property
    def settlement_report(self) -> ReportFormat:
        report: ReportFormat = self.module.SETTLEMENT_REPORT
        return report

    @property
    def test_payment_methods(self) -> Mapping[str, str]:
        methods: Mapping[str, str] = self.module.TEST_PAYMENT_METHODS
        return methods


PROVIDERS: dict[str, ProviderSpec] = {p.name: p for p in (
    ProviderSpec("stripe", stripe, stripe.StripeConfig, "PAYSIGNAL_WEBHOOK_SECRET_STRIPE", True,
                 (stripe.API_KEY_VARIABLE,), stripe.StripeEmulator,
                 lambda: "whsec_" + secrets.token_hex(24)),
    ProviderSpec("adyen", adyen, adyen.AdyenConfig, "PAYSIGNAL_WEBHOOK_SECRET_ADYEN", True,
                 (adyen.API_KEY_VARIABLE,), adyen.AdyenEmulator,
                 lambda: secrets.token_hex(32).upper()),
    ProviderSpec("paypal", paypal, paypal.PayPalConfig, paypal.WEBHOOK_ID_VARIABLE, False,
                 (paypal.CLIENT_ID_VARIABLE, paypal.CLIENT_SECRET_VARIABLE),
                 paypal.PayPalEmulator, lambda: "WH-" + secrets.token_hex(10).upper()),
)}


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


def payment_method(provider: str, behaviour: str = "approve") -> str:
    """The provider's sandbox payment method that behaves so (tests, simulations, the demo)."""
    if behaviour not in BEHAVIOURS:
        raise ValidationError("behaviour", f"unknown behaviour {behaviour!r}")
    return spec(provider).sandbox_methods[behaviour]


def new_webhook_credentials() -> dict[str, str]:
    return {n: PROVIDERS[n].new_webhook_credential() for n in provider_names()}


def build_sandbox(credentials: Mapping[str, str], *, seed: int = 0,
                  profile: FaultProfile = PROFILES["calm"],
                  clock: Callable[[], float] | None = None,
                  sleep: Callable[[float], None] | None = None,
                  rng_key: Callable[[str], str] = str) -> Sandbox:
    """The sandbox serving every provider, signing notifications with `credentials`."""
    emulators = [PROVIDERS[n].emulator(credentials.get(n)) for n in provider_names()]
    kwargs: dict[str, Any] = {"seed": seed, "profile": profile, "sleep": sleep,
                              "rng_key": rng_key}
    if clock is not None:
        kwargs["clock"] = clock
    return Sandbox(emulators, **kwargs)


def sandbox_environment(base_url: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """Every variable that points the providers at a sandbox at `base_url` (no code change:
    the same variables point them at the real hosts)."""
    env: dict[str, str] = {}
    for name in provider_names():
        env.update(PROVIDERS[name].sandbox_environment(f"{base_url}/{name}", credentials[name]))
    return env


def in_process_connectors(sandbox: Sandbox, credentials: Mapping[str, str],
                          ) -> dict[str, Gateway]:
    """Connectors mounted on the sandbox in this process (the deterministic simulator)."""
    return connectors_from_environment(SandboxTransport(sandbox),
                                       sandbox_environment(sandbox.public_url, credentials))


def test_payment_methods_markdown() -> str:
    """Each provider's sandbox test payment methods, for the docs."""
    out: list[str] = []
    for name in provider_names():
        out += [f"**{name}**", "", "| payment_method | behaviour in the sandbox |", "|---|---|"]
        out += [f"| `{value}` | {meaning} |"
                for value, meaning in PROVIDERS[name].test_payment_methods.items()]
        out.append("")
    return "\n".join(out).rstrip()
