"""Provider notification (webhook) ingestion.

Hostile until verified: a notification is refused unless the provider's signature checks out
within the replay window, and a flood of refusals is cut short (`RejectionLimiter`). Refusals are
counted per provider, minute and reason, never stored one row each. A verified notification is
deduplicated by the provider's event id and stored (its body capped in size) whatever happens
next. It settles a payment only when it answers that payment's pending operation exactly: the
same operation, the same amount and, when the provider echoes it, the same request id; anything
else is recorded and never moves a payment, so a late or out-of-order notification cannot settle
the wrong operation or send a payment backwards. One for a payment we do not know is kept as
`unmatched`, for reconciliation. The sender is never told which of these happened."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

from engine.domain.model import CaptureMode, Payment
from engine.domain.operations import Operation
from engine.domain.states import AWAITING_ANSWER_STATES
from engine.domain.text import is_identifier
from engine.exceptions import PaysignalError, ProviderNotFoundError
from engine.payments import disputes
from engine.payments.service import PaymentService
from engine.providers.base import (
    Notification,
    OutcomeKind,
    ParsedDispute,
    ParsedNotification,
    ProviderOutcome,
    UnusedNotice,
    WebhookSignatureError,
)
from engine.storage.sql import increment, insert_ignoring_conflicts
from engine.storage.tables import webhook_events, webhook_rejections

log = logging.getLogger("paysignal.webhooks")
RESULTS = ("settled", "recorded", "ignored", "duplicate", "unmatched", "bad_signature",
           "malformed", "rate_limited")
MAX_STORED_BODY = 16 * 1024  # characters of a verified notification kept for reconciliation


class WebhookRejectedError(PaysignalError):
    def __init__(self, result: str, reason: str) -> None:
        self.result = result
        super().__init__(reason)


class RejectionLimiter:
    """Refuses a provider's notifications without verifying them once it has sent `per_minute`
    refused ones in the current minute. A real provider retries later; a forger stops costing
    signature checks and writes."""

    def __init__(self, per_minute: int = 60) -> None:
        self.per_minute = per_minute
        self._counts: dict[tuple[str, int], int] = defaultdict(int)
        self._lock = threading.Lock()

    def allows(self, provider: str, now: float) -> bool:
        with self._lock:
            return self._counts[(provider, int(now // 60))] < self.per_minute

    def rejected(self, provider: str, now: float) -> None:
        minute = int(now // 60)
        with self._lock:
            self._counts[(provider, minute)] += 1
            for key in [k for k in self._counts if k[1] < minute]:
                del self._counts[key]


def ingest(service: PaymentService, provider: str, headers: dict[str, str], body: bytes,
           now: float | None = None, limiter: RejectionLimiter | None = None) -> str:
    """Process one notification; returns its result. Raises WebhookRejectedError if refused."""
    gateway = service.gateways.get(provider)
    if gateway is None:
        raise ProviderNotFoundError(provider, sorted(service.gateways))
    now = time.time() if now is None else now
    if limiter is not None and not limiter.allows(provider, now):
        service.observer.webhook(provider, "rate_limited")
        raise WebhookRejectedError("rate_limited", "too many refused notifications; retry later")
    try:
        notes = [_well_formed(n) for n in gateway.verify_notifications(
            {k.lower(): v for k, v in headers.items()}, body, now,
            service.settings.webhook_tolerance_s)]
    except WebhookSignatureError as exc:
        _reject(service, limiter, provider, "bad_signature", now)
        raise WebhookRejectedError("bad_signature", str(exc)) from None
    except Exception:  # in the provider's format or not, however it fails to parse
        _reject(service, limiter, provider, "malformed", now)
        raise WebhookRejectedError("malformed", "the notification is not in "
                                   f"{provider}'s format") from None
    results = []
    for note in notes:
        sent_at = datetime.fromtimestamp(note.sent_at if note.sent_at is not None else now, UTC)
        if isinstance(note, UnusedNotice):
            result, lag = _keep(service, provider, note, body, sent_at)
        elif isinstance(note, ParsedDispute):
            result, lag = _apply_dispute(service, provider, note, body, sent_at)
        else:
            result, lag = _apply(service, provider, note, body, sent_at)
        service.observer.webhook(provider, result)
        if lag is not None:
            service.observer.webhook_lag(provider, lag)
        log.info("webhook %s", result, extra={
            "provider": provider, "outcome": result,
            "payment_id": "" if isinstance(note, UnusedNotice) else note.payment_ref[:64]})
        results.append(result)
    return results[0] if len(results) == 1 else ",".join(results)


def _well_formed(note: Notification) -> Notification:
    if isinstance(note, UnusedNotice):
        ids: tuple[object, ...] = (note.event_id,)
    elif isinstance(note, ParsedDispute):
        ids = (note.event_id, note.dispute_ref, note.provider_reference)
    else:
        ids = (note.event_id, note.payment_ref, note.provider_reference)
    for value in ids:
        if not isinstance(value, str) or not value:
            raise ValueError("a notification's ids must be non-empty strings")
    if isinstance(note, ParsedDispute) and (not isinstance(note.amount_minor, int)
                                            or note.amount_minor <= 0):
        raise ValueError("a dispute's amount must be a positive integer")
    if isinstance(note, UnusedNotice):
        return note
    if note.amount_minor is not None and (not isinstance(note.amount_minor, int)
                                          or isinstance(note.amount_minor, bool)):
        raise ValueError("a notification's amount must be an integer")
    return note


def _reject(service: PaymentService, limiter: RejectionLimiter | None, provider: str,
            reason: str, now: float) -> None:
    """Count a refused notification (detectors and the dashboard read the counts); its
    untrusted body is never stored."""
    service.observer.webhook(provider, reason)
    if limiter is not None:
        limiter.rejected(provider, now)
    minute = datetime.fromtimestamp(now - now % 60, UTC)
    with service.unit_of_work() as uow:
        increment(uow.conn, webhook_rejections,
                  {"provider": provider, "minute": minute, "reason": reason})
        uow.commit()


def _keep(service: PaymentService, provider: str, note: UnusedNotice, body: bytes,
          sent_at: datetime) -> tuple[str, float | None]:
    """A verified notice paysignal does not act on: stored once (by event id) for the record
    and for reconciliation, and acknowledged; it moves nothing."""
    at = service.clock()
    with service.unit_of_work() as uow:
        stmt = insert_ignoring_conflicts(uow.conn, webhook_events, "provider", "event_id")
        inserted = uow.conn.execute(stmt.values(
            provider=provider, event_id=note.event_id[:128], payment_id=None,
            provider_reference=note.provider_reference[:128] or None, operation="none",
            outcome=note.why, result="ignored",
            body=body.decode(errors="replace")[:MAX_STORED_BODY], received_at=at,
            sent_at=sent_at,
        ).returning(webhook_events.c.id)).first()
        if inserted is None:
            return "duplicate", None
        uow.commit()
    return "ignored", max(0.0, (at - sent_at).total_seconds())


def answers(payment: Payment, note: ParsedNotification) -> bool:
    """Whether the notification answers this payment's pending operation, and no other."""
    if (payment.state not in AWAITING_ANSWER_STATES
            or payment.pending_operation is not note.operation):
        return False
    if note.amount_minor is not None and note.amount_minor != payment.pending_amount_minor:
        return False
    return note.request_id is None or note.request_id == payment.pending_request_id


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
        settles = payment is not None and answers(payment, note)
        result = "unmatched" if payment is None else ("settled" if settles else "recorded")
        stmt = insert_ignoring_conflicts(uow.conn, webhook_events, "provider", "event_id")
        inserted = uow.conn.execute(stmt.values(
            provider=provider, event_id=note.event_id[:128],
            payment_id=payment.id if payment else None,
            provider_reference=note.provider_reference[:128], operation=note.operation.value,
            outcome="succeeded" if note.succeeded else "declined", result=result,
            body=body.decode(errors="replace")[:MAX_STORED_BODY], received_at=at,
            sent_at=sent_at,
        ).returning(webhook_events.c.id)).first()
        if inserted is None:
            return "duplicate", None
        if settles and payment is not None:
            kind = OutcomeKind.SUCCEEDED if note.succeeded else OutcomeKind.DECLINED
            captured = _captured(payment, note)
            outcome = ProviderOutcome(kind, "notification", note.provider_reference,
                                      reason=None if note.succeeded else "declined",
                                      fee_minor=_fee(service, payment, note, captured),
                                      captured=captured)
            settled = service.resolver.settle_unknown(uow, payment, outcome, f"webhook:{provider}")
        uow.commit()
    if settled is not None:
        service.resolver.finish(settled)
    return result, max(0.0, (at - sent_at).total_seconds())


