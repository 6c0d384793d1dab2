from datetime import UTC, datetime

import pytest

from engine.domain.model import CaptureMode, Payment
from engine.domain.money import Money
from engine.domain.operations import Operation
from engine.domain.states import (
    TERMINAL_STATES,
    TRANSITIONS,
    PaymentState,
    transition_table_markdown,
)
from engine.exceptions import AmountExceedsAvailableError, InvalidTransitionError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
S = PaymentState


def new_payment(amount: int = 1000, capture: CaptureMode = CaptureMode.MANUAL) -> Payment:
    return Payment.create(merchant_id="m", money=Money(amount, "USD"), provider="stripe",
                          reference="r", capture_mode=capture, at=NOW, payment_id="pay_1")


def authorized(amount: int = 1000) -> Payment:
    p = new_payment(amount)
    p.begin(Operation.AUTHORIZE, None, request_id="k:authorize", actor="t", at=NOW)
    p.settle(True, reason="ok", actor="t", at=NOW)
    return p


def captured(amount: int = 1000, capture: int | None = None) -> Payment:
    p = authorized(amount)
    p.begin(Operation.CAPTURE, capture, request_id="k:capture", actor="t", at=NOW)
    p.settle(True, reason="ok", actor="t", at=NOW, fee_minor=30)
    return p


def test_table_covers_every_state_and_required_states_exist() -> None:
    assert set(TRANSITIONS) == set(PaymentState)
    required = {"created", "authorizing", "authorized", "unknown", "capturing", "captured",
                "voided", "refunding", "refunded", "partially_refunded", "declined", "failed",
                "disputed", "dispute_won", "charged_back"}
    assert required <= {s.value for s in PaymentState}
    assert {S.DECLINED, S.FAILED, S.VOIDED, S.REFUNDED, S.CHARGED_BACK} == TERMINAL_STATES
    # a dispute is only ever about money captured, and ends won or lost
    assert {f for f, to in TRANSITIONS.items() if S.DISPUTED in to} == {
        S.CAPTURED, S.PARTIALLY_REFUNDED, S.DISPUTE_WON}
    assert TRANSITIONS[S.DISPUTED] == {S.DISPUTE_WON, S.CHARGED_BACK}


@pytest.mark.parametrize("from_state", list(PaymentState))
@pytest.mark.parametrize("to_state", list(PaymentState))
def test_every_edge_not_in_the_table_is_rejected_and_changes_nothing(
        from_state: PaymentState, to_state: PaymentState) -> None:
    p = new_payment()
    p.state = from_state
    p.drain()
    if to_state in TRANSITIONS[from_state]:
        p.transition(to_state, reason="r", actor="a", at=NOW)
        assert p.state is to_state
        assert len(p.new_transitions) == 1
    else:
        with pytest.raises(InvalidTransitionError):
            p.transition(to_state, reason="r", actor="a", at=NOW)
        assert p.state is from_state
        assert p.new_transitions == [] and p.new_events == []


def test_an_unknown_authorization_can_never_be_captured() -> None:
    p = new_payment()
    p.begin(Operation.AUTHORIZE, None, request_id="k", actor="t", at=NOW)
    p.mark_unknown(reason="timeout", actor="t", at=NOW)
    with pytest.raises(InvalidTransitionError):
        p.begin(Operation.CAPTURE, None, request_id="c", actor="t", at=NOW)
    assert p.state is S.UNKNOWN and p.pending_operation is Operation.AUTHORIZE


def test_partial_capture_releases_the_rest_of_the_hold() -> None:
    p = captured(1000, 600)
    assert p.captured_minor == 600 and p.state is S.CAPTURED


def test_partial_refunds_can_never_exceed_the_captured_amount() -> None:
    p = captured(1000, 600)
    p.begin(Operation.REFUND, 400, request_id="r1", actor="t", at=NOW)
    p.settle(True, reason="ok", actor="t", at=NOW)
    assert p.state is S.PARTIALLY_REFUNDED and p.refundable_minor == 200
    with pytest.raises(AmountExceedsAvailableError) as info:
        p.begin(Operation.REFUND, 201, request_id="r2", actor="t", at=NOW)
    assert info.value.available == 200 and p.state is S.PARTIALLY_REFUNDED
    p.begin(Operation.REFUND, None, request_id="r3", actor="t", at=NOW)
    p.settle(True, reason="ok", actor="t", at=NOW)
    assert p.state is S.REFUNDED and p.refunded_minor == 600


def test_capture_above_the_authorized_amount_is_rejected() -> None:
    p = authorized(1000)
    with pytest.raises(AmountExceedsAvailableError):
        p.begin(Operation.CAPTURE, 1001, request_id="c", actor="t", at=NOW)
    assert p.state is S.AUTHORIZED


def test_every_transition_emits_a_past_tense_event() -> None:  # (manual capture: two calls)
    p = captured()
    names = [e.name for e in p.new_events]
    assert names == ["PaymentCreated", "AuthorizationRequested", "PaymentAuthorized",
                     "CaptureRequested", "PaymentCaptured"]


def test_markdown_table_lists_every_state() -> None:
    text = transition_table_markdown()
    for state in PaymentState:
        assert f"| {state.value} |" in text
