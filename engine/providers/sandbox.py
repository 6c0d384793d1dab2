"""The provider sandbox: one application that speaks each provider's protocol under its own path
prefix (`/stripe`, `/adyen`, `/paypal`), with its own books, seeded faults and signed webhooks.

The application is plain Python (`Sandbox.handle`). It is served two ways:
- over real loopback HTTP by `SandboxServer` (the demo, integration tests, benchmarks), where a
  read time-out is a connection that stalls and a reset is a connection closed mid-answer;
- in process by `SandboxTransport`, an httpx transport the simulator mounts under a virtual
  clock, where the same faults are raised as the exceptions httpx raises for them.

Each provider's module supplies its emulator (`Emulator`), so the sandbox itself knows no
provider's vocabulary. Its books — what it actually charged, captured and refunded — are its
own, never the engine's database: tests count duplicate charges from them independently.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx

from engine.providers.faults import PROFILES, FaultProfile, Faults

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
    amount_minor: int
    currency: str
    status: str  # succeeded | declined | submitted
    captured: bool = False  # an authorization that captured at once (automatic capture)
    at: float = 0.0  # the sandbox's clock when it happened (stamped by Books.record)


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
        delay = faults.notification_delay_s * rng.random() * 2
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


# --- served in process ----------------------------------------------------------------------

class SandboxTransport(httpx.BaseTransport):
    """Mounts the sandbox inside an httpx client: the simulator's deterministic wire (give the
    Sandbox a virtual clock's sleep); faults are raised as httpx raises them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.sandbox.handle(
            request.method, request.url.path, parse_qs(request.url.query.decode()),
            {k.decode().lower(): v.decode() for k, v in request.headers.raw}, body)
        if response.wire is Wire.REFUSE:
            raise httpx.ConnectError("connection refused (sandbox fault)", request=request)
        if response.wire is Wire.STALL:
            raise httpx.ReadTimeout("no answer (sandbox fault)", request=request)
        if response.wire is Wire.RESET:
            raise httpx.RemoteProtocolError("connection reset mid-answer (sandbox fault)",
                                            request=request)
        return httpx.Response(response.status, headers=dict(response.headers),
                              content=response.body, request=request)


# --- served over HTTP -----------------------------------------------------------------------

STALL_LIMIT_S = 60.0  # a stalled connection is held at most this long, then closed


class SandboxServer:
    """The sandbox over real HTTP/1.1 on a loopback port, one thread per connection, with a
    deliverer that posts due webhooks to `webhook_url(provider)`."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0,
                 webhook_url: Callable[[str], str | None] | None = None) -> None:
        self.sandbox = sandbox
        self._webhook_url = webhook_url
        self._stop = threading.Event()
        handler = _handler_for(sandbox, self._stop)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def base_url(self, provider: str) -> str:
        return f"{self.url}/{provider}"

    def start(self) -> SandboxServer:
        self.sandbox.public_url = self.url
        serve = threading.Thread(target=self._httpd.serve_forever, name="sandbox-http",
                                 daemon=True)
        serve.start()
        self._threads.append(serve)
        if self._webhook_url is not None:
            self.deliver_to(self._webhook_url)
        return self

    def deliver_to(self, webhook_url: Callable[[str], str | None]) -> None:
        """From now on, post due notifications to `webhook_url(provider)` (a thread)."""
        self._webhook_url = webhook_url
        deliver = threading.Thread(target=self._deliver_forever, name="sandbox-webhooks",
                                   daemon=True)
        deliver.start()
        self._threads.append(deliver)

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _deliver_forever(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.wait(0.05):
                for webhook in self.sandbox.due_webhooks():
                    url = self._webhook_url(webhook.provider) if self._webhook_url else None
                    if url:
                        deliver_webhook(client, url, webhook)


def deliver_webhook(client: httpx.Client, url: str, webhook: OutgoingWebhook) -> int | None:
    """POST one notification; its HTTP status, or None when the receiver was unreachable (a
    real provider retries later; the sandbox counts it as lost)."""
    try:
        return client.post(url, content=webhook.body,
                           headers=webhook.headers(time.time())).status_code
    except httpx.HTTPError as exc:
        log.warning("webhook to %s not delivered: %s", url, type(exc).__name__)
        return None


def _handler_for(sandbox: Sandbox, stop: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "paysignal-sandbox"
        # headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer on a kept-alive connection
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the books and the engine's own signals tell what happened

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            response = sandbox.handle(self.command, parts.path, parse_qs(parts.query),
                                      {k.lower(): v for k, v in self.headers.items()}, body)
            if response.wire is Wire.STALL:
                self._stall()
                return
            if response.wire in (Wire.RESET, Wire.REFUSE):
                self._reset()
                return
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def _stall(self) -> None:
            # Hold the connection without answering until the client gives up (its read
            # time-out) or the limit; then drop it.
            self.connection.settimeout(0.1)
            deadline = time.monotonic() + STALL_LIMIT_S
            while time.monotonic() < deadline and not stop.is_set():
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        break  # the client closed its end
                except TimeoutError:
                    continue
                except OSError:
                    break
            self._reset()

        def _reset(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # RST rather than FIN: the client sees a reset
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))

        do_GET = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815

    return Handler
