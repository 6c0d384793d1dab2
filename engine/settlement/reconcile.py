"""Reconcile a provider-day: our ledger's expected settlement against the provider's lines.

Matching: by provider reference and kind first. Fallback, for a line whose reference we do not
know: the same payment reference (our payment id), amount and currency among the day's still
unmatched expectations. Every difference becomes a break of a named kind; a break is identified
by (provider, kind, provider reference, line key) — the line key is the settlement line's own
identity, or the expected ledger entry's for a missing settlement — so re-running a day never
duplicates one and two discrepancies on one reference never merge. A break that no longer occurs
when its day is reconciled again, or a missing settlement that a later file brings, is closed
automatically with an audit entry; if the reconciler closed it and it occurs again, it is
reopened with an audit entry (a break a person resolved or wrote off stays as they left it).

A chargeback or reversal line with no such dispute in the ledger (its notifications never came)
is a `dispute_not_in_ledger` break, and the dispute's money is booked from the line
(engine.payments.disputes.apply_line): the payment is disputed, or its dispute won, all the same.
Postings booked from a line keep its break open on every later run: only a person closes it,
after answering the dispute and finding why the notification was lost."""

from __future__ import annotations

import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import cast

from sqlalchemy import Connection, Engine, and_, case, delete, insert, select, update
from sqlalchemy.sql import ColumnElement

from engine.domain.ids import new_random_id
from engine.domain.settlement_lines import (
    CHARGE,
    CHARGEBACK,
    CHARGEBACK_REVERSAL,
    MATCHED_KINDS,
    REFUND,
    digest,
)
from engine.environment import read_settings
from engine.payments.disputes import LINE_POSTING, DisputeLine, apply_line
from engine.providers.config import Pricing
from engine.providers.registry import PROVIDERS
from engine.settlement.expected import ExpectedLine, expected_settlement, iter_expected
from engine.settlement.kinds import kinds_of
from engine.settlement.settings import SettlementSettings
from engine.storage.repository import PaymentRepository
from engine.storage.sql import insert_ignoring_conflicts
from engine.storage.tables import (
    journal_entries,
    journal_transactions,
    payments,
    recon_break_audit,
    recon_breaks,
    recon_checkpoint_amounts,
    recon_checkpoints,
    settlement_lines,
)

LINE_KINDS = kinds_of("line", "dispute")
DISPUTE_KINDS = frozenset({CHARGEBACK, CHARGEBACK_REVERSAL})
OPEN_STATUSES = ("open", "investigating")


@dataclass(frozen=True, slots=True)
class Break:
    kind: str
    provider: str
    provider_reference: str
    payment_id: str | None
    currency: str | None  # the provider's
    expected_minor: int | None
    actual_minor: int | None
    expected_currency: str | None = None  # ours; differs on a currency_mismatch
    line_key: str = ""  # the settlement line's identity, or the expected entry's
    expected_entry: str | None = None  # the expected ledger entry a late line settles

    def at_stake(self) -> tuple[str | None, int]:
        """(currency, minor units) this break puts in doubt: a duplicate charge, an unexpected
        line or a line in the wrong currency its whole amount; a missing settlement the amount
        we expected; any other its difference."""
        if self.kind in ("duplicate_charge", "currency_mismatch", "missing_in_ledger",
                         "status_mismatch"):
            return self.currency, abs(self.actual_minor or 0)
        if self.actual_minor is None:
            return self.expected_currency or self.currency, abs(self.expected_minor or 0)
        return self.currency, abs(self.actual_minor - (self.expected_minor or 0))


@dataclass(frozen=True, slots=True)
class FeeAdjustment:
    payment_id: str
    line_id: str
    fee_minus_booked: int  # the provider's fee on the line less the fee we booked at capture
    currency: str


