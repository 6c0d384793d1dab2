"""Provider notification (webhook) ingestion.

Verified by the provider's signature and replay window, deduplicated by provider event id, and
stored whatever happens next. A notification only ever settles a payment whose outcome is
`unknown` for that very operation; anything else is recorded and never moves a payment (so an
out-of-order or late notification cannot send it backwards). One for a payment we do not know is
kept as `unmatched`, for reconciliation."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime

from engine.domain.model import Payment
from engine.domain.operations import Operation
from engine.domain.states import PaymentState
from engine.domain.text import is_identifier
from engine.exceptions import PaysignalError, ProviderNotFoundError
from engine.payments.service import PaymentService
from engine.providers.base import (
    OutcomeKind,
    ParsedNotification,
    ProviderOutcome,
    WebhookSignatureError,
)
from engine.storage.sql import insert_ignoring_conflicts
from engine.storage.tables import webhook_events

log = logging.getLogger("paysignal.webhooks")
RESULTS = ("settled", "recorded", "duplicate", "unmatched", "bad_signature", "malformed")


class WebhookRejectedError(PaysignalError):
    def __init__(self, result: str, reason: str) -> None:
        self.result = result
        super().__init__(reason)


def tolerance_s() -> float:
    return float(os.environ.get("PAYSIGNAL_WEBHOOK_TOLERANCE_S", "300"))


def ingest(service: PaymentService, provider: str, headers: dict[str, str], body: bytes,
           now: float | None = None) -> str:
    """Process one notification; returns its result. Raises WebhookRejectedError if refused."""
    gateway = service.gateways.get(provider)
    if gateway is None:
        raise ProviderNotFoundError(provider, sorted(service.gateways))
    try:
        gateway.verify(headers, body, time.time() if now is None else now, tolerance_s())
    except WebhookSignatureError as exc:
        service.observer.webhook(provider, "bad_signature")
        _record_rejection(service, provider, "bad_signature")
        raise WebhookRejectedError("bad_signature", str(exc)) from None
    try:
        note: ParsedNotification = gateway.parse_notification(json.loads(body))
    except (ValueError, KeyError, TypeError, IndexError):
        service.observer.webhook(provider, "malformed")
        _record_rejection(service, provider, "malformed")
        raise WebhookRejectedError("malformed", "the notification is not in "
                                   f"{provider}'s format") from None
    sent_at = datetime.fromtimestamp(gateway.signature_parts(
        {k.lower(): v for k, v in headers.items()})[0], UTC)
    result, lag = _apply(service, provider, note, body, sent_at)
    service.observer.webhook(provider, result)
    if lag is not None:
        service.observer.webhook_lag(provider, lag)
    log.info("webhook %s", result, extra={"provider": provider, "outcome": result,
                                          "payment_id": note.payment_ref})
    return result


def _record_rejection(service: PaymentService, provider: str, result: str) -> None:
    """Keep a row for a refused notification (detectors count them); its untrusted body is
    not stored."""
    with service.unit_of_work() as uow:
        uow.conn.execute(webhook_events.insert().values(
            provider=provider, event_id=f"rejected:{uuid.uuid4().hex}", payment_id=None,
            provider_reference=None, operation="-", outcome="-", result=result, body="",
            received_at=service.clock(), sent_at=None))
        uow.commit()


def _apply(service: PaymentService, provider: str, note: ParsedNotification, body: bytes,
           sent_at: datetime) -> tuple[str, float | None]:
    """(result, seconds from signing to processing; None for a duplicate)."""
    at = service.clock()
    settled = None
    with service.unit_of_work() as uow:
        payment = (uow.payments.get(note.payment_ref)
                   if is_identifier(note.payment_ref) else None)
        if payment is not None and payment.provider != provider:
            payment = None
        settles = (payment is not None and payment.state is PaymentState.UNKNOWN
                   and payment.pending_operation is note.operation)
        result = "unmatched" if payment is None else ("settled" if settles else "recorded")
        stmt = insert_ignoring_conflicts(uow.conn, webhook_events, "provider", "event_id")
        inserted = uow.conn.execute(stmt.values(
            provider=provider, event_id=note.event_id[:128],
            payment_id=payment.id if payment else None,
            provider_reference=note.provider_reference[:128], operation=note.operation.value,
            outcome="succeeded" if note.succeeded else "declined", result=result,
            body=body.decode(errors="replace"), received_at=at, sent_at=sent_at,
        ).returning(webhook_events.c.id)).first()
        if inserted is None:
            return "duplicate", None
        if settles and payment is not None:
            kind = OutcomeKind.SUCCEEDED if note.succeeded else OutcomeKind.DECLINED
            outcome = ProviderOutcome(kind, "notification", note.provider_reference,
                                      reason=None if note.succeeded else "declined",
                                      fee_minor=_fee(service, payment, note))
            settled = service.resolver.settle_unknown(uow, payment, outcome, f"webhook:{provider}")
        uow.commit()
    if settled is not None:
        service.resolver.finish(settled)
    return result, max(0.0, (at - sent_at).total_seconds())


def _fee(service: PaymentService, payment: Payment, note: ParsedNotification) -> int:
    gateway = service.gateways[payment.provider]
    if note.operation is Operation.CAPTURE and note.succeeded:
        return gateway.fee_for(payment.pending_amount_minor)
    return 0
