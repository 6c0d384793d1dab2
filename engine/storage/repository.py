"""SQL persistence for the payment aggregate, its audit trail, ledger, outbox and idempotency keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from engine.domain.model import CaptureMode, Payment
from engine.domain.operations import Operation
from engine.domain.states import PaymentState
from engine.exceptions import PaysignalError
from engine.observability.tracing import tracer
from engine.storage.tables import (
    idempotency_keys,
    journal_entries,
    journal_transactions,
    outbox,
    payment_transitions,
    payments,
    provider_attempts,
)


class ConcurrentUpdateError(PaysignalError):
    """Another request changed the payment first; nothing was written."""


class LockLostError(PaysignalError):
    """This request's hold on its idempotency key was taken over after the lock timeout."""


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


_PAYMENT_FIELDS = (
    "id", "merchant_id", "amount_minor", "currency", "provider", "reference", "capture_mode",
    "state", "captured_minor", "refunded_minor", "fee_minor", "provider_reference",
    "pending_operation", "pending_amount_minor", "pending_request_id", "decline_reason",
    "created_at", "updated_at", "version", "method_type", "customer_action",
)
_MUTABLE_FIELDS = tuple(f for f in _PAYMENT_FIELDS
                        if f not in ("id", "merchant_id", "amount_minor", "currency", "provider",
                                     "reference", "capture_mode", "created_at", "version",
                                     "method_type"))


# Statements built once: constructing them per call cost more than executing them.
_INSERT_PAYMENT = insert(payments)
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
    row["customer_action"] = (json.dumps(p.customer_action, sort_keys=True)
                              if p.customer_action else None)
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
    values["customer_action"] = (json.loads(values["customer_action"])
                                 if values["customer_action"] else None)
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


@dataclass(frozen=True, slots=True)
class KeyUpdate:
    """Move an idempotency record to its next recovery point (and finish it with a response)."""

    key_id: str
    token: str
    recovery_point: str
    now: datetime
    response: tuple[int, str] | None = None


