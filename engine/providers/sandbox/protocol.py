"""What the sandbox and the providers' emulators speak: requests and answers, fates, the
sandbox's books, outgoing notifications, the provider-side idempotency store and the context an
emulator works in."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from engine.providers.sandbox.faults import Faults

if TYPE_CHECKING:  # the application imports this module
    from engine.providers.sandbox.application import Sandbox

log = logging.getLogger("paysignal.sandbox")


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    method: str
    path: str  # below the provider's prefix: "/v1/payment_intents"
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


class Wire(StrEnum):
    """What the connection does."""

    ANSWER = "answer"
    STALL = "stall"  # the request was taken; no answer comes (the client's read time-out)
    RESET = "reset"  # the connection is closed mid-answer
    REFUSE = "refuse"  # in process only: the connection is refused before anything is sent


@dataclass(frozen=True, slots=True)
class SandboxResponse:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    wire: Wire = Wire.ANSWER
    # answered before the provider did anything (a fault's 5xx or 429, a stall before booking,
    # a refused connection): no idempotent result is kept, so a repeat runs afresh
    unbooked: bool = False

    @classmethod
    def json(cls, status: int, value: Any, headers: Mapping[str, str] | None = None,
             ) -> SandboxResponse:
        return cls(status, json.dumps(value).encode(),
                   {"content-type": "application/json", **(headers or {})})


class Fate(StrEnum):
    """What the fault profile makes of one call (decided before the emulator acts)."""

    NORMAL = "normal"
    DECLINE = "decline"
    SERVER_ERROR = "server_error"  # refused with a 5xx before anything is booked
    RATE_LIMITED = "rate_limited"  # 429 with Retry-After; nothing booked
    TIMEOUT_BEFORE = "timeout_before"  # the connection stalls; nothing booked
    TIMEOUT_AFTER = "timeout_after"  # booked, then the connection stalls: the trap
    RESET_AFTER = "reset_after"  # booked, then the connection is reset
    REFUSED = "refused"  # in process: connection refused; nothing sent


DECLINE_REASONS = ("insufficient_funds", "do_not_honor", "expired_card", "suspected_fraud")


@dataclass(frozen=True, slots=True)
class BookEntry:
    """One thing the provider actually did (or refused)."""

    provider: str
    operation: str  # authorize | capture | void | refund
    payment_ref: str  # the paysignal payment id the merchant sent as metadata
    provider_reference: str
    amount_minor: int  # ISO 4217 minor units
    currency: str
    status: str  # succeeded | declined | submitted
    captured: bool = False  # an authorization that captured at once (automatic capture)
    at: float = 0.0  # the sandbox's clock when it happened (stamped by Books.record)
    # the amount as the provider counted it, in its own minor units (it departs from ISO 4217
    # for a few currencies); None where the request carried no amount
    provider_amount: int | None = None


class Books:
    """The sandbox's own ledger of what it did. Thread-safe; in memory."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._entries: list[BookEntry] = []
        self._lock = threading.Lock()
        self._clock = clock

    def record(self, entry: BookEntry) -> None:
        stamped = entry if entry.at else replace(entry, at=self._clock())
        with self._lock:
            self._entries.append(stamped)

    def entries(self) -> list[BookEntry]:
        with self._lock:
            return list(self._entries)

    def charges(self) -> list[BookEntry]:
        return [e for e in self.entries()
                if e.operation == "authorize" and e.status == "succeeded"]

    def duplicate_charges(self) -> int:
        """Authorizations beyond the first per payment: money taken twice from a customer."""
        seen: dict[tuple[str, str], int] = {}
        for c in self.charges():
            seen[(c.provider, c.payment_ref)] = seen.get((c.provider, c.payment_ref), 0) + 1
        return sum(n - 1 for n in seen.values())

    def as_json(self) -> dict[str, Any]:
        entries = self.entries()
        return {"entries": [asdict(e) for e in entries],
                "charges": sum(e.operation == "authorize" and e.status == "succeeded"
                               for e in entries),
                "duplicate_charges": self.duplicate_charges()}


@dataclass(frozen=True, slots=True)
class OutgoingWebhook:
    """A notification to deliver. Providers sign each delivery when they send it, so its
    headers are made at sending time (`headers_at(unix seconds)`)."""

    provider: str
    body: bytes
    event_id: str
    headers_at: Callable[[int], Mapping[str, str]]
    after_s: float = 0.0  # sent this long after it is queued (a state the provider reaches later)

    def headers(self, at: float) -> dict[str, str]:
        return dict(self.headers_at(int(at)))


