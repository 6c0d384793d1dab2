"""The sandbox's side of each provider: its emulator, its test payment methods by neutral
behaviour, and the variables that point its connector at a sandbox. One line per provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.domain.settlement_lines import Renderer
from engine.exceptions import ValidationError
from engine.providers.base import Gateway
from engine.providers.registry import connectors_from_environment, provider_names
from engine.providers.sandbox import (
    adyen,
    adyen_reports,
    paypal,
    paypal_reports,
    paypal_tokens,
    stripe,
    stripe_cards,
    stripe_reports,
)
from engine.providers.sandbox.application import Sandbox
from engine.providers.sandbox.faults import PROFILES, FaultProfile
from engine.providers.sandbox.protocol import Emulator
from engine.providers.sandbox.serving import SandboxTransport

DEFAULT_PROVIDER = "stripe"  # the one a test's payment request pays with unless told
BEHAVIOURS = ("approve", "decline_insufficient_funds", "decline_do_not_honor",
              "timeout_after_charge", "timeout_before_charge", "server_error",
              "unknown_forever")


@dataclass(frozen=True, slots=True)
class Sandboxed:
    name: str
    emulator: Callable[[str | None], Emulator]
    methods: Mapping[str, str]  # neutral behaviour -> the provider's test payment method
    test_payment_methods: Mapping[str, str]  # test payment method -> what it does
    environment: Callable[[str, str], dict[str, str]]  # (base URL, credential) -> variables
    render_report: Renderer  # writes its settlement report for a day from the sandbox's books


SANDBOXED: dict[str, Sandboxed] = {s.name: s for s in (
    Sandboxed("stripe", stripe.StripeEmulator, stripe_cards.SANDBOX_METHODS,
              stripe_cards.TEST_PAYMENT_METHODS, stripe.sandbox_environment,
              stripe_reports.render_report),
    Sandboxed("adyen", adyen.AdyenEmulator, adyen.SANDBOX_METHODS, adyen.TEST_PAYMENT_METHODS,
              adyen.sandbox_environment, adyen_reports.render_report),
    Sandboxed("paypal", paypal.PayPalEmulator, paypal_tokens.SANDBOX_METHODS,
              paypal_tokens.TEST_PAYMENT_METHODS, paypal_tokens.sandbox_environment,
              paypal_reports.render_report),
)}


def payment_method(provider: str, behaviour: str = "approve") -> str:
    """The provider's sandbox payment method that behaves so (tests, simulations, the demo)."""
    if behaviour not in BEHAVIOURS:
        raise ValidationError("behaviour", f"unknown behaviour {behaviour!r}")
    if provider not in SANDBOXED:
        raise ValidationError("provider", f"unknown provider {provider!r} (known: "
                              f"{', '.join(sorted(SANDBOXED))})")
    return SANDBOXED[provider].methods[behaviour]


def build_sandbox(credentials: Mapping[str, str], *, seed: int = 0,
                  profile: FaultProfile = PROFILES["calm"],
                  clock: Callable[[], float] | None = None,
                  sleep: Callable[[float], None] | None = None,
                  rng_key: Callable[[str], str] = str) -> Sandbox:
    """The sandbox serving every provider, signing notifications with `credentials`."""
    emulators = [SANDBOXED[n].emulator(credentials.get(n)) for n in provider_names()]
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
        env.update(SANDBOXED[name].environment(f"{base_url}/{name}", credentials[name]))
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
                for value, meaning in SANDBOXED[name].test_payment_methods.items()]
        out.append("")
    return "\n".join(out).rstrip()
