"""The payment state machine: one table of allowed transitions, read by code, docs and tests."""

from __future__ import annotations

from enum import StrEnum


class PaymentState(StrEnum):
    CREATED = "created"
    AUTHORIZING = "authorizing"
    AUTHORIZED = "authorized"
    UNKNOWN = "unknown"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    REQUIRES_CUSTOMER_ACTION = "requires_customer_action"
    DECLINED = "declined"
    FAILED = "failed"
    CAPTURING = "capturing"
    CAPTURED = "captured"
    VOIDING = "voiding"
    VOIDED = "voided"
    REFUNDING = "refunding"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    DISPUTE_WON = "dispute_won"
    CHARGED_BACK = "charged_back"


S = PaymentState

# from-state -> the states it may move to. Anything not listed is illegal.
TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    S.CREATED: frozenset({S.AUTHORIZING}),
    # an automatic-capture payment is authorized and captured in one provider call
    S.AUTHORIZING: frozenset({S.AUTHORIZED, S.CAPTURED, S.DECLINED, S.FAILED, S.UNKNOWN,
                              S.AWAITING_CONFIRMATION, S.REQUIRES_CUSTOMER_ACTION}),
    # the provider asks the customer to act (3-D Secure, a redirect, a payer's approval): never
    # a decline, since the customer may still complete it and be charged; left only by the
    # provider's word (notification or lookup), or by expiry once the provider has cancelled
    # the attempt (so no late charge can land after paysignal said no)
    S.REQUIRES_CUSTOMER_ACTION: frozenset({S.AUTHORIZED, S.CAPTURED, S.DECLINED, S.FAILED}),
    # unknown is left only by asking the provider what happened to the pending operation (or
    # by its notification); a repeat it answers "received" leaves the payment awaiting
    S.UNKNOWN: frozenset({
        S.AUTHORIZED, S.DECLINED, S.FAILED, S.CAPTURED, S.VOIDED,
        S.PARTIALLY_REFUNDED, S.REFUNDED, S.AWAITING_CONFIRMATION, S.REQUIRES_CUSTOMER_ACTION,
    }),
    # the provider accepted the operation and will confirm it by notification (Adyen's
    # "received"): never re-submitted, left only by the confirmation or its refusal
    S.AWAITING_CONFIRMATION: frozenset({
        S.AUTHORIZED, S.DECLINED, S.FAILED, S.CAPTURED, S.VOIDED,
        S.PARTIALLY_REFUNDED, S.REFUNDED,
    }),
    S.AUTHORIZED: frozenset({S.CAPTURING, S.VOIDING}),
    S.CAPTURING: frozenset({S.CAPTURED, S.AUTHORIZED, S.UNKNOWN, S.AWAITING_CONFIRMATION}),
    S.VOIDING: frozenset({S.VOIDED, S.AUTHORIZED, S.UNKNOWN, S.AWAITING_CONFIRMATION}),
    # a cardholder's dispute, from the provider's notification (or a chargeback it settles)
    S.CAPTURED: frozenset({S.REFUNDING, S.DISPUTED}),
    S.REFUNDING: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.CAPTURED, S.UNKNOWN,
                            S.AWAITING_CONFIRMATION}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDING, S.DISPUTED}),
    # won: the disputed funds come back; lost (in part or whole): the chargeback stands
    S.DISPUTED: frozenset({S.DISPUTE_WON, S.CHARGED_BACK}),
    S.DISPUTE_WON: frozenset({S.REFUNDING, S.DISPUTED}),
    S.CHARGED_BACK: frozenset(),
    S.DECLINED: frozenset(),
    S.FAILED: frozenset(),
    S.VOIDED: frozenset(),
    S.REFUNDED: frozenset(),
}

TERMINAL_STATES: frozenset[PaymentState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

# States in which a provider call is in flight: a crash here is resumed by asking the provider.
IN_FLIGHT_STATES: frozenset[PaymentState] = frozenset(
    {S.AUTHORIZING, S.CAPTURING, S.VOIDING, S.REFUNDING}
)

# States whose pending operation is settled by an outside answer (a lookup or a notification).
AWAITING_ANSWER_STATES: frozenset[PaymentState] = frozenset(
    {S.UNKNOWN, S.AWAITING_CONFIRMATION, S.REQUIRES_CUSTOMER_ACTION})

# The event each arrival state emits (past tense, as consumers see it).
EVENT_FOR_STATE: dict[PaymentState, str] = {
    S.CREATED: "PaymentCreated",
    S.AUTHORIZING: "AuthorizationRequested",
    S.AUTHORIZED: "PaymentAuthorized",
    S.UNKNOWN: "ChargeOutcomeUnknown",
    S.AWAITING_CONFIRMATION: "ProviderConfirmationAwaited",
    S.REQUIRES_CUSTOMER_ACTION: "CustomerActionRequired",
    S.DECLINED: "PaymentDeclined",
    S.FAILED: "PaymentFailed",
    S.CAPTURING: "CaptureRequested",
    S.CAPTURED: "PaymentCaptured",
    S.VOIDING: "VoidRequested",
    S.VOIDED: "PaymentVoided",
    S.REFUNDING: "RefundRequested",
    S.PARTIALLY_REFUNDED: "PaymentPartiallyRefunded",
    S.REFUNDED: "PaymentRefunded",
    S.DISPUTED: "PaymentDisputed",
    S.DISPUTE_WON: "DisputeWon",
    S.CHARGED_BACK: "PaymentChargedBack",
}


def is_allowed(from_state: PaymentState, to_state: PaymentState) -> bool:
    return to_state in TRANSITIONS[from_state]


def transition_table_markdown() -> str:
    """The table as Markdown, for the README and `paysignal states`."""
    lines = ["| from | may move to |", "|---|---|"]
    for state, targets in TRANSITIONS.items():
        allowed = ", ".join(sorted(t.value for t in targets)) or "(terminal)"
        lines.append(f"| {state.value} | {allowed} |")
    return "\n".join(lines)
