"""Disputes (chargebacks) in the payment's life, from the providers' notifications.

A dispute opens on a captured payment (`disputed`) and ends won (`dispute_won`: withdrawn funds
come back) or lost (`charged_back`: the chargeback stands, in part or whole). Its money moves when
the provider moves it: the disputed amount and the provider's dispute fee leave the provider's
balance when the funds are withdrawn (at once for Stripe and PayPal, at CHARGEBACK for Adyen),
and the amount comes back when the dispute is won. Every step is a state transition (audited),
balanced journal postings and outbox events, in one transaction with the notification's record.
Notifications may come twice, late or out of order: a dispute only moves forward, a decision
that arrives before the dispute's opening opens it first, and one that arrives before the
withdrawal's own notification books the withdrawal too (a decided dispute's funds were taken).

When no notification told of it, the provider's settlement report does: a chargeback line for a
payment we captured withdraws the funds (opening the dispute, named `report:<line>` until the
provider's own notification names it), and a reversal line wins the dispute whose funds were
withdrawn (`apply_line`). Those postings are dated for the line's own day and named after the
line, so the line matches them and a re-run books nothing twice."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, select

from engine.domain.ledger import JournalTransaction, dispute_postings
from engine.domain.model import Payment
from engine.domain.settlement_lines import CHARGEBACK, digest
from engine.domain.states import PaymentState, is_allowed
from engine.providers.base import DisputeStage, ParsedDispute
from engine.providers.registry import PROVIDERS
from engine.storage.repository import PaymentRepository
from engine.storage.tables import disputes, payments

S = PaymentState
FROM_REPORT = "report:"  # a dispute learned from a settlement line, not yet named by a notification
LINE_POSTING = "jtx_dl_"  # journal transactions booked from a settlement line
# where the money was captured, so a chargeback can take it back
CAPTURED_STATES = frozenset({S.CAPTURED, S.REFUNDING, S.PARTIALLY_REFUNDED, S.REFUNDED,
                             S.DISPUTED, S.DISPUTE_WON})


class Books(Protocol):
    """Where a dispute is written: a unit of work, or a reconciliation's transaction."""

    @property
    def conn(self) -> Connection: ...

    @property
    def payments(self) -> PaymentRepository: ...


@dataclass(frozen=True, slots=True)
class DisputeLine:
    """A settlement line that moved disputed money: a chargeback (funds withdrawn) or its
    reversal (funds returned)."""
    provider: str
    line_id: str
    kind: str  # chargeback | chargeback_reversal
    amount_minor: int  # unsigned
    currency: str
    settled_on: date


def line_posting_id(provider: str, line_id: str) -> str:
    return f"{LINE_POSTING}{digest(provider, line_id, length=24).lower()}"


@dataclass(frozen=True, slots=True)
class DisputeRecord:
    id: str
    status: str  # open | won | lost
    funds_withdrawn: bool


def find_payment(uow: Books, provider: str, note: ParsedDispute) -> Payment | None:
    """The disputed payment: by the provider's reference, else by our id when echoed."""
    found = uow.conn.execute(select(payments.c.id).where(
        payments.c.provider == provider,
        payments.c.provider_reference == note.provider_reference[:128])).scalar()
    payment_id = found or note.payment_ref
    payment = uow.payments.get(payment_id) if payment_id else None
    return payment if payment is not None and payment.provider == provider else None


