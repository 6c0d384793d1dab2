"""What kind of payment method a payment uses, in paysignal's neutral words. Each provider maps
its own vocabulary onto these (its connector's `method_type`); rollout toggles are keyed by
them, so a toggle says "cards at this provider", never "this one saved card"."""

from __future__ import annotations

from enum import StrEnum


class MethodType(StrEnum):
    CARD = "card"  # a card, entered or stored (scheme cards, vaulted cards)
    WALLET = "wallet"  # a wallet account (PayPal, Venmo, Apple Pay, Google Pay, ...)
    BANK_DEBIT = "bank_debit"  # a direct debit from a bank account (SEPA, ACH, BACS)
    BANK_TRANSFER = "bank_transfer"  # a push payment from the customer's bank



def method_type_choices() -> str:
    return ", ".join(t.value for t in MethodType)
