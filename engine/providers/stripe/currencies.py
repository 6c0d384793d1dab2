"""Where Stripe counts money otherwise than ISO 4217 (charges, refunds and disputes; payouts have
rules of their own that paysignal does not send)."""

from __future__ import annotations

from engine.providers.currencies import Departure, ProviderCurrencies
from engine.providers.stripe.config import NAME

_CURRENCIES_PAGE = "docs.stripe.com/currencies"
_THREE_DECIMAL = Departure(3, f"{_CURRENCIES_PAGE} (three-decimal currencies: the last digit "
                              "must be 0)", step=10)

CURRENCIES = ProviderCurrencies(NAME, {
    # two decimals in the API (100 = 1 kr) and, since 14 April 2023, whole krónur only
    "ISK": Departure(2, "support.stripe.com/questions/deprecation-of-fractional-isk-charges-"
                        "and-refunds; " + _CURRENCIES_PAGE + "#special-cases", step=100),
    # on Stripe's list of zero-decimal currencies, where ISO 4217 gives it 2
    "MGA": Departure(0, _CURRENCIES_PAGE + "#zero-decimal"),
    **dict.fromkeys(("BHD", "JOD", "KWD", "OMR", "TND"), _THREE_DECIMAL),
}, refused=frozenset((  # not on Stripe's presentment list: the ISO currencies with 3 or more
    "IQD", "LYD", "UYW")))  # decimals but the five above
