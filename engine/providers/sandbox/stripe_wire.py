"""Stripe's wire from its side: form bodies, and amounts as its currencies page puts them
(docs.stripe.com/currencies): no decimals for the zero-decimal currencies, three for the
three-decimal ones (whose last digit must be 0), two for every other currency, ISK included (in
whole krónur since 14 April 2023: multiples of 100;
support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds).

Written from Stripe's side, apart from the connector's table of departures from ISO 4217, so
that the two can disagree. The sandbox keeps its books in ISO 4217 minor units, and what Stripe
counted beside them."""

from __future__ import annotations

import json
import re
from typing import Any

from engine.domain.money import currency_exponent
from engine.providers.sandbox.protocol import SandboxResponse

_ZERO_DECIMAL = frozenset(("BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
                           "UGX", "VND", "VUV", "XAF", "XOF", "XPF"))
_THREE_DECIMAL = frozenset(("BHD", "JOD", "KWD", "OMR", "TND"))


def stripe_decimals(currency: str) -> int:
    return 0 if currency in _ZERO_DECIMAL else 3 if currency in _THREE_DECIMAL else 2


def refused_amount(amount: int, currency: str) -> tuple[str, str] | None:
    """(message, code) of Stripe's refusal of an amount it cannot take; None when it can."""
    if currency == "ISK" and amount % 100:
        return ("Invalid amount. Currency ISK has become effectively zero-decimal and charged "
                "amounts must be evenly divisible by 100.",
                "invalid_charge_amount_no_decimal_compatible")
    if currency in _THREE_DECIMAL and amount % 10:
        return f"Amounts in {currency} must end in 0.", "amount_invalid"
    return None


def iso_minor(amount: int, currency: str) -> int:
    """A Stripe amount (one it took) in ISO 4217 minor units."""
    shift = stripe_decimals(currency) - currency_exponent(currency)
    if shift >= 0:
        return amount // int(10 ** shift)
    return amount * int(10 ** -shift)


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back to a structure: a[b]=1 -> {a: {b: 1}}, a[]=1 -> {a: [1]}."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        m = re.fullmatch(r"([^\[]+)\[([^\]]*)\]", name)
        if not m:
            out[name] = value
        elif m.group(2) == "":
            out.setdefault(m.group(1), []).append(value)
        else:
            out.setdefault(m.group(1), {})[m.group(2)] = value
    return out


def error(status: int, type_: str, message: str, code: str | None = None,
           **extra: Any) -> SandboxResponse:
    error: dict[str, Any] = {"type": type_, "message": message, **extra}
    if code:
        error["code"] = code
    return SandboxResponse.json(status, {"error": error})


def never_executed(response: SandboxResponse) -> bool:
    """Stripe saves no result for a request that failed validation, was rate limited, or
    never began executing; a repeat with the key then runs afresh."""
    if response.unbooked:
        return True
    if response.status == 400:
        code = (json.loads(response.body).get("error") or {}).get("code")
        return code in ("parameter_missing", "resource_missing")
    return False