@dataclass
class DayResult:
    provider: str
    settled_on: date
    matched: int = 0
    matched_by_currency: dict[str, tuple[int, int]] = field(default_factory=dict)
    """currency -> (lines matched, their amount in minor units)"""
    breaks: list[Break] = field(default_factory=list)
    closed: int = 0
    new_breaks: list[Break] = field(default_factory=list)
    """Of `breaks`, those this reconciliation opened (the others were open already)."""
    closed_breaks: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, provider reference, line key) of the breaks this reconciliation closed."""
    fee_adjustments: list[FeeAdjustment] = field(default_factory=list)
    """Matched lines whose fee differs from the fee we booked: the ledger is brought to the
    provider's fee."""

    def match(self, currency: str, amount_minor: int) -> None:
        self.matched += 1
        lines, minor = self.matched_by_currency.get(currency, (0, 0))
        self.matched_by_currency[currency] = (lines + 1, minor + amount_minor)

    def by_currency(self) -> dict[str, dict[str, int]]:
        """Per currency: lines matched and their amount, breaks and the amount they put at
        stake (never summed across currencies)."""
        out: dict[str, dict[str, int]] = {}

        def figures(currency: str) -> dict[str, int]:
            return out.setdefault(currency, {"matched_count": 0, "matched_minor": 0,
                                             "break_count": 0, "break_minor": 0})

        for currency, (lines, minor) in self.matched_by_currency.items():
            f = figures(currency)
            f["matched_count"], f["matched_minor"] = lines, minor
        for b in self.breaks:
            stake_currency, minor = b.at_stake()
            if stake_currency:
                f = figures(stake_currency)
                f["break_count"] += 1
                f["break_minor"] += minor
        return out


ActualLine = tuple[str, str | None, str, int, int | None, str, str]
"""A settlement line as matched: (provider reference, payment reference, kind, amount, fee (None
when not in the gross currency), currency, line id)."""


def _actual_lines(engine: Engine, provider: str, day: date) -> list[ActualLine]:
    lines = settlement_lines.c
    with engine.connect() as conn:
        result = conn.execute(select(
            lines.provider_reference, lines.payment_reference, lines.kind, lines.amount_minor,
            # a fee in another currency than the gross (Adyen's net currency after
            # conversion) is not comparable with the fee we expected
            case((lines.net_currency == lines.currency, lines.fee_minor), else_=None),
            lines.currency, lines.line_id).where(
                lines.provider == provider, lines.settled_on == day,
                lines.kind.in_(sorted(MATCHED_KINDS)))
            .order_by(lines.file_id, lines.line_no))
        # plain DBAPI tuples: these columns need no type conversion, and a day can be large
        assert result.cursor is not None
        return cast(list[ActualLine], result.cursor.fetchall())


@dataclass(frozen=True, slots=True)
class FeeRule:
    """What a line's fee should be (the provider's configured pricing) and how far it may be
    off before it is a fee_mismatch."""
    pricing: Pricing
    tolerance_minor: int = 1

    def predicted(self, kind: str, amount_minor: int) -> int:
        if kind == CHARGE:
            return self.pricing.capture_fee(amount_minor)
        if kind == REFUND:
            return self.pricing.refund_fee(-amount_minor)
        if kind == CHARGEBACK:
            return self.pricing.dispute_fee_minor
        return 0


