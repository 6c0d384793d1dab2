"""Double-entry posting rules. Each money movement is one balanced transaction per currency."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from engine.domain.ids import new_random_id
from engine.domain.operations import Operation
from engine.exceptions import LedgerImbalanceError


class Postable(Protocol):
    """What the posting rules read of a payment."""

    @property
    def id(self) -> str: ...
    @property
    def merchant_id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def amount_minor(self) -> int: ...

Side = Literal["debit", "credit"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    account: str
    side: Side
    amount_minor: int


@dataclass(frozen=True, slots=True)
class JournalTransaction:
    id: str
    payment_id: str
    kind: str
    currency: str
    at: datetime
    entries: tuple[JournalEntry, ...]

    def __post_init__(self) -> None:
        debits = sum(e.amount_minor for e in self.entries if e.side == "debit")
        credits = sum(e.amount_minor for e in self.entries if e.side == "credit")
        if debits != credits or not self.entries:
            raise LedgerImbalanceError(self.currency, debits, credits)
        if any(e.amount_minor <= 0 for e in self.entries):
            raise LedgerImbalanceError(self.currency, debits, credits)


def accounts(provider: str, merchant_id: str) -> dict[str, str]:
    return {
        "hold": f"authorization_holds:{provider}",
        "hold_offset": f"authorization_hold_offsets:{provider}",
        "receivable": f"provider_receivable:{provider}",
        "payable": f"merchant_payable:{merchant_id}",
        "fees": f"provider_fees:{provider}",
    }


def _txn(payment: Postable, kind: str, at: datetime,
         moves: list[tuple[str, str, int]]) -> JournalTransaction:
    """moves: (debit account, credit account, amount) pairs; zero amounts are dropped."""
    entries: list[JournalEntry] = []
    for debit, credit, amount in moves:
        if amount > 0:
            entries += [JournalEntry(debit, "debit", amount), JournalEntry(credit, "credit", amount)]
    return JournalTransaction(new_random_id("jtx"), payment.id, kind, payment.currency, at,
                              tuple(entries))


def postings_for(payment: Postable, operation: Operation, amount: int, fee_minor: int,
                 at: datetime, captured: bool = False) -> list[JournalTransaction]:
    """The journal transactions of one successful provider operation on a payment. An
    authorization that also `captured` books the receivable at once, with no hold."""
    a = accounts(payment.provider, payment.merchant_id)
    if operation is Operation.AUTHORIZE and captured:
        out = [_txn(payment, "capture", at, [(a["receivable"], a["payable"], amount)])]
        if fee_minor:
            out.append(_txn(payment, "provider_fee", at, [(a["fees"], a["receivable"], fee_minor)]))
        return out
    if operation is Operation.AUTHORIZE:
        return [_txn(payment, "authorization_hold", at, [(a["hold"], a["hold_offset"], amount)])]
    if operation is Operation.VOID:
        return [_txn(payment, "void", at, [(a["hold_offset"], a["hold"], payment.amount_minor)])]
    if operation is Operation.CAPTURE:
        # Release the whole hold (a partial capture frees the rest) and book the receivable.
        out = [_txn(payment, "capture", at, [
            (a["hold_offset"], a["hold"], payment.amount_minor),
            (a["receivable"], a["payable"], amount),
        ])]
        if fee_minor:
            out.append(_txn(payment, "provider_fee", at, [(a["fees"], a["receivable"], fee_minor)]))
        return out
    return [_txn(payment, "refund", at, [(a["payable"], a["receivable"], amount)])]


def dispute_postings(payment: Postable, withdrawn: bool, amount: int, fee_minor: int,
                     at: datetime) -> list[JournalTransaction]:
    """A dispute's money: its amount `withdrawn` from what the provider owes us (what we owe
    the merchant shrinks with it) and the provider's dispute fee; or, when won, the amount
    reinstated (the fee is not returned)."""
    a = accounts(payment.provider, payment.merchant_id)
    if withdrawn:
        return [_txn(payment, "chargeback", at, [(a["payable"], a["receivable"], amount),
                                                 (a["fees"], a["receivable"], fee_minor)])]
    return [_txn(payment, "chargeback_reversal", at, [(a["receivable"], a["payable"], amount)])]


def imbalances(rows: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, str], int]:
    """(transaction id, currency, side, amount) rows -> {(txn, currency): debits - credits} != 0."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for txn_id, currency, side, amount in rows:
        totals[(txn_id, currency)] += amount if side == "debit" else -amount
    return {k: v for k, v in totals.items() if v}
