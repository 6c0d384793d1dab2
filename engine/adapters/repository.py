"""SQL persistence for the payment aggregate, its audit trail, ledger, outbox and idempotency keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.adapters.tables import (
    idempotency_keys,
    journal_entries,
    journal_transactions,
    outbox,
    payment_transitions,
    payments,
    provider_attempts,
)
from engine.domain.model import CaptureMode, Operation, Payment
from engine.domain.states import PaymentState
from engine.exceptions import PaysignalError


class ConcurrentUpdateError(PaysignalError):
    """Another request changed the payment first; nothing was written."""


class LockLostError(PaysignalError):
    """This request's hold on its idempotency key was taken over after the lock timeout."""


def utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


_PAYMENT_FIELDS = (
    "id", "merchant_id", "amount_minor", "currency", "provider", "reference", "capture_mode",
    "state", "captured_minor", "refunded_minor", "fee_minor", "provider_reference",
    "pending_operation", "pending_amount_minor", "pending_request_id", "decline_reason",
    "created_at", "updated_at", "version",
)
_MUTABLE_FIELDS = tuple(f for f in _PAYMENT_FIELDS
                        if f not in ("id", "merchant_id", "amount_minor", "currency", "provider",
                                     "reference", "capture_mode", "created_at", "version"))


# Statements built once: constructing them per call cost more than executing them.
_INSERT_PAYMENT = insert(payments)
_INSERT_TRANSITIONS = insert(payment_transitions)
_INSERT_OUTBOX = insert(outbox)
_INSERT_JOURNAL_TXNS = insert(journal_transactions)
_INSERT_JOURNAL_ENTRIES = insert(journal_entries)
_INSERT_ATTEMPTS = insert(provider_attempts)
_UPDATE_PAYMENT = (
    update(payments)
    .where(payments.c.id == bindparam("match_id"), payments.c.version == bindparam("match_version"))
    .values({**{f: bindparam(f"v_{f}") for f in _MUTABLE_FIELDS},
             "version": bindparam("v_version")}))
_KEY_MATCH = (idempotency_keys.c.id == bindparam("match_id"),
              idempotency_keys.c.lock_token == bindparam("match_token"))
_ADVANCE_KEY = update(idempotency_keys).where(*_KEY_MATCH).values(
    recovery_point=bindparam("v_point"))
_FINISH_KEY = update(idempotency_keys).where(*_KEY_MATCH).values(
    recovery_point=bindparam("v_point"), response_code=bindparam("v_code"),
    response_body=bindparam("v_body"), finished_at=bindparam("v_now"), locked_at=None,
    lock_token=None)


def _payment_row(p: Payment) -> dict[str, Any]:
    row = {f: getattr(p, f) for f in _PAYMENT_FIELDS}
    row["capture_mode"] = p.capture_mode.value
    row["state"] = p.state.value
    row["pending_operation"] = p.pending_operation.value if p.pending_operation else None
    return row


def _payment_from_row(row: Any) -> Payment:
    m = row._mapping
    values = {f: m[f] for f in _PAYMENT_FIELDS}
    values["capture_mode"] = CaptureMode(values["capture_mode"])
    values["state"] = PaymentState(values["state"])
    values["pending_operation"] = (Operation(values["pending_operation"])
                                   if values["pending_operation"] else None)
    values["created_at"] = utc(values["created_at"])
    values["updated_at"] = utc(values["updated_at"])
    return Payment(**values)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    merchant_id: str
    key: str
    operation: str
    fingerprint: str
    request_params: dict[str, Any]
    recovery_point: str
    locked_at: datetime | None
    lock_token: str | None
    payment_id: str | None
    response_code: int | None
    response_body: str | None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None


def _key_from_row(row: Any) -> KeyRecord:
    m = dict(row._mapping)
    m["request_params"] = json.loads(m["request_params"])
    for f in ("locked_at", "created_at", "expires_at", "finished_at"):
        m[f] = utc(m[f])
    return KeyRecord(**m)


def _dialect_insert(conn: Connection, table: Any) -> Any:
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


