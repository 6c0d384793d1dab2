"""Each provider's own exponents, both ways, over loopback: paysignal's ISO 4217 minor units reach
each provider in the units that provider counts (the sandbox's books keep what it counted) and
come back from its notices as the same ISO amount; an amount a provider cannot represent is
refused naming `amount` (or `currency`) before any call."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from engine.domain.money import CURRENCY_EXPONENTS, Money
from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.adyen.currencies import CURRENCIES as ADYEN
from engine.providers.base import Gateway, ParsedNotification, ProviderRequest
from engine.providers.currencies import ProviderCurrencies
from engine.providers.paypal.currencies import CURRENCIES as PAYPAL
from engine.providers.paypal.protocol import amount_field
from engine.providers.sandbox import SandboxServer
from engine.providers.sandbox.adyen import iso_minor as adyen_iso
from engine.providers.sandbox.paypal_wire import TAKES, AmountRefused, paypal_units
from engine.providers.sandbox.paypal_wire import iso_minor as paypal_iso
from engine.providers.sandbox.stripe_wire import iso_minor as stripe_iso
from engine.providers.sandbox.stripe_wire import refused_amount
from engine.providers.stripe.currencies import CURRENCIES as STRIPE
from engine.testing import payment_method, payment_request
from paysignal.testing import make_service
from tests.support.sandbox import adyen_connector, paypal_connector, stripe_connector

# (currency, an amount in ISO minor units) -> what each provider counts, None: refused
CASES: dict[tuple[str, int], dict[str, int | None]] = {
    ("ISK", 500): {"stripe": 50_000, "adyen": 50_000, "paypal": None},  # 500 kr
    ("CLP", 500): {"stripe": 500, "adyen": 50_000, "paypal": None},
    ("IDR", 12_300): {"stripe": 12_300, "adyen": 123, "paypal": None},  # Rp 123.00
    ("CVE", 12_300): {"stripe": 12_300, "adyen": 123, "paypal": None},
    ("HUF", 12_300): {"stripe": 12_300, "adyen": 12_300, "paypal": 123},  # 123.00 Ft
    ("JPY", 500): {"stripe": 500, "adyen": 500, "paypal": 500},
    ("TWD", 12_300): {"stripe": 12_300, "adyen": 12_300, "paypal": 123},
    ("KWD", 5_120): {"stripe": 5_120, "adyen": 5_120, "paypal": None},  # 5.120 KD
}
# amounts a provider cannot take: ISO minor units it has no unit for
UNREPRESENTABLE = [("adyen", "IDR", 12_345), ("adyen", "CVE", 150), ("paypal", "HUF", 12_345),
                   ("paypal", "TWD", 5), ("stripe", "KWD", 5_125), ("stripe", "MGA", 550)]


def connector(server: SandboxServer, provider: str) -> Gateway:
    url = server.base_url(provider)
    if provider == "stripe":
        return stripe_connector(url)
    return adyen_connector(url) if provider == "adyen" else paypal_connector(url)


@pytest.mark.parametrize(("currency", "amount"), sorted(CASES))
@pytest.mark.parametrize("provider", ["stripe", "adyen", "paypal"])
def test_amounts_reach_each_provider_in_its_units_and_come_back_whole(
        server: SandboxServer, provider: str, currency: str, amount: int) -> None:
    gateway = connector(server, provider)
    counted = CASES[(currency, amount)][provider]
    if counted is None:
        with pytest.raises(ValidationError, match="currency"):
            gateway.check_amount(amount, currency)
        return
    gateway.check_amount(amount, currency)
    outcome = gateway.execute(ProviderRequest(
        Operation.AUTHORIZE, "idk_1:authorize", "pay_1", amount, currency,
        payment_method(provider), capture=True))
    assert outcome.kind.value == "succeeded", outcome
    [charge] = server.sandbox.books.charges()
    assert (charge.provider_amount, charge.amount_minor, charge.currency) == (
        counted, amount, currency)
    notes = [n for webhook in server.sandbox.due_webhooks(time.time() + 60)
             for n in gateway.verify_notifications(webhook.headers(time.time()), webhook.body,
                                                   time.time(), 300)]
    assert [n.amount_minor for n in notes if isinstance(n, ParsedNotification)] == [amount]


@pytest.mark.parametrize(("provider", "currency", "amount"), UNREPRESENTABLE)
def test_an_amount_a_provider_cannot_represent_is_refused_naming_amount_before_any_call(
        db_engine: Engine, provider: str, currency: str, amount: int) -> None:
    service, sandbox, _ = make_service(db_engine)
    with pytest.raises(ValidationError) as refused:
        service.create_payment("m1", "k", {**payment_request(provider=provider),
                                           "currency": currency, "amount": amount})
    assert refused.value.field == "amount" and "multiples of" in str(refused.value)
    assert sandbox.books.entries() == []


def test_a_partial_capture_or_refund_is_held_to_the_same_rule(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", {**payment_request(provider="paypal"),
                                             "currency": "HUF", "amount": 50_000}).body["id"]
    with pytest.raises(ValidationError) as refused:
        service.refund("m1", "r", pid, 150)
    assert refused.value.field == "amount"
    assert service.refund("m1", "r2", pid, 200).body["refunded_amount"] == 200
    assert [e.provider_amount for e in sandbox.books.entries()] == [500, 2]


def test_the_connectors_tables_agree_with_the_providers_rules_as_the_sandbox_states_them(
        ) -> None:
    """Two statements written apart — the connectors' departures from ISO 4217 and the
    sandbox's reading of each provider's own rules — agree for every ISO currency."""
    for currency in CURRENCY_EXPONENTS:
        for unit in (1, 10, 100, 1000):
            units = STRIPE.to_provider(unit, currency) if _takes(STRIPE, unit, currency) else None
            if units is not None:
                assert refused_amount(units, currency) is None and stripe_iso(
                    units, currency) == unit, (currency, unit)
            if _takes(ADYEN, unit, currency):
                assert adyen_iso(ADYEN.to_provider(unit, currency), currency) == unit
        for unit in (1, 100, 12_300):
            if _takes(PAYPAL, unit, currency):
                field = amount_field(unit, currency)
                assert currency in TAKES and paypal_iso(paypal_units(field), currency) == unit
            elif currency in TAKES:  # the ISO amount with its ISO decimals: PayPal refuses it
                iso = Money(unit, currency).to_decimal_string()
                with pytest.raises(AmountRefused):
                    paypal_units({"currency_code": currency, "value": iso})


def _takes(table: ProviderCurrencies, unit: int, currency: str) -> bool:
    try:
        table.check(unit, currency)
    except ValidationError:
        return False
    return True
