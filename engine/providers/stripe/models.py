"""The Stripe bodies paysignal reads, typed: only the fields it uses (Stripe's API reference and
its OpenAPI description name them; docs/providers.md has the sources)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.providers.wire import WireModel


class ObjectRef(WireModel):
    id: str


class StripeError(WireModel):
    type: str | None = None
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    payment_intent: ObjectRef | None = None  # on card errors: the intent that was declined


class ErrorAnswer(WireModel):
    error: StripeError = StripeError()


class BalanceTransaction(WireModel):
    """In the account's settlement currency: `exchange_rate` is set when it is not the
    charge's (docs.stripe.com/api/balance_transactions/object)."""

    fee: int = 0
    currency: str | None = None


class Charge(WireModel):
    # an id unless the request asked for it expanded
    balance_transaction: BalanceTransaction | str | None = None


class PaymentError(WireModel):
    code: str | None = None
    decline_code: str | None = None


class PaymentIntent(WireModel):
    id: str
    status: str
    currency: str | None = None
    amount: int | None = None
    amount_received: int | None = None
    capture_method: str | None = None
    metadata: dict[str, str] = {}
    last_payment_error: PaymentError | None = None
    latest_charge: Charge | str | None = None
    next_action: dict[str, Any] | None = None  # requires_action: what the customer must do
    client_secret: str | None = None  # for Stripe.js to finish it on the customer's device

    def customer_action(self) -> dict[str, object]:
        action = self.next_action or {}
        kind = str(action.get("type") or "unknown")
        url = (action.get(kind) or {}).get("url") if isinstance(action.get(kind), dict) else None
        return {"type": kind, **({"url": url} if url else {}),
                **({"client_secret": self.client_secret} if self.client_secret else {})}

    def fee_in(self, currency: str, from_stripe: Callable[[int, str], int]) -> int | None:
        """The fee Stripe booked, in ISO minor units of `currency`, when the charge and its
        balance transaction were expanded and the balance transaction is in that currency;
        None otherwise (a fee in the settlement currency is no fee in the payment's)."""
        charge = self.latest_charge
        if not isinstance(charge, Charge):
            return None
        booked = charge.balance_transaction
        if not isinstance(booked, BalanceTransaction) or (booked.currency or "").upper() != (
                currency):
            return None
        try:
            return from_stripe(booked.fee, currency)
        except ValueError:  # not a whole number of ISO minor units: not bookable as stated
            return None


class Refund(WireModel):
    id: str
    status: str
    currency: str | None = None
    amount: int | None = None
    payment_intent: str | ObjectRef | None = None
    metadata: dict[str, str] = {}
    failure_reason: str | None = None

    @property
    def intent_id(self) -> str | None:
        intent = self.payment_intent
        return intent.id if isinstance(intent, ObjectRef) else intent


class IntentSearch(WireModel):
    data: list[PaymentIntent] = []


class RefundList(WireModel):
    data: list[Refund] = []


class EventData(WireModel):
    object: dict[str, Any]


class Event(WireModel):
    id: str
    type: str
    data: EventData


class EvidenceDetails(WireModel):
    due_by: int | None = None


class Dispute(WireModel):
    id: str
    payment_intent: str
    amount: int
    currency: str
    status: str
    reason: str | None = None
    evidence_details: EvidenceDetails | None = None
