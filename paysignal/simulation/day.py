"""`paysignal simulate`: seeded client traffic through the real engine under a fault profile."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from engine.domain.clock import VirtualClock
from engine.domain.method_types import MethodType
from engine.domain.states import PaymentState
from engine.exceptions import (
    IdempotencyKeyConflictError,
    IdempotencyKeyInProgressError,
    PaysignalError,
)
from engine.observability.observer import EngineObserver
from engine.outbox.relay import DatabaseEventLogSink, OutboxRelay, pending_count
from engine.payments.resolution import RESOLVE_UNKNOWN_EVERY
from engine.payments.service import PaymentService
from engine.payments.webhooks import WebhookRejectedError, ingest
from engine.providers.base import (
    Acknowledgement,
    Gateway,
    Notification,
    ProviderOutcome,
    ProviderRequest,
)
from engine.providers.registry import connectors_from_environment, new_webhook_credentials, provider_names
from engine.providers.sandbox import DISPUTE_OUTCOMES, Sandbox, SandboxServer
from engine.providers.sandbox.faults import profile as load_profile
from engine.providers.sandbox.registry import (
    build_sandbox,
    in_process_connectors,
    payment_method,
    sandbox_environment,
)
from engine.read_models.ledger import total_imbalance_minor
from engine.storage.tables import payments as payments_table
from paysignal.bootstrap import Environment, build_service
from paysignal.settings import load_settings

CURRENCIES = (("USD", 500, 50_000), ("EUR", 500, 40_000), ("GBP", 500, 30_000),
              ("JPY", 300, 60_000), ("KWD", 1_000, 90_000))
MERCHANTS = ("merchant_acme", "merchant_globex", "merchant_initech")
# Fault profiles also shape the clients: how often a card gives a provider that never answers.
# Over loopback the sandbox's time is virtual but the wire is real: a stalled answer costs the
# connector's real read time-out, so the simulation keeps it short.
LOOPBACK_TIMEOUTS = {f"PAYSIGNAL_{p.upper()}_{part}_TIMEOUT_S": value
                     for p in provider_names()
                     for part, value in (("CONNECT", "1"), ("READ", "0.3"), ("TOTAL", "2"))}
SILENT_TOKEN_RATE = {"calm": 0.0, "default": 0.002, "provider-outage": 0.004, "chaos": 0.01}

# The simulation's retries, through the same validation as production's: its providers fail
# far more often than real ones, so it backs off longer (seconds of virtual time cost nothing)
# and keeps a smaller floor of retries, so the budget is tested on every faulty day.
SIMULATION_SETTINGS = load_settings({
    "PAYSIGNAL_RETRY_INITIAL_BACKOFF_S": "0.2", "PAYSIGNAL_RETRY_MAX_BACKOFF_S": "5",
    "PAYSIGNAL_RETRY_DEADLINE_S": "600", "PAYSIGNAL_RETRY_BUDGET_MIN_RETRIES": "5"})


class SimulationCounter(EngineObserver):
    def __init__(self) -> None:
        self.idempotency_outcomes: Counter[str] = Counter()
        self.retries = 0
        self.budget_exhausted = 0
        self.unknown_count = 0
        self.resolved_count = 0

    def idempotency(self, outcome: str) -> None:
        self.idempotency_outcomes[outcome] += 1

    def retry(self, provider: str, operation: str) -> None:
        self.retries += 1

    def retry_budget_exhausted(self, provider: str) -> None:
        self.budget_exhausted += 1

    def unknown_outcome(self, provider: str) -> None:
        self.unknown_count += 1

    def unknown_resolved(self, provider: str, result: str, unknown_for_s: float) -> None:
        self.resolved_count += 1


class _ConcurrentRetryGateway:
    """Wraps a gateway: while a flagged request is at the provider, the client retries it."""

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner
        self.name = inner.name
        self.during_next_call: Callable[[], None] | None = None

    def execute(self, request: ProviderRequest) -> ProviderOutcome:
        hook, self.during_next_call = self.during_next_call, None
        if hook:
            hook()
        return self.inner.execute(request)

    def lookup(self, request: ProviderRequest) -> ProviderOutcome:
        return self.inner.lookup(request)

    def abandon(self, request: ProviderRequest) -> ProviderOutcome:
        return self.inner.abandon(request)

    def fee_for(self, amount_minor: int, currency: str) -> int:
        return self.inner.fee_for(amount_minor, currency)

    def validate_payment_method(self, value: object) -> str:
        return self.inner.validate_payment_method(value)

    def check_amount(self, amount_minor: int, currency: str) -> None:
        self.inner.check_amount(amount_minor, currency)

    def method_type(self, payment_method: str) -> MethodType:
        return self.inner.method_type(payment_method)

    def verify_notifications(self, headers: dict[str, str], body: bytes, now: float,
                             tolerance_s: float) -> list[Notification]:
        return self.inner.verify_notifications(headers, body, now, tolerance_s)

    def acknowledgement(self) -> Acknowledgement:
        return self.inner.acknowledgement()


def deliver_webhooks(service: PaymentService, sandbox: Sandbox,
                     results: Counter[str] | None = None, every_pending: bool = False,
                     up_to: float | None = None) -> Counter[str]:
    """Deliver the sandbox's notifications due by now (or `up_to`; `every_pending`: all of
    them, however late) to the engine, as the providers would post them (signed at the moment
    of sending); counts each one's result."""
    results = Counter() if results is None else results
    now = sandbox.clock()
    limit = float("inf") if every_pending else max(now, up_to or now)
    for webhook in sandbox.due_webhooks(limit):
        try:
            for result in ingest(service, webhook.provider, webhook.headers(now), webhook.body,
                                 now=now).split(","):
                results[result] += 1
        except WebhookRejectedError as exc:
            results[exc.result] += 1
    return results