def compare_day(expected: list[ExpectedLine], actual: list[ActualLine], provider: str,
                day: date, known: dict[str, tuple[str, str]],
                ours: dict[str, str] | None = None, fees: FeeRule | None = None) -> DayResult:
    """Pure matching. `expected` must hold the lines expected on `day` and any earlier
    expectation an actual line may be a late settlement of; `known`: provider reference ->
    (payment id, state) of our payments for the lines that match no expectation; `ours`:
    payment id -> state for the payment references those lines carry (a payment we hold that
    the provider settled, though we never learned its reference: a status mismatch); `fees`:
    the provider's pricing each matched line's fee is held to (default: the fee we booked)."""
    result = DayResult(provider, day)
    todays: dict[tuple[str, str], list[ExpectedLine]] = defaultdict(list)
    first: dict[tuple[str, str], ExpectedLine] = {}
    earlier: dict[tuple[str, str], ExpectedLine] = {}
    for e in expected:
        key = (e.provider_reference, e.kind)
        if e.expected_on == day:
            todays[key].append(e)
            first.setdefault(key, e)
        elif e.expected_on < day:
            earlier[key] = e
    fallback: dict[tuple[object, ...], list[ExpectedLine]] | None = None
    seen: set[tuple[str, str]] = set()
    for ref, payment_reference, kind, amount, fee, currency, line_id in actual:
        key = (ref, kind)
        candidates = todays.get(key, [])
        if not candidates and kind in DISPUTE_KINDS and key not in earlier:
            # money a dispute moved, for a payment with no such dispute in our ledger
            result.breaks.append(Break("dispute_not_in_ledger", provider, ref,
                                       (known.get(ref) or (payment_reference, ""))[0],
                                       currency, None, amount, currency, line_id))
            continue
        if not candidates:
            if key in seen and kind == "charge":
                e = first[key]
                result.breaks.append(Break("duplicate_charge", provider, ref, e.payment_id,
                                           currency, e.amount_minor, amount, e.currency,
                                           line_id))
                continue
            if key in earlier:
                e = earlier[key]
                result.breaks.append(Break("late_settlement", provider, ref, e.payment_id,
                                           currency, e.amount_minor, amount, e.currency,
                                           line_id, e.entry_id))
                continue
            if ref in known:
                pid, _state = known[ref]
                result.breaks.append(Break("status_mismatch", provider, ref, pid, currency,
                                           0, amount, currency, line_id))
                continue
            if fallback is None:
                fallback = _fallback_index(todays)
            same = fallback.get((payment_reference, kind, amount, currency))
            if same:
                e = same.pop()
                todays[(e.provider_reference, e.kind)].remove(e)
                result.match(currency, amount)
            elif ours and payment_reference in ours:
                result.breaks.append(Break("status_mismatch", provider, ref, payment_reference,
                                           currency, 0, amount, currency, line_id))
            else:
                result.breaks.append(Break("missing_in_ledger", provider, ref,
                                           payment_reference, currency, None, amount,
                                           line_key=line_id))
            continue
        seen.add(key)
        e = candidates[0] if len(candidates) == 1 else min(
            candidates, key=lambda c: abs(c.amount_minor - amount))
        candidates.remove(e)
        if fallback is not None:
            fallback[(e.payment_id, e.kind, e.amount_minor, e.currency)].remove(e)
        if e.entry_id.startswith(LINE_POSTING):  # booked from this line: still unnotified
            result.breaks.append(Break("dispute_not_in_ledger", provider, ref, e.payment_id,
                                       currency, None, amount, currency, line_id))
        elif currency != e.currency:
            result.breaks.append(Break("currency_mismatch", provider, ref, e.payment_id,
                                       currency, e.amount_minor, amount, e.currency, line_id))
        elif amount != e.amount_minor:
            result.breaks.append(Break("amount_mismatch", provider, ref, e.payment_id, currency,
                                       e.amount_minor, amount, e.currency, line_id))
        else:
            predicted = e.fee_minor if fees is None else fees.predicted(kind, amount)
            tolerance = 0 if fees is None else fees.tolerance_minor
            if fee is not None and abs(fee - predicted) > tolerance:
                result.breaks.append(Break("fee_mismatch", provider, ref, e.payment_id,
                                           currency, predicted, fee, e.currency, line_id))
            else:
                result.match(currency, amount)
            if fee is not None and fee != e.fee_minor:  # the ledger takes the provider's fee
                result.fee_adjustments.append(FeeAdjustment(e.payment_id, line_id,
                                                            fee - e.fee_minor, currency))
    for remaining in todays.values():
        for e in remaining:
            result.breaks.append(Break("missing_in_provider", provider, e.provider_reference,
                                       e.payment_id, e.currency, e.amount_minor, None,
                                       e.currency, e.entry_id))
    return result


def _fallback_index(todays: dict[tuple[str, str], list[ExpectedLine]],
                    ) -> dict[tuple[object, ...], list[ExpectedLine]]:
    """Still-unmatched expectations by (payment id, kind, amount, currency): the documented
    fallback for a line whose provider reference we do not know."""
    index: dict[tuple[object, ...], list[ExpectedLine]] = defaultdict(list)
    for candidates in todays.values():
        for e in candidates:
            index[(e.payment_id, e.kind, e.amount_minor, e.currency)].append(e)
    return index