def apply(uow: Books, provider: str, payment: Payment, note: ParsedDispute, actor: str,
          at: datetime, line: DisputeLine | None = None) -> bool:
    """Advance the dispute (and the payment) to what the notification says; False when it
    says nothing new. With `line`, the money moved is booked as that settlement line's."""
    record = _record(uow.conn, provider, note, payment.id)
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
    withdraw = note.stage in (DisputeStage.FUNDS_WITHDRAWN, DisputeStage.LOST) or (
        note.stage is DisputeStage.WON and not note.inquiry)  # an inquiry took nothing
    if withdraw and not record.funds_withdrawn:
        payment.new_journal.extend(_booked(
            dispute_postings(payment, True, note.amount_minor, fee, at), line))
        record = DisputeRecord(record.id, record.status, True)
        payment.announce("DisputeFundsWithdrawn", at, {"dispute": note.dispute_ref,
                                                     "disputed_amount": note.amount_minor,
                                                     "dispute_fee": fee})
        moved = True
    if note.stage is DisputeStage.WON:
        if record.funds_withdrawn:
            payment.new_journal.extend(_booked(
                dispute_postings(payment, False, note.amount_minor, 0, at), line))
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


def apply_line(books: Books, payment: Payment, line: DisputeLine, actor: str,
               at: datetime) -> bool:
    """Book what a settlement line says a dispute moved, when no notification told us: a
    chargeback withdraws the funds of the payment's open dispute (opening one if none is
    open); a reversal wins the open dispute whose funds were withdrawn. False when the line
    moves nothing here (a payment never captured, funds already withdrawn, nothing to
    reverse): its break alone tells."""
    if (payment.provider != line.provider or payment.state not in CAPTURED_STATES
            or payment.currency != line.currency):
        return False
    current = books.conn.execute(
        select(disputes.c.dispute_ref, disputes.c.funds_withdrawn)
        .where(disputes.c.payment_id == payment.id, disputes.c.status == "open")
        .order_by(disputes.c.opened_at.desc()).limit(1)).first()
    withdrawn = current is not None and bool(current.funds_withdrawn)
    if line.kind == CHARGEBACK:
        if withdrawn:
            return False  # notified: the ledger holds it, booked on another day
        stage = DisputeStage.FUNDS_WITHDRAWN
    elif withdrawn:
        stage = DisputeStage.WON
    else:
        return False
    note = ParsedDispute(
        event_id=f"line:{line.line_id}",
        dispute_ref=current.dispute_ref if current else f"{FROM_REPORT}{line.line_id}",
        provider_reference=payment.provider_reference or "", stage=stage,
        amount_minor=line.amount_minor, currency=line.currency, payment_ref=payment.id,
        reason="learned from the settlement report")
    return apply(books, line.provider, payment, note, actor, at, line)


def _booked(postings: list[JournalTransaction], line: DisputeLine | None,
            ) -> list[JournalTransaction]:
    """A line's postings are named after it and dated so that the line's own day expects
    them (the day before it, as every settlement is T+1)."""
    if line is None:
        return postings
    day_before = datetime.combine(line.settled_on - timedelta(days=1), time(), tzinfo=UTC)
    return [replace(t, id=line_posting_id(line.provider, line.line_id), at=day_before)
            for t in postings]


def _move(payment: Payment, to: PaymentState, reason: str, actor: str, at: datetime) -> None:
    """The payment follows its dispute when the state table allows (a payment refunded in full
    and then disputed keeps its state; the dispute and its money are recorded all the same)."""
    if payment.state is not to and is_allowed(payment.state, to):
        payment.transition(to, reason=reason[:255], actor=actor, at=at)


def _record(conn: Connection, provider: str, note: ParsedDispute,
            payment_id: str) -> DisputeRecord | None:
    """The dispute the notification is about; a dispute learned from the report takes the
    provider's name when the provider's first notification of it arrives."""
    d = disputes.c
    columns = (d.id, d.status, d.funds_withdrawn)
    row = conn.execute(select(*columns).where(
        d.provider == provider, d.dispute_ref == note.dispute_ref[:128])).first()
    if row is None and not note.dispute_ref.startswith(FROM_REPORT):
        row = conn.execute(select(*columns).where(
            d.provider == provider, d.payment_id == payment_id,
            d.dispute_ref.startswith(FROM_REPORT)).order_by(d.opened_at.desc()).limit(1)).first()
        if row is not None:
            conn.execute(disputes.update().where(d.id == row.id)
                         .values(dispute_ref=note.dispute_ref[:128]))
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
