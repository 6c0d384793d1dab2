"""The PayPal bodies paysignal reads, typed: only the fields it uses (PayPal's Orders v2,
Payments v2, Webhooks and Disputes API references name them; docs/providers.md has the
sources)."""

from __future__ import annotations

from typing import Any

from engine.providers.paypal.protocol import minor_of
from engine.providers.wire import WireModel


class TokenAnswer(WireModel):
    access_token: str
    expires_in: float = 300.0


class Amount(WireModel):
    currency_code: str
    value: str

    @property
    def minor(self) -> int:
        return minor_of({"currency_code": self.currency_code, "value": self.value})


class ProcessorResponse(WireModel):
    response_code: str | None = None


class ReceivableBreakdown(WireModel):
    paypal_fee: Amount | None = None


class Link(WireModel):
    href: str
    rel: str


class RelatedIds(WireModel):
    authorization_id: str | None = None


class SupplementaryData(WireModel):
    related_ids: RelatedIds = RelatedIds()


class Payment(WireModel):
    """An authorization, a capture or a refund."""

    id: str | None = None
    status: str
    amount: Amount | None = None
    custom_id: str | None = None
    processor_response: ProcessorResponse | None = None
    seller_receivable_breakdown: ReceivableBreakdown | None = None
    links: list[Link] = []
    supplementary_data: SupplementaryData = SupplementaryData()

    @property
    def fee_minor(self) -> int:
        breakdown = self.seller_receivable_breakdown
        return breakdown.paypal_fee.minor if breakdown and breakdown.paypal_fee else 0

    def linked_id(self, rel: str) -> str | None:
        """The id at the end of the first link of relation `rel` (a refund's `up`: its
        capture)."""
        for link in self.links:
            if link.rel == rel:
                return link.href.rstrip("/").rsplit("/", 1)[-1]
        return None


class OrderPayments(WireModel):
    authorizations: list[Payment] = []
    captures: list[Payment] = []


class PurchaseUnit(WireModel):
    payments: OrderPayments = OrderPayments()


class Order(WireModel):
    id: str | None = None
    status: str
    purchase_units: list[PurchaseUnit]
    links: list[Link] = []

    def customer_action(self) -> dict[str, object]:
        """PAYER_ACTION_REQUIRED: the payer-action link the payer must visit."""
        url = next((link.href for link in self.links if link.rel == "payer-action"), None)
        return {"type": "payer_action", **({"url": url} if url else {})}


class ErrorDetail(WireModel):
    issue: str | None = None


class ErrorAnswer(WireModel):
    name: str | None = None
    message: str | None = None
    details: list[ErrorDetail] = []

    @property
    def issues(self) -> list[str]:
        return [d.issue for d in self.details if d.issue]


class VerificationAnswer(WireModel):
    verification_status: str | None = None


class Event(WireModel):
    id: str
    event_type: str
    resource: dict[str, Any]


class DisputedTransaction(WireModel):
    seller_transaction_id: str
    custom: str | None = None


class DisputeOutcome(WireModel):
    outcome_code: str


class Dispute(WireModel):
    dispute_id: str
    disputed_transactions: list[DisputedTransaction]
    dispute_amount: Amount
    dispute_outcome: DisputeOutcome | None = None
    seller_response_due_date: str | None = None
    reason: str | None = None
