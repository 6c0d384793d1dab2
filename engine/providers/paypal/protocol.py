"""PayPal's wire conventions both ends share: amounts as decimal strings, the message a
notice's signature covers, and the hosts a signing certificate may come from."""

from __future__ import annotations

import zlib
from typing import Any
from urllib.parse import urlsplit

from engine.domain.money import Money
from engine.providers.paypal.config import CERT_PATH


def amount_field(minor: int, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": Money(minor, currency).to_decimal_string()}


def minor_of(amount: dict[str, Any]) -> int:
    return Money.from_decimal_string(str(amount["value"]), str(amount["currency_code"]),
                                     "amount.value").amount_minor


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str,
                   body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def cert_url_allowed(cert_url: str, base_url: str) -> bool:
    """Only a certificate on the configured PayPal API host (or its api. twin: PayPal serves
    certificates from api.paypal.com for api-m.paypal.com), over the same scheme."""
    cert, base = urlsplit(cert_url), urlsplit(base_url)
    hosts = {base.netloc, base.netloc.replace("api-m.", "api.", 1)}
    prefix = base.path.rstrip("/") if base.netloc == cert.netloc else ""
    return (cert.scheme == base.scheme and cert.netloc in hosts
            and cert.path.startswith(prefix + CERT_PATH) and ".." not in cert.path)
