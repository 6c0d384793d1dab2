"""PayPal's wire conventions both ends share: amounts as decimal strings, the message a
notice's signature covers, and the hosts a signing certificate may come from."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from engine.providers.paypal.config import CERT_PATH
from engine.providers.paypal.currencies import CURRENCIES

_DECIMAL = re.compile(r"(\d{1,15})(?:\.(\d{1,4}))?")


def amount_field(minor: int, currency: str) -> dict[str, str]:
    """ISO minor units as PayPal's decimal string, with PayPal's decimals for the currency
    (none for HUF, JPY and TWD)."""
    units = CURRENCIES.to_provider(minor, currency)
    exponent = CURRENCIES.exponent(currency)
    whole, rest = divmod(units, 10 ** exponent)
    return {"currency_code": currency,
            "value": f"{whole}.{rest:0{exponent}d}" if exponent else str(whole)}


def minor_of(amount: Mapping[str, Any]) -> int:
    """PayPal's amount object in ISO minor units. ValueError when the value is no decimal, has
    more decimals than PayPal gives the currency, or is not a whole number of ISO minor units."""
    currency, text = str(amount["currency_code"]), str(amount["value"])
    exponent = CURRENCIES.exponent(currency)
    plain = _DECIMAL.fullmatch(text)
    if plain is None or len(plain[2] or "") > exponent:
        raise ValueError(f"amount.value {text!r} is not a {currency} amount with at most "
                         f"{exponent} decimals")
    return CURRENCIES.from_provider(int(plain[1] + (plain[2] or "").ljust(exponent, "0")),
                                    currency)


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
