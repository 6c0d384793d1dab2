"""How the sandbox's PayPal writes its resources: amounts receivable, public views, canonical
JSON, timestamps, and its self-signed notice certificate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.domain.money import currency_exponent
from engine.providers.paypal.config import (
    PRICING,
)

# PayPal's amounts from its side (developer.paypal.com/api/rest/reference/currency-codes):
# decimal strings in the currencies it takes, without decimals for HUF, JPY and TWD ("Decimal
# amounts cause an error") and with two for every other. Written apart from the connector's
# departures from ISO 4217, so that the two can disagree.
TAKES = frozenset(("AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY",
                   "MYR", "MXN", "TWD", "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF",
                   "THB", "USD"))
_NO_DECIMALS = frozenset(("HUF", "JPY", "TWD"))


class AmountRefused(ValueError):
    """An amount PayPal refuses, with its issue code."""

    def __init__(self, issue: str, message: str) -> None:
        super().__init__(message)
        self.issue = issue


def paypal_units(amount: Mapping[str, Any]) -> int:
    """An amount object in PayPal's smallest unit of its currency. AmountRefused for a currency
    PayPal does not take or more decimals than it gives the currency; ValueError (or KeyError)
    for what is no amount at all."""
    currency, value = str(amount["currency_code"]), str(amount["value"])
    if currency not in TAKES:
        raise AmountRefused("CURRENCY_NOT_SUPPORTED", f"Currency code {currency} is not "
                            "supported.")
    decimals = 0 if currency in _NO_DECIMALS else 2
    whole, _, fraction = value.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"{value!r} is no amount")
    if len(fraction) > decimals:
        raise AmountRefused("DECIMAL_PRECISION", f"{currency} takes {decimals} decimals.")
    return int(whole + fraction.ljust(decimals, "0"))


def paypal_value(units: int, currency: str) -> str:
    if currency in _NO_DECIMALS:
        return str(units)
    return f"{units // 100}.{units % 100:02d}"


def iso_minor(units: int, currency: str) -> int:
    """PayPal's units in ISO 4217 minor units (what the sandbox's books count)."""
    shift = (0 if currency in _NO_DECIMALS else 2) - currency_exponent(currency)
    return units // int(10 ** shift) if shift >= 0 else units * int(10 ** -shift)


def receivable(units: int, currency: str) -> dict[str, Any]:
    """A capture's seller_receivable_breakdown at the published price."""
    fee = PRICING.capture_fee(units)
    return {"seller_receivable_breakdown": {
        "gross_amount": {"currency_code": currency, "value": paypal_value(units, currency)},
        "paypal_fee": {"currency_code": currency, "value": paypal_value(fee, currency)},
        "net_amount": {"currency_code": currency,
                       "value": paypal_value(units - fee, currency)}}}


def public_view(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if not k.startswith("_") and k != "refunded"}


def paypal_json(value: Any) -> bytes:
    """A notice's body as the sandbox's PayPal sends it: compact, fields in the order written,
    text unescaped. Only these exact bytes verify (offline, by their CRC32, or by postback):
    a receiver that parses and encodes the event again sends other text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def self_signed_certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "paysignal-sandbox")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


# --- the registry's view -------------------------------------------------------------------
