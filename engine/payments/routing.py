"""Which provider a payment goes to when the merchant names none."""

from __future__ import annotations

import hashlib


class Router:
    """A stable hash of currency and merchant reference: the same order always goes to the same
    provider."""

    def __init__(self, providers: list[str]) -> None:
        self.providers = sorted(providers)

    def route(self, currency: str, reference: str) -> str:
        digest = int(hashlib.sha256(f"{currency}|{reference}".encode()).hexdigest()[:8], 16)
        return self.providers[digest % len(self.providers)]
