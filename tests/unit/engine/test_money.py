import pytest

from engine.domain.money import MAX_AMOUNT_MINOR, Money, currency_exponent
from engine.exceptions import ValidationError


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("USD", 2), ("KWD", 3)])
def test_currency_exponents_follow_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("12.34", "USD", 1234), ("1500", "JPY", 1500), ("1.234", "KWD", 1234), ("0.01", "EUR", 1)])
def test_decimal_strings_parse_exactly_into_minor_units(text: str, currency: str, minor: int) -> None:
    assert Money.from_decimal_string(text, currency).amount_minor == minor


def test_more_decimals_than_the_currency_allows_is_rejected() -> None:
    with pytest.raises(ValidationError, match="more decimals than JPY allows"):
        Money.from_decimal_string("10.5", "JPY")


def test_money_renders_back_to_the_provider_decimal_form() -> None:
    assert Money(1234, "KWD").to_decimal_string() == "1.234"
    assert Money(500, "JPY").to_decimal_string() == "500"
    assert str(Money(5, "USD")) == "0.05 USD"


@pytest.mark.parametrize(("amount", "reason"), [
    (0, "greater than zero"), (-5, "greater than zero"), (MAX_AMOUNT_MINOR + 1, "must not exceed"),
    (12.5, "integer"), ("100", "integer"), (True, "integer")])
def test_bad_amounts_name_the_field_and_reason(amount: object, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        Money.of(amount, "USD")
    assert info.value.field == "amount"
    assert reason in info.value.reason


@pytest.mark.parametrize(("currency", "reason"), [
    ("XXX", "not a supported"), ("usd", "upper case"), (840, "three-letter")])
def test_bad_currencies_name_the_field_and_reason(currency: object, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        Money.of(100, currency)
    assert info.value.field == "currency"
    assert reason in info.value.reason