_CLAIM_KEY = {
    name: dialect.insert(idempotency_keys)
    .on_conflict_do_nothing(index_elements=["merchant_id", "key"])
    .returning(idempotency_keys.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_KEY_COLUMNS = tuple(c.name for c in idempotency_keys.columns)


class PaymentRepository:
    """The payment aggregate and idempotency records, inside one transaction (its connection
    belongs to a unit of work, engine.payments.unit_of_work)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- payments ------------------------------------------------------------------------

    def flush(self, payment: Payment, *, new: bool = False,
              key: KeyUpdate | None = None, attempts: list[dict[str, Any]] | None = None) -> None:
        """Write one phase: the payment (insert, or update guarded by its version), its collected
        audit rows, outbox events and journal, the provider attempts and the key's recovery point.
        Raises (and the caller's transaction rolls back) if the payment or the key moved on."""
        self._flush_rows(payment, new=new, key=key, attempts=attempts)

    def _flush_rows(self, payment: Payment, *, new: bool,
                    key: KeyUpdate | None = None, attempts: list[dict[str, Any]] | None = None,
                    claim: dict[str, Any] | None = None) -> bool:
        """False only when `claim` is given and the key already existed (then nothing is written)."""
        row = _payment_row(payment)
        if not new:
            row["version"] = payment.version + 1
        rows: dict[str, list[dict[str, Any]]] = {
            "transitions": [{"payment_id": t.payment_id, "from_state": t.from_state.value,
                             "to_state": t.to_state.value, "reason": t.reason[:255],
                             "actor": t.actor, "at": t.at, "trace_id": t.trace_id}
                            for t in payment.new_transitions],
            "outbox": [{"event_id": e.event_id, "payment_id": e.payment_id, "name": e.name,
                        "payload": json.dumps(e.payload, sort_keys=True),
                        "occurred_at": e.occurred_at} for e in payment.new_events],
            "journal_transactions": [{"id": j.id, "payment_id": j.payment_id, "kind": j.kind,
                                      "currency": j.currency, "at": j.at}
                                     for j in payment.new_journal],
            "journal_entries": [{"transaction_id": j.id, "account": e.account, "side": e.side,
                                 "amount_minor": e.amount_minor}
                                for j in payment.new_journal for e in j.entries],
            "provider_attempts": attempts or [],
        }
        # Audit rows, ledger entries and outbox events are written together (one statement on
        # PostgreSQL), so one span covers them; its attributes say what it wrote.
        with tracer.start_as_current_span("payment.phase.write") as span:
            span.set_attributes({
                "paysignal.recovery_point": key.recovery_point if key else "started",
                "paysignal.audit.rows": len(rows["transitions"]),
                "paysignal.ledger.entries": len(rows["journal_entries"]),
                "paysignal.outbox.events": len(rows["outbox"])})
            if self.conn.dialect.name == "postgresql":
                claimed, payment_rows, key_rows = _flush_postgres(self.conn, row, payment.version, new,
                                                                  key, rows, claim)
                if not claimed:
                    return False
            else:
                payment_rows, key_rows = _flush_generic(self.conn, row, payment.version, new, key,
                                                        rows)
        if payment_rows != 1:
            raise ConcurrentUpdateError(f"payment {payment.id} was changed by another request")
        if key is not None and key_rows != 1:
            raise LockLostError(f"idempotency record {key.key_id} was taken over by another worker")
        payment.drain()
        if not new:
            payment.version += 1
        return True

    def claim_key_for_new_payment(self, values: dict[str, Any], now: datetime,
                                  payment: Payment) -> KeyRecord | None:
        """claim_key, and if the key is new, write the new payment's phase 1 in the same
        transaction (on PostgreSQL in the same statement). Returns the existing record if not."""
        if self.conn.dialect.name == "postgresql":
            key_params = {f"k_{c}": values.get(c) for c in _KEY_COLUMNS}
            if self._flush_rows(payment, new=True, claim=key_params):
                return None
        existing = self.claim_key(values, now)
        if existing is None:
            self.flush(payment, new=True)
        return existing

    def get(self, payment_id: str, merchant_id: str | None = None,
            ) -> Payment | None:
        query = select(payments).where(payments.c.id == payment_id)
        if merchant_id is not None:
            query = query.where(payments.c.merchant_id == merchant_id)
        row = self.conn.execute(query).first()
        return _payment_from_row(row) if row else None

    def in_state(self, state: PaymentState, limit: int = 1000) -> list[Payment]:
        rows = self.conn.execute(select(payments).where(payments.c.state == state.value)
                            .order_by(payments.c.updated_at, payments.c.id).limit(limit)).all()
        return [_payment_from_row(r) for r in rows]

    # --- idempotency keys ----------------------------------------------------------------

    def claim_key(self, values: dict[str, Any], now: datetime) -> KeyRecord | None:
        """Insert the key; None if it is new, else the existing record, locked for this transaction."""
        where = and_(idempotency_keys.c.merchant_id == values["merchant_id"],
                     idempotency_keys.c.key == values["key"])
        params = {c: values.get(c) for c in _KEY_COLUMNS}
        for _ in range(2):
            if self.conn.execute(_CLAIM_KEY[self.conn.dialect.name], params).first() is not None:
                return None
            row = self.conn.execute(select(idempotency_keys).where(where).with_for_update()).first()
            if row is None:
                continue  # deleted by expiry between the two statements
            record = _key_from_row(row)
            if record.finished_at is not None and record.expires_at <= now:
                self.conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == record.id))
                continue  # an expired key is a new key
            return record
        raise ConcurrentUpdateError(f"idempotency key {values['key']!r} churned; retry")

    def lock_key(self, key_id: str) -> KeyRecord | None:
        """The record, locked until the transaction ends (None if it is gone)."""
        row = self.conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.id == key_id).with_for_update()).first()
        return _key_from_row(row) if row else None

    def key_by_id(self, key_id: str) -> KeyRecord | None:
        row = self.conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.id == key_id)).first()
        return _key_from_row(row) if row else None

    def find_key(self, merchant_id: str, key: str) -> KeyRecord | None:
        row = self.conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.merchant_id == merchant_id, idempotency_keys.c.key == key)).first()
        return _key_from_row(row) if row else None

    def take_over_key(self, record: KeyRecord, token: str, now: datetime) -> None:
        self.conn.execute(update(idempotency_keys).where(idempotency_keys.c.id == record.id)
                     .values(locked_at=now, lock_token=token))

    def abandoned_keys(self, locked_before: datetime, limit: int = 100,
                       ) -> list[KeyRecord]:
        rows = self.conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.finished_at.is_(None),
            idempotency_keys.c.locked_at < locked_before).order_by(idempotency_keys.c.locked_at)
            .limit(limit)).all()
        return [_key_from_row(r) for r in rows]

    def delete_expired_keys(self, now: datetime) -> int:
        result = self.conn.execute(delete(idempotency_keys).where(
            idempotency_keys.c.expires_at <= now, idempotency_keys.c.finished_at.is_not(None)))
        return int(result.rowcount)


