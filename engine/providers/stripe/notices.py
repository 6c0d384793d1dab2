"""Stripe's events in paysignal's words: payment, refund and dispute notifications."""

from __future__ import annotations

from typing import Any

from engine.domain.operations import Operation
from engine.providers.base import (
    DisputeStage,
    Notification,
    ParsedDispute,
    ParsedNotification,
)

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


def parse_event(event: dict[str, Any], sent_at: float) -> Notification:
    if event["type"].startswith("charge.dispute."):
        return _parse_dispute(event, sent_at)
    operation, succeeded = _EVENT_OPERATIONS[event["type"]]
    obj = event["data"]["object"]
    metadata = obj.get("metadata") or {}
    captured = None
    if operation is Operation.CAPTURE and obj.get("capture_method") != "manual":
        operation, captured = Operation.AUTHORIZE, True  # an automatic-capture intent's one call
    if operation is Operation.REFUND:
        if obj.get("status") == "failed":
            succeeded = False
        return ParsedNotification(event["id"], metadata["paysignal_payment_id"],
                                  obj["payment_intent"], operation, succeeded,
                                  amount_minor=obj["amount"],
                                  request_id=metadata.get("paysignal_request_id"),
                                  sent_at=float(sent_at))
    amount = {Operation.CAPTURE: obj.get("amount_received"),
              Operation.AUTHORIZE: obj.get("amount")}.get(operation, obj.get("amount"))
    if captured:
        amount = obj.get("amount_received")
    request_id = (metadata.get("paysignal_request_id") if operation is Operation.AUTHORIZE
                  else None)  # the intent's metadata names the request that created it
    return ParsedNotification(event["id"], metadata["paysignal_payment_id"], obj["id"],
                              operation, succeeded, amount_minor=amount,
                              request_id=request_id, sent_at=float(sent_at), captured=captured)


def _parse_dispute(event: dict[str, Any], sent_at: float) -> ParsedDispute:
    dispute = event["data"]["object"]
    if event["type"] == "charge.dispute.closed":
        stage = _CLOSED[dispute["status"]]
    else:
        stage = _DISPUTE_EVENTS[event["type"]]
    due = (dispute.get("evidence_details") or {}).get("due_by")
    return ParsedDispute(event["id"], dispute["id"], dispute["payment_intent"], stage,
                         int(dispute["amount"]), str(dispute["currency"]).upper(),
                         reason=str(dispute.get("reason") or ""),
                         due_by=float(due) if due else None, sent_at=float(sent_at))
