"""Where a provider counts money otherwise than ISO 4217, at its boundary.

paysignal's amounts are ISO 4217 minor units. Providers depart from ISO for some currencies
(more decimals, fewer, or amounts that must be a multiple of something), each in its own way, so
each provider package declares its departures, with the source of each, and its connector
converts every amount it sends and reads through them. An amount the provider cannot represent is
refused before any call, naming `amount`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from engine.domain.money import currency_exponent
from engine.exceptions import ValidationError

_TEN: list[int] = [10 ** n for n in range(10)]  # powers of ten, as ints (decimals differ by at most 4)


@dataclass(frozen=True, slots=True)
class Departure:
    """How a provider counts one currency: `exponent` decimals in its minor units, and (when
    above 1) amounts in those units must be multiples of `step`."""

    exponent: int
    source: str
    step: int = 1


@dataclass(frozen=True, slots=True)
class ProviderCurrencies:
    provider: str
    departures: Mapping[str, Departure]
    supported: frozenset[str] | None = None  # None: every ISO 4217 currency but `refused`
    refused: frozenset[str] = frozenset()

    def check_currency(self, currency: str, field: str = "currency") -> None:
        if currency in self.refused:
            raise ValidationError(field, f"{self.provider} does not take {currency}")
        if self.supported is not None and currency not in self.supported:
            raise ValidationError(field, f"{self.provider} does not take {currency} (it takes "
                                         f"{', '.join(sorted(self.supported))})")

    def exponent(self, currency: str) -> int:
        departure = self.departures.get(currency)
        return departure.exponent if departure else currency_exponent(currency)

    def to_provider(self, amount_minor: int, currency: str, field: str = "amount") -> int:
        """ISO minor units as the provider counts them; ValidationError(`field`) when the
        provider cannot represent the amount."""
        shift = self.exponent(currency) - currency_exponent(currency)
        if shift >= 0:
            units = amount_minor * _TEN[shift]
        else:
            units, rest = divmod(amount_minor, _TEN[-shift])
            if rest:
                raise ValidationError(field, self._unrepresentable(amount_minor, currency))
        departure = self.departures.get(currency)
        if departure and units % departure.step:
            raise ValidationError(field, self._unrepresentable(amount_minor, currency))
        return units

    def from_provider(self, units: int, currency: str) -> int:
        """The provider's units as ISO minor units. Raises ValueError when they are not a whole
        number of ISO minor units (a provider's amount paysignal cannot book exactly)."""
        shift = self.exponent(currency) - currency_exponent(currency)
        if shift <= 0:
            return units * _TEN[-shift]
        minor, rest = divmod(units, _TEN[shift])
        if rest:
            raise ValueError(f"{self.provider} amount {units} {currency} is not a whole number "
                             "of ISO 4217 minor units")
        return minor

    def check(self, amount_minor: int, currency: str, field: str = "amount") -> None:
        """Whether the provider can take this amount: ValidationError naming `currency` or
        `field` when not."""
        self.check_currency(currency)
        self.to_provider(amount_minor, currency, field)

    def smallest(self, currency: str) -> int:
        """The smallest amount, in ISO minor units, the provider can represent; every amount it
        can is a multiple of it."""
        shift = self.exponent(currency) - currency_exponent(currency)
        departure = self.departures.get(currency)
        step = departure.step if departure else 1
        if shift >= 0:
            return step // math.gcd(step, _TEN[shift])
        return _TEN[-shift] * step

    def _unrepresentable(self, amount_minor: int, currency: str) -> str:
        return (f"{self.provider} takes {currency} amounts only in multiples of "
                f"{self.smallest(currency)} minor units ({amount_minor} is not one)")
