"""Reconcile a provider-day: our ledger's expected settlement against the provider's lines.

Matching: by provider reference and kind first. Fallback, for a line whose reference we do not
know: the same payment reference (our payment id), amount and currency among the day's still
unmatched expectations. Every difference becomes a break of a named kind; a break is identified
by (provider, kind, provider reference), so re-running a day never duplicates one. A break that
no longer occurs when its day is reconciled again, or a missing settlement that a later file
brings, is closed automatically with an audit entry."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Engine, and_, insert, select, update

from engine.adapters.sql import insert_ignoring_conflicts
from engine.adapters.tables import (
    payments,
    recon_break_audit,
    recon_breaks,
    recon_checkpoints,
    settlement_lines,
)
from engine.settlement.expected import ExpectedLine, expected_settlement

BREAK_KINDS = ("missing_in_provider", "missing_in_ledger", "amount_mismatch", "currency_mismatch",
               "status_mismatch", "duplicate_charge", "fee_mismatch", "late_settlement")
OPEN_STATUSES = ("open", "investigating")


@dataclass(frozen=True, slots=True)
class Break:
    kind: str
    provider: str
    provider_reference: str
    payment_id: str | None
    currency: str | None
    expected_minor: int | None
    actual_minor: int | None


@dataclass
class DayResult:
    provider: str
    settled_on: date
    matched: int = 0
    matched_amount_minor: int = 0
    breaks: list[Break] = field(default_factory=list)
    closed: int = 0


def _actual_lines(engine: Engine, provider: str, day: date) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(settlement_lines).where(
            settlement_lines.c.provider == provider, settlement_lines.c.settled_on == day)
            .order_by(settlement_lines.c.file_id, settlement_lines.c.line_no)).all()
    return [dict(r._mapping) for r in rows]


def compare_day(expected: list[ExpectedLine], actual: list[dict[str, object]], provider: str,
                day: date, known: dict[str, tuple[str, str]]) -> DayResult:
    """Pure matching. `known`: provider reference -> (payment id, state) of our payments."""
    result = DayResult(provider, day)
    todays = defaultdict(list)
    earlier: dict[tuple[str, str], ExpectedLine] = {}
    for e in expected:
        if e.expected_on == day:
            todays[(e.provider_reference, e.kind)].append(e)
        elif e.expected_on < day:
            earlier[(e.provider_reference, e.kind)] = e
    seen: set[tuple[str, str]] = set()
    for line in actual:
        ref, kind = str(line["provider_reference"]), str(line["kind"])
        amount, currency = int(line["amount_minor"]), str(line["currency"])  # type: ignore[call-overload]
        key = (ref, kind)
        candidates = todays.get(key, [])
        if not candidates:
            if key in seen and kind == "charge":
                first = next(iter([e for e in expected if (e.provider_reference, e.kind) == key]))
                result.breaks.append(Break("duplicate_charge", provider, ref, first.payment_id,
                                           currency, first.amount_minor, amount))
            elif key in earlier:
                e = earlier[key]
                result.breaks.append(Break("late_settlement", provider, ref, e.payment_id,
                                           currency, e.amount_minor, amount))
            elif ref in known:
                pid, state = known[ref]
                result.breaks.append(Break("status_mismatch", provider, ref, pid, currency,
                                           0, amount))
            elif (fallback := _fallback(todays, line)) is not None:
                _record_match(result, todays, fallback, line)
            else:
                result.breaks.append(Break("missing_in_ledger", provider, ref,
                                           line.get("payment_reference"), currency,  # type: ignore[arg-type]
                                           None, amount))
            continue
        seen.add(key)
        e = min(candidates, key=lambda c: abs(c.amount_minor - amount))
        candidates.remove(e)
        if currency != e.currency:
            result.breaks.append(Break("currency_mismatch", provider, ref, e.payment_id,
                                       currency, e.amount_minor, amount))
        elif amount != e.amount_minor:
            result.breaks.append(Break("amount_mismatch", provider, ref, e.payment_id, currency,
                                       e.amount_minor, amount))
        elif int(line["fee_minor"]) != e.fee_minor:  # type: ignore[call-overload]
            result.breaks.append(Break("fee_mismatch", provider, ref, e.payment_id, currency,
                                       e.fee_minor, int(line["fee_minor"])))  # type: ignore[call-overload]
        else:
            result.matched += 1
            result.matched_amount_minor += amount
    for remaining in todays.values():
        for e in remaining:
            result.breaks.append(Break("missing_in_provider", provider, e.provider_reference,
                                       e.payment_id, e.currency, e.amount_minor, None))
    return result


def _fallback(todays: dict[tuple[str, str], list[ExpectedLine]],
              line: dict[str, object]) -> ExpectedLine | None:
    for candidates in todays.values():
        for e in candidates:
            if (e.payment_id == line.get("payment_reference") and e.kind == line["kind"]
                    and e.amount_minor == line["amount_minor"] and e.currency == line["currency"]):
                return e
    return None


def _record_match(result: DayResult, todays: dict[tuple[str, str], list[ExpectedLine]],
                  e: ExpectedLine, line: dict[str, object]) -> None:
    todays[(e.provider_reference, e.kind)].remove(e)
    result.matched += 1
    result.matched_amount_minor += int(line["amount_minor"])  # type: ignore[call-overload]


def reconcile_day(engine: Engine, provider: str, day: date, actor: str = "reconciler",
                  expected: list[ExpectedLine] | None = None) -> DayResult:
    expected = expected if expected is not None else expected_settlement(engine, provider)
    with engine.connect() as conn:
        known = {r.provider_reference: (r.id, r.state) for r in conn.execute(
            select(payments.c.provider_reference, payments.c.id, payments.c.state).where(
                payments.c.provider == provider, payments.c.provider_reference.is_not(None)))}
    result = compare_day(expected, _actual_lines(engine, provider, day), provider, day, known)
    _store(engine, result, actor)
    return result


def _store(engine: Engine, result: DayResult, actor: str) -> None:
    now = datetime.now(UTC)
    found = {(b.kind, b.provider_reference) for b in result.breaks}
    with engine.begin() as conn:
        stmt = insert_ignoring_conflicts(conn, recon_breaks, "provider", "kind",
                                         "provider_reference")
        for b in result.breaks:
            conn.execute(stmt.values(
                id=f"brk_{uuid.uuid4().hex}", provider=b.provider, settled_on=result.settled_on,
                kind=b.kind, provider_reference=b.provider_reference, payment_id=b.payment_id,
                currency=b.currency, expected_minor=b.expected_minor, actual_minor=b.actual_minor,
                status="open", opened_at=now, updated_at=now))
        stale = conn.execute(select(recon_breaks.c.id, recon_breaks.c.status, recon_breaks.c.kind,
                                    recon_breaks.c.provider_reference).where(
            recon_breaks.c.provider == result.provider,
            recon_breaks.c.settled_on == result.settled_on,
            recon_breaks.c.status.in_(OPEN_STATUSES))).all()
        to_close = [(r.id, r.status, "no longer found when the day was reconciled again")
                    for r in stale if (r.kind, r.provider_reference) not in found]
        late_refs = [b.provider_reference for b in result.breaks if b.kind == "late_settlement"]
        if late_refs:
            to_close += [(r.id, r.status, f"settled late, on {result.settled_on}")
                         for r in conn.execute(select(recon_breaks.c.id, recon_breaks.c.status)
                         .where(recon_breaks.c.provider == result.provider,
                                recon_breaks.c.kind == "missing_in_provider",
                                recon_breaks.c.provider_reference.in_(late_refs),
                                recon_breaks.c.status.in_(OPEN_STATUSES)))]
        for break_id, status, note in to_close:
            conn.execute(update(recon_breaks).where(recon_breaks.c.id == break_id)
                         .values(status="resolved", updated_at=now))
            conn.execute(insert(recon_break_audit).values(
                break_id=break_id, from_status=status, to_status="resolved", actor=actor,
                note=note, at=now))
        result.closed = len(to_close)
        checkpoint = {"matched_count": result.matched,
                      "matched_minor": result.matched_amount_minor,
                      "break_count": len(result.breaks),
                      "break_minor": sum(abs((b.actual_minor or 0) - (b.expected_minor or 0))
                                         for b in result.breaks),
                      "reconciled_at": now}
        where = and_(recon_checkpoints.c.provider == result.provider,
                     recon_checkpoints.c.settled_on == result.settled_on)
        if conn.execute(select(recon_checkpoints.c.provider).where(where)).first():
            conn.execute(update(recon_checkpoints).where(where).values(**checkpoint))
        else:
            conn.execute(insert(recon_checkpoints).values(
                provider=result.provider, settled_on=result.settled_on, **checkpoint))


def open_breaks(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(recon_breaks).where(recon_breaks.c.status.in_(OPEN_STATUSES))
                            .order_by(recon_breaks.c.provider, recon_breaks.c.settled_on,
                                      recon_breaks.c.kind)).all()
    return [dict(r._mapping) for r in rows]
