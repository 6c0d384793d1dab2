"""How the sandbox's PayPal writes its resources: amounts receivable, public views, canonical
JSON, timestamps, and its self-signed notice certificate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.domain.money import Money
from engine.providers.paypal.config import (
    PRICING,
)


def receivable(minor: int, currency: str) -> dict[str, Any]:
    """A capture's seller_receivable_breakdown at the published price."""
    fee = PRICING.capture_fee(minor)
    return {"seller_receivable_breakdown": {
        "gross_amount": {"currency_code": currency,
                         "value": Money(minor, currency).to_decimal_string()},
        "paypal_fee": {"currency_code": currency,
                       "value": Money(fee, currency).to_decimal_string()},
        "net_amount": {"currency_code": currency,
                       "value": Money(minor - fee, currency).to_decimal_string()}}}


def public_view(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if not k.startswith("_") and k != "refunded"}


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


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