_FLUSH_TABLES = {
    "transitions": (payment_transitions, ("payment_id", "from_state", "to_state", "reason",
                                          "actor", "at", "trace_id")),
    "outbox": (outbox, ("event_id", "payment_id", "name", "payload", "occurred_at")),
    "journal_transactions": (journal_transactions, ("id", "payment_id", "kind", "currency", "at")),
    "journal_entries": (journal_entries, ("transaction_id", "account", "side", "amount_minor")),
    "provider_attempts": (provider_attempts, ("payment_id", "provider", "operation", "attempt",
                                              "request_id", "outcome", "raw_status",
                                              "duration_ms", "at")),
}


def _flush_generic(conn: Connection, row: dict[str, Any], version: int, new: bool,
                   key: KeyUpdate | None, rows: dict[str, list[dict[str, Any]]]) -> tuple[int, int]:
    """Statement by statement (SQLite, and the reference behaviour)."""
    if new:
        conn.execute(_INSERT_PAYMENT, row)
        payment_rows = 1
    else:
        params = {f"v_{f}": row[f] for f in _MUTABLE_FIELDS}
        params.update(v_version=row["version"], match_id=row["id"], match_version=version)
        payment_rows = conn.execute(_UPDATE_PAYMENT, params).rowcount
    for name, (table, _cols) in _FLUSH_TABLES.items():
        if rows[name]:
            conn.execute(insert(table), rows[name])
    key_rows = 0
    if key is not None:
        params = {"match_id": key.key_id, "match_token": key.token, "v_point": key.recovery_point}
        if key.response:
            params.update(v_code=key.response[0], v_body=key.response[1], v_now=key.now)
        key_rows = conn.execute(_FINISH_KEY if key.response else _ADVANCE_KEY, params).rowcount
    return payment_rows, key_rows


_PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect classes are untyped


def _pg_type(table: Any, column: str) -> str:
    compiled = str(table.c[column].type.compile(dialect=_PG_DIALECT))
    return {"VARCHAR": "text", "TEXT": "text", "BIGINT": "bigint", "INTEGER": "integer",
            "TIMESTAMP": "timestamptz"}[compiled.split("(")[0].split(" ")[0]]


_PG_FLUSH_SQL: dict[tuple[bool, str, bool], str] = {}


