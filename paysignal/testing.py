"""A payment service for tests, built by the one bootstrap as `serve api` builds its own: the
real connectors mounted on an in-process sandbox, a virtual clock, sequential ids, seeded
jitter and retries that never sleep (engine.testing has the clock, observer and requests)."""

from __future__ import annotations

import random

from sqlalchemy import Engine

from engine.observability.observer import EngineObserver
from engine.payments.service import PaymentService
from engine.payments.toggles import ToggleReader
from engine.providers.registry import new_webhook_credentials
from engine.providers.sandbox import Sandbox
from engine.providers.sandbox.faults import FaultProfile
from engine.providers.sandbox.registry import build_sandbox, in_process_connectors
from engine.testing import NO_FAULTS, ManualClock, counter_ids
from paysignal.bootstrap import Environment, build_service
from paysignal.settings import Settings, load_settings

__all__ = ["make_service", "virtual_environment"]


def virtual_environment(clock: ManualClock, seed: int = 0, *,
                     sequential_ids: bool = True) -> Environment:
    """The virtual clock, jitter seeded by `seed`, waits that never sleep, and sequential ids
    (random ones for a second service on the same database)."""
    return Environment(clock=clock.now, monotonic=clock.monotonic, sleep=lambda s: None,
                       rng=random.Random(f"retry|{seed}"),
                       new_id=counter_ids() if sequential_ids else None)


def make_service(engine: Engine, *, faults: FaultProfile = NO_FAULTS,
                 clock: ManualClock | None = None, lock_timeout_s: float = 30.0,
                 observer: EngineObserver | None = None, seed: int = 0,
                 toggles: ToggleReader | None = None, settings: Settings | None = None,
                 credentials: dict[str, str] | None = None,
                 ) -> tuple[PaymentService, Sandbox, ManualClock]:
    """Returns (service, the sandbox, the clock): the sandbox's books say what the providers
    really did; its due webhooks are signed with `credentials` (default: fresh ones, also given
    to the connectors). `settings` default to production's with `lock_timeout_s`."""
    clock = clock or ManualClock()
    credentials = credentials or new_webhook_credentials()
    settings = settings or load_settings(
        {"PAYSIGNAL_IDEMPOTENCY_LOCK_TIMEOUT_S": str(lock_timeout_s)})
    sandbox = build_sandbox(credentials, seed=seed, profile=faults,
                            clock=lambda: clock.now().timestamp(), sleep=None)
    service = build_service(
        engine, settings, gateways=in_process_connectors(sandbox, credentials),
        observer=observer, toggles=toggles, environment=virtual_environment(clock, seed))
    return service, sandbox, clock
