"""Adyen's standard notifications (`notificationItems`) in paysignal's words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.domain.operations import Operation
from engine.providers.adyen.models import NotificationItem
from engine.providers.base import (
    UNUSED_TYPE,
    DisputeStage,
    Notification,
    ParsedDispute,
    ParsedNotification,
    UnusedNotice,
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


def parse_item(raw: dict[str, Any]) -> Notification:
    """A verified item in paysignal's words. Raises ValueError (pydantic's ValidationError is
    one) or KeyError when the item is no notification paysignal can use."""
    item = NotificationItem.model_validate(raw)
    if item.event_code in _DISPUTE_EVENTS:
        return _parse_dispute(item)
    if item.event_code not in _EVENTS:  # REPORT_AVAILABLE, OFFER_CLOSED, …
        return UnusedNotice(item.event_id, item.event_code, UNUSED_TYPE, item.payment_reference,
                            sent_at=_timestamp(item.event_date))
    operation, forced = _EVENTS[item.event_code]
    succeeded = item.success == "true" if forced is None else forced
    request_id = item.additional_data.get("metadata.paysignal_request_id")
    return ParsedNotification(
        item.event_id, item.merchant_reference, item.payment_reference, operation, succeeded,
        amount_minor=item.amount.minor if operation is not Operation.VOID else None,
        request_id=request_id if operation is Operation.AUTHORIZE else None,
        sent_at=_timestamp(item.event_date))


def _parse_dispute(item: NotificationItem) -> ParsedDispute:
    extra = item.additional_data
    due = extra.get("defensePeriodEndsAt")
    # the dispute is known by the payment's reference and its own (the chargeback's) reference
    payment = item.payment_reference
    return ParsedDispute(
        item.event_id, extra.get("disputePspReference") or f"{payment}-chargeback", payment,
        _DISPUTE_EVENTS[item.event_code], item.amount.minor, item.amount.currency,
        payment_ref=item.merchant_reference,
        reason=item.reason or extra.get("chargebackReasonCode") or "",
        due_by=_timestamp(due) if due else None, sent_at=_timestamp(item.event_date))


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()
