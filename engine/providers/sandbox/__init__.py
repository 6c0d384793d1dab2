"""The provider sandbox: one application that speaks each provider's protocol under its own path
prefix (`/stripe`, `/adyen`, `/paypal`), with its own books, seeded faults and signed webhooks,
judged by the providers' published specifications.

It is served two ways: over real loopback HTTP by `SandboxServer` (the demo, integration tests,
benchmarks), where a read time-out is a connection that stalls and a reset a connection closed
mid-answer; and in process by `SandboxTransport`, an httpx transport the simulator mounts under a
virtual clock, where the same faults are raised as the exceptions httpx raises for them.

Each provider's emulator is a module of this package (`stripe`, `adyen`, `paypal`), listed in
`engine.providers.sandbox.registry`. Nothing in the payment path imports this package: the
connectors ship without their test doubles. The sandbox's books — what it actually charged,
captured and refunded — are its own, never the engine's database: tests count duplicate charges
from them independently."""

from __future__ import annotations

from engine.providers.sandbox.application import Sandbox, lost_on_the_wire
from engine.providers.sandbox.faults import PROFILES, FaultProfile, Faults, Incident, profile
from engine.providers.sandbox.protocol import (
    DECLINE_REASONS,
    DISPUTE_OUTCOMES,
    BookEntry,
    Books,
    Emulator,
    Fate,
    IdempotencyStore,
    OutgoingWebhook,
    SandboxContext,
    SandboxRequest,
    SandboxResponse,
    Wire,
)
from engine.providers.sandbox.serving import (
    STALL_LIMIT_S,
    SandboxServer,
    SandboxTransport,
    deliver_webhook,
)

__all__ = [
    "DECLINE_REASONS",
    "DISPUTE_OUTCOMES",
    "PROFILES",
    "STALL_LIMIT_S",
    "BookEntry",
    "Books",
    "Emulator",
    "Fate",
    "FaultProfile",
    "Faults",
    "IdempotencyStore",
    "Incident",
    "OutgoingWebhook",
    "Sandbox",
    "SandboxContext",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "SandboxTransport",
    "Wire",
    "deliver_webhook",
    "lost_on_the_wire",
    "profile",
]
