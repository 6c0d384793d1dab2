"""Adyen's notification HMAC (both ends use it): HMAC-SHA256 with the hex-decoded key over
`pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:
success`, base64 in `additionalData.hmacSignature`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from engine.providers.base import (
    WebhookSignatureError,
)

# --- the signature scheme (both ends) -----------------------------------------------------

SIGNED_FIELDS = ("pspReference", "originalReference", "merchantAccountCode",
                 "merchantReference", "value", "currency", "eventCode", "success")


def signing_string(item: dict[str, Any]) -> str:
    amount = item.get("amount") or {}
    values = {**{k: item.get(k) for k in SIGNED_FIELDS}, "value": amount.get("value"),
              "currency": amount.get("currency")}
    return ":".join("" if values[k] is None else str(values[k]) for k in SIGNED_FIELDS)


def hmac_signature(hex_key: str, item: dict[str, Any]) -> str:
    try:
        key = binascii.unhexlify(hex_key)
    except (binascii.Error, ValueError):
        raise WebhookSignatureError("the configured Adyen HMAC key is not hex") from None
    mac = hmac.new(key, signing_string(item).encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()
