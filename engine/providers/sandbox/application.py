"""The sandbox application: routes `/<provider>/...` to that provider's emulator, with seeded
fates, a virtual or real clock, and the notifications due."""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta

from engine.providers.sandbox.faults import PROFILES, FaultProfile, Faults
from engine.providers.sandbox.protocol import (
    DISPUTE_OUTCOMES,
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


class Sandbox:
    """The application: routes `/<provider>/...` to that provider's emulator."""

    def __init__(self, emulators: list[Emulator], *, seed: int = 0,
                 profile: FaultProfile = PROFILES["calm"],
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = time.sleep,
                 rng_key: Callable[[str], str] = str) -> None:
        self.emulators = {e.provider: e for e in emulators}
        self.rng_key = rng_key  # what of a request's key seeds its fate (a run tag is not)
        self.seed, self.profile, self.clock, self.sleep = seed, profile, clock, sleep
        self.books = Books(lambda: self.clock())
        self.idempotency = IdempotencyStore()
        self.until_end: Callable[[], timedelta] | None = None  # simulated timelines set this
        self.fixed_latency_s: float | None = None  # every call takes exactly this long
        self.public_url = "http://sandbox.invalid"  # in process; SandboxServer sets its own
        self._serial = 0
        self._calls: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        self._webhooks: list[tuple[float, int, OutgoingWebhook]] = []  # heap by due time
        self._sending = threading.local()  # what one dispute's notifications became
        self.unnotified_disputes: set[tuple[str, str]] = set()
        """(provider, payment's provider reference) of the disputes some of whose
        notifications were lost or never sent: only the report may tell the engine of them."""
        self._contexts = {name: SandboxContext(self, name) for name in self.emulators}

    # --- decisions ------------------------------------------------------------------------

    def next_serial(self) -> int:
        with self._lock:
            self._serial += 1
            return self._serial

    def faults_for(self, provider: str) -> Faults:
        return self.profile.for_provider(provider, self.until_end() if self.until_end else None)

    def decide(self, provider: str, operation: str, key: str, *, booking: bool) -> Fate:
        faults = self.faults_for(provider)
        if not booking:  # a read names provider ids (unique per run): seeded by call order
            rng = random.Random(f"{self.seed}|{provider}|read|{self.next_serial()}")
            return Fate.SERVER_ERROR if rng.random() < faults.lookup_unavailable else Fate.NORMAL
        with self._lock:  # the n-th call with this key: a repeat meets its own fate
            n = self._calls[(provider, operation, key)] = (
                self._calls.get((provider, operation, key), 0) + 1)
        rng = random.Random(f"{self.seed}|{provider}|{operation}|{self.rng_key(key)}|{n}")
        r = rng.random()
        for fate, p in ((Fate.SERVER_ERROR, faults.server_error),
                        (Fate.TIMEOUT_BEFORE, faults.timeout_before_charge),
                        (Fate.RATE_LIMITED, faults.rate_limited),
                        (Fate.REFUSED, faults.connect_refused)):
            if r < p:
                return fate
            r -= p
        if operation == "authorize" and rng.random() < faults.decline:
            return Fate.DECLINE
        r = rng.random()
        if r < faults.timeout_after_charge:
            return Fate.TIMEOUT_AFTER
        if r < faults.timeout_after_charge + faults.reset_after_charge:
            return Fate.RESET_AFTER
        return Fate.NORMAL

    # --- requests -------------------------------------------------------------------------

    def complete_action(self, provider: str, provider_reference: str,
                        approved: bool = True) -> bool:
        """The customer finishes (`approved`) or fails the action a payment waits for at
        `provider`. False when no payment there waits for one."""
        complete = getattr(self.emulators[provider], "complete_action", None)
        if complete is None:
            raise ValueError(f"the {provider} sandbox does not emulate customer actions yet")
        return bool(complete(self._contexts[provider], provider_reference, approved))

    def announce(self, provider: str, key: str = "announcement") -> None:
        """Have `provider` send a signed notification of a type paysignal does not use."""
        self.emulators[provider].announce(self._contexts[provider], key)

    def dispute(self, provider: str, provider_reference: str, amount_minor: int | None = None,
                outcome: str = "lost") -> str | None:
        """Have a cardholder dispute a payment at `provider` (see Emulator.dispute)."""
        if outcome not in DISPUTE_OUTCOMES:
            raise ValueError(f"outcome must be one of {DISPUTE_OUTCOMES}")
        queued: list[bool] = []
        self._sending.queued = queued
        try:
            dispute = self.emulators[provider].dispute(self._contexts[provider],
                                                       provider_reference, amount_minor, outcome)
        finally:
            self._sending.queued = None
        if dispute is not None and not (queued and all(queued)):
            self.unnotified_disputes.add((provider, provider_reference))
        return dispute

    def _dispute_request(self, body: bytes) -> SandboxResponse:
        """POST /_sandbox/disputes {"provider", "provider_reference", "amount"?, "outcome"?}."""
        try:
            asked = json.loads(body)
            provider, reference = str(asked["provider"]), str(asked["provider_reference"])
            amount = asked.get("amount")
            outcome = str(asked.get("outcome", "lost"))
            if provider not in self.emulators or outcome not in DISPUTE_OUTCOMES or not (
                    amount is None or (isinstance(amount, int) and amount > 0)):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return SandboxResponse.json(400, {"error": "expected {provider, provider_reference, "
                                              "amount (minor units, optional), outcome: open, "
                                              "won or lost}"})
        dispute = self.dispute(provider, reference, amount, outcome)
        if dispute is None:
            return SandboxResponse.json(404, {"error": f"no captured {provider} payment "
                                              f"{reference!r}"})
        return SandboxResponse.json(201, {"dispute": dispute, "outcome": outcome})

    def handle(self, method: str, url_path: str, query: Mapping[str, list[str]],
               headers: Mapping[str, str], body: bytes) -> SandboxResponse:
        if url_path.rstrip("/") == "/_sandbox/books" and method == "GET":
            return SandboxResponse.json(200, {
                **self.books.as_json(),
                "unnotified_disputes": [list(d) for d in sorted(self.unnotified_disputes)]})
        if url_path.rstrip("/") == "/_sandbox/disputes" and method == "POST":
            return self._dispute_request(body)
        prefix, _, rest = url_path.lstrip("/").partition("/")
        emulator = self.emulators.get(prefix)
        if emulator is None:
            return SandboxResponse.json(404, {"error": f"no provider at /{prefix}; this "
                                              f"sandbox serves {sorted(self.emulators)}"})
        request = SandboxRequest(method.upper(), "/" + rest, query,
                                 {k.lower(): v for k, v in headers.items()}, body)
        return emulator.handle(request, self._contexts[prefix])

    # --- webhooks -------------------------------------------------------------------------

    def enqueue_webhook(self, webhook: OutgoingWebhook) -> None:
        """Queue a notification with the profile's delay, duplicates, reordering and loss."""
        faults = self.faults_for(webhook.provider)
        # seeded by the order of notifications, not their ids (which are unique per run)
        rng = random.Random(f"{self.seed}|webhook|{webhook.provider}|{self.next_serial()}")
        lost = rng.random() < faults.lost_notification
        queued: list[bool] | None = getattr(self._sending, "queued", None)
        if queued is not None:
            queued.append(not lost)
        if lost:
            return
        delay = webhook.after_s + faults.notification_delay_s * rng.random() * 2
        if rng.random() < faults.out_of_order_notification:
            delay += faults.notification_delay_s + 1.0  # overtaken by later ones
        copies = 2 if rng.random() < faults.duplicate_notification else 1
        with self._lock:
            for i in range(copies):
                self._serial += 1
                heapq.heappush(self._webhooks, (self.clock() + delay + i, self._serial, webhook))

    def due_webhooks(self, now: float | None = None) -> list[OutgoingWebhook]:
        """Take the notifications due by `now` (default: the clock), oldest first."""
        now = self.clock() if now is None else now
        out = []
        with self._lock:
            while self._webhooks and self._webhooks[0][0] <= now:
                out.append(heapq.heappop(self._webhooks)[2])
        return out

    def next_webhook_due(self) -> float | None:
        """When the next queued notification is due (None: none queued)."""
        with self._lock:
            return self._webhooks[0][0] if self._webhooks else None



def lost_on_the_wire(fate: Fate, answer: SandboxResponse) -> SandboxResponse:
    """The booked answer, or (the trap) the same answer lost on the wire: the connection
    stalls past the client's read time-out, or is reset mid-answer."""
    wire = {Fate.TIMEOUT_AFTER: Wire.STALL, Fate.RESET_AFTER: Wire.RESET}.get(fate)
    return answer if wire is None else replace(answer, wire=wire)