class Emulator(Protocol):
    """One provider's side of the sandbox, in that provider's vocabulary (its own module)."""

    provider: str

    def handle(self, request: SandboxRequest, ctx: SandboxContext) -> SandboxResponse: ...

    def dispute(self, ctx: SandboxContext, provider_reference: str, amount_minor: int | None,
                outcome: str) -> str | None:
        """A cardholder disputes a captured payment: the provider's notifications for it (and
        its decision, `won` or `lost`; `open`: none yet) are sent, and its books record the
        money withdrawn and returned. Returns the dispute's id (None: no such payment)."""
        ...

    def announce(self, ctx: SandboxContext, key: str) -> None:
        """Send a signed notification of a type no payment integration acts on (a customer
        created, a report available): a receiver must acknowledge it like any other."""
        ...


DISPUTE_OUTCOMES = ("open", "won", "lost")


@dataclass(slots=True)
class _Idempotent:
    fingerprint: str
    response: SandboxResponse | None  # None while the first request is being processed


class IdempotencyStore:
    """Per-provider idempotency records; each emulator applies its provider's rules to them."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str, str], _Idempotent] = {}
        self._lock = threading.Lock()

    def claim(self, scope: tuple[str, str, str], fingerprint: str) -> _Idempotent | None:
        """None: the key is new and now held by the caller. Otherwise the existing record."""
        with self._lock:
            existing = self._records.get(scope)
            if existing is None:
                self._records[scope] = _Idempotent(fingerprint, None)
            return existing

    def finish(self, scope: tuple[str, str, str], response: SandboxResponse) -> None:
        with self._lock:
            self._records[scope].response = response

    def release(self, scope: tuple[str, str, str]) -> None:
        """Forget a claim whose result is not saved (validation failures, 429, server errors
        before execution, per the provider's rules)."""
        with self._lock:
            self._records.pop(scope, None)


class SandboxContext:
    """What an emulator may use: the books, the seeded fault decisions, the clock, the
    idempotency store, webhooks, and ids that replay with the seed."""

    def __init__(self, sandbox: Sandbox, provider: str) -> None:
        self._sandbox = sandbox
        self.provider = provider
        self.books = sandbox.books
        self.idempotency = sandbox.idempotency

    def now(self) -> float:
        return self._sandbox.clock()

    def faults(self) -> Faults:
        return self._sandbox.faults_for(self.provider)

    def rng(self, *parts: object) -> random.Random:
        seeded = [self._sandbox.rng_key(p) if isinstance(p, str) else p for p in parts]
        return random.Random("|".join(map(str, (self._sandbox.seed, self.provider, *seeded))))

    def new_id(self, prefix: str, *parts: object) -> str:
        """An id that is the same for the same seed and parts (and differs between calls)."""
        n = self._sandbox.next_serial()
        digest = hashlib.sha256("|".join(map(str, (self._sandbox.seed, self.provider, *parts,
                                                   n))).encode()).hexdigest()
        return f"{prefix}{digest[:24]}"

    def fate(self, operation: str, key: str, *, booking: bool) -> Fate:
        """The fault profile's decision for this call. `booking`: the call would move money
        (so it may be declined or time out after booking); lookups only fail or stall."""
        return self._sandbox.decide(self.provider, operation, key, booking=booking)

    def fated(self, operation: str, key: str, forced: Fate | None = None, *,
              server_error: SandboxResponse, rate_limited: SandboxResponse,
              ) -> Fate | SandboxResponse:
        """The call's fate (forced by a sandbox test value, or drawn from the profile), after
        the provider's latency; the faults that answer before anything is booked come back as
        the response to send, in the provider's words (`server_error`, `rate_limited`)."""
        fate = forced or self.fate(operation, key, booking=True)
        self.pause(key)
        before = {Fate.SERVER_ERROR: server_error, Fate.RATE_LIMITED: rate_limited,
                  Fate.TIMEOUT_BEFORE: SandboxResponse(wire=Wire.STALL),
                  Fate.REFUSED: SandboxResponse(wire=Wire.REFUSE)}.get(fate)
        return fate if before is None else replace(before, unbooked=True)

    def pause(self, key: str) -> None:
        """Spend the provider's latency for this call (real or virtual time), so concurrent
        requests for the same key meet while the first is still being processed."""
        fixed = self._sandbox.fixed_latency_s
        if fixed is not None:
            seconds = fixed
        else:
            faults = self.faults()
            rng = self.rng("latency", key, self._sandbox.next_serial())
            seconds = min(faults.latency_p99_s * 2, rng.expovariate(1 / faults.latency_mean_s))
        if self._sandbox.sleep is not None:
            self._sandbox.sleep(seconds)

    def public_url(self) -> str:
        """Where the sandbox is reached (a provider names its own URLs in what it sends)."""
        return self._sandbox.public_url

    def notify(self, webhook: OutgoingWebhook) -> None:
        self._sandbox.enqueue_webhook(webhook)