@dataclass
class SimulationResult:
    figures: dict[str, Any]
    payment_ids: list[str] = field(default_factory=list)
    # over loopback: the sandbox's server, still running (its books and its URL); the caller
    # stops it
    sandbox_server: SandboxServer | None = None
    sandbox: Sandbox | None = None  # its books settle the run's payments


def run_simulation(engine: Engine, *, payments: int = 1000, seed: int = 42,
                   profile: str = "default", duration: timedelta = timedelta(hours=6),
                   end: datetime | None = None,
                   progress: Callable[[int], None] | None = None,
                   run_tag: str | None = None, over_loopback: bool = False,
                   credentials: dict[str, str] | None = None,
                   sandbox_port: int = 0) -> SimulationResult:
    """Seeded client traffic through the engine and the real connectors to the sandbox: in
    process (an httpx transport; exact replays), or `over_loopback` (the sandbox served on a
    loopback port, time still virtual; the server is left running in the result)."""
    fault_profile = load_profile(profile)
    if payments < 1:
        from engine.exceptions import ValidationError
        raise ValidationError("payments", "must be at least 1")
    started = time.perf_counter()
    end = end or datetime.now(UTC).replace(microsecond=0)
    clock = VirtualClock(end - duration)
    rng = random.Random(f"clients|{seed}")
    # A fresh tag keeps ids and keys unique when runs share a database; the providers'
    # seeded decisions ignore it, so the same seed replays the same traffic. A caller that
    # replays whole runs on fresh databases (sim-test) passes its own, so ids replay too.
    run_tag = run_tag or uuid.uuid4().hex[:8]
    credentials = credentials or new_webhook_credentials()
    sandbox = build_sandbox(credentials, seed=seed, profile=fault_profile,
                            clock=lambda: clock.now().timestamp(), sleep=clock.advance,
                            rng_key=lambda key: key.replace(run_tag, "run"))
    sandbox.until_end = lambda: end - clock.now()
    server = SandboxServer(sandbox, port=sandbox_port).start() if over_loopback else None
    connectors = (connectors_from_environment(env={
        **sandbox_environment(server.url, credentials), **LOOPBACK_TIMEOUTS})
        if server else in_process_connectors(sandbox, credentials))
    gateways = {n: _ConcurrentRetryGateway(p) for n, p in connectors.items()}
    counter = SimulationCounter()
    id_counter = Counter[str]()

    def new_id(prefix: str) -> str:
        id_counter[prefix] += 1
        return f"{prefix}_{run_tag}_{id_counter[prefix]:08d}"

    service = build_service(
        engine, SIMULATION_SETTINGS, gateways=gateways, observer=counter, toggles=None,
        actor="simulator",
        environment=Environment(clock=clock.now, monotonic=clock.monotonic, sleep=clock.advance,
                                rng=random.Random(f"retry|{seed}"), new_id=new_id))
    client = _Clients(service, gateways, rng, counter, profile, run_tag)
    step = duration / payments
    deliveries: Counter[str] = Counter()

    def resolve_this_runs_unknowns() -> None:
        # Only this run's payments: its sandbox knows nothing of earlier runs.
        with engine.connect() as conn:
            pending = conn.execute(select(payments_table.c.id).where(
                payments_table.c.state == PaymentState.UNKNOWN.value,
                payments_table.c.id.like(f"pay_{run_tag}_%")).order_by(
                payments_table.c.id)).scalars().all()
        for payment_id in pending:
            service.resolve_unknown(payment_id)

    # The worker's resolver runs alongside the traffic, as in production: an unknown outcome
    # is asked about within RESOLVE_UNKNOWN_EVERY of the time-out, not at the end of the day.
    next_resolution = end - duration + RESOLVE_UNKNOWN_EVERY
    def deliver_until(until: datetime) -> None:
        # notifications arrive when they are due, between the clients' requests
        while (due := sandbox.next_webhook_due()) is not None and due <= until.timestamp():
            clock.at_least(datetime.fromtimestamp(due, UTC))
            deliver_webhooks(service, sandbox, deliveries, up_to=due)

    for i in range(payments):
        deliver_until(end - duration + step * i)
        clock.at_least(end - duration + step * i)
        if clock.now() >= next_resolution:
            if counter.unknown_count > counter.resolved_count:
                resolve_this_runs_unknowns()
            next_resolution = clock.now() + RESOLVE_UNKNOWN_EVERY
        client.one_payment(i)
        deliver_webhooks(service, sandbox, deliveries)
        if progress:
            progress(i + 1)
    _cardholders_dispute(engine, sandbox, run_tag, random.Random(f"disputes|{seed}"))
    # The worker's jobs, run to completion: resolve unknown outcomes, recover, publish events.
    for _ in range(3):
        clock.advance(RESOLVE_UNKNOWN_EVERY.total_seconds())
        deliver_webhooks(service, sandbox, deliveries)
        resolve_this_runs_unknowns()
    OutboxRelay(engine, DatabaseEventLogSink()).drain()

    ids = client.payment_ids
    with engine.connect() as conn:
        unresolved = conn.execute(select(func.count()).select_from(payments_table).where(
            payments_table.c.state == PaymentState.UNKNOWN.value,
            payments_table.c.id.like(f"pay_{run_tag}_%"))).scalar_one()
    figures = {
        "payments": payments,
        "profile": profile,
        "seed": seed,
        "provider_charges": len(sandbox.books.charges()),
        "duplicate_charges": sandbox.books.duplicate_charges(),
        "webhooks": dict(sorted(deliveries.items())),
        "idempotent_replays": counter.idempotency_outcomes["replayed"],
        "conflicts_rejected": counter.idempotency_outcomes["conflict"],
        "in_progress_rejected": counter.idempotency_outcomes["in_flight"],
        "unknown_outcomes": counter.unknown_count,
        "unknown_resolved": counter.resolved_count,
        "unresolved": int(unresolved),
        "retries": counter.retries,
        "retry_budget_exhausted": counter.budget_exhausted,
        "client_errors": client.errors,
        "final_states": dict(sorted(client.final_states().items())),
        "per_provider": _per_provider(engine, run_tag, sandbox),
        "ledger_imbalance_minor": total_imbalance_minor(engine),
        "outbox_pending": pending_count(engine),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    return SimulationResult(figures, ids, server, sandbox)


DISPUTE_RATE = 0.01  # of the run's captured payments; at least one when any was captured


def _cardholders_dispute(engine: Engine, sandbox: Sandbox, run_tag: str,
                         rng: random.Random) -> None:
    """Cardholders dispute some of the run's captured payments at the end of the day, each
    outcome in turn (so a run of three shows each): the providers notify (under the
    profile's faults) and settle them the next day."""
    with engine.connect() as conn:
        captured = conn.execute(select(payments_table.c.provider,
                                       payments_table.c.provider_reference).where(
            payments_table.c.state == PaymentState.CAPTURED.value,
            payments_table.c.provider_reference.is_not(None),
            payments_table.c.id.like(f"pay_{run_tag}_%")).order_by(payments_table.c.id)).all()
    if not captured:
        return
    chosen = rng.sample(captured, max(1, round(len(captured) * DISPUTE_RATE)))
    for n, (provider, reference) in enumerate(chosen):
        sandbox.dispute(provider, reference, None,
                        DISPUTE_OUTCOMES[n % len(DISPUTE_OUTCOMES)])


def _per_provider(engine: Engine, run_tag: str, sandbox: Sandbox) -> dict[str, dict[str, int]]:
    """Per provider: the run's payments, what the provider really charged (its own books),
    customers charged twice, and payments still unknown or awaiting confirmation."""
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(payments_table.c.provider, payments_table.c.state,
                                   func.count()).where(
            payments_table.c.id.like(f"pay_{run_tag}_%")).group_by(
            payments_table.c.provider, payments_table.c.state)).all()
    charges = sandbox.books.charges()
    for provider, state, n in rows:
        figures = out.setdefault(provider, {"payments": 0, "charges": 0,
                                            "duplicate_charges": 0, "unknown": 0,
                                            "awaiting_confirmation": 0})
        figures["payments"] += n
        if state in ("unknown", "awaiting_confirmation"):
            figures[state] += n
    for provider, figures in out.items():
        mine = [c for c in charges if c.provider == provider]
        figures["charges"] = len(mine)
        figures["duplicate_charges"] = len(mine) - len({c.payment_ref for c in mine})
    return dict(sorted(out.items()))


