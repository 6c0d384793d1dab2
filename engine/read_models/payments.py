"""Read side for the API and, later, the dashboard: one payment in full, and filtered lists."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from engine.domain.states import PaymentState
from engine.domain.text import is_identifier
from engine.exceptions import PaymentNotFoundError, ValidationError
from engine.read_models.ledger import entries_for_payment
from engine.storage.repository import utc
from engine.storage.tables import payment_transitions, payments, provider_attempts

MAX_PAGE = 100


def payment_view(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"], "merchant_id": m["merchant_id"], "state": m["state"],
        "amount": m["amount_minor"], "currency": m["currency"], "provider": m["provider"],
        "reference": m["reference"], "capture": m["capture_mode"],
        "captured_amount": m["captured_minor"], "refunded_amount": m["refunded_minor"],
        "provider_reference": m["provider_reference"], "decline_reason": m["decline_reason"],
        "created_at": utc(m["created_at"]).isoformat(),
        **({"customer_action": json.loads(m["customer_action"])}
           if m["customer_action"] else {}),
    }


def payment_detail(engine: Engine, merchant_id: str, payment_id: str) -> dict[str, Any]:
    if not is_identifier(payment_id):
        raise PaymentNotFoundError(payment_id)
    with engine.connect() as conn:
        row = conn.execute(select(payments).where(payments.c.id == payment_id,
                                                  payments.c.merchant_id == merchant_id)).first()
        if row is None:
            raise PaymentNotFoundError(payment_id)
        trail = conn.execute(select(payment_transitions).where(
            payment_transitions.c.payment_id == payment_id).order_by(payment_transitions.c.id)).all()
        attempts = conn.execute(select(provider_attempts).where(
            provider_attempts.c.payment_id == payment_id).order_by(provider_attempts.c.id)).all()
    view = payment_view(row)
    view["audit_trail"] = [{"from": t.from_state, "to": t.to_state, "reason": t.reason,
                            "actor": t.actor, "at": utc(t.at).isoformat(),
                            "trace_id": t.trace_id} for t in trail]
    view["provider_attempts"] = [{"operation": a.operation, "attempt": a.attempt,
                                  "outcome": a.outcome, "raw_status": a.raw_status,
                                  "duration_ms": a.duration_ms,
                                  "at": utc(a.at).isoformat()} for a in attempts]
    view["ledger_entries"] = [{"transaction_id": e["id"], "kind": e["kind"],
                               "currency": e["currency"], "account": e["account"],
                               "side": e["side"], "amount": e["amount_minor"]}
                              for e in entries_for_payment(engine, payment_id)]
    return view


def _encode_cursor(created_at: datetime, payment_id: str) -> str:
    raw = json.dumps([utc(created_at).isoformat(), payment_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, payment_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not is_identifier(str(payment_id)):
            raise ValueError("not an id")
        return datetime.fromisoformat(created_at), str(payment_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ValidationError("cursor", "is not a cursor returned by this API") from None


def list_payments(engine: Engine, merchant_id: str, *, state: str | None = None,
                  provider: str | None = None, created_after: datetime | None = None,
                  limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
    """Newest first; `next_cursor` continues the list (null at the end)."""
    if state is not None and state not in {s.value for s in PaymentState}:
        raise ValidationError("state", f"{state!r} is not a payment state")
    if provider is not None and not is_identifier(provider):
        raise ValidationError("provider", "must be a provider name (letters, digits, - "
                                          "and _)")
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
    query = select(payments).where(payments.c.merchant_id == merchant_id)
    if state:
        query = query.where(payments.c.state == state)
    if provider:
        query = query.where(payments.c.provider == provider)
    if created_after:
        query = query.where(payments.c.created_at > created_after)
    if cursor:
        at, pid = _decode_cursor(cursor)
        query = query.where(or_(payments.c.created_at < at,
                                and_(payments.c.created_at == at, payments.c.id < pid)))
    query = query.order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    page = rows[:limit]
    next_cursor = (_encode_cursor(page[-1].created_at, page[-1].id)
                   if len(rows) > limit else None)
    return {"data": [payment_view(r) for r in page], "next_cursor": next_cursor}
