"""What a provider's answer does to a payment, and what follows it. Decided here once for the
service, the unknown-outcome resolver and webhook ingestion; each applies it in the same
transaction as the answer, so no crash can leave a follow-up undone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from engine.domain.model import CaptureMode, Payment
from engine.domain.operations import Operation
from engine.domain.states import AWAITING_ANSWER_STATES, PaymentState
from engine.providers.base import OutcomeKind, ProviderOutcome


def apply_outcome(payment: Payment, outcome: ProviderOutcome, *, actor: str, at: datetime,
                  trace_id: str | None) -> None:
    """Move a payment with a pending operation according to the provider's (or a
    notification's) normalized answer."""
    op = payment.pending_operation
    kind = outcome.kind
    if kind is OutcomeKind.SUCCEEDED:
        captured = outcome.captured and op is Operation.AUTHORIZE
        payment.settle(True, reason=f"{'authorize and capture' if captured else op} succeeded "
                       f"({outcome.raw_status})",
                       provider_reference=outcome.provider_reference,
                       fee_minor=outcome.fee_minor, actor=actor, at=at, trace_id=trace_id,
                       captured=captured)
    elif kind is OutcomeKind.DECLINED:
        payment.settle(False, declined=True, reason=outcome.reason or outcome.raw_status,
                       provider_reference=outcome.provider_reference, actor=actor, at=at,
                       trace_id=trace_id)
    elif kind is OutcomeKind.UNKNOWN:
        if payment.state not in AWAITING_ANSWER_STATES:
            payment.mark_unknown(reason=f"{op} outcome unknown ({outcome.raw_status})",
                                 actor=actor, at=at, trace_id=trace_id)
    elif kind is OutcomeKind.ACTION_REQUIRED:
        payment.mark_requires_customer_action(
            dict(outcome.customer_action or {}),
            reason=f"{op}: the provider asks the customer to act ({outcome.raw_status})",
            actor=actor, at=at, trace_id=trace_id, provider_reference=outcome.provider_reference)
    elif kind is OutcomeKind.SUBMITTED:
        if payment.state is not PaymentState.AWAITING_CONFIRMATION:
            payment.mark_awaiting_confirmation(
                reason=f"{op} submitted ({outcome.raw_status}); awaiting the provider's "
                "confirmation", actor=actor, at=at, trace_id=trace_id)
    else:  # RETRYABLE after retries, REJECTED, or NOT_FOUND on resolution: nothing happened
        payment.settle(False, reason=f"{op} failed ({outcome.raw_status})", actor=actor, at=at,
                       trace_id=trace_id)


def follow_up(payment: Payment, settled: Operation | None) -> Operation | None:
    """The operation a settled one calls for next: an automatic-capture payment that the
    provider authorized without capturing is captured in full. None when nothing follows."""
    if (settled is Operation.AUTHORIZE and payment.state is PaymentState.AUTHORIZED
            and payment.capture_mode is CaptureMode.AUTOMATIC):
        return Operation.CAPTURE
    return None


def settle(payment: Payment, outcome: ProviderOutcome, *, actor: str, at: datetime,
           trace_id: str | None, request_id_for: Callable[[Operation], str]) -> Operation | None:
    """Apply the answer, then begin the follow-up it calls for (with the request id
    `request_id_for` gives it). Returns the follow-up begun, if any."""
    settled = payment.pending_operation
    apply_outcome(payment, outcome, actor=actor, at=at, trace_id=trace_id)
    nxt = follow_up(payment, settled)
    if nxt is not None:
        payment.begin(nxt, None, request_id=request_id_for(nxt), actor=actor, at=at,
                      trace_id=trace_id)
    return nxt
