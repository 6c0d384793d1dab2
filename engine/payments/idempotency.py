"""The Idempotency-Key protocol, top to bottom (after brandur's rocket-rides-atomic).

1. `begin` claims the merchant's key in one transaction. A new key writes the payment with its
   operation pending (RecoveryPoint.<operation>_REQUESTED). A finished key replays its stored
   response; a key held by a live request is refused; an abandoned key is taken over.
2. `drive` loops while the payment has an operation pending: ask the provider outside any
   transaction (a taken-over request first looks the operation up, so it never charges twice),
   then run one atomic phase that records the answer, applies the after-settlement policy and
   moves the key to its next recovery point, or finishes it with the response.

Each phase returns what happens next: `CallProvider` or `Respond`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from engine.domain.fingerprint import canonical_json, differing_fields, request_fingerprint
from engine.domain.model import CaptureMode, Payment, Transition
from engine.domain.operations import Operation
from engine.domain.recovery import RecoveryPoint
from engine.domain.retry import RetryPolicy
from engine.domain.states import AWAITING_ANSWER_STATES, IN_FLIGHT_STATES, PaymentState
from engine.exceptions import IdempotencyKeyConflictError, IdempotencyKeyInProgressError
from engine.observability.observer import EngineObserver
from engine.observability.tracing import tracer
from engine.payments import policy
from engine.payments.toggles import Mode, ToggleReader
from engine.payments.unit_of_work import UnitOfWork
from engine.payments.validation import validate_idempotency_key
from engine.providers.base import Gateway, OutcomeKind, ProviderOutcome, ProviderRequest
from engine.storage.repository import ConcurrentUpdateError, KeyRecord, KeyUpdate

log = logging.getLogger("paysignal.engine")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    lock_timeout_s: float = 60.0
    key_ttl_s: float = 24 * 3600.0
    actor: str = "engine"
    webhook_tolerance_s: float = 300.0  # notifications signed longer ago (or ahead) are refused
    # a payment waits this long for its customer before paysignal cancels it at the provider
    customer_action_timeout_s: float = 3600.0


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


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A client's request under an Idempotency-Key, as fingerprinted and stored."""

    merchant_id: str
    key: str
    operation: str  # create_payment | capture | void | refund
    first: Operation  # the provider operation it begins
    params: dict[str, Any]
    payment_id: str
    provider: str
    payment_method: str | None  # the authorization's token: passed on, never stored on the payment
    method_type: str | None  # what kind of method the payment uses: rollout toggles are keyed by it
    trace_id: str | None
    # Phase 1's payment, built (never written) in the claiming transaction: (uow, key id, now).
    build: Callable[[UnitOfWork, str, datetime], Payment]
    customer_present: bool = True  # False: a merchant-initiated authorization

    @property
    def creates_payment(self) -> bool:
        return self.operation == "create_payment"

    @property
    def success_status(self) -> int:
        return 201 if self.creates_payment else 200


def provider_request(payment: Payment, payment_method: str | None,
                     now: datetime, customer_present: bool = True) -> ProviderRequest:
    """The provider call for the payment's pending operation (the same request id on every
    attempt and lookup, so the provider's idempotency makes a repeat harmless)."""
    op = payment.pending_operation
    assert op is not None, "no operation is pending"
    return ProviderRequest(op, payment.pending_request_id or "", payment.id,
                           payment.pending_amount_minor, payment.currency,
                           payment_method if op is Operation.AUTHORIZE else None,
                           payment.provider_reference,
                           capture=(op is Operation.AUTHORIZE
                                    and payment.capture_mode is CaptureMode.AUTOMATIC),
                           age_s=max(0.0, (now - payment.updated_at).total_seconds()),
                           customer_present=customer_present)


def refund_id(key_id: str) -> str:
    """A refund is identified by the idempotency record that requested it: one per key."""
    return "rfd_" + key_id.removeprefix("idk_")


@dataclass(frozen=True, slots=True)
class KeyHold:
    """This process's hold on an idempotency record; the lock token proves nobody took it over."""

    key_id: str
    token: str
    success_status: int
    trace_id: str | None = None
    payment_method: str | None = None
    lookup_first: bool = False  # a taken-over request asks the provider before calling it again
    customer_present: bool = True


@dataclass(frozen=True, slots=True)
class CallProvider:
    hold: KeyHold
    payment: Payment


@dataclass(frozen=True, slots=True)
class Respond:
    response: ServiceResponse


NextStep = CallProvider | Respond


