"""What a user of paysignal imports in their own tests (in the style of structlog.testing): a
virtual clock, a recording observer, a service wired to the provider sandbox in process (the
real connectors on an in-memory transport, no faults), and a valid payment request. Test rigs
(PostgreSQL, browsers, the sandbox over loopback) live in the repository's tests/support."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import Engine

from engine.domain.clock import VirtualClock
from engine.domain.recovery import RecoveryPoint
from engine.domain.retry import RetryPolicy
from engine.observability.observer import EngineObserver
from engine.payments.service import EngineSettings, PaymentService
from engine.payments.toggles import ToggleReader
from engine.providers.faults import FaultProfile, Faults
from engine.providers.registry import (
    build_sandbox,
    in_process_connectors,
    new_webhook_credentials,
    payment_method,
)
from engine.providers.sandbox import Sandbox

__all__ = [
    "ManualClock",
    "NO_FAULTS",
    "RecordingObserver",
    "VirtualClock",
    "counter_ids",
    "make_service",
    "payment_method",
    "payment_request",
]

ManualClock = VirtualClock  # tests start on 2026-01-01 UTC unless told otherwise


class RecordingObserver(EngineObserver):
    def __init__(self) -> None:
        self.idempotency_outcomes: Counter[str] = Counter()
        self.points: list[RecoveryPoint] = []
        self.transitions: list[tuple[str, str]] = []

    def idempotency(self, outcome: str) -> None:
        self.idempotency_outcomes[outcome] += 1

    def recovery_point(self, name: RecoveryPoint) -> None:
        self.points.append(name)

    def transition(self, from_state: str, to_state: str, provider: str) -> None:
        self.transitions.append((from_state, to_state))


NO_FAULTS = FaultProfile("none", "no faults at all: outcomes come from the test payment methods "
                         "only", Faults())


def counter_ids() -> Callable[[str], str]:
    counter: Counter[str] = Counter()

    def new_id(prefix: str) -> str:
        counter[prefix] += 1
        return f"{prefix}_{counter[prefix]:06d}"

    return new_id


def make_service(engine: Engine, *, faults: FaultProfile = NO_FAULTS,
                 clock: ManualClock | None = None, lock_timeout_s: float = 30.0,
                 observer: EngineObserver | None = None, seed: int = 0,
                 toggles: ToggleReader | None = None, retry_policy: RetryPolicy | None = None,
                 credentials: dict[str, str] | None = None,
                 ) -> tuple[PaymentService, Sandbox, ManualClock]:
    """A service on the real connectors mounted on an in-process sandbox, with a virtual clock,
    sequential ids and retries that never sleep. Returns (service, the sandbox, the clock): the
    sandbox's books say what the providers really did; its due webhooks are signed with
    `credentials` (default: fresh ones, also given to the connectors)."""
    clock = clock or ManualClock()
    credentials = credentials or new_webhook_credentials()
    sandbox = build_sandbox(credentials, seed=seed, profile=faults,
                            clock=lambda: clock.now().timestamp(), sleep=None)
    service = PaymentService(
        engine, in_process_connectors(sandbox, credentials), clock=clock.now,
        retry_policy=retry_policy or RetryPolicy(sleep=lambda s: None, clock=clock.monotonic),
        observer=observer, settings=EngineSettings(lock_timeout_s=lock_timeout_s),
        new_id=counter_ids(), toggles=toggles)
    return service, sandbox, clock


def payment_request(**overrides: object) -> dict[str, object]:
    """A valid create-payment body for Stripe in the sandbox (`provider=` another one, and its
    `payment_method(provider)`, for the others)."""
    provider = str(overrides.get("provider", "stripe"))
    request: dict[str, object] = {"amount": 2500, "currency": "USD", "reference": "order-1",
                                  "payment_method": payment_method(provider),
                                  "provider": provider}
    request.update(overrides)
    return request
