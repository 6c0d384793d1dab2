"""What a user of paysignal imports in their own tests (in the style of structlog.testing): a
virtual clock, a recording observer, a service wired to the provider sandbox in process (the
real connectors on an in-memory transport, no faults), and a valid payment request. The
service itself is built by the wiring package (paysignal.testing.make_service), as every
process builds it. Test rigs (PostgreSQL, browsers, the sandbox over loopback) live in the
repository's tests/support."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from engine.domain.clock import VirtualClock
from engine.domain.recovery import RecoveryPoint
from engine.observability.observer import EngineObserver
from engine.providers.sandbox.faults import FaultProfile, Faults
from engine.providers.sandbox.registry import DEFAULT_PROVIDER, payment_method

__all__ = [
    "ManualClock",
    "NO_FAULTS",
    "RecordingObserver",
    "VirtualClock",
    "counter_ids",
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


def payment_request(**overrides: object) -> dict[str, object]:
    """A valid create-payment body for Stripe in the sandbox (`provider=` another one, and its
    `payment_method(provider)`, for the others)."""
    provider = str(overrides.get("provider", DEFAULT_PROVIDER))
    request: dict[str, object] = {"amount": 2500, "currency": "USD", "reference": "order-1",
                                  "payment_method": payment_method(provider),
                                  "provider": provider}
    request.update(overrides)
    return request
