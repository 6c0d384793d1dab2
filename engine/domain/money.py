"""Money as integer minor units of an ISO 4217 currency. Never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import iso4217

from engine.exceptions import ValidationError


def _iso_4217_exponents() -> dict[str, int]:
    """Every current ISO 4217 currency with a minor unit, from the maintained `iso4217` package
    (the ISO table it ships, with its publication date as `ISO_4217_PUBLISHED`), less the fund
    codes (no one is charged in them) and the entries without a minor unit (gold, testing)."""
    funds = {entry.findtext("Ccy") for entry in iso4217.raw_xml.iter("CcyNtry")
             if (name := entry.find("CcyNm")) is not None and name.get("IsFund")}
    return {c.code: c.exponent for c in iso4217.Currency
            if c.exponent is not None and c.code not in funds}


# ISO 4217 minor-unit exponents: what paysignal's integer amounts count. A provider that
# counts otherwise says so in its own package (`ProviderCurrencies`), at its boundary.
CURRENCY_EXPONENTS: dict[str, int] = _iso_4217_exponents()
ISO_4217_PUBLISHED = iso4217.__published__

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