class PaymentRepository:
    """Every method works inside the caller's transaction (a Connection from engine.begin())."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- payments ------------------------------------------------------------------------

    def add(self, conn: Connection, payment: Payment) -> None:
        conn.execute(_INSERT_PAYMENT, _payment_row(payment))
        self._write_collected(conn, payment)

    def save(self, conn: Connection, payment: Payment) -> None:
        """Write the payment's changes; fails if someone else changed it since it was read."""
        row = _payment_row(payment)
        params = {f"v_{f}": row[f] for f in _MUTABLE_FIELDS}
        params.update(v_version=payment.version + 1, match_id=payment.id,
                      match_version=payment.version)
        result = conn.execute(_UPDATE_PAYMENT, params)
        if result.rowcount != 1:
            raise ConcurrentUpdateError(f"payment {payment.id} was changed by another request")
        payment.version += 1
        self._write_collected(conn, payment)

    def get(self, conn: Connection, payment_id: str, merchant_id: str | None = None,
            ) -> Payment | None:
        query = select(payments).where(payments.c.id == payment_id)
        if merchant_id is not None:
            query = query.where(payments.c.merchant_id == merchant_id)
        row = conn.execute(query).first()
        return _payment_from_row(row) if row else None

    def in_state(self, conn: Connection, state: PaymentState, limit: int = 1000) -> list[Payment]:
        rows = conn.execute(select(payments).where(payments.c.state == state.value)
                            .order_by(payments.c.updated_at, payments.c.id).limit(limit)).all()
        return [_payment_from_row(r) for r in rows]

    def _write_collected(self, conn: Connection, payment: Payment) -> None:
        transitions, events, journal = payment.drain()
        if transitions:
            conn.execute(_INSERT_TRANSITIONS, [
                {"payment_id": t.payment_id, "from_state": t.from_state.value,
                 "to_state": t.to_state.value, "reason": t.reason[:255], "actor": t.actor,
                 "at": t.at, "trace_id": t.trace_id} for t in transitions])
        if events:
            conn.execute(_INSERT_OUTBOX, [
                {"event_id": e.event_id, "payment_id": e.payment_id, "name": e.name,
                 "payload": json.dumps(e.payload, sort_keys=True), "occurred_at": e.occurred_at}
                for e in events])
        if journal:
            conn.execute(_INSERT_JOURNAL_TXNS, [
                {"id": j.id, "payment_id": j.payment_id, "kind": j.kind, "currency": j.currency,
                 "at": j.at} for j in journal])
            conn.execute(_INSERT_JOURNAL_ENTRIES, [
                {"transaction_id": j.id, "account": e.account, "side": e.side,
                 "amount_minor": e.amount_minor} for j in journal for e in j.entries])

    def record_attempts(self, conn: Connection, attempts: list[dict[str, Any]]) -> None:
        if attempts:
            conn.execute(_INSERT_ATTEMPTS, attempts)

    # --- idempotency keys ----------------------------------------------------------------

    def claim_key(self, conn: Connection, values: dict[str, Any], now: datetime) -> KeyRecord | None:
        """Insert the key; None if it is new, else the existing record, locked for this transaction."""
        where = and_(idempotency_keys.c.merchant_id == values["merchant_id"],
                     idempotency_keys.c.key == values["key"])
        for _ in range(2):
            stmt = (_dialect_insert(conn, idempotency_keys).values(values)
                    .on_conflict_do_nothing(index_elements=["merchant_id", "key"])
                    .returning(idempotency_keys.c.id))
            if conn.execute(stmt).first() is not None:
                return None
            row = conn.execute(select(idempotency_keys).where(where).with_for_update()).first()
            if row is None:
                continue  # deleted by expiry between the two statements
            record = _key_from_row(row)
            if record.finished_at is not None and record.expires_at <= now:
                conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == record.id))
                continue  # an expired key is a new key
            return record
        raise ConcurrentUpdateError(f"idempotency key {values['key']!r} churned; retry")

    def take_over_key(self, conn: Connection, record: KeyRecord, token: str, now: datetime) -> None:
        conn.execute(update(idempotency_keys).where(idempotency_keys.c.id == record.id)
                     .values(locked_at=now, lock_token=token))

    def advance_key(self, conn: Connection, key_id: str, token: str, *, recovery_point: str,
                    now: datetime, response: tuple[int, str] | None = None) -> None:
        """Move the key to its next recovery point; with a response, finish it and drop the lock."""
        params: dict[str, Any] = {"match_id": key_id, "match_token": token,
                                  "v_point": recovery_point}
        if response:
            params.update(v_code=response[0], v_body=response[1], v_now=now)
        result = conn.execute(_FINISH_KEY if response else _ADVANCE_KEY, params)
        if result.rowcount != 1:
            raise LockLostError(f"idempotency record {key_id} was taken over by another worker")

    def abandoned_keys(self, conn: Connection, locked_before: datetime, limit: int = 100,
                       ) -> list[KeyRecord]:
        rows = conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.finished_at.is_(None),
            idempotency_keys.c.locked_at < locked_before).order_by(idempotency_keys.c.locked_at)
            .limit(limit)).all()
        return [_key_from_row(r) for r in rows]

    def delete_expired_keys(self, conn: Connection, now: datetime) -> int:
        result = conn.execute(delete(idempotency_keys).where(
            idempotency_keys.c.expires_at <= now, idempotency_keys.c.finished_at.is_not(None)))
        return int(result.rowcount)

    def count(self, conn: Connection, table: Any, *where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
