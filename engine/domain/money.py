"""Money as integer minor units of an ISO 4217 currency. Never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from engine.exceptions import ValidationError

# ISO 4217 minor-unit exponents for the currencies paysignal accepts.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2,
    "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2,
    "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2,
    "NOK": 2, "NZD": 2, "OMR": 3, "PHP": 2, "PLN": 2, "RON": 2, "SAR": 2, "SEK": 2,
    "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UGX": 0, "USD": 2, "VND": 0,
    "XAF": 0, "XOF": 0, "ZAR": 2,
}

# Anything above this is a bug or an attack, not a payment (1e11 minor units).
MAX_AMOUNT_MINOR = 100_000_000_000


def currency_exponent(currency: object, field: str = "currency") -> int:
    code = validate_currency(currency, field)
    return CURRENCY_EXPONENTS[code]


_PLAIN_DECIMAL = re.compile(r"(\d{1,15})(?:\.(\d{1,4}))?")


def validate_currency(currency: object, field: str = "currency") -> str:
    if not isinstance(currency, str):
        raise ValidationError(field, "must be a three-letter ISO 4217 code")
    if currency not in CURRENCY_EXPONENTS:
        if currency.upper() in CURRENCY_EXPONENTS:
            raise ValidationError(field, f"{currency!r} must be upper case ({currency.upper()!r})")
        raise ValidationError(field, f"{currency!r} is not a supported ISO 4217 currency")
    return currency


def validate_amount(amount: object, field: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError(field, "must be an integer number of minor units")
    if amount <= 0:
        raise ValidationError(field, "must be greater than zero")
    if amount > MAX_AMOUNT_MINOR:
        raise ValidationError(field, f"must not exceed {MAX_AMOUNT_MINOR} minor units")
    return amount


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    @classmethod
    def of(cls, amount_minor: object, currency: object,
           amount_field: str = "amount", currency_field: str = "currency") -> Money:
        code = validate_currency(currency, currency_field)
        return cls(validate_amount(amount_minor, amount_field), code)

    @classmethod
    def from_decimal_string(cls, text: str, currency: str, field: str = "amount") -> Money:
        """Parse a provider's decimal string ("12.34") exactly, rejecting extra precision."""
        exponent = currency_exponent(currency)
        plain = _PLAIN_DECIMAL.fullmatch(text) if isinstance(text, str) else None
        if plain and len(plain[2] or "") <= exponent:  # the common case, without Decimal
            minor = int(plain[1] + (plain[2] or "").ljust(exponent, "0"))
            if minor <= MAX_AMOUNT_MINOR:
                return cls(minor, currency)
            return cls.of(minor, currency, field)  # out of range: its error
        try:
            value = Decimal(text.strip())
        except (InvalidOperation, AttributeError):
            raise ValidationError(field, f"{text!r} is not a decimal amount") from None
        scaled = value.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise ValidationError(
                field, f"{text!r} has more decimals than {currency} allows ({exponent})"
            )
        return cls.of(int(scaled), currency, field)

    def to_decimal_string(self) -> str:
        return format_minor(self.amount_minor, self.currency)

    def display(self) -> str:
        """For people: 'EUR -1,234.56' (integer arithmetic, no floats)."""
        return f"{self.currency} {format_minor(self.amount_minor, self.currency, grouped=True)}"

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency}"


def format_minor(minor: int, currency: str, *, grouped: bool = False) -> str:
    """The one formatter of money: integer minor units as a decimal in the currency's major
    unit, "-1234.56" (`grouped`: "-1,234.56"), by integer arithmetic, never floats. A currency
    the table does not know is shown with 2 decimals."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    units, rest = divmod(abs(minor), 10 ** exponent)
    whole = f"{units:,}" if grouped else str(units)
    return sign + whole + (f".{rest:0{exponent}d}" if exponent else "")


def display_amounts(by_currency: dict[str, int]) -> str:
    """Amounts in several currencies for people, never added together: 'EUR 12.00 + JPY 1,200'."""
    return " + ".join(Money(minor, currency).display()
                      for currency, minor in sorted(by_currency.items())) or "nothing"
