"""The payment service: Idempotency-Key semantics with recovery points around provider calls.

Each phase (key record, payment row, audit rows, ledger entries, outbox events) commits in one
transaction. Provider calls happen between phases, never inside a transaction. A request that
finds its key abandoned (lock older than the timeout) first asks the provider what became of
the earlier attempt, so an expired lock never re-runs a charge that already happened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert

from engine.storage.repository import KeyRecord, KeyUpdate, PaymentRepository
from engine.storage.tables import duplicate_risk_events, retry_refusals
from engine.domain.fingerprint import (
    canonical_json,
    differing_fields,
    request_fingerprint,
)
from engine.domain.model import CaptureMode, Operation, Payment
from engine.domain.money import Money, validate_amount
from engine.domain.retry import RetryPolicy
from engine.domain.states import IN_FLIGHT_STATES, PaymentState
from engine.domain.text import is_identifier, validate_text
from engine.exceptions import (
    IdempotencyKeyConflictError,
    IdempotencyKeyInProgressError,
    PaymentNotFoundError,
    ProviderNotFoundError,
    UnknownOutcomeUnresolvedError,
    ValidationError,
)
from engine.observability.observer import EngineObserver
from engine.providers.base import Gateway, OutcomeKind, ProviderOutcome, ProviderRequest
from engine.providers.simulated import validate_payment_method
from engine.payments.toggles import Mode, ToggleReader
from engine.observability.tracing import current_ids, tracer

log = logging.getLogger("paysignal.engine")
MAX_KEY_LENGTH = 255
FINISHED = "finished"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    lock_timeout_s: float = 60.0
    key_ttl_s: float = 24 * 3600.0
    actor: str = "engine"


@dataclass(frozen=True, slots=True)
class ServiceResponse:
    status_code: int
    body_text: str  # canonical JSON, stored and replayed byte for byte
    replayed: bool = False
    payment_id: str | None = None

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.body_text))

    def body_state(self) -> PaymentState:
        return PaymentState(self.body["state"])


def validate_idempotency_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError("Idempotency-Key", "is required on every POST")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError("Idempotency-Key", f"must be at most {MAX_KEY_LENGTH} characters")
    return validate_text(key, "Idempotency-Key", MAX_KEY_LENGTH)


class Router:
    """Picks a provider for a payment that names none: a stable hash of the merchant reference."""

    def __init__(self, providers: list[str]) -> None:
        self.providers = sorted(providers)

    def route(self, currency: str, reference: str) -> str:
        digest = int(hashlib.sha256(f"{currency}|{reference}".encode()).hexdigest()[:8], 16)
        return self.providers[digest % len(self.providers)]


@dataclass
class _Phase:
    key_id: str
    token: str
    payment: Payment
    resume: bool
    trace_id: str | None
    payment_method: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)


class PaymentService:
    def __init__(self, engine: Engine, gateways: dict[str, Gateway], *,
                 clock: Callable[[], datetime] = utc_now,
                 retry_policy: RetryPolicy | None = None,
                 observer: EngineObserver | None = None,
                 settings: EngineSettings | None = None,
                 new_id: Callable[[str], str] | None = None,
                 toggles: ToggleReader | None = None) -> None:
        self.engine = engine
        self.toggles = toggles
        self.new_id = new_id or (lambda prefix: f"{prefix}_{uuid.uuid4().hex}")
        self.repo = PaymentRepository(engine)
        self.gateways = gateways
        self.clock = clock
        self.retry_policy = retry_policy or RetryPolicy()
        self.observer = observer or EngineObserver()
        self.settings = settings or EngineSettings()
        self.router = Router(list(gateways))

    # --- public commands -----------------------------------------------------------------

    def create_payment(self, merchant_id: str, idempotency_key: str, request: dict[str, Any],
                       trace_id: str | None = None) -> ServiceResponse:
        params = self._validate_create(request)
        trace_id = trace_id or current_ids()[0]

        payment_id = self.new_id("pay")

        def phase1(conn: Connection, key_id: str, now: datetime) -> Payment:
            payment = Payment.create(
                merchant_id=merchant_id,
                money=Money(params["amount"], params["currency"]),
                provider=params["provider"], reference=params["reference"],
                capture_mode=CaptureMode(params["capture"]), at=now,
                payment_id=payment_id)
            payment.begin(Operation.AUTHORIZE, None, request_id=f"{key_id}:authorize",
                          actor=self.settings.actor, at=now, trace_id=trace_id)
            return payment

        return self._idempotent(merchant_id, idempotency_key, "create_payment", params, phase1,
                                trace_id, payment_id, Operation.AUTHORIZE,
                                (params["provider"], params["payment_method"]))

    def capture(self, merchant_id: str, idempotency_key: str, payment_id: str,
                amount: int | None = None, trace_id: str | None = None) -> ServiceResponse:
        return self._operate(Operation.CAPTURE, merchant_id, idempotency_key, payment_id, amount,
                             trace_id)

    def void(self, merchant_id: str, idempotency_key: str, payment_id: str,
             trace_id: str | None = None) -> ServiceResponse:
        return self._operate(Operation.VOID, merchant_id, idempotency_key, payment_id, None,
                             trace_id)

    def refund(self, merchant_id: str, idempotency_key: str, payment_id: str,
               amount: int | None = None, trace_id: str | None = None) -> ServiceResponse:
        return self._operate(Operation.REFUND, merchant_id, idempotency_key, payment_id, amount,
                             trace_id)

    def get_payment(self, merchant_id: str | None, payment_id: str) -> Payment:
        if not is_identifier(payment_id):
            raise PaymentNotFoundError(payment_id)
        with self.engine.connect() as conn:
            payment = self.repo.get(conn, payment_id, merchant_id)
        if payment is None:
            raise PaymentNotFoundError(payment_id)
        return payment

    def resolve_unknown(self, payment_id: str, actor: str = "unknown-resolver") -> PaymentState:
        """Ask the provider what became of the pending operation and settle the payment."""
        payment = self.get_payment(None, payment_id)
        if payment.state is not PaymentState.UNKNOWN or payment.pending_operation is None:
            return payment.state
        gateway = self.gateways[payment.provider]
        outcome = gateway.lookup(payment.pending_operation, payment.pending_request_id or "",
                                 payment.id)
        if outcome.kind is OutcomeKind.UNKNOWN:
            return payment.state
        now = self.clock()
        before, unknown_since = payment.state, payment.updated_at
        with self.engine.begin() as conn:
            self.apply_outcome(payment, outcome, actor, now, None)
            self.repo.flush(conn, payment)
        self.observer.transition(before.value, payment.state.value, payment.provider)
        self.observer.unknown_resolved(payment.provider, payment.state.value,
                                       max(0.0, (now - unknown_since).total_seconds()))
        if (payment.state is PaymentState.AUTHORIZED
                and payment.capture_mode is CaptureMode.AUTOMATIC):
            # The merchant asked for automatic capture: finish it, idempotently, under a key
            # derived from the payment so that concurrent resolvers capture once.
            return self.capture(payment.merchant_id, f"auto-capture:{payment.id}",
                                payment.id).body_state()
        return payment.state

    def resolve_unknown_outcomes(self, limit: int = 1000) -> dict[str, int]:
        with self.engine.connect() as conn:
            pending = self.repo.in_state(conn, PaymentState.UNKNOWN, limit)
        resolved = sum(self.resolve_unknown(p.id) is not PaymentState.UNKNOWN for p in pending)
        return {"resolved": resolved, "still_unknown": len(pending) - resolved}

    def recover_abandoned(self, limit: int = 100) -> int:
        """Finish requests whose worker died mid-way (their key lock is older than the timeout)."""
        stale_before = self.clock() - timedelta(seconds=self.settings.lock_timeout_s)
        with self.engine.connect() as conn:
            candidates = self.repo.abandoned_keys(conn, stale_before, limit)
        recovered = 0
        for record in candidates:
            token, now = uuid.uuid4().hex, self.clock()
            with self.engine.begin() as conn:
                fresh = self.repo.claim_key(conn, self._key_values(record.merchant_id, record.key,
                                            record.operation, record.request_params,
                                            record.fingerprint, now, record.id), now)
                if fresh is None or fresh.finished_at or not self._is_stale(fresh, now):
                    continue
                self.repo.take_over_key(conn, fresh, token, now)
                payment = self.repo.get(conn, fresh.payment_id or "")
            if payment is None:
                continue
            self.observer.idempotency("recovered")
            self._drive(_Phase(record.id, token, payment, True, None,
                               record.request_params.get("payment_method")),
                        self._status_for(record.operation))
            recovered += 1
        return recovered

    def expire_keys(self) -> int:
        with self.engine.begin() as conn:
            return self.repo.delete_expired_keys(conn, self.clock())

    # --- the idempotency protocol --------------------------------------------------------

    def _operate(self, operation: Operation, merchant_id: str, idempotency_key: str,
                 payment_id: str, amount: int | None, trace_id: str | None) -> ServiceResponse:
        if amount is not None:
            validate_amount(amount)
        trace_id = trace_id or current_ids()[0]
        params = {"payment_id": payment_id, "amount": amount}
        existing = self.get_payment(merchant_id, payment_id)
        if existing.state is PaymentState.UNKNOWN:
            self.resolve_unknown(payment_id)

        def phase1(conn: Connection, key_id: str, now: datetime) -> Payment:
            payment = self.repo.get(conn, payment_id, merchant_id)
            if payment is None:
                raise PaymentNotFoundError(payment_id)
            if payment.state is PaymentState.UNKNOWN:
                raise UnknownOutcomeUnresolvedError(payment_id)
            payment.begin(operation, amount, request_id=f"{key_id}:{operation.value}",
                          actor=self.settings.actor, at=now, trace_id=trace_id)
            return payment

        return self._idempotent(merchant_id, idempotency_key, operation.value, params, phase1,
                                trace_id, payment_id, operation, (existing.provider, None))

    def _key_values(self, merchant_id: str, key: str, operation: str, params: dict[str, Any],
                    fingerprint: str, now: datetime, key_id: str) -> dict[str, Any]:
        return {"id": key_id, "merchant_id": merchant_id, "key": key, "operation": operation,
                "fingerprint": fingerprint, "request_params": canonical_json(params),
                "recovery_point": "started", "locked_at": now, "lock_token": None,
                "created_at": now,
                "expires_at": now + timedelta(seconds=self.settings.key_ttl_s)}

    def _is_stale(self, record: KeyRecord, now: datetime) -> bool:
        return (record.locked_at is None
                or record.locked_at <= now - timedelta(seconds=self.settings.lock_timeout_s))

    def _idempotent(self, merchant_id: str, key: str, operation: str, params: dict[str, Any],
                    phase1: Callable[[Connection, str, datetime], Payment],  # builds, never writes
                    trace_id: str | None, payment_id: str, first: Operation,
                    route: tuple[str, str | None]) -> ServiceResponse:
        """Claim the key and run phase 1 in one transaction. The key row is inserted already
        at phase 1's recovery point: if phase 1 fails, the whole transaction rolls back."""
        validate_idempotency_key(key)
        fingerprint = request_fingerprint(operation, params)
        now = self.clock()
        key = self._key_under_rollout(merchant_id, key, fingerprint, route)
        token = uuid.uuid4().hex
        key_id = self.new_id("idk")
        values = self._key_values(merchant_id, key, operation, params, fingerprint, now, key_id)
        values.update(lock_token=token, payment_id=payment_id,
                      recovery_point=f"{first.value}_requested")
        try:
            with tracer.start_as_current_span("idempotency.check") as span, \
                    self.engine.begin() as conn:
                span.set_attribute("paysignal.operation", operation)
                if first is Operation.AUTHORIZE:  # a new payment: built before the key is claimed
                    payment = phase1(conn, key_id, now)
                    transitions = list(payment.new_transitions)
                    existing = self.repo.claim_key_for_new_payment(conn, values, now, payment)
                else:
                    existing = self.repo.claim_key(conn, values, now)
                    if existing is None:
                        payment = phase1(conn, key_id, now)
                        transitions = list(payment.new_transitions)
                        self.repo.flush(conn, payment)
                if existing is None:
                    resume = False
                else:
                    span.set_attribute("paysignal.idempotency.outcome", "existing")
                    replay = self._check_existing(existing, operation, params, fingerprint, now)
                    if replay is not None:
                        span.set_attribute("paysignal.idempotency.outcome", "replayed")
                        conn.execute(insert(duplicate_risk_events).values(
                            merchant_id=merchant_id, provider=self._provider_of(conn, existing),
                            outcome="replayed", payment_id=existing.payment_id, at=now))
                        return replay
                    span.set_attribute("paysignal.idempotency.outcome", "recovered")
                    self.repo.take_over_key(conn, existing, token, now)
                    key_id, resume = existing.id, True
                    payment = self.repo.get(conn, existing.payment_id or "")  # type: ignore[assignment]
        except (IdempotencyKeyConflictError, IdempotencyKeyInProgressError) as exc:
            outcome = ("conflict" if isinstance(exc, IdempotencyKeyConflictError)
                       else "in_flight")
            self._record_duplicate_risk(merchant_id, route[0], outcome, None)
            raise
        self.observer.idempotency("recovered" if resume else "new")
        if not resume:
            for t in transitions:
                self.observer.transition(t.from_state.value, t.to_state.value, payment.provider)
        self.observer.recovery_point(f"{payment.pending_operation}_requested")
        return self._drive(_Phase(key_id, token, payment, resume, trace_id,
                                  params.get("payment_method")),
                           self._status_for(operation))

    def _key_under_rollout(self, merchant_id: str, key: str, fingerprint: str,
                           route: tuple[str, str | None]) -> str:
        """The key to store under: the client's, unless enforcement is rolled back for this
        provider and payment method (then a fresh one, so the request runs as new)."""
        mode = self.toggles.mode_for(*route) if self.toggles else Mode.ENFORCE
        if mode is Mode.ENFORCE:
            return key
        fresh = f"{key[:200]}#{self.new_id('unenforced')}"
        if mode is Mode.OFF:
            return fresh
        with self.engine.connect() as conn:
            seen = self.repo.find_key(conn, merchant_id, key)
        if seen is None:
            return key
        would_be = "replay" if seen.fingerprint == fingerprint else "conflict"
        self.observer.shadow_duplicate(route[0], would_be)
        self._record_duplicate_risk(merchant_id, route[0], f"shadow_{would_be}",
                                    seen.payment_id)
        log.warning("shadow mode: would-be duplicate let through", extra={
            "merchant_id": merchant_id, "provider": route[0], "outcome": would_be})
        return fresh

    def _record_duplicate_risk(self, merchant_id: str, provider: str, outcome: str,
                               payment_id: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(duplicate_risk_events).values(
                merchant_id=merchant_id, provider=provider, outcome=outcome,
                payment_id=payment_id, at=self.clock()))

    def _provider_of(self, conn: Connection, record: KeyRecord) -> str:
        payment = self.repo.get(conn, record.payment_id) if record.payment_id else None
        return payment.provider if payment is not None else "unknown"

    def _check_existing(self, record: KeyRecord, operation: str, params: dict[str, Any],
                        fingerprint: str, now: datetime) -> ServiceResponse | None:
        if record.fingerprint != fingerprint or record.operation != operation:
            self.observer.idempotency("conflict")
            raise IdempotencyKeyConflictError(
                record.key, differing_fields(record.operation, record.request_params,
                                             operation, params))
        if record.finished_at is not None:
            self.observer.idempotency("replayed")
            return ServiceResponse(record.response_code or 200, record.response_body or "{}",
                                   replayed=True, payment_id=record.payment_id)
        if not self._is_stale(record, now):
            self.observer.idempotency("in_flight")
            assert record.locked_at is not None
            remaining = (record.locked_at + timedelta(seconds=self.settings.lock_timeout_s)
                         - now).total_seconds()
            raise IdempotencyKeyInProgressError(record.key, max(1.0, min(remaining, 5.0)))
        return None

    @staticmethod
    def _status_for(operation: str) -> int:
        return 201 if operation == "create_payment" else 200

    # --- phases around provider calls ----------------------------------------------------

    def _drive(self, phase: _Phase, success_status: int) -> ServiceResponse:
        payment = phase.payment
        while payment.state in IN_FLIGHT_STATES:
            op = payment.pending_operation
            assert op is not None
            gateway = self.gateways[payment.provider]
            outcome: ProviderOutcome | None = None
            if phase.resume:
                outcome = gateway.lookup(op, payment.pending_request_id or "", payment.id)
                if outcome.kind is OutcomeKind.NOT_FOUND:
                    outcome = None  # the earlier attempt never reached the provider: call it now
                phase.resume = False
            if outcome is None:
                outcome = self._call_provider(gateway, payment, phase)
            self.observer.recovery_point(f"{op.value}_provider_returned")
            now = self.clock()
            before = payment.state
            with self.engine.begin() as conn:
                self.apply_outcome(payment, outcome, self.settings.actor, now, phase.trace_id)
                if (payment.state is PaymentState.AUTHORIZED
                        and payment.capture_mode is CaptureMode.AUTOMATIC
                        and op is Operation.AUTHORIZE):
                    payment.begin(Operation.CAPTURE, None, request_id=f"{phase.key_id}:capture",
                                  actor=self.settings.actor, at=now, trace_id=phase.trace_id)
                transitions = list(payment.new_transitions)
                response = None
                if payment.state in IN_FLIGHT_STATES:
                    point = f"{payment.pending_operation}_requested"
                else:
                    point = FINISHED
                    response = self._response(payment, success_status, outcome)
                key = KeyUpdate(phase.key_id, phase.token, point, now,
                                (response.status_code, response.body_text) if response else None)
                self.repo.flush(conn, payment, key=key, attempts=phase.attempts)
                phase.attempts = []
            for t in transitions:
                self.observer.transition(t.from_state.value, t.to_state.value, payment.provider)
            log.info("payment %s", payment.state.value, extra={
                "payment_id": payment.id, "merchant_id": payment.merchant_id,
                "provider": payment.provider, "operation": op.value, "to_state": payment.state.value,
                "outcome": outcome.kind.value})
            if before is not PaymentState.UNKNOWN and payment.state is PaymentState.UNKNOWN:
                self.observer.unknown_outcome(payment.provider)
            self.observer.recovery_point(point)
            if response is not None:
                return response
        # Resumed a request whose last phase had already committed.
        return self._response(payment, success_status, None)

    def _response(self, payment: Payment, success_status: int,
                  outcome: ProviderOutcome | None) -> ServiceResponse:
        status = success_status
        if payment.state is PaymentState.UNKNOWN:
            status = 202
        elif outcome is not None and outcome.kind is OutcomeKind.RETRYABLE and success_status == 200:
            status = 502
        return ServiceResponse(status, canonical_json(payment.snapshot()),
                               payment_id=payment.id)

    def apply_outcome(self, payment: Payment, outcome: ProviderOutcome, actor: str,
                      now: datetime, trace_id: str | None) -> None:
        """Move a payment with a pending operation according to the provider's (or a
        notification's) normalized answer. The caller writes it in its transaction."""
        op = payment.pending_operation
        kind = outcome.kind
        common = {"actor": actor, "at": now, "trace_id": trace_id}
        if kind is OutcomeKind.SUCCEEDED:
            payment.settle(True, reason=f"{op} succeeded ({outcome.raw_status})",
                           provider_reference=outcome.provider_reference,
                           fee_minor=outcome.fee_minor, **common)
        elif kind is OutcomeKind.DECLINED:
            payment.settle(False, declined=True, reason=outcome.reason or outcome.raw_status,
                           provider_reference=outcome.provider_reference, **common)
        elif kind is OutcomeKind.UNKNOWN:
            if payment.state is not PaymentState.UNKNOWN:
                payment.mark_unknown(reason=f"{op} outcome unknown ({outcome.raw_status})",
                                     **common)
        else:  # RETRYABLE after retries, or NOT_FOUND on resolution: nothing happened
            payment.settle(False, reason=f"{op} failed ({outcome.raw_status})", **common)

    def _call_provider(self, gateway: Gateway, payment: Payment, phase: _Phase) -> ProviderOutcome:
        op = payment.pending_operation
        assert op is not None
        token = phase.payment_method if op is Operation.AUTHORIZE else None
        request = ProviderRequest(op, payment.pending_request_id or "", payment.id,
                                  payment.pending_amount_minor, payment.currency, token,
                                  payment.provider_reference)

        def attempt(n: int) -> ProviderOutcome:
            started = time.perf_counter()
            with tracer.start_as_current_span(f"provider.{op.value}") as span:
                span.set_attributes({"paysignal.provider": payment.provider,
                                     "paysignal.operation": op.value, "paysignal.attempt": n})
                outcome = gateway.execute(request)
                span.set_attribute("paysignal.outcome", outcome.kind.value)
            duration = outcome.latency_s or (time.perf_counter() - started)
            self.observer.provider_call(payment.provider, op.value, outcome.kind.value,
                                        duration, n)
            phase.attempts.append({
                "payment_id": payment.id, "provider": payment.provider, "operation": op.value,
                "attempt": n, "request_id": request.request_id, "outcome": outcome.kind.value,
                "raw_status": outcome.raw_status[:64], "duration_ms": int(duration * 1000),
                "at": self.clock()})
            if n > 1:
                self.observer.retry(payment.provider, op.value)
            return outcome

        result = self.retry_policy.run(attempt, lambda o: o.kind is OutcomeKind.RETRYABLE)
        if result.stopped_by == "budget":
            self.observer.retry_budget_exhausted(payment.provider)
            with self.engine.begin() as conn:  # rare: kept so detectors can alert on it
                conn.execute(insert(retry_refusals).values(
                    provider=payment.provider, operation=op.value, payment_id=payment.id,
                    at=self.clock()))
        return result.outcome

    # --- validation ----------------------------------------------------------------------

    def _validate_create(self, request: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise ValidationError("body", "must be a JSON object")
        known = {"amount", "currency", "capture", "reference", "payment_method", "provider"}
        unknown = sorted(set(request) - known)
        if unknown:
            raise ValidationError(unknown[0], "is not a field of a payment request")
        for name in ("amount", "currency", "reference", "payment_method"):
            if name not in request:
                raise ValidationError(name, "is required")
        money = Money.of(request["amount"], request["currency"])
        capture = request.get("capture", "automatic")
        if capture not in ("automatic", "manual"):
            raise ValidationError("capture", "must be 'automatic' or 'manual'")
        reference = validate_text(request["reference"], "reference")
        token = validate_payment_method(request["payment_method"])
        provider = request.get("provider")
        if provider is None:
            provider = self.router.route(money.currency, reference)
        elif provider not in self.gateways:
            raise ProviderNotFoundError(str(provider), sorted(self.gateways))
        return {"amount": money.amount_minor, "currency": money.currency, "capture": capture,
                "reference": reference, "payment_method": token, "provider": provider}
