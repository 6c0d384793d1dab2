"""Stripe's webhook signature scheme, `Stripe-Signature: t=…,v1=…` (both ends use it)."""

from __future__ import annotations

import hashlib
import hmac

from engine.providers.base import (
    WebhookSignatureError,
)

# --- the signature scheme (both ends) -----------------------------------------------------

def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(header: str, body: bytes, secrets: tuple[str, ...] | list[str],
                     now: float, tolerance_s: float) -> int:
    """The signing time, or WebhookSignatureError. Any `v1` matching any configured secret
    passes (during a rotation Stripe signs with both)."""
    timestamp, given = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            given.append(value)
    if timestamp is None or not given:
        raise WebhookSignatureError("Stripe-Signature has no t= or no v1=")
    if abs(now - timestamp) > tolerance_s:
        raise WebhookSignatureError("timestamp outside the tolerance")
    if not secrets:
        raise WebhookSignatureError("no webhook secret is configured for stripe")
    expected = [sign(s, body, timestamp).rpartition("v1=")[2] for s in secrets]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise WebhookSignatureError("signature does not match")
    return timestamp
