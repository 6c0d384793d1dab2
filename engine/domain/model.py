"""The payment aggregate. Plain Python: no I/O, no ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.domain.ids import new_random_id
from engine.domain.ledger import JournalTransaction, postings_for
from engine.domain.money import Money, validate_amount
from engine.domain.operations import Operation
from engine.domain.states import EVENT_FOR_STATE, PaymentState, is_allowed
from engine.domain.text import validate_text
from engine.exceptions import AmountExceedsAvailableError, InvalidTransitionError


class CaptureMode(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the append-only audit trail."""

    payment_id: str
    from_state: PaymentState
    to_state: PaymentState
    reason: str
    actor: str
    at: datetime
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class DomainEvent:
    event_id: str
    payment_id: str
    name: str
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(slots=True)
class Payment:
    id: str
    merchant_id: str
    amount_minor: int
    currency: str
    provider: str
    reference: str
    capture_mode: CaptureMode
    state: PaymentState
    created_at: datetime
    updated_at: datetime
    captured_minor: int = 0
    refunded_minor: int = 0
    fee_minor: int = 0
    provider_reference: str | None = None
    pending_operation: Operation | None = None
    pending_amount_minor: int = 0
    pending_request_id: str | None = None
    decline_reason: str | None = None
    version: int = 0
    method_type: str | None = None  # card, wallet, ... as its provider calls it (MethodType)
    # while the provider waits for the customer: what brings them back (see ProviderOutcome)
    customer_action: dict[str, Any] | None = None
    # Collected during a unit of work; written to audit/ledger/outbox in the same transaction.
    new_transitions: list[Transition] = field(default_factory=list, repr=False)
    new_events: list[DomainEvent] = field(default_factory=list, repr=False)
    new_journal: list[JournalTransaction] = field(default_factory=list, repr=False)

    @classmethod
    def create(cls, *, merchant_id: str, money: Money, provider: str, reference: str,
               capture_mode: CaptureMode, at: datetime, payment_id: str | None = None,
               method_type: str | None = None) -> Payment:
        validate_text(reference, "reference")
        payment = cls(
            id=payment_id or new_random_id("pay"), merchant_id=merchant_id,
            amount_minor=money.amount_minor, currency=money.currency, provider=provider,
            reference=reference, capture_mode=capture_mode, state=PaymentState.CREATED,
            created_at=at, updated_at=at, method_type=method_type,
        )
        payment._emit(EVENT_FOR_STATE[PaymentState.CREATED], at, {})
        return payment

    # --- queries -------------------------------------------------------------------------

    @property
    def refundable_minor(self) -> int:
        return self.captured_minor - self.refunded_minor

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id, "merchant_id": self.merchant_id, "state": self.state.value,
            "amount": self.amount_minor, "currency": self.currency, "provider": self.provider,
            "reference": self.reference, "capture": self.capture_mode.value,
            "captured_amount": self.captured_minor, "refunded_amount": self.refunded_minor,
            "provider_reference": self.provider_reference,
            "decline_reason": self.decline_reason,
            "created_at": self.created_at.isoformat(),
            **({"customer_action": self.customer_action} if self.customer_action else {}),
        }

    # --- commands ------------------------------------------------------------------------

    def transition(self, to_state: PaymentState, *, reason: str, actor: str, at: datetime,
                   trace_id: str | None = None) -> None:
        if not is_allowed(self.state, to_state):
            raise InvalidTransitionError(self.id, self.state.value, to_state.value)
        record = Transition(self.id, self.state, to_state, reason, actor, at, trace_id)
        self.state = to_state
        self.updated_at = at
        self.new_transitions.append(record)
        self._emit(EVENT_FOR_STATE[to_state], at, {
            "from": record.from_state.value, "to": to_state.value, "reason": reason,
        })

    def begin(self, operation: Operation, amount_minor: int | None, *, request_id: str,
              actor: str, at: datetime, trace_id: str | None = None) -> None:
        """Validate an operation and move into its in-flight state (nothing changes on error)."""
        target, amount = self._check_operation(operation, amount_minor)
        self.transition(target, reason=f"{operation.value} requested", actor=actor, at=at,
                        trace_id=trace_id)
        self.pending_operation = operation
        self.pending_amount_minor = amount
        self.pending_request_id = request_id

    def _check_operation(self, operation: Operation, amount_minor: int | None,
                         ) -> tuple[PaymentState, int]:
        s = PaymentState
        if operation is Operation.AUTHORIZE:
            return s.AUTHORIZING, self.amount_minor
        if operation is Operation.VOID:
            return s.VOIDING, self.amount_minor
        field_name = "amount"
        if operation is Operation.CAPTURE:
            available, target = self.amount_minor, s.CAPTURING
        else:
            available, target = self.refundable_minor, s.REFUNDING
        if not is_allowed(self.state, target):
            raise InvalidTransitionError(self.id, self.state.value, target.value)
        amount = available if amount_minor is None else validate_amount(amount_minor, field_name)
        if amount > available:
            raise AmountExceedsAvailableError(field_name, amount, available)
        return target, amount

    def settle(self, succeeded: bool, *, reason: str, actor: str, at: datetime,
               trace_id: str | None = None, provider_reference: str | None = None,
               fee_minor: int = 0, declined: bool = False, captured: bool = False) -> None:
        """Apply the provider's definitive answer to the pending operation (`captured`: an
        authorization the provider also captured, in one call)."""
        op = self.pending_operation
        if op is None:
            raise InvalidTransitionError(self.id, self.state.value, "settled")
        amount = self.pending_amount_minor
        captured = captured and succeeded and op is Operation.AUTHORIZE
        target = PaymentState.CAPTURED if captured else self._target_after(op, succeeded,
                                                                            declined)
        if not is_allowed(self.state, target):
            raise InvalidTransitionError(self.id, self.state.value, target.value)
        if provider_reference:
            self.provider_reference = provider_reference
        if succeeded:
            if op is Operation.CAPTURE or captured:
                self.captured_minor = amount
            elif op is Operation.REFUND:
                self.refunded_minor += amount
            self.new_journal.extend(postings_for(self, op, amount, fee_minor, at, captured))
            self.fee_minor += fee_minor
        elif declined and op is Operation.AUTHORIZE:
            self.decline_reason = reason
        self.transition(target, reason=reason, actor=actor, at=at, trace_id=trace_id)
        self.pending_operation = None
        self.pending_amount_minor = 0
        self.pending_request_id = None
        self.customer_action = None

    def _target_after(self, op: Operation, succeeded: bool, declined: bool) -> PaymentState:
        s = PaymentState
        if op is Operation.AUTHORIZE:
            return s.AUTHORIZED if succeeded else (s.DECLINED if declined else s.FAILED)
        if op is Operation.CAPTURE:
            return s.CAPTURED if succeeded else s.AUTHORIZED
        if op is Operation.VOID:
            return s.VOIDED if succeeded else s.AUTHORIZED
        # refund
        if not succeeded:
            return s.PARTIALLY_REFUNDED if self.refunded_minor else s.CAPTURED
        after = self.refunded_minor + self.pending_amount_minor
        return s.REFUNDED if after == self.captured_minor else s.PARTIALLY_REFUNDED

    def mark_unknown(self, *, reason: str, actor: str, at: datetime,
                     trace_id: str | None = None) -> None:
        """The provider may or may not have acted; keep the pending operation for resolution."""
        self.transition(PaymentState.UNKNOWN, reason=reason, actor=actor, at=at,
                        trace_id=trace_id)

    def mark_awaiting_confirmation(self, *, reason: str, actor: str, at: datetime,
                                   trace_id: str | None = None) -> None:
        """The provider accepted the pending operation and will confirm it by notification;
        keep it pending, and never submit it again."""
        self.transition(PaymentState.AWAITING_CONFIRMATION, reason=reason, actor=actor, at=at,
                        trace_id=trace_id)

    def mark_requires_customer_action(self, action: dict[str, Any], *, reason: str, actor: str,
                                      at: datetime, trace_id: str | None = None,
                                      provider_reference: str | None = None) -> None:
        """The provider waits for the customer (3-D Secure, a redirect, an approval): keep the
        authorization pending, with what brings the customer back (and the provider's
        reference, by which it is cancelled if the customer never comes)."""
        self.customer_action = action
        if provider_reference:
            self.provider_reference = provider_reference
        if self.state is not PaymentState.REQUIRES_CUSTOMER_ACTION:
            self.transition(PaymentState.REQUIRES_CUSTOMER_ACTION, reason=reason, actor=actor,
                            at=at, trace_id=trace_id)

    def announce(self, name: str, at: datetime, extra: dict[str, Any]) -> None:
        """An event about the payment that is not a state change (a dispute's funds moving)."""
        self._emit(name, at, extra)

    def _emit(self, name: str, at: datetime, extra: dict[str, Any]) -> None:
        payload = {
            "payment_id": self.id, "merchant_id": self.merchant_id, "state": self.state.value,
            "amount": self.amount_minor, "currency": self.currency, "provider": self.provider,
            "captured_amount": self.captured_minor, "refunded_amount": self.refunded_minor,
            **extra,
        }
        self.new_events.append(DomainEvent(new_random_id("evt"), self.id, name, at, payload))

    def drain(self) -> tuple[list[Transition], list[DomainEvent], list[JournalTransaction]]:
        out = (self.new_transitions, self.new_events, self.new_journal)
        self.new_transitions, self.new_events, self.new_journal = [], [], []
        return out
