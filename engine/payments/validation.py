"""Request validation, written once: the HTTP API publishes these models in its OpenAPI schema
and validates bodies with them, and the service validates every request (including those that do
not come over HTTP) with the same models."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, create_model

from engine.domain.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR
from engine.domain.text import validate_text
from engine.exceptions import ValidationError
from engine.providers.registry import PROVIDERS

MAX_KEY_LENGTH = 255


def validate_idempotency_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError("Idempotency-Key", "is required on every POST")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError("Idempotency-Key", f"must be at most {MAX_KEY_LENGTH} characters")
    return validate_text(key, "Idempotency-Key", MAX_KEY_LENGTH)


MAX_PAYMENT_METHOD_LENGTH = 4096
_CARD_NUMBER = re.compile(r"^\d[\d -]{10,22}\d$")


def _not_a_card_number(value: Any) -> Any:
    """paysignal never takes a card number: that keeps it out of PCI card-data scope."""
    if isinstance(value, str) and _CARD_NUMBER.match(value.strip()):
        raise ValueError("must be a provider's payment-method token; card numbers are never "
                         "accepted")
    return value


def _integral_number(value: Any) -> Any:
    """JSON has one number type: 1299.0 is the integer 1299, but 12.99, "1299" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The validator goes last: pydantic then still publishes minimum/maximum in the schema.
Amount = Annotated[int, Strict(), Field(ge=1, le=MAX_AMOUNT_MINOR, description="Minor units"),
                   BeforeValidator(_integral_number)]
CURRENCIES = tuple(sorted(CURRENCY_EXPONENTS))
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"


@lru_cache(maxsize=8)
def create_payment_model(providers: tuple[str, ...]) -> type[BaseModel]:
    """The create-payment body; its provider enum is the providers this process runs."""
    # Literal types built at run time: typed Any, since no static type describes them.
    provider_type: Any = Literal[providers] if providers else str
    currency_type: Any = Literal[CURRENCIES]
    capture_type: Any = Literal["automatic", "manual"]
    initiator_type: Any = Literal["customer", "merchant"]
    model: type[BaseModel] = create_model(
        "CreatePaymentRequest",
        __config__=ConfigDict(extra="forbid"),
        amount=(Amount, Field(examples=[1299])),
        currency=(currency_type, Field(description="ISO 4217 code", examples=["USD"])),
        capture=(capture_type, "automatic"),
        reference=(str, Field(min_length=1, max_length=255, pattern=TEXT_PATTERN,
                              examples=["order-1042"],
                              description="The merchant's own reference (no control characters)")),
        payment_method=(Annotated[str, BeforeValidator(_not_a_card_number)], Field(
            min_length=1, max_length=MAX_PAYMENT_METHOD_LENGTH, pattern=r"^[\x21-\x7e]+$",
            examples=[PROVIDERS[p].payment_method_example for p in providers if p in PROVIDERS],
            description="The provider's own payment-method token ("
                        + "; ".join(f"{p}: {PROVIDERS[p].payment_method_help}"
                                    for p in providers if p in PROVIDERS)
                        + "); never a card number")),
        provider=(provider_type | None,
                  Field(default=None, description="Force a provider; otherwise routed")),
        initiator=(initiator_type, Field(
            default="customer", description="Who starts the charge: the customer (at "
            "checkout), or the merchant without the customer (a renewal, an unscheduled "
            "charge on a stored payment method); each provider is told")),
    )
    return model


class AmountRequest(BaseModel):
    """The body of a capture or refund."""

    model_config = ConfigDict(extra="forbid")
    amount: Amount | None = Field(default=None, description="Minor units; omit for all")


@dataclass(frozen=True, slots=True)
class CreatePayment:
    amount: int
    currency: str
    capture: str
    reference: str
    payment_method: str
    provider: str | None
    initiator: str = "customer"


def parse_create_payment(request: object, providers: list[str]) -> CreatePayment:
    """The request as a CreatePayment, or a ValidationError naming the first bad field."""
    if not isinstance(request, dict):
        raise ValidationError("body", "must be a JSON object")
    try:
        body = create_payment_model(tuple(sorted(providers))).model_validate(request)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise ValidationError(".".join(str(p) for p in first["loc"]) or "body",
                              _reason(first)) from None
    return CreatePayment(**body.model_dump())


def _reason(error: Any) -> str:
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] == "extra_forbidden":
        return "is not a field of a payment request"
    return str(error["msg"])
