"""PayPal's webhook events in paysignal's words: payment, refund and dispute notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.domain.operations import Operation
from engine.providers.base import (
    NOT_FINAL,
    UNUSED_TYPE,
    DisputeStage,
    Notification,
    ParsedDispute,
    ParsedNotification,
    UnusedNotice,
)
from engine.providers.paypal.models import Dispute, Event, Payment

_EVENTS = {  # event_type -> (operation, succeeded)
    "PAYMENT.AUTHORIZATION.CREATED": (Operation.AUTHORIZE, True),
    "PAYMENT.AUTHORIZATION.VOIDED": (Operation.VOID, True),
    "PAYMENT.CAPTURE.COMPLETED": (Operation.CAPTURE, True),
    "PAYMENT.CAPTURE.DENIED": (Operation.CAPTURE, False),
    "PAYMENT.CAPTURE.DECLINED": (Operation.CAPTURE, False),
    "PAYMENT.CAPTURE.REFUNDED": (Operation.REFUND, True),
}
# a capture PayPal holds for review: its COMPLETED (or DENIED) notice comes later
_NOT_FINAL = frozenset(("PAYMENT.CAPTURE.PENDING",))
# PayPal took a captured payment back (a bank's reversal, a chargeback without a dispute
# case): final, the money is gone, as a lost dispute
_REVERSED = "PAYMENT.CAPTURE.REVERSED"


# PayPal holds the disputed amount when the dispute is created; the outcome decides it.
_OUTCOMES = {"RESOLVED_SELLER_FAVOUR": DisputeStage.WON, "CANCELED_BY_BUYER": DisputeStage.WON,
             "RESOLVED_BUYER_FAVOUR": DisputeStage.LOST, "RESOLVED_WITH_PAYOUT": DisputeStage.LOST}


def parse_event(raw: dict[str, Any], sent_at: float) -> Notification:
    """A verified event in paysignal's words. Raises ValueError (pydantic's ValidationError is
    one) or KeyError when the event is none paysignal can use."""
    event = Event.model_validate(raw)
    if event.event_type.startswith("CUSTOMER.DISPUTE."):
        return _parse_dispute(event, Dispute.model_validate(event.resource), sent_at)
    if event.event_type == _REVERSED:
        return _parse_reversal(event, Payment.model_validate(event.resource), sent_at)
    if event.event_type not in _EVENTS:
        why = NOT_FINAL if event.event_type in _NOT_FINAL else UNUSED_TYPE
        return UnusedNotice(event.id, event.event_type, why,
                            str(event.resource.get("id") or ""), sent_at=sent_at)
    operation, succeeded = _EVENTS[event.event_type]
    resource = Payment.model_validate(event.resource)
    captured = None
    if (operation is Operation.CAPTURE
            and resource.supplementary_data.related_ids.authorization_id is None):
        operation, captured = Operation.AUTHORIZE, True  # an intent CAPTURE order's one call
    amount = (resource.amount.minor
              if operation is not Operation.VOID and resource.amount else None)
    reference = resource.id
    if operation is Operation.REFUND:  # a refund names its capture in its links
        reference = resource.linked_id("up") or resource.id
    if reference is None or resource.custom_id is None:
        raise ValueError("a payment event without its id or custom_id")
    return ParsedNotification(event.id, resource.custom_id, reference, operation,
                              succeeded, amount_minor=amount, sent_at=sent_at, captured=captured)


def _parse_reversal(event: Event, capture: Payment, sent_at: float) -> ParsedDispute:
    if capture.id is None or capture.amount is None:
        raise ValueError("a reversal without its capture's id or amount")
    return ParsedDispute(event.id, f"{capture.id}-reversal", capture.id, DisputeStage.LOST,
                         capture.amount.minor, capture.amount.currency_code,
                         payment_ref=capture.custom_id or "", reason="capture reversed",
                         sent_at=sent_at)


def _parse_dispute(event: Event, dispute: Dispute, sent_at: float) -> Notification:
    [transaction] = dispute.disputed_transactions[:1]
    stage = DisputeStage.FUNDS_WITHDRAWN
    if event.event_type == "CUSTOMER.DISPUTE.RESOLVED":
        if dispute.dispute_outcome is None:
            raise ValueError("a resolved dispute without its outcome")
        if dispute.dispute_outcome.outcome_code not in _OUTCOMES:
            return UnusedNotice(event.id, event.event_type, UNUSED_TYPE,
                                transaction.seller_transaction_id, sent_at=sent_at)
        stage = _OUTCOMES[dispute.dispute_outcome.outcome_code]
    due = dispute.seller_response_due_date
    return ParsedDispute(
        event.id, dispute.dispute_id, transaction.seller_transaction_id, stage,
        dispute.dispute_amount.minor, dispute.dispute_amount.currency_code,
        payment_ref=transaction.custom or "", reason=dispute.reason or "",
        due_by=datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp() if due else None,
        sent_at=sent_at)
