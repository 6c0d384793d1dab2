"""PayPal's webhook events in paysignal's words: payment, refund and dispute notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.domain.operations import Operation
from engine.providers.base import (
    DisputeStage,
    Notification,
    ParsedDispute,
    ParsedNotification,
)
from engine.providers.paypal.protocol import minor_of

_EVENTS = {  # event_type -> (operation, succeeded)
    "PAYMENT.AUTHORIZATION.CREATED": (Operation.AUTHORIZE, True),
    "PAYMENT.AUTHORIZATION.VOIDED": (Operation.VOID, True),
    "PAYMENT.CAPTURE.COMPLETED": (Operation.CAPTURE, True),
    "PAYMENT.CAPTURE.DENIED": (Operation.CAPTURE, False),
    "PAYMENT.CAPTURE.REFUNDED": (Operation.REFUND, True),
}


# PayPal holds the disputed amount when the dispute is created; the outcome decides it.
_OUTCOMES = {"RESOLVED_SELLER_FAVOUR": DisputeStage.WON, "CANCELED_BY_BUYER": DisputeStage.WON,
             "RESOLVED_BUYER_FAVOUR": DisputeStage.LOST, "RESOLVED_WITH_PAYOUT": DisputeStage.LOST}


def parse_event(event: dict[str, Any], sent_at: float) -> Notification:
    if event["event_type"].startswith("CUSTOMER.DISPUTE."):
        return _parse_dispute(event, sent_at)
    operation, succeeded = _EVENTS[event["event_type"]]
    resource = event["resource"]
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    captured = None
    if operation is Operation.CAPTURE and "authorization_id" not in related:
        operation, captured = Operation.AUTHORIZE, True  # an intent CAPTURE order's one call
    amount = (minor_of(resource["amount"])
              if operation is not Operation.VOID and "amount" in resource else None)
    reference = resource["id"]
    if operation is Operation.REFUND:  # a refund names its capture in its links
        up = [link["href"] for link in resource.get("links", []) if link.get("rel") == "up"]
        reference = up[0].rstrip("/").rsplit("/", 1)[-1] if up else resource["id"]
    return ParsedNotification(event["id"], resource["custom_id"], reference, operation,
                              succeeded, amount_minor=amount, sent_at=sent_at, captured=captured)


def _parse_dispute(event: dict[str, Any], sent_at: float) -> ParsedDispute:
    dispute = event["resource"]
    [transaction] = dispute["disputed_transactions"][:1]
    stage = DisputeStage.FUNDS_WITHDRAWN
    if event["event_type"] == "CUSTOMER.DISPUTE.RESOLVED":
        stage = _OUTCOMES[dispute["dispute_outcome"]["outcome_code"]]
    due = dispute.get("seller_response_due_date")
    return ParsedDispute(
        event["id"], dispute["dispute_id"], transaction["seller_transaction_id"], stage,
        minor_of(dispute["dispute_amount"]), dispute["dispute_amount"]["currency_code"],
        payment_ref=str(transaction.get("custom") or ""), reason=str(dispute.get("reason", "")),
        due_by=datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp() if due else None,
        sent_at=sent_at)