@dataclass(frozen=True, slots=True)
class _Claimed:
    payment: Payment
    transitions: list[Transition]


@dataclass(slots=True)
class _Asked:
    outcome: ProviderOutcome
    attempts: list[dict[str, Any]] = field(default_factory=list)
    retry_refused: bool = False


class IdempotencyProtocol:
    def __init__(self, engine: Engine, gateways: Mapping[str, Gateway], *,
                 clock: Callable[[], datetime], retry_policy: RetryPolicy,
                 observer: EngineObserver, settings: EngineSettings,
                 new_id: Callable[[str], str], toggles: ToggleReader | None) -> None:
        self.engine, self.gateways, self.clock = engine, dict(gateways), clock
        self.retry_policy, self.observer, self.settings = retry_policy, observer, settings
        self.new_id, self.toggles = new_id, toggles

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    def run(self, request: KeyedRequest) -> ServiceResponse:
        return self.drive(self.begin(request))

    def drive(self, step: NextStep) -> ServiceResponse:
        while isinstance(step, CallProvider):
            op = step.payment.pending_operation
            assert op is not None
            asked = self._ask_provider(step)
            self.observer.recovery_point(RecoveryPoint.provider_returned(op))
            step = self._record(step, asked)
        return step.response

    # --- phase 1: claim the key -----------------------------------------------------------

    def begin(self, request: KeyedRequest) -> NextStep:
        """Claim the key and write phase 1 in one transaction: if anything fails, nothing of
        the request is written and the key stays free."""
        validate_idempotency_key(request.key)
        fingerprint = request_fingerprint(request.operation, request.params)
        now = self.clock()
        stored_key = self._key_under_rollout(request, fingerprint)
        token, key_id = uuid.uuid4().hex, self.new_id("idk")
        values = self.key_values(
            merchant_id=request.merchant_id, key=stored_key, operation=request.operation,
            params=request.params, fingerprint=fingerprint, now=now, key_id=key_id,
            point=RecoveryPoint.requested(request.first), token=token,
            payment_id=request.payment_id)
        hold = KeyHold(key_id, token, request.success_status, request.trace_id,
                       request.payment_method, customer_present=request.customer_present)
        try:
            with tracer.start_as_current_span("idempotency.check") as span, \
                    self.unit_of_work() as uow:
                span.set_attribute("paysignal.operation", request.operation)
                claim = self._claim(uow, request, values, key_id, now)
                if isinstance(claim, _Claimed):  # a new key: phase 1 is written with it
                    uow.commit()
                    self.observer.idempotency("new")
                    self._observe_transitions(claim.payment, claim.transitions)
                    return self._next_after_commit(hold, claim.payment)
                existing = claim  # the key was seen before: replay, refuse or take over
                span.set_attribute("paysignal.idempotency.outcome", "existing")
                replay = self._check_existing(existing, request, fingerprint, now)
                if replay is not None:
                    span.set_attribute("paysignal.idempotency.outcome", "replayed")
                    uow.record_duplicate_risk(
                        merchant_id=request.merchant_id,
                        provider=self._provider_of(uow, existing), outcome="replayed",
                        payment_id=existing.payment_id, at=now)
                    uow.commit()
                    return Respond(replay)
                span.set_attribute("paysignal.idempotency.outcome", "recovered")
                uow.payments.take_over_key(existing, token, now)
                taken = uow.payments.get(existing.payment_id or "")
                if taken is None:
                    raise ConcurrentUpdateError(f"idempotency key {request.key!r} names no "
                                                "payment; retry")
                uow.commit()
        except (IdempotencyKeyConflictError, IdempotencyKeyInProgressError) as exc:
            outcome = ("conflict" if isinstance(exc, IdempotencyKeyConflictError)
                       else "in_flight")
            self.record_duplicate_risk(request.merchant_id, request.provider, outcome, None)
            raise
        self.observer.idempotency("recovered")
        return self._next_after_commit(replace(hold, key_id=existing.id, lookup_first=True),
                                       taken)

    def _claim(self, uow: UnitOfWork, request: KeyedRequest, values: dict[str, Any],
               key_id: str, now: datetime) -> KeyRecord | _Claimed:
        """The existing record, or the new payment written with the newly claimed key."""
        if request.creates_payment:  # a new payment: built first, written with the key
            payment = request.build(uow, key_id, now)
            claimed = _Claimed(payment, list(payment.new_transitions))
            return uow.payments.claim_key_for_new_payment(values, now, payment) or claimed
        existing = uow.payments.claim_key(values, now)
        if existing is not None:
            return existing
        payment = request.build(uow, key_id, now)
        claimed = _Claimed(payment, list(payment.new_transitions))
        uow.payments.flush(payment)
        return claimed

    def _next_after_commit(self, hold: KeyHold, payment: Payment) -> NextStep:
        if payment.state in IN_FLIGHT_STATES:
            self.observer.recovery_point(RecoveryPoint.requested(self._pending(payment)))
            return CallProvider(hold, payment)
        # Taken over after the last phase had committed: answer from the payment as it is.
        return Respond(self._response(payment, hold.success_status, None))

    def _check_existing(self, record: KeyRecord, request: KeyedRequest, fingerprint: str,
                        now: datetime) -> ServiceResponse | None:
        if record.fingerprint != fingerprint or record.operation != request.operation:
            self.observer.idempotency("conflict")
            raise IdempotencyKeyConflictError(
                record.key, differing_fields(record.operation, record.request_params,
                                             request.operation, request.params))
        if record.finished_at is not None:
            self.observer.idempotency("replayed")
            return ServiceResponse(record.response_code or 200, record.response_body or "{}",
                                   replayed=True, payment_id=record.payment_id)
        if not self.is_stale(record, now):
            self.observer.idempotency("in_flight")
            assert record.locked_at is not None
            remaining = (record.locked_at + timedelta(seconds=self.settings.lock_timeout_s)
                         - now).total_seconds()
            raise IdempotencyKeyInProgressError(record.key, max(1.0, min(remaining, 5.0)))
        return None

    def _key_under_rollout(self, request: KeyedRequest, fingerprint: str) -> str:
        """The key to store under: the client's, unless enforcement is rolled back for this
        provider and payment method (then a fresh one, so the request runs as new)."""
        mode = (self.toggles.mode_for(request.provider, request.method_type,
                                      request.merchant_id)
                if self.toggles else Mode.ENFORCE)
        if mode is Mode.ENFORCE:
            return request.key
        fresh = f"{request.key[:200]}#{self.new_id('unenforced')}"
        if mode is Mode.OFF:
            return fresh
        with self.unit_of_work() as uow:
            seen = uow.payments.find_key(request.merchant_id, request.key)
        if seen is None:
            return request.key
        would_be = "replay" if seen.fingerprint == fingerprint else "conflict"
        self.observer.shadow_duplicate(request.provider, request.method_type or "unknown",
                                       would_be)
        self.record_duplicate_risk(request.merchant_id, request.provider, f"shadow_{would_be}",
                                   seen.payment_id)
        log.warning("shadow mode: would-be duplicate let through", extra={
            "merchant_id": request.merchant_id, "provider": request.provider,
            "method_type": request.method_type, "outcome": would_be})
        return fresh

    def record_duplicate_risk(self, merchant_id: str, provider: str, outcome: str,
                              payment_id: str | None) -> None:
        """In its own small transaction (the request's own was rolled back)."""
        with self.unit_of_work() as uow:
            uow.record_duplicate_risk(merchant_id=merchant_id, provider=provider,
                                      outcome=outcome, payment_id=payment_id, at=self.clock())
            uow.commit()

    @staticmethod
    def _provider_of(uow: UnitOfWork, record: KeyRecord) -> str:
        payment = uow.payments.get(record.payment_id) if record.payment_id else None
        return payment.provider if payment is not None else "unknown"

    # --- between phases: the provider -----------------------------------------------------

    def _ask_provider(self, step: CallProvider) -> _Asked:
        payment, hold = step.payment, step.hold
        op = self._pending(payment)
        gateway = self.gateways[payment.provider]
        request = provider_request(payment, hold.payment_method, self.clock(),
                                   hold.customer_present)
        if hold.lookup_first:
            found = gateway.lookup(request)
            if found.kind is not OutcomeKind.NOT_FOUND:
                return _Asked(found)
            # the earlier attempt never reached the provider: call it now
        asked = _Asked(ProviderOutcome(OutcomeKind.UNKNOWN, "not called", None))

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
            asked.attempts.append({
                "payment_id": payment.id, "provider": payment.provider, "operation": op.value,
                "attempt": n, "request_id": request.request_id, "outcome": outcome.kind.value,
                "raw_status": outcome.raw_status[:64], "duration_ms": int(duration * 1000),
                "at": self.clock()})
            if n > 1:
                self.observer.retry(payment.provider, op.value)
            return outcome

        result = self.retry_policy.run(attempt, lambda o: o.kind is OutcomeKind.RETRYABLE,
                                       wait_hint=lambda o: o.retry_after_s)
        asked.outcome = result.outcome
        if result.stopped_by == "budget":
            self.observer.retry_budget_exhausted(payment.provider)
            asked.retry_refused = True
        return asked

    # --- phases 2..n: record the answer ----------------------------------------------------

    def _record(self, step: CallProvider, asked: _Asked) -> NextStep:
        """One atomic phase: the answer, the policy's follow-up, the attempts and the key's next
        recovery point (or its response) commit together."""
        payment, hold = step.payment, step.hold
        op = self._pending(payment)
        now, before = self.clock(), payment.state
        refund = ((hold.key_id, payment.pending_amount_minor, payment.refunded_minor)
                  if op is Operation.REFUND else None)
        with self.unit_of_work() as uow:
            policy.settle(payment, asked.outcome, actor=self.settings.actor, at=now,
                          trace_id=hold.trace_id,
                          request_id_for=lambda nxt: f"{hold.key_id}:{nxt.value}")
            response = None
            if payment.state in IN_FLIGHT_STATES:
                point = RecoveryPoint.requested(self._pending(payment))
            else:
                point = RecoveryPoint.FINISHED
                response = self._response(payment, hold.success_status, asked.outcome, refund)
            if asked.retry_refused:
                uow.record_retry_refusal(provider=payment.provider, operation=op.value,
                                         payment_id=payment.id, at=now)
            transitions = list(payment.new_transitions)
            uow.payments.flush(payment, key=KeyUpdate(
                hold.key_id, hold.token, point, now,
                (response.status_code, response.body_text) if response else None),
                attempts=asked.attempts)
            uow.commit()
        self._observe_transitions(payment, transitions)
        self._observe_committed(payment, before, op, asked.outcome.kind.value)
        self.observer.recovery_point(point)
        if response is not None:
            return Respond(response)
        return CallProvider(replace(hold, lookup_first=False), payment)

    def _observe_committed(self, payment: Payment, before: PaymentState, op: Operation,
                           outcome: str) -> None:
        log.info("payment %s", payment.state.value, extra={
            "payment_id": payment.id, "merchant_id": payment.merchant_id,
            "provider": payment.provider, "operation": op.value,
            "to_state": payment.state.value, "outcome": outcome})
        if before is not PaymentState.UNKNOWN and payment.state is PaymentState.UNKNOWN:
            self.observer.unknown_outcome(payment.provider)

    def _observe_transitions(self, payment: Payment, transitions: list[Transition]) -> None:
        for t in transitions:
            self.observer.transition(t.from_state.value, t.to_state.value, payment.provider)

    @staticmethod
    def _response(payment: Payment, success_status: int, outcome: ProviderOutcome | None,
                  refund: tuple[str, int, int] | None = None) -> ServiceResponse:
        """The payment as the client sees it; a refund's answer also names the refund
        (`refund`: its id, amount and status), as the payment can hold several."""
        status = success_status
        if payment.state in AWAITING_ANSWER_STATES:
            status = 202
        elif (outcome is not None and outcome.kind is OutcomeKind.RETRYABLE
              and success_status == 200):
            status = 502
        body = payment.snapshot()
        if refund is not None:
            key_id, amount, refunded_before = refund
            done = payment.refunded_minor == refunded_before + amount
            body["refund"] = {"id": refund_id(key_id), "amount": amount, "status": (
                "pending" if status == 202 else "succeeded" if done else "failed")}
        return ServiceResponse(status, canonical_json(body), payment_id=payment.id)

    # --- the key record -------------------------------------------------------------------

    def key_values(self, *, merchant_id: str, key: str, operation: str, params: dict[str, Any],
                   fingerprint: str, now: datetime, key_id: str, point: RecoveryPoint,
                   token: str | None, payment_id: str | None) -> dict[str, Any]:
        return {"id": key_id, "merchant_id": merchant_id, "key": key, "operation": operation,
                "fingerprint": fingerprint, "request_params": canonical_json(params),
                "recovery_point": point.value, "locked_at": now, "lock_token": token,
                "payment_id": payment_id, "created_at": now,
                "expires_at": now + timedelta(seconds=self.settings.key_ttl_s)}

    def is_stale(self, record: KeyRecord, now: datetime) -> bool:
        return (record.locked_at is None
                or record.locked_at <= now - timedelta(seconds=self.settings.lock_timeout_s))

    @staticmethod
    def _pending(payment: Payment) -> Operation:
        assert payment.pending_operation is not None, "no operation is pending"
        return payment.pending_operation

