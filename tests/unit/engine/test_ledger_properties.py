"""Property: any sequence of operations keeps every journal transaction balanced."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.ledger import JournalEntry, JournalTransaction, imbalances
from engine.domain.model import CaptureMode, Payment
from engine.domain.money import Money
from engine.domain.operations import Operation
from engine.exceptions import (
    AmountExceedsAvailableError,
    InvalidTransitionError,
    LedgerImbalanceError,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)

operations = st.lists(st.tuples(
    st.sampled_from(list(Operation)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=20_000)),
    st.sampled_from(["succeeded", "declined", "failed", "unknown", "unknown_then_succeeded"]),
    st.integers(min_value=0, max_value=500),
), max_size=12)


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(min_value=1, max_value=10_000), currency=st.sampled_from(["USD", "JPY", "KWD"]),
       ops=operations)
def test_any_sequence_of_operations_keeps_every_transaction_balanced(
        amount: int, currency: str, ops: list[tuple[Operation, int | None, str, int]]) -> None:
    p = Payment.create(merchant_id="m", money=Money(amount, currency), provider="paypal",
                       reference="r", capture_mode=CaptureMode.MANUAL, at=NOW)
    journal: list[JournalTransaction] = []
    for op, op_amount, outcome, fee in ops:
        try:
            p.begin(op, op_amount, request_id="x", actor="t", at=NOW)
        except (InvalidTransitionError, AmountExceedsAvailableError):
            continue
        if outcome.startswith("unknown"):
            p.mark_unknown(reason="timeout", actor="t", at=NOW)
            if outcome == "unknown":
                break
        p.settle(outcome in ("succeeded", "unknown_then_succeeded"), declined=outcome == "declined",
                 reason=outcome, actor="t", at=NOW, fee_minor=fee)
        journal.extend(p.drain()[2])
    rows = [(j.id, j.currency, e.side, e.amount_minor) for j in journal for e in j.entries]
    assert imbalances(rows) == {}
    assert all(j.currency == currency for j in journal)
    assert 0 <= p.refunded_minor <= p.captured_minor <= amount


def test_an_unbalanced_journal_transaction_cannot_be_built() -> None:
    with pytest.raises(LedgerImbalanceError, match="does not balance"):
        JournalTransaction("j", "p", "capture", "USD", NOW,
                           (JournalEntry("a", "debit", 100), JournalEntry("b", "credit", 99)))
