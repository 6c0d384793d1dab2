"""Where PayPal counts money otherwise than ISO 4217, and the currencies it takes at all."""

from __future__ import annotations

from engine.providers.currencies import Departure, ProviderCurrencies
from engine.providers.paypal.config import NAME

_SOURCE = ("developer.paypal.com/api/rest/reference/currency-codes (\"This currency does not "
           "support decimals. If you pass a decimal amount, an error occurs.\")")

CURRENCIES = ProviderCurrencies(NAME, {
    "HUF": Departure(0, _SOURCE),
    "TWD": Departure(0, _SOURCE),
}, supported=frozenset((  # the same page: the currencies of PayPal's REST payments
    "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN",
    "TWD", "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD")))
