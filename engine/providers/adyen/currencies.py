"""Where Adyen counts money otherwise than ISO 4217."""

from __future__ import annotations

from engine.providers.adyen.config import NAME
from engine.providers.currencies import Departure, ProviderCurrencies

# "For CLP, CVE, IDR, and ISK the standard has a different number of decimals than shown in our
# currency codes table", and Adyen's table is the one its API counts in.
_SOURCE = "docs.adyen.com/development-resources/currency-codes (differs from standard)"

CURRENCIES = ProviderCurrencies(NAME, {
    "CLP": Departure(2, _SOURCE),
    "CVE": Departure(0, _SOURCE),
    "IDR": Departure(0, _SOURCE),
    "ISK": Departure(2, _SOURCE),
})
