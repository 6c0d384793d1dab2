"""One transaction over everything a payment phase writes: the payment and its audit, ledger,
outbox and provider-attempt rows (through the repository), the idempotency record, and the side
tables (duplicate-risk events, retry refusals). It rolls back unless `commit()` is called."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType

from sqlalchemy import Connection, Engine, RootTransaction, insert

from engine.storage.repository import PaymentRepository
from engine.storage.tables import duplicate_risk_events, retry_refusals


class UnitOfWork:
    """`with UnitOfWork(engine) as uow: ...; uow.commit()`"""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> UnitOfWork:
        self._conn = self.engine.connect()
        try:
            self._transaction = self._conn.begin()
        except BaseException:
            self._conn.close()
            raise
        self.payments = PaymentRepository(self._conn)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._conn is not None and self._transaction is not None
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._conn.close()

    @property
    def conn(self) -> Connection:
        """The transaction's connection, for the tables a caller owns (webhook events)."""
        assert self._conn is not None, "use the unit of work in a with block"
        return self._conn

    def commit(self) -> None:
        assert self._transaction is not None
        self._transaction.commit()

    def record_duplicate_risk(self, *, merchant_id: str, provider: str, outcome: str,
                              payment_id: str | None, at: datetime) -> None:
        """A replay, conflict, in-flight rejection or shadow-mode detection, for the dashboard."""
        self.conn.execute(insert(duplicate_risk_events).values(
            merchant_id=merchant_id, provider=provider, outcome=outcome, payment_id=payment_id,
            at=at))

    def record_retry_refusal(self, *, provider: str, operation: str, payment_id: str,
                             at: datetime) -> None:
        """A retry the retry budget refused, so detectors can alert on it."""
        self.conn.execute(insert(retry_refusals).values(
            provider=provider, operation=operation, payment_id=payment_id, at=at))