class _Clients:
    """Merchant integrations: double clicks, same-key retries, captures, voids, refunds."""

    def __init__(self, service: PaymentService, gateways: dict[str, _ConcurrentRetryGateway],
                 rng: random.Random, counter: SimulationCounter, profile: str, run_tag: str,
                 ) -> None:
        self.service, self.gateways, self.rng, self.counter = service, gateways, rng, counter
        self.silent_rate = SILENT_TOKEN_RATE.get(profile, 0.0)
        self.run_tag = run_tag
        self.payment_ids: list[str] = []
        self.errors: Counter[str] = Counter()

    def final_states(self) -> Counter[str]:
        states: Counter[str] = Counter()
        for pid in self.payment_ids:
            states[self.service.get_payment(None, pid).state.value] += 1
        return states

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (IdempotencyKeyConflictError, IdempotencyKeyInProgressError):
            return None  # counted by the engine's observer
        except PaysignalError as exc:
            self.errors[type(exc).__name__] += 1
            return None

    def _payment_method(self, provider: str) -> str:
        r = self.rng.random()
        if r < self.silent_rate:
            return payment_method(provider, "unknown_forever")
        if r < 0.03:
            return payment_method(provider, self.rng.choice(("decline_insufficient_funds",
                                                             "decline_do_not_honor")))
        return payment_method(provider)

    def one_payment(self, i: int) -> None:
        rng = self.rng
        merchant = rng.choice(MERCHANTS)
        currency, low, high = rng.choice(CURRENCIES)
        amount = int(low * (high / low) ** rng.random())
        key = f"{self.run_tag}-create-{i}"
        reference = f"order-{i}"
        provider = self.service.router.route(currency, reference)
        request = {"amount": amount, "currency": currency, "reference": reference,
                   "payment_method": self._payment_method(provider),
                   "capture": "manual" if rng.random() < 0.3 else "automatic"}
        create = lambda: self.service.create_payment(merchant, key, request)  # noqa: E731
        if rng.random() < 0.05:  # the client's timeout fires while the provider is working
            gateway = self.gateways[provider]
            gateway.during_next_call = lambda: self._call(create)
        response = self._call(create)
        if response is None:
            return
        payment_id = response.payment_id
        self.payment_ids.append(payment_id)
        if rng.random() < 0.10:  # double click
            self._call(create)
        if response.status_code == 202 and rng.random() < 0.7:  # retry after a timeout
            self._call(create)
        if rng.random() < 0.02:  # a buggy client reuses the key for another amount
            self._call(lambda: self.service.create_payment(
                merchant, key, {**request, "amount": amount + 1}))
        state = response.body["state"]
        if request["capture"] == "manual" and state in ("authorized", "unknown"):
            if rng.random() < 0.8:
                partial = rng.random() < 0.25
                capture_amount = max(1, amount * rng.randint(30, 95) // 100) if partial else None
                result = self._call(lambda: self.service.capture(
                    merchant, f"{key}-capture", payment_id, capture_amount))
            else:
                result = self._call(lambda: self.service.void(merchant, f"{key}-void", payment_id))
            state = result.body["state"] if result else state
        if state == "captured" and rng.random() < 0.15:
            result = self._call(lambda: self.service.refund(
                merchant, f"{key}-refund-1", payment_id, max(1, amount // 4)))
            if result and rng.random() < 0.5:
                self._call(lambda: self.service.refund(merchant, f"{key}-refund-2", payment_id))
