"""Unknown outcomes and abandoned requests: the work the worker finishes.

An unknown outcome (a time-out after the provider may have acted) is resolved by asking the
provider, never by a blind new call; a provider's notification can settle it too
(engine.payments.webhooks). Either way the answer, the after-settlement policy and, when the
policy begins a follow-up (the automatic capture), an idempotency record for it commit in one
transaction: a crash right after leaves a record the abandoned-request sweep finishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from engine.domain.fingerprint import request_fingerprint
from engine.domain.model import Payment, Transition
from engine.domain.operations import Operation
from engine.domain.recovery import RecoveryPoint
from engine.domain.states import IN_FLIGHT_STATES, PaymentState
from engine.exceptions import PaymentNotFoundError
from engine.payments import policy
from engine.payments.idempotency import (
    CallProvider,
    IdempotencyProtocol,
    KeyHold,
    provider_request,
)
from engine.payments.unit_of_work import UnitOfWork
from engine.providers.base import OutcomeKind, ProviderOutcome
from engine.storage.repository import ConcurrentUpdateError

RESOLVE_UNKNOWN_EVERY = timedelta(seconds=30)
"""How often the worker asks providers about unknown outcomes (well inside the 15 minutes the
unknown-outcome-resolution SLO allows)."""


@dataclass(slots=True)
class Settled:
    payment: Payment
    transitions: list[Transition]
    unknown_for_s: float
    follow_up: CallProvider | None = None


class Resolver:
    def __init__(self, protocol: IdempotencyProtocol) -> None:
        self.protocol = protocol

    def resolve_unknown(self, payment_id: str, actor: str = "unknown-resolver") -> PaymentState:
        """Ask the provider what became of the pending operation and settle the payment."""
        with self.protocol.unit_of_work() as uow:
            payment = uow.payments.get(payment_id)
        if payment is None:
            raise PaymentNotFoundError(payment_id)
        if payment.state is not PaymentState.UNKNOWN or payment.pending_operation is None:
            return payment.state
        method, customer_present = self._authorization(payment)
        outcome = self.protocol.gateways[payment.provider].lookup(
            provider_request(payment, method, self.protocol.clock(), customer_present))
        if outcome.kind is OutcomeKind.UNKNOWN:
            return payment.state
        with self.protocol.unit_of_work() as uow:
            settled = self.settle_unknown(uow, payment, outcome, actor)
            uow.commit()
        return self.finish(settled)

    def _authorization(self, payment: Payment) -> tuple[str | None, bool]:
        """The authorization's payment method and whether its customer was present, kept only
        in its idempotency record's request (a provider that resolves by repeating the request
        needs the request as it was)."""
        if payment.pending_operation is not Operation.AUTHORIZE or not payment.pending_request_id:
            return None, True
        with self.protocol.unit_of_work() as uow:
            record = uow.payments.key_by_id(payment.pending_request_id.split(":", 1)[0])
        params = record.request_params if record else {}
        value = params.get("payment_method")
        return (value if isinstance(value, str) else None,
                params.get("initiator") != "merchant")

    def settle_unknown(self, uow: UnitOfWork, payment: Payment, outcome: ProviderOutcome,
                       actor: str) -> Settled:
        """Record an outside answer for a payment whose outcome was unknown, with the policy's
        follow-up, in the caller's unit of work. When the policy begins a follow-up, its
        idempotency record is claimed in the same transaction."""
        now = self.protocol.clock()
        unknown_for_s = max(0.0, (now - payment.updated_at).total_seconds())
        key_id = self.protocol.new_id("idk")
        nxt = policy.settle(payment, outcome, actor=actor, at=now, trace_id=None,
                            request_id_for=lambda op: f"{key_id}:{op.value}")
        settled = Settled(payment, list(payment.new_transitions), unknown_for_s)
        if nxt is not None:
            token = uuid.uuid4().hex
            params = {"payment_id": payment.id, "amount": None}
            values = self.protocol.key_values(
                merchant_id=payment.merchant_id, key=f"auto-{nxt.value}:{payment.id}",
                operation=nxt.value, params=params,
                fingerprint=request_fingerprint(nxt.value, params), now=now, key_id=key_id,
                point=RecoveryPoint.requested(nxt), token=token, payment_id=payment.id)
            if uow.payments.claim_key(values, now) is not None:
                raise ConcurrentUpdateError(f"payment {payment.id}: its {nxt.value} is already "
                                            "under way")
            settled.follow_up = CallProvider(KeyHold(key_id, token, success_status=200),
                                             payment)
        uow.payments.flush(payment)
        return settled

    def finish(self, settled: Settled) -> PaymentState:
        """After the caller committed `settle_unknown`: its signals, then the follow-up."""
        observer, payment = self.protocol.observer, settled.payment
        for t in settled.transitions:
            observer.transition(t.from_state.value, t.to_state.value, payment.provider)
        if any(t.from_state is PaymentState.UNKNOWN for t in settled.transitions):
            observer.unknown_resolved(payment.provider, payment.state.value,
                                      settled.unknown_for_s)
        if settled.follow_up is None:
            return payment.state
        pending = payment.pending_operation
        assert pending is not None
        observer.recovery_point(RecoveryPoint.requested(pending))
        return self.protocol.drive(settled.follow_up).body_state()

    def resolve_unknown_outcomes(self, limit: int = 1000) -> dict[str, int]:
        with self.protocol.unit_of_work() as uow:
            pending = uow.payments.in_state(PaymentState.UNKNOWN, limit)
        resolved = sum(self.resolve_unknown(p.id) is not PaymentState.UNKNOWN for p in pending)
        return {"resolved": resolved, "still_unknown": len(pending) - resolved}

    def expire_customer_actions(self, limit: int = 1000) -> dict[str, int]:
        """Give up on payments that waited for their customer past the timeout: each is
        cancelled at the provider first, and settled by what the provider says then (declined
        once cancelled, or what the customer made of it meanwhile), so no charge can land
        after paysignal said no. One the provider cannot answer for waits for the next run."""
        protocol = self.protocol
        now = protocol.clock()
        expired_before = now - timedelta(seconds=protocol.settings.customer_action_timeout_s)
        with protocol.unit_of_work() as uow:
            waiting = [p for p in uow.payments.in_state(PaymentState.REQUIRES_CUSTOMER_ACTION,
                                                        limit) if p.updated_at < expired_before]
        counts = {"expired": 0, "completed": 0, "still_waiting": 0}
        for payment in waiting:
            outcome = protocol.gateways[payment.provider].abandon(
                provider_request(payment, None, now))  # cancels by reference: no method needed
            if outcome.kind not in (OutcomeKind.DECLINED, OutcomeKind.SUCCEEDED):
                counts["still_waiting"] += 1
                continue
            with protocol.unit_of_work() as uow:
                fresh = uow.payments.get(payment.id)
                if fresh is None or fresh.state is not PaymentState.REQUIRES_CUSTOMER_ACTION:
                    continue  # a notification settled it meanwhile
                settled = self.settle_unknown(uow, fresh, outcome, "customer-action-expiry")
                uow.commit()
            self.finish(settled)
            counts["expired" if outcome.kind is OutcomeKind.DECLINED else "completed"] += 1
        return counts

    def recover_abandoned(self, limit: int = 100) -> int:
        """Finish requests whose process died mid-way (their key lock is older than the
        timeout), asking the provider before calling it again."""
        protocol = self.protocol
        stale_before = protocol.clock() - timedelta(seconds=protocol.settings.lock_timeout_s)
        with protocol.unit_of_work() as uow:
            candidates = uow.payments.abandoned_keys(stale_before, limit)
        recovered = 0
        for record in candidates:
            token, now = uuid.uuid4().hex, protocol.clock()
            with protocol.unit_of_work() as uow:
                fresh = uow.payments.lock_key(record.id)
                if fresh is None or fresh.finished_at or not protocol.is_stale(fresh, now):
                    continue
                uow.payments.take_over_key(fresh, token, now)
                payment = uow.payments.get(fresh.payment_id or "")
                uow.commit()
            if payment is None:
                continue
            protocol.observer.idempotency("recovered")
            hold = KeyHold(record.id, token, 201 if record.operation == "create_payment" else 200,
                           payment_method=record.request_params.get("payment_method"),
                           lookup_first=True, customer_present=record.request_params.get(
                               "initiator") != "merchant")
            if payment.state in IN_FLIGHT_STATES:
                protocol.drive(CallProvider(hold, payment))
            recovered += 1
        return recovered

    def expire_keys(self) -> int:
        with self.protocol.unit_of_work() as uow:
            expired = uow.payments.delete_expired_keys(self.protocol.clock())
            uow.commit()
        return expired

