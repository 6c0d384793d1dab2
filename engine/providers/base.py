"""The one gateway interface and its normalized outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from engine.domain.method_types import MethodType
from engine.domain.operations import Operation


class OutcomeKind(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    RETRYABLE = "retryable_error"  # nothing happened at the provider; safe to retry
    UNKNOWN = "unknown"  # it may or may not have happened (timeout); never retry blindly
    NOT_FOUND = "not_found"  # lookups only: the provider never performed the operation
    # Accepted for processing; the outcome comes later by notification (Adyen's "received").
    SUBMITTED = "submitted"
    # Refused as a request (authentication, a parameter): nothing happened; retrying is futile.
    REJECTED = "rejected"
    # The provider asks the customer to act (authenticate, approve) before it decides: the
    # outcome comes later, by notification or lookup; `customer_action` says what to do.
    ACTION_REQUIRED = "action_required"


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    operation: Operation
    request_id: str  # our provider-side idempotency key, derived from the idempotency record
    payment_ref: str  # our payment id, stored by the provider as metadata
    amount_minor: int
    currency: str
    payment_method: str | None = None
    provider_reference: str | None = None
    capture: bool = False  # an authorization that captures at once (automatic capture)
    # how long ago the operation was first sent, by the engine's clock (lookups decide by it
    # whether the provider still keeps the idempotency key)
    age_s: float = 0.0
    # False: the merchant charges without the customer (a renewal, an unscheduled charge on a
    # stored method); each provider is told so, which spares most such charges 3-D Secure
    customer_present: bool = True


@dataclass(frozen=True, slots=True)
class ProviderOutcome:
    kind: OutcomeKind
    raw_status: str  # the provider's own word, for the attempt log
    provider_reference: str | None = None
    reason: str | None = None
    fee_minor: int = 0
    latency_s: float = 0.0
    retry_after_s: float | None = None  # the provider asked to wait this long (429)
    captured: bool = False  # an authorization the provider also captured (one call)
    # ACTION_REQUIRED: what the merchant needs to bring the customer back, in the provider's
    # own words ({"type": …, "url": …, "client_secret": …, "provider_action": {…}})
    customer_action: Mapping[str, object] | None = None


class WebhookSignatureError(Exception):
    """A notification whose signature or timestamp does not check out."""


class MalformedNotificationError(Exception):
    """A notification that is signed (or cannot be checked) but is not in the provider's format."""


@dataclass(frozen=True, slots=True)
class ParsedNotification:
    """A provider notification in normalized words, after its signature checked out."""

    event_id: str
    payment_ref: str
    provider_reference: str
    operation: Operation
    succeeded: bool
    amount_minor: int | None = None  # the amount the notification is about, when it says
    request_id: str | None = None  # our provider-side request id, when the provider echoes it
    sent_at: float | None = None  # when the provider says it sent it (unix seconds)
    # an authorization's notification: whether it also captured (None: as the request asked)
    captured: bool | None = None


class DisputeStage(StrEnum):
    """Where a cardholder's dispute stands, in paysignal's words."""

    OPENED = "opened"  # notice only: no money moved yet (Adyen's NOTIFICATION_OF_CHARGEBACK)
    FUNDS_WITHDRAWN = "funds_withdrawn"  # the disputed amount was taken from the balance
    WON = "won"  # decided for the merchant: withdrawn funds come back
    LOST = "lost"  # decided for the cardholder: the chargeback stands


@dataclass(frozen=True, slots=True)
class ParsedDispute:
    """A dispute (chargeback) notification in normalized words, after its signature checked
    out. The payment is found by its provider reference, or by `payment_ref` when the provider
    echoes ours."""

    event_id: str
    dispute_ref: str  # the provider's id of the dispute
    provider_reference: str  # the disputed payment's reference at the provider
    stage: DisputeStage
    amount_minor: int
    currency: str
    payment_ref: str = ""
    reason: str = ""
    due_by: float | None = None  # when evidence is due (unix seconds), when the provider says
    sent_at: float | None = None
    # an inquiry (a retrieval request, Stripe's warning_ disputes): no funds are withdrawn
    # unless it becomes a chargeback, and closing it moves no money
    inquiry: bool = False


@dataclass(frozen=True, slots=True)
class UnusedNotice:
    """A verified notification paysignal does not act on: an event type it does not use, or a
    state that is no outcome yet (a pending refund). Acknowledged with the provider's 2xx,
    stored and counted, never refused as malformed (a provider would retry it for days)."""

    event_id: str
    event_type: str
    why: str  # UNUSED_TYPE, or NOT_FINAL (a state the provider will tell of again)
    provider_reference: str = ""
    sent_at: float | None = None


UNUSED_TYPE, NOT_FINAL = "unused_type", "not_final"
Notification = ParsedNotification | ParsedDispute | UnusedNotice


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """What a provider expects back for a notification it may stop retrying."""

    status: int = 200
    body: str = '{"received":true}'
    media_type: str = "application/json"


class Gateway(Protocol):
    """A provider connector: everything the engine may ask of a provider, in normalized words.
    Nothing outside a provider's module knows its vocabulary."""

    name: str

    def validate_payment_method(self, value: object) -> str:
        """The provider's own payment-method token, or ValidationError naming the field (a raw
        card number is always refused)."""
        ...

    def method_type(self, payment_method: str) -> MethodType:
        """What kind of payment method a (validated) token is, from the provider's own
        vocabulary: what rollout toggles are keyed by."""
        ...

    def check_amount(self, amount_minor: int, currency: str) -> None:
        """ValidationError naming `amount` (or `currency`) when the provider cannot represent
        the amount in its own units, so nothing is sent that it would refuse or misread."""
        ...

    def execute(self, request: ProviderRequest) -> ProviderOutcome: ...

    def abandon(self, request: ProviderRequest) -> ProviderOutcome:
        """Cancel an authorization that waits for the customer (it expired), so that nothing
        can be charged after paysignal gives up: the authorization's outcome once the provider
        has cancelled it (DECLINED), or what it had become meanwhile (SUCCEEDED: the customer
        finished first), or UNKNOWN (ask again later)."""
        ...

    def lookup(self, request: ProviderRequest) -> ProviderOutcome:
        """What became of an earlier attempt at `request` (same request id), asked the
        provider's own way; UNKNOWN when the provider cannot tell yet."""
        ...

    def fee_for(self, amount_minor: int, currency: str) -> int:
        """The fee the provider's configured pricing predicts for capturing this amount."""
        ...

    def verify_notifications(self, headers: dict[str, str], body: bytes, now: float,
                             tolerance_s: float) -> list[Notification]:
        """The notifications a request carries (a provider may batch several), each verified:
        WebhookSignatureError unless signed and fresh, MalformedNotificationError if not in
        the provider's format. Headers are lower-cased."""
        ...

    def acknowledgement(self) -> Acknowledgement:
        ...
