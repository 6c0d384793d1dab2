"""Stripe's events in paysignal's words: payment, refund and dispute notifications."""

from __future__ import annotations

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
from engine.providers.stripe.currencies import CURRENCIES
from engine.providers.stripe.models import Dispute, Event, PaymentIntent, Refund

_EVENT_OPERATIONS = {  # event type -> (operation, succeeded)
    "payment_intent.amount_capturable_updated": (Operation.AUTHORIZE, True),
    "payment_intent.payment_failed": (Operation.AUTHORIZE, False),
    "payment_intent.succeeded": (Operation.CAPTURE, True),
    "payment_intent.canceled": (Operation.VOID, True),
}
_REFUND_EVENTS = frozenset(("refund.created", "refund.updated", "refund.failed"))
# a refund's status (docs.stripe.com/api/refunds/object): final ones, and the rest not yet
_REFUND_SUCCEEDED = {"succeeded": True, "failed": False, "canceled": False}


# Stripe withdraws the disputed amount when the dispute is created; `funds_reinstated` and a
# `closed` dispute with status `won` return it. An inquiry (status `warning_…`) withdraws
# nothing, and closing it (`warning_closed`) returns nothing.
_DISPUTE_EVENTS = {"charge.dispute.created": DisputeStage.FUNDS_WITHDRAWN,
                   "charge.dispute.funds_withdrawn": DisputeStage.FUNDS_WITHDRAWN,
                   "charge.dispute.funds_reinstated": DisputeStage.WON,
                   "charge.dispute.updated": DisputeStage.OPENED}
_INQUIRY_EVENTS = frozenset(("charge.dispute.created", "charge.dispute.updated"))
_CLOSED = {"won": DisputeStage.WON, "lost": DisputeStage.LOST,
           "warning_closed": DisputeStage.WON}


def parse_event(body: bytes, sent_at: float) -> Notification:
    """A verified event in paysignal's words. Raises ValueError (pydantic's ValidationError is
    one) or KeyError when the body is no event paysignal can use."""
    event = Event.model_validate_json(body)
    if event.type.startswith("charge.dispute."):
        return _parse_dispute(event, Dispute.model_validate(event.data.object), sent_at)
    if event.type in _REFUND_EVENTS:
        return _parse_refund(event, Refund.model_validate(event.data.object), sent_at)
    if event.type not in _EVENT_OPERATIONS:
        return UnusedNotice(event.id, event.type, UNUSED_TYPE, sent_at=float(sent_at))
    operation, succeeded = _EVENT_OPERATIONS[event.type]
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


def _parse_refund(event: Event, refund: Refund, sent_at: float) -> Notification:
    """A refund's event by the refund's status: pending (or awaiting the customer) is no
    outcome yet, and the refund stays awaiting confirmation."""
    if refund.intent_id is None:
        raise ValueError("a refund event without its payment_intent")
    succeeded = _REFUND_SUCCEEDED.get(refund.status)
    if succeeded is None:
        return UnusedNotice(event.id, event.type, NOT_FINAL, refund.intent_id,
                            sent_at=float(sent_at))
    return ParsedNotification(event.id, refund.metadata["paysignal_payment_id"],
                              refund.intent_id, Operation.REFUND, succeeded,
                              amount_minor=_iso(refund.amount, refund.currency),
                              request_id=refund.metadata.get("paysignal_request_id"),
                              sent_at=float(sent_at))


def _parse_dispute(event: Event, dispute: Dispute, sent_at: float) -> Notification:
    inquiry = dispute.status.startswith("warning_")
    if event.type == "charge.dispute.closed":
        stage = _CLOSED.get(dispute.status)  # `prevented`, say: nothing paysignal books
    elif inquiry and event.type in _INQUIRY_EVENTS:
        stage = DisputeStage.OPENED
    else:
        stage = _DISPUTE_EVENTS.get(event.type)
    if stage is None:
        return UnusedNotice(event.id, event.type, UNUSED_TYPE, dispute.payment_intent,
                            sent_at=float(sent_at))
    due = dispute.evidence_details.due_by if dispute.evidence_details else None
    return ParsedDispute(event.id, dispute.id, dispute.payment_intent, stage,
                         CURRENCIES.from_provider(dispute.amount, dispute.currency.upper()),
                         dispute.currency.upper(), reason=dispute.reason or "",
                         due_by=float(due) if due else None, sent_at=float(sent_at),
                         inquiry=inquiry)


def _iso(amount: int | None, currency: str | None) -> int | None:
    """A Stripe amount in ISO 4217 minor units (Stripe counts some currencies otherwise)."""
    if amount is None:
        return None
    if currency is None:
        raise ValueError("an amount without its currency")
    return CURRENCIES.from_provider(amount, currency.upper())