def reconcile_day(engine: Engine, provider: str, day: date, actor: str = "reconciler",
                  due: list[ExpectedLine] | None = None) -> DayResult:
    """Read only what the day needs: its lines, the expectations `due` that day (read here if
    not given), and, for lines that match none of those, earlier expectations and our
    payments by reference."""
    actual = _actual_lines(engine, provider, day)
    expected = due if due is not None else expected_settlement(engine, provider, on=day)
    due_keys = {(e.provider_reference, e.kind) for e in expected}
    strangers = {line[0] for line in actual if (line[0], line[2]) not in due_keys}
    known: dict[str, tuple[str, str]] = {}
    if strangers:
        expected = expected + [e for e in expected_settlement(engine, provider,
                                                              references=strangers)
                               if e.expected_on < day]
        refs = sorted(strangers)
        with engine.connect() as conn:
            for i in range(0, len(refs), 1000):
                known.update({r.provider_reference: (r.id, r.state) for r in conn.execute(
                    select(payments.c.provider_reference, payments.c.id, payments.c.state).where(
                        payments.c.provider == provider,
                        payments.c.provider_reference.in_(refs[i:i + 1000])))})
    ours: dict[str, str] = {}
    carried = sorted({line[1] for line in actual if line[0] in strangers and line[1]})
    with engine.connect() as conn:
        for i in range(0, len(carried), 1000):
            ours.update({r.id: r.state for r in conn.execute(
                select(payments.c.id, payments.c.state).where(
                    payments.c.provider == provider, payments.c.id.in_(carried[i:i + 1000])))})
    result = compare_day(expected, actual, provider, day, known, ours, fee_rule(provider))
    _store(engine, result, actor)
    return result


def fee_rule(provider: str, env: Mapping[str, str] | None = None) -> FeeRule:
    """The provider's configured pricing, and the tolerance (PAYSIGNAL_FEE_TOLERANCE_MINOR,
    minor units, default 1: rounding)."""
    tolerance = read_settings(SettlementSettings, env).fee_tolerance_minor
    return FeeRule(PROVIDERS[provider].pricing(env), tolerance)


def reconcile_days(engine: Engine, days: set[tuple[str, date]], actor: str = "reconciler",
                   progress: Callable[[int, int], None] | None = None) -> list[DayResult]:
    """Reconcile provider-days, each provider's oldest first (a late line then closes the
    missing-settlement break of an earlier day). Providers are independent, so on PostgreSQL
    they run in one process per core."""
    providers = sorted({p for p, _ in days})
    workers = min(len(providers), os.cpu_count() or 1)
    if engine.dialect.name != "postgresql" or workers < 2:
        return _reconcile_in_order(engine, days, actor, progress)
    url = engine.url.render_as_string(hide_password=False)
    results: list[DayResult] = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_reconcile_in_process, url, {d for d in days if d[0] == p}, actor)
                   for p in providers]
        for future in as_completed(futures):
            results += future.result()
            if progress:
                progress(len(results), len(days))
    return sorted(results, key=lambda r: (r.settled_on, r.provider))


def _reconcile_in_process(url: str, days: set[tuple[str, date]], actor: str) -> list[DayResult]:
    from engine.storage import db

    engine = db.make_engine(url, pool_size=2)
    try:
        return _reconcile_in_order(engine, days, actor, None)
    finally:
        engine.dispose()


def _reconcile_in_order(engine: Engine, days: set[tuple[str, date]], actor: str,
                        progress: Callable[[int, int], None] | None) -> list[DayResult]:
    """Oldest day first. The ledger is read once for the whole range, as one stream in day
    order, holding one day of expectations in memory at a time."""
    ordered = sorted(days, key=lambda pd: (pd[1], pd[0]))
    if not ordered:
        return []
    providers = {p for p, _ in ordered}
    lines = iter_expected(engine, next(iter(providers)) if len(providers) == 1 else None,
                          days=(ordered[0][1], ordered[-1][1]))
    # SQLite transactions take the write lock (BEGIN IMMEDIATE): there, read all before writing
    stream = iter(list(lines)) if engine.dialect.name == "sqlite" else lines
    pending: ExpectedLine | None = next(stream, None)
    results: list[DayResult] = []
    by_day: dict[date, list[str]] = defaultdict(list)
    for provider, day in ordered:
        by_day[day].append(provider)
    for day, day_providers in by_day.items():
        due: dict[str, list[ExpectedLine]] = defaultdict(list)
        while pending is not None and pending.expected_on <= day:
            if pending.expected_on == day:
                due[pending.provider].append(pending)
            pending = next(stream, None)
        for provider in day_providers:
            results.append(reconcile_day(engine, provider, day, actor, due=due[provider]))
            if progress:
                progress(len(results), len(ordered))
    lines.close()
    return results