def _apply_dispute(service: PaymentService, provider: str, note: ParsedDispute, body: bytes,
                   sent_at: datetime) -> tuple[str, float | None]:
    """A dispute notification: recorded once (by event id); it moves the dispute, the payment
    and the ledger when it says something new about a payment we know."""
    at = service.clock()
    with service.unit_of_work() as uow:
        payment = disputes.find_payment(uow, provider, note)
        stmt = insert_ignoring_conflicts(uow.conn, webhook_events, "provider", "event_id")
        moved = False
        if payment is not None:
            moved = disputes.apply(uow, provider, payment, note, f"webhook:{provider}", at)
        result = "unmatched" if payment is None else ("settled" if moved else "recorded")
        inserted = uow.conn.execute(stmt.values(
            provider=provider, event_id=note.event_id[:128],
            payment_id=payment.id if payment else None,
            provider_reference=note.provider_reference[:128], operation="dispute",
            outcome=note.stage.value, result=result,
            body=body.decode(errors="replace")[:MAX_STORED_BODY], received_at=at,
            sent_at=sent_at,
        ).returning(webhook_events.c.id)).first()
        if inserted is None:
            return "duplicate", None  # nothing written: the transaction is rolled back
        if payment is not None and moved:
            uow.payments.flush(payment)
        uow.commit()
    return result, max(0.0, (at - sent_at).total_seconds())


def _captured(payment: Payment, note: ParsedNotification) -> bool:
    """Whether an authorization's notification also tells of its capture: as the provider
    says, or else as the request asked (an automatic-capture payment's)."""
    if note.operation is not Operation.AUTHORIZE or not note.succeeded:
        return False
    if note.captured is not None:
        return note.captured
    return payment.capture_mode is CaptureMode.AUTOMATIC


def _fee(service: PaymentService, payment: Payment, note: ParsedNotification,
         captured: bool) -> int:
    gateway = service.gateways[payment.provider]
    if note.succeeded and (note.operation is Operation.CAPTURE or captured):
        return gateway.fee_for(payment.pending_amount_minor, payment.currency)
    return 0
