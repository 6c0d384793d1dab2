"""The Adyen bodies paysignal reads, typed: only the fields it uses (Adyen's Checkout v72 API
reference and its notification webhooks description name them; docs/providers.md has the
sources)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from engine.providers.adyen.currencies import CURRENCIES
from engine.providers.wire import WireModel


class PaymentAnswer(WireModel):
    """`/payments`' answer."""

    result_code: str = Field(alias="resultCode")
    psp_reference: str | None = Field(None, alias="pspReference")
    refusal_reason: str | None = Field(None, alias="refusalReason")
    action: dict[str, Any] | None = None  # what the shopper must do (redirect, 3-D Secure)

    def customer_action(self) -> dict[str, object]:
        action = self.action or {}
        return {"type": str(action.get("type") or "unknown"),
                **({"url": action["url"]} if isinstance(action.get("url"), str) else {}),
                "provider_action": action}


class ModificationAnswer(WireModel):
    """A capture's, cancel's or refund's answer: `received`, confirmed later by notification."""

    status: str


class ErrorAnswer(WireModel):
    # an errorCode sent as a number (704) is read as its text
    model_config = ConfigDict(**WireModel.model_config, coerce_numbers_to_str=True)

    error_code: str | None = Field(None, alias="errorCode")
    message: str | None = None


class Amount(WireModel):
    value: int  # in Adyen's minor units, which differ from ISO 4217's for a few currencies
    currency: str

    @property
    def minor(self) -> int:
        """The amount in ISO 4217 minor units."""
        return CURRENCIES.from_provider(self.value, self.currency)


class NotificationItem(WireModel):
    """One `NotificationRequestItem` of a standard notification."""

    event_code: str = Field(alias="eventCode")
    success: str
    psp_reference: str = Field(alias="pspReference")
    original_reference: str | None = Field(None, alias="originalReference")
    merchant_reference: str = Field("", alias="merchantReference")
    event_date: str = Field(alias="eventDate")
    amount: Amount
    reason: str | None = None
    additional_data: dict[str, str] = Field({}, alias="additionalData")

    @property
    def event_id(self) -> str:
        # Adyen gives no event id: an item is told apart by its reference, code and success
        return f"{self.psp_reference}:{self.event_code}:{self.success}"

    @property
    def payment_reference(self) -> str:
        """The payment's pspReference: a modification's item names it as originalReference."""
        return self.original_reference or self.psp_reference