def _pg_flush_sql(new: bool, key_mode: str, claim: bool) -> str:
    """One statement per phase: data-modifying CTEs, each table's rows arriving as one JSON
    document, so the text never changes with the row counts and PostgreSQL prepares it once.
    With `claim`, the idempotency key is inserted first and everything else only if it was new."""
    cached = _PG_FLUSH_SQL.get((new, key_mode, claim))
    if cached:
        return cached
    ctes = []
    only_if_claimed = ""
    if claim:
        key_cols = ", ".join(_KEY_COLUMNS)
        ctes.append(f"c AS (INSERT INTO idempotency_keys ({key_cols}) VALUES "
                    f"({', '.join(f'%(k_{c})s' for c in _KEY_COLUMNS)}) "
                    "ON CONFLICT (merchant_id, key) DO NOTHING RETURNING 1)")
        only_if_claimed = " WHERE EXISTS (SELECT 1 FROM c)"
    if new:
        payment_sql = (f"INSERT INTO payments ({', '.join(_PAYMENT_FIELDS)}) SELECT "
                       f"{', '.join(f'%(p_{c})s' for c in _PAYMENT_FIELDS)}{only_if_claimed} "
                       "RETURNING 1")
    else:
        sets = ", ".join(f"{c} = %(p_{c})s" for c in (*_MUTABLE_FIELDS, "version"))
        payment_sql = (f"UPDATE payments SET {sets} WHERE id = %(p_id)s "
                       "AND version = %(match_version)s RETURNING 1")
    ctes.append(f"p AS ({payment_sql})")
    for i, (_name, (table, cols)) in enumerate(_FLUSH_TABLES.items()):
        shape = ", ".join(f"{c} {_pg_type(table, c)}" for c in cols)
        ctes.append(f"t{i} AS (INSERT INTO {table.name} ({', '.join(cols)}) SELECT {', '.join(cols)}"
                    f" FROM json_to_recordset(%(r{i})s::json) AS x({shape}){only_if_claimed})")
    if key_mode == "advance":
        ctes.append("k AS (UPDATE idempotency_keys SET recovery_point = %(k_point)s "
                    "WHERE id = %(k_id)s AND lock_token = %(k_token)s RETURNING 1)")
    elif key_mode == "finish":
        ctes.append("k AS (UPDATE idempotency_keys SET recovery_point = %(k_point)s, "
                    "response_code = %(k_code)s, response_body = %(k_body)s, "
                    "finished_at = %(k_now)s, locked_at = NULL, lock_token = NULL "
                    "WHERE id = %(k_id)s AND lock_token = %(k_token)s RETURNING 1)")
    key_count = "(SELECT count(*) FROM k)" if key_mode != "none" else "0"
    claimed = "(SELECT count(*) FROM c)" if claim else "1"
    sql = f"WITH {', '.join(ctes)} SELECT {claimed}, (SELECT count(*) FROM p), {key_count}"
    _PG_FLUSH_SQL[(new, key_mode, claim)] = sql
    return sql


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _flush_postgres(conn: Connection, row: dict[str, Any], version: int, new: bool,
                    key: KeyUpdate | None, rows: dict[str, list[dict[str, Any]]],
                    claim: dict[str, Any] | None) -> tuple[bool, int, int]:
    params: dict[str, Any] = {f"p_{c}": v for c, v in row.items()}
    params["match_version"] = version
    for i, name in enumerate(_FLUSH_TABLES):
        params[f"r{i}"] = json.dumps(rows[name], default=_json_default)
    key_mode = "none"
    if key is not None:
        key_mode = "finish" if key.response else "advance"
        params.update(k_id=key.key_id, k_token=key.token, k_point=key.recovery_point)
        if key.response:
            params.update(k_code=key.response[0], k_body=key.response[1], k_now=key.now)
    if claim:
        params.update(claim)
    sql = _pg_flush_sql(new, key_mode, claim is not None)
    # the driver's cursor, inside the connection's transaction: three counts need none of
    # SQLAlchemy's result machinery, which cost more than the statement's own client time
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        counts = cursor.fetchone()
        assert counts is not None  # the statement's final SELECT returns one row
        claimed, payment_rows, key_rows = counts
    finally:
        cursor.close()
    return bool(claimed), int(payment_rows), int(key_rows)
