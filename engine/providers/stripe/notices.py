"""Stripe's events in paysignal's words: payment, refund and dispute notifications."""

from __future__ import annotations

from engine.domain.operations import Operation
from engine.providers.base import (
    DisputeStage,
    Notification,
    ParsedDispute,
    ParsedNotification,
)
from engine.providers.stripe.currencies import CURRENCIES
from engine.providers.stripe.models import Dispute, Event, PaymentIntent, Refund

_EVENT_OPERATIONS = {  # event type -> (operation, succeeded)
    "payment_intent.amount_capturable_updated": (Operation.AUTHORIZE, True),
    "payment_intent.payment_failed": (Operation.AUTHORIZE, False),
    "payment_intent.succeeded": (Operation.CAPTURE, True),
    "payment_intent.canceled": (Operation.VOID, True),
    "refund.created": (Operation.REFUND, True),
    "refund.failed": (Operation.REFUND, False),
}


# Stripe withdraws the disputed amount when the dispute is created; `funds_reinstated` and a
# `closed` dispute with status `won` return it.
_DISPUTE_EVENTS = {"charge.dispute.created": DisputeStage.FUNDS_WITHDRAWN,
                   "charge.dispute.funds_withdrawn": DisputeStage.FUNDS_WITHDRAWN,
                   "charge.dispute.funds_reinstated": DisputeStage.WON,
                   "charge.dispute.updated": DisputeStage.OPENED}
_CLOSED = {"won": DisputeStage.WON, "lost": DisputeStage.LOST,
           "warning_closed": DisputeStage.WON}


def parse_event(body: bytes, sent_at: float) -> Notification:
    """A verified event in paysignal's words. Raises ValueError (pydantic's ValidationError is
    one) or KeyError when the body is no event paysignal can use."""
    event = Event.model_validate_json(body)
    if event.type.startswith("charge.dispute."):
        return _parse_dispute(event, Dispute.model_validate(event.data.object), sent_at)
    operation, succeeded = _EVENT_OPERATIONS[event.type]
    if operation is Operation.REFUND:
        refund = Refund.model_validate(event.data.object)
        if refund.status == "failed":
            succeeded = False
        if refund.intent_id is None:
            raise ValueError("a refund event without its payment_intent")
        return ParsedNotification(event.id, refund.metadata["paysignal_payment_id"],
                                  refund.intent_id, operation, succeeded,
                                  amount_minor=_iso(refund.amount, refund.currency),
                                  request_id=refund.metadata.get("paysignal_request_id"),
                                  sent_at=float(sent_at))
    intent = PaymentIntent.model_validate(event.data.object)
    captured = None
    if operation is Operation.CAPTURE and intent.capture_method != "manual":
        operation, captured = Operation.AUTHORIZE, True  # an automatic-capture intent's one call
    amount = _iso(intent.amount_received if operation is Operation.CAPTURE or captured
                  else intent.amount, intent.currency)
    request_id = (intent.metadata.get("paysignal_request_id") if operation is Operation.AUTHORIZE
                  else None)  # the intent's metadata names the request that created it
    return ParsedNotification(event.id, intent.metadata["paysignal_payment_id"], intent.id,
                              operation, succeeded, amount_minor=amount,
                              request_id=request_id, sent_at=float(sent_at), captured=captured)


def _parse_dispute(event: Event, dispute: Dispute, sent_at: float) -> ParsedDispute:
    closed = event.type == "charge.dispute.closed"
    stage = _CLOSED[dispute.status] if closed else _DISPUTE_EVENTS[event.type]
    due = dispute.evidence_details.due_by if dispute.evidence_details else None
    return ParsedDispute(event.id, dispute.id, dispute.payment_intent, stage,
                         CURRENCIES.from_provider(dispute.amount, dispute.currency.upper()),
                         dispute.currency.upper(), reason=dispute.reason or "",
                         due_by=float(due) if due else None, sent_at=float(sent_at))


def _iso(amount: int | None, currency: str | None) -> int | None:
    """A Stripe amount in ISO 4217 minor units (Stripe counts some currencies otherwise)."""
    if amount is None:
        return None
    if currency is None:
        raise ValueError("an amount without its currency")
    return CURRENCIES.from_provider(amount, currency.upper())
