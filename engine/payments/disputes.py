"""Disputes (chargebacks) in the payment's life, from the providers' notifications.

A dispute opens on a captured payment (`disputed`) and ends won (`dispute_won`: withdrawn funds
come back) or lost (`charged_back`: the chargeback stands, in part or whole). Its money moves when
the provider moves it: the disputed amount and the provider's dispute fee leave the provider's
balance when the funds are withdrawn (at once for Stripe and PayPal, at CHARGEBACK for Adyen),
and the amount comes back when the dispute is won. Every step is a state transition (audited),
balanced journal postings and outbox events, in one transaction with the notification's record.
Notifications may come twice, late or out of order: a dispute only moves forward, a decision
that arrives before the dispute's opening opens it first, and one that arrives before the
withdrawal's own notification books the withdrawal too (a decided dispute's funds were taken)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from engine.domain.ledger import dispute_postings
from engine.domain.model import Payment
from engine.domain.states import PaymentState, is_allowed
from engine.payments.unit_of_work import UnitOfWork
from engine.providers.base import DisputeStage, ParsedDispute
from engine.providers.registry import PROVIDERS
from engine.settlement.lines import digest
from engine.storage.tables import disputes, payments

S = PaymentState


@dataclass(frozen=True, slots=True)
class DisputeRecord:
    id: str
    status: str  # open | won | lost
    funds_withdrawn: bool


def find_payment(uow: UnitOfWork, provider: str, note: ParsedDispute) -> Payment | None:
    """The disputed payment: by the provider's reference, else by our id when echoed."""
    found = uow.conn.execute(select(payments.c.id).where(
        payments.c.provider == provider,
        payments.c.provider_reference == note.provider_reference[:128])).scalar()
    payment_id = found or note.payment_ref
    payment = uow.payments.get(payment_id) if payment_id else None
    return payment if payment is not None and payment.provider == provider else None


def apply(uow: UnitOfWork, provider: str, payment: Payment, note: ParsedDispute, actor: str,
          at: datetime) -> bool:
    """Advance the dispute (and the payment) to what the notification says; False when it
    says nothing new."""
    record = _record(uow.conn, provider, note)
    fee = PROVIDERS[provider].pricing().dispute_fee_minor
    moved = False
    if record is None:
        record = _open(uow.conn, provider, payment, note, fee, at)
        _move(payment, S.DISPUTED, f"dispute {note.dispute_ref} opened "
              f"({note.reason or 'no reason given'})", actor, at)
        moved = True
    if record.status != "open":
        return moved  # decided already: a late or repeated notification changes nothing
    # a decision implies the funds were withdrawn (every provider takes them before it decides
    # a chargeback, or holds them when the dispute opens): if the notification that says so is
    # late, the withdrawal is booked now, so the ledger holds both movements in any order
    withdraw = note.stage in (DisputeStage.FUNDS_WITHDRAWN, DisputeStage.LOST, DisputeStage.WON)
    if withdraw and not record.funds_withdrawn:
        payment.new_journal.extend(dispute_postings(payment, True, note.amount_minor, fee, at))
        record = DisputeRecord(record.id, record.status, True)
        payment.announce("DisputeFundsWithdrawn", at, {"dispute": note.dispute_ref,
                                                     "disputed_amount": note.amount_minor,
                                                     "dispute_fee": fee})
        moved = True
    if note.stage is DisputeStage.WON:
        if record.funds_withdrawn:
            payment.new_journal.extend(dispute_postings(payment, False, note.amount_minor, 0,
                                                        at))
        _move(payment, S.DISPUTE_WON, f"dispute {note.dispute_ref} won", actor, at)
        record = DisputeRecord(record.id, "won", record.funds_withdrawn)
        moved = True
    elif note.stage is DisputeStage.LOST:
        _move(payment, S.CHARGED_BACK, f"dispute {note.dispute_ref} lost: "
              f"{note.amount_minor} {note.currency} charged back", actor, at)
        record = DisputeRecord(record.id, "lost", True)
        moved = True
    _save(uow.conn, record, note, at)
    return moved


def _move(payment: Payment, to: PaymentState, reason: str, actor: str, at: datetime) -> None:
    """The payment follows its dispute when the state table allows (a payment refunded in full
    and then disputed keeps its state; the dispute and its money are recorded all the same)."""
    if payment.state is not to and is_allowed(payment.state, to):
        payment.transition(to, reason=reason[:255], actor=actor, at=at)


def _record(conn: Connection, provider: str, note: ParsedDispute) -> DisputeRecord | None:
    row = conn.execute(select(disputes.c.id, disputes.c.status, disputes.c.funds_withdrawn)
                       .where(disputes.c.provider == provider,
                              disputes.c.dispute_ref == note.dispute_ref[:128])).first()
    return DisputeRecord(row.id, row.status, bool(row.funds_withdrawn)) if row else None


def _open(conn: Connection, provider: str, payment: Payment, note: ParsedDispute, fee: int,
          at: datetime) -> DisputeRecord:
    record = DisputeRecord(f"dsp_{digest(provider, note.dispute_ref, length=24).lower()}",
                           "open", False)
    conn.execute(disputes.insert().values(
        id=record.id, provider=provider, dispute_ref=note.dispute_ref[:128],
        payment_id=payment.id, amount_minor=note.amount_minor, currency=note.currency,
        reason=note.reason[:255], status="open", funds_withdrawn=False, fee_minor=fee,
        due_by=_when(note.due_by), opened_at=at, closed_at=None, updated_at=at))
    return record


def _save(conn: Connection, record: DisputeRecord, note: ParsedDispute, at: datetime) -> None:
    values: dict[str, Any] = {"status": record.status, "funds_withdrawn": record.funds_withdrawn,
                              "amount_minor": note.amount_minor, "updated_at": at}
    if record.status != "open":
        values["closed_at"] = at
    if note.due_by is not None:
        values["due_by"] = _when(note.due_by)
    conn.execute(disputes.update().where(disputes.c.id == record.id).values(**values))


def _when(unix: float | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else None