def _store(engine: Engine, result: DayResult, actor: str) -> None:
    now = datetime.now(UTC)
    breaks = recon_breaks.c
    with engine.begin() as conn:
        result.new_breaks, closed = record_breaks(
            conn, [(result.settled_on, b) for b in result.breaks], LINE_KINDS,
            and_(breaks.provider == result.provider, breaks.settled_on == result.settled_on),
            actor, now)
        closed += _close_settled_late(conn, result, actor, now)
        _book_disputes_from_lines(conn, result, actor, now)
        result.closed = len(closed)
        result.closed_breaks = [(b.kind, b.provider_reference, b.line_key) for b in closed]
        _post_fee_adjustments(conn, result)
        _checkpoint(conn, result, now)


@dataclass(frozen=True, slots=True)
class _Books:
    conn: Connection
    payments: PaymentRepository


def _book_disputes_from_lines(conn: Connection, result: DayResult, actor: str,
                              now: datetime) -> None:
    """The disputes only the report told of: booked from their lines, in this transaction."""
    books = _Books(conn, PaymentRepository(conn))
    for b in result.breaks:
        if b.kind != "dispute_not_in_ledger" or not b.payment_id or b.actual_minor is None:
            continue
        payment = books.payments.get(b.payment_id)
        line = DisputeLine(result.provider, b.line_key,
                           CHARGEBACK if b.actual_minor < 0 else CHARGEBACK_REVERSAL,
                           abs(b.actual_minor), b.currency or "", result.settled_on)
        if payment is not None and apply_line(books, payment, line, actor, now):
            books.payments.flush(payment)


def _close_settled_late(conn: Connection, result: DayResult, actor: str, now: datetime,
                        ) -> list[Break]:
    """The missing-settlement breaks of earlier days whose lines this day brought late."""
    entries = [b.expected_entry for b in result.breaks
               if b.kind == "late_settlement" and b.expected_entry]
    if not entries:
        return []
    breaks = recon_breaks.c
    rows = conn.execute(select(breaks.id, breaks.status, breaks.kind, breaks.provider_reference,
                               breaks.line_key).where(
        breaks.provider == result.provider, breaks.kind == "missing_in_provider",
        breaks.line_key.in_(entries), breaks.status.in_(OPEN_STATUSES))).all()
    for row in rows:
        conn.execute(update(recon_breaks).where(breaks.id == row.id)
                     .values(status="resolved", updated_at=now))
        conn.execute(insert(recon_break_audit).values(
            break_id=row.id, from_status=row.status, to_status="resolved", actor=actor,
            note=f"settled late, on {result.settled_on}", at=now))
    return [Break(r.kind, result.provider, r.provider_reference, None, None, None, None,
                  line_key=r.line_key) for r in rows]


def _post_fee_adjustments(conn: Connection, result: DayResult) -> None:
    """Bring the ledger's fee expense to the provider's fee, once per settlement line: each
    line's postings are named after it, so a day reconciled again posts only what is still
    missing (a corrected file's new fee posts the difference)."""
    if not result.fee_adjustments:
        return
    jt, je = journal_transactions.c, journal_entries.c
    start = datetime.combine(result.settled_on, time(), tzinfo=UTC)
    posted: dict[str, tuple[int, int]] = {}  # line prefix -> (postings, fee posted so far)
    for txn_id, side, amount in conn.execute(
            select(jt.id, je.side, je.amount_minor)
            .join(journal_entries, je.transaction_id == jt.id)
            .where(jt.kind == "settlement_fee", jt.at == start,
                   je.account == f"provider_fees:{result.provider}")):
        prefix = txn_id.rsplit("_", 1)[0]
        count, fee = posted.get(prefix, (0, 0))
        posted[prefix] = (count + 1, fee + (amount if side == "debit" else -amount))
    for adj in result.fee_adjustments:
        prefix = f"jtx_sf_{digest(result.provider, adj.line_id, length=24).lower()}"
        count, fee = posted.get(prefix, (0, 0))
        missing = adj.fee_minus_booked - fee
        if not missing:
            continue
        fees, receivable = (f"provider_fees:{result.provider}",
                            f"provider_receivable:{result.provider}")
        debit, credit = (fees, receivable) if missing > 0 else (receivable, fees)
        txn = f"{prefix}_{count + 1}"
        conn.execute(insert(journal_transactions).values(
            id=txn, payment_id=adj.payment_id, kind="settlement_fee", currency=adj.currency,
            at=start))
        conn.execute(insert(journal_entries), [
            {"transaction_id": txn, "account": debit, "side": "debit",
             "amount_minor": abs(missing)},
            {"transaction_id": txn, "account": credit, "side": "credit",
             "amount_minor": abs(missing)}])


