"""Adyen's standard notifications (`notificationItems`) in paysignal's words."""

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

_EVENTS = {"AUTHORISATION": (Operation.AUTHORIZE, None), "CAPTURE": (Operation.CAPTURE, None),
           "CAPTURE_FAILED": (Operation.CAPTURE, False), "CANCELLATION": (Operation.VOID, None),
           "REFUND": (Operation.REFUND, None), "REFUND_FAILED": (Operation.REFUND, False)}


# NOTIFICATION_OF_CHARGEBACK tells of a dispute before any money moves; CHARGEBACK debits it;
# CHARGEBACK_REVERSED returns it (won); SECOND_CHARGEBACK takes it again for good (lost).
_DISPUTE_EVENTS = {"NOTIFICATION_OF_CHARGEBACK": DisputeStage.OPENED,
                   "CHARGEBACK": DisputeStage.FUNDS_WITHDRAWN,
                   "CHARGEBACK_REVERSED": DisputeStage.WON,
                   "SECOND_CHARGEBACK": DisputeStage.LOST}


def parse_item(item: dict[str, Any]) -> Notification:
    if item["eventCode"] in _DISPUTE_EVENTS:
        return _parse_dispute(item)
    operation, forced = _EVENTS[item["eventCode"]]
    succeeded = item["success"] == "true" if forced is None else forced
    payment_reference = item.get("originalReference") or item["pspReference"]
    sent_at = datetime.fromisoformat(item["eventDate"]).timestamp()
    request_id = (item.get("additionalData") or {}).get("metadata.paysignal_request_id")
    return ParsedNotification(
        f"{item['pspReference']}:{item['eventCode']}:{item['success']}",
        item["merchantReference"], payment_reference, operation, succeeded,
        amount_minor=int(item["amount"]["value"]) if operation is not Operation.VOID else None,
        request_id=request_id if operation is Operation.AUTHORIZE else None, sent_at=sent_at)


def _parse_dispute(item: dict[str, Any]) -> ParsedDispute:
    extra = item.get("additionalData") or {}
    due = extra.get("defensePeriodEndsAt")
    # the dispute is known by the payment's reference and its own (the chargeback's) reference
    payment = item.get("originalReference") or item["pspReference"]
    return ParsedDispute(
        f"{item['pspReference']}:{item['eventCode']}:{item['success']}",
        str(extra.get("disputePspReference") or f"{payment}-chargeback"), payment,
        _DISPUTE_EVENTS[item["eventCode"]], int(item["amount"]["value"]),
        str(item["amount"]["currency"]), payment_ref=str(item.get("merchantReference") or ""),
        reason=str(item.get("reason") or extra.get("chargebackReasonCode") or ""),
        due_by=datetime.fromisoformat(due).timestamp() if due else None,
        sent_at=datetime.fromisoformat(item["eventDate"]).timestamp())
