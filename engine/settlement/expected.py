"""What each provider should settle, read from our own ledger: captures (with their fees) and
refunds, each expected on the day after it happened (T+1, in UTC). The simulator's files and the
matcher both start from here. A charge's fee is the payment's fee total, which the engine updates
in the same transaction as the provider_fee journal entries it books."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, Engine, Select, literal, select, union_all
from sqlalchemy.sql import ColumnElement

from engine.domain.settlement_lines import CHARGE, CHARGEBACK, CHARGEBACK_REVERSAL, REFUND
from engine.providers.registry import PROVIDERS
from engine.storage.repository import utc
from engine.storage.tables import journal_entries as je
from engine.storage.tables import journal_transactions as jt
from engine.storage.tables import payments

SETTLEMENT_DELAY = timedelta(days=1)
_REFERENCE_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class ExpectedLine:
    provider: str
    provider_reference: str
    payment_id: str
    kind: str  # charge | refund | chargeback | chargeback_reversal
    amount_minor: int  # signed like settlement lines: charges positive, refunds negative
    fee_minor: int
    currency: str
    expected_on: date
    entry_id: str = ""  # the journal transaction this expectation comes from


def _window(first: date, last: date) -> tuple[datetime, datetime]:
    """Journal times whose settlement is expected from `first` to `last` (inclusive)."""
    start = datetime.combine(first - SETTLEMENT_DELAY, time(), tzinfo=UTC)
    return start, start + timedelta(days=(last - first).days + 1)


def _query(provider: str | None, window: tuple[datetime, datetime] | None,
           references: list[str] | None) -> CompoundSelect[Any]:
    """Charges and refunds in one stream ordered by journal time (so by expected day)."""
    filters: list[ColumnElement[bool]] = []
    if provider:
        filters.append(payments.c.provider == provider)
    if window is not None:
        filters += [jt.c.at >= window[0], jt.c.at < window[1]]
    if references is not None:
        filters.append(payments.c.provider_reference.in_(references))
    source = (jt.join(je, je.c.transaction_id == jt.c.id)
              .join(payments, payments.c.id == jt.c.payment_id))

    def lines(kind: str, fee: ColumnElement[int],
              *extra: ColumnElement[bool]) -> Select[tuple[object, ...]]:
        return (select(payments.c.provider, payments.c.provider_reference, jt.c.payment_id,
                       je.c.amount_minor, fee.label("fee"), jt.c.currency, jt.c.at,
                       jt.c.id.label("txn"), jt.c.kind)
                .select_from(source)
                .where(jt.c.kind == kind, je.c.side == "debit", *extra, *filters))

    return union_all(lines("capture", payments.c.fee_minor,
                           je.c.account.startswith("provider_receivable:")),
                     lines("refund", literal(0)),
                     # a dispute's funds withdrawn (its fee is the provider's dispute fee)
                     lines("chargeback", literal(0), je.c.account.startswith("merchant_payable:")),
                     lines("chargeback_reversal", literal(0))).order_by("at", "txn")


# journal kind -> (settlement line kind, sign of the money in the provider's balance)
_KINDS = {"capture": (CHARGE, 1), "refund": (REFUND, -1), "chargeback": (CHARGEBACK, -1),
          "chargeback_reversal": (CHARGEBACK_REVERSAL, 1)}


def _dispute_fee(provider: str) -> int:
    return PROVIDERS[provider].pricing().dispute_fee_minor if provider in PROVIDERS else 0


def iter_expected(engine: Engine, provider: str | None = None, *,
                  days: tuple[date, date] | None = None,
                  references: Iterable[str] | None = None) -> Generator[ExpectedLine]:
    """Expected lines in journal order (so by expected day); optionally only those
    expected within `days` (first, last) or for some provider references. Streams."""
    window = _window(*days) if days else None
    chunks: list[list[str] | None] = [None]
    if references is not None:
        refs = sorted(set(references))
        chunks = [refs[i:i + _REFERENCE_CHUNK] for i in range(0, len(refs), _REFERENCE_CHUNK)]
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # JIT compilation costs more than these queries take to run; a day's worth of
            # lines sorts in memory
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        for chunk in chunks:
            query = _query(provider, window, chunk)
            for r in conn.execution_options(yield_per=20_000).execute(query):
                kind, sign = _KINDS[r[8]]
                fee = (_dispute_fee(r[0]) if kind == CHARGEBACK else int(r[4]))
                yield ExpectedLine(r[0], r[1], r[2], kind, sign * r[3], fee, r[5],
                                   utc(r[6]).date() + SETTLEMENT_DELAY, str(r[7]))


def expected_settlement(engine: Engine, provider: str | None = None, *, on: date | None = None,
                        references: Iterable[str] | None = None) -> list[ExpectedLine]:
    return list(iter_expected(engine, provider, days=(on, on) if on else None,
                              references=references))