def _checkpoint(conn: Connection, result: DayResult, now: datetime) -> None:
    checkpoint = {"matched_count": result.matched, "break_count": len(result.breaks),
                  "reconciled_at": now}
    where = and_(recon_checkpoints.c.provider == result.provider,
                 recon_checkpoints.c.settled_on == result.settled_on)
    if conn.execute(select(recon_checkpoints.c.provider).where(where)).first():
        conn.execute(update(recon_checkpoints).where(where).values(**checkpoint))
    else:
        conn.execute(insert(recon_checkpoints).values(
            provider=result.provider, settled_on=result.settled_on, **checkpoint))
    amounts = recon_checkpoint_amounts.c
    conn.execute(delete(recon_checkpoint_amounts).where(
        amounts.provider == result.provider, amounts.settled_on == result.settled_on))
    rows = result.by_currency()
    if rows:
        conn.execute(insert(recon_checkpoint_amounts), [
            {"provider": result.provider, "settled_on": result.settled_on, "currency": cur,
             **figures} for cur, figures in rows.items()])


def open_breaks(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(recon_breaks).where(recon_breaks.c.status.in_(OPEN_STATUSES))
                            .order_by(recon_breaks.c.provider, recon_breaks.c.settled_on,
                                      recon_breaks.c.kind)).all()
    return [dict(r._mapping) for r in rows]


def record_breaks(conn: Connection, found: list[tuple[date, Break]], kinds: tuple[str, ...],
                  scope: ColumnElement[bool] | None, actor: str, now: datetime,
                  ) -> tuple[list[Break], list[Break]]:
    """Record the breaks a comparison of `kinds` found (each with its day) and close, with an
    audit entry, the open breaks of those kinds within `scope` (all, when None) that it no
    longer finds; a break the reconciler had closed and finds again is reopened, audited.
    Returns (opened, closed)."""
    breaks, audit = recon_breaks.c, recon_break_audit.c
    keys = {(b.provider, b.kind, b.provider_reference, b.line_key) for _, b in found}
    inserted: set[tuple[str, str, str, str]] = set()
    if found:
        stmt = insert_ignoring_conflicts(conn, recon_breaks, "provider", "kind",
                                         "provider_reference", "line_key").returning(
            breaks.provider, breaks.kind, breaks.provider_reference, breaks.line_key)
        inserted = {tuple(r) for r in conn.execute(stmt, [dict(
            id=new_random_id("brk"), provider=b.provider, settled_on=day, kind=b.kind,
            provider_reference=b.provider_reference, line_key=b.line_key,
            payment_id=b.payment_id, currency=b.currency, expected_currency=b.expected_currency,
            expected_minor=b.expected_minor, actual_minor=b.actual_minor, status="open",
            opened_at=now, updated_at=now) for day, b in found])}
    rows = conn.execute(select(breaks.id, breaks.status, breaks.provider, breaks.kind,
                               breaks.provider_reference, breaks.line_key).where(
        breaks.kind.in_(kinds), *([scope] if scope is not None else []))).all()
    closed: list[Break] = []
    for row in rows:
        key = (row.provider, row.kind, row.provider_reference, row.line_key)
        if row.status in OPEN_STATUSES and key not in keys:
            move, note = "resolved", "no longer found when reconciled again"
        elif row.status == "resolved" and key in keys - inserted:
            closed_by = conn.execute(select(audit.actor).where(audit.break_id == row.id)
                                     .order_by(audit.id.desc()).limit(1)).scalar()
            if closed_by != actor:
                continue  # a person resolved it: their decision stands
            move, note = "open", "found again when reconciled"
        else:
            continue
        conn.execute(update(recon_breaks).where(breaks.id == row.id)
                     .values(status=move, updated_at=now))
        conn.execute(insert(recon_break_audit).values(
            break_id=row.id, from_status=row.status, to_status=move, actor=actor, note=note,
            at=now))
        if move == "resolved":
            closed.append(Break(row.kind, row.provider, row.provider_reference, None, None, None,
                                None, line_key=row.line_key))
    opened = [b for _, b in found if (b.provider, b.kind, b.provider_reference, b.line_key)
              in inserted]
    return opened, closed
