"""The provider sandbox over real loopback HTTP for tests, and connectors pointed at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx

from engine.domain.operations import Operation
from engine.providers.adyen import AdyenConfig, AdyenConnector
from engine.providers.base import ProviderRequest
from engine.providers.config import Endpoint
from engine.providers.paypal import PayPalConfig, PayPalConnector
from engine.providers.sandbox import Sandbox, SandboxServer
from engine.providers.sandbox.adyen import AdyenEmulator
from engine.providers.sandbox.faults import PROFILES, FaultProfile
from engine.providers.sandbox.paypal import PayPalEmulator
from engine.providers.sandbox.stripe import StripeEmulator
from engine.providers.stripe import StripeConfig, StripeConnector
from engine.providers.wire import Timeouts
from engine.testing import NO_FAULTS

WEBHOOK_SECRET = "whsec_" + "s3cr3t-for-the-contract-tests-0123456789"
ADYEN_HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
PAYPAL_WEBHOOK_ID = "WH-SANDBOX-0123456789"
FAST = Timeouts(connect_s=1.0, read_s=0.5, total_s=2.0)


@contextmanager
def sandbox_server(profile: FaultProfile = PROFILES["calm"], seed: int = 0,
                   ) -> Iterator[SandboxServer]:
    sandbox = Sandbox([StripeEmulator(WEBHOOK_SECRET), AdyenEmulator(ADYEN_HMAC_KEY),
                       PayPalEmulator(PAYPAL_WEBHOOK_ID)], seed=seed, profile=profile, sleep=None)
    with SandboxServer(sandbox) as server:
        yield server


def stripe_connector(base_url: str, timeouts: Timeouts = FAST,
                     secrets: tuple[str, ...] = (WEBHOOK_SECRET,),
                     transport: httpx.BaseTransport | None = None) -> StripeConnector:
    return StripeConnector(StripeConfig(Endpoint(base_url, timeouts), "sk_test_contract",
                                        secrets), transport)


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def adyen_connector(base_url: str, timeouts: Timeouts = FAST,
                    keys: tuple[str, ...] = (ADYEN_HMAC_KEY,),
                    transport: httpx.BaseTransport | None = None) -> AdyenConnector:
    return AdyenConnector(AdyenConfig(Endpoint(base_url, timeouts), "AQE_sandbox_key",
                                      "SandboxMerchantECOM", keys,
                                      "https://shop.test/checkout/returned"), transport)


def paypal_connector(base_url: str, timeouts: Timeouts = FAST, verification: str = "offline",
                     webhook_id: str | None = PAYPAL_WEBHOOK_ID,
                     transport: httpx.BaseTransport | None = None) -> PayPalConnector:
    return PayPalConnector(PayPalConfig(Endpoint(base_url, timeouts), "client-sandbox",
                                        "secret-sandbox", webhook_id, verification), transport)


@contextmanager
def loopback_sandbox(profile: FaultProfile = NO_FAULTS, seed: int = 0,
                     ) -> Iterator[tuple[SandboxServer, dict[str, str]]]:
    """The full sandbox (every provider) over loopback, and the environment variables that
    point connectors (in this process or in the ones a test starts) at it. No faults unless
    a profile is given: outcomes come from the test payment methods."""
    from engine.providers.registry import new_webhook_credentials
    from engine.providers.sandbox.registry import build_sandbox, sandbox_environment

    credentials = new_webhook_credentials()
    with SandboxServer(build_sandbox(credentials, seed=seed, profile=profile)) as server:
        yield server, sandbox_environment(server.url, credentials)


def then(req: ProviderRequest, op: Operation, request_id: str, amount: int,
         reference: str | None) -> ProviderRequest:
    """The next operation on the payment `req` authorized: no payment method, its reference."""
    return replace(req, operation=op, request_id=request_id, amount_minor=amount,
                   payment_method=None, provider_reference=reference)
