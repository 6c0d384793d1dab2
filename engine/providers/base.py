"""The one gateway interface and its normalized outcome."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from engine.domain.operations import Operation


class OutcomeKind(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    RETRYABLE = "retryable_error"  # nothing happened at the provider; safe to retry
    UNKNOWN = "unknown"  # it may or may not have happened (timeout); never retry blindly
    NOT_FOUND = "not_found"  # lookups only: the provider never performed the operation


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    operation: Operation
    request_id: str  # our provider-side idempotency key, derived from the idempotency record
    payment_ref: str  # our payment id, stored by the provider as metadata
    amount_minor: int
    currency: str
    payment_method: str | None = None
    provider_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderOutcome:
    kind: OutcomeKind
    raw_status: str  # the provider's own word, for the attempt log
    provider_reference: str | None = None
    reason: str | None = None
    fee_minor: int = 0
    latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RawResponse:
    """What came over the wire, in the provider's vocabulary. http_status None = timed out."""

    http_status: int | None
    body: dict[str, Any]
    latency_s: float = 0.0


class WebhookSignatureError(Exception):
    """A notification whose signature or timestamp does not check out."""


@dataclass(frozen=True, slots=True)
class ParsedNotification:
    """A provider notification in normalized words."""

    event_id: str
    payment_ref: str
    provider_reference: str
    operation: Operation
    succeeded: bool
    amount_minor: int | None = None  # the amount the notification is about, when it says
    request_id: str | None = None  # our provider-side request id, when the provider echoes it


class Gateway(Protocol):
    name: str
    honours_idempotency_keys: bool

    def execute(self, request: ProviderRequest) -> ProviderOutcome: ...

    def lookup(self, operation: Operation, request_id: str, payment_ref: str) -> ProviderOutcome:
        """What became of an earlier attempt with this request id?"""
        ...

    def fee_for(self, amount_minor: int) -> int:
        """The provider's fee for capturing this amount, in the same currency's minor units."""
        ...

    def signature_parts(self, headers: dict[str, str]) -> tuple[int, bytes]:
        """(signing time, signature) from a notification's lower-cased headers."""
        ...

    def verify(self, headers: dict[str, str], body: bytes, now: float,
               tolerance_s: float = 300.0) -> None:
        """Raise WebhookSignatureError unless the notification is signed and fresh."""
        ...

    def parse_notification(self, body: dict[str, Any]) -> ParsedNotification:
        """The notification in normalized words (KeyError, ValueError... if malformed)."""
        ...
