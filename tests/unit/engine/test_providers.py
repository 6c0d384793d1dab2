import pytest

from engine.domain.operations import Operation
from engine.exceptions import ValidationError
from engine.providers.base import OutcomeKind, ProviderRequest, RawResponse
from engine.providers.faults import PROFILES, Faults
from engine.providers.simulated import (
    PROVIDER_CLASSES,
    Eastpay,
    InMemoryBook,
    Northwind,
    Southbank,
    build_simulated_providers,
    duplicate_charges,
    validate_payment_method,
)


def auth(request_id: str, token: str = "tok_approve", payment: str = "pay_1") -> ProviderRequest:
    return ProviderRequest(Operation.AUTHORIZE, request_id, payment, 1234, "USD", token)


def test_there_are_three_providers_and_exactly_one_ignores_idempotency_keys() -> None:
    assert len(PROVIDER_CLASSES) >= 3
    assert [n for n, c in PROVIDER_CLASSES.items() if not c.honours_idempotency_keys] == ["eastpay"]


@pytest.mark.parametrize("name", list(PROVIDER_CLASSES))
@pytest.mark.parametrize(("token", "kind", "reason"), [
    ("tok_approve", OutcomeKind.SUCCEEDED, None),
    ("tok_decline_insufficient_funds", OutcomeKind.DECLINED, "insufficient_funds"),
    ("tok_decline_do_not_honor", OutcomeKind.DECLINED, "do_not_honor"),
    ("tok_timeout_after_charge", OutcomeKind.UNKNOWN, None),
    ("tok_timeout_before_charge", OutcomeKind.UNKNOWN, None),
    ("tok_server_error", OutcomeKind.RETRYABLE, None),
])
def test_each_vocabulary_normalizes_to_the_same_outcome(name: str, token: str, kind: OutcomeKind,
                                                         reason: str | None) -> None:
    provider = build_simulated_providers(InMemoryBook())[name]
    outcome = provider.execute(auth("r1", token))
    assert outcome.kind is kind
    if reason:
        assert outcome.reason == reason


def test_vocabularies_really_differ_on_the_wire() -> None:
    req = auth("r1")
    raws = {cls.name: cls(InMemoryBook()).render(req, "done", None, "ref", 0, 0.1)
            for cls in (Northwind, Southbank, Eastpay)}
    assert raws["northwind"].body["status"] == "requires_capture"
    assert raws["southbank"].body["resultCode"] == "Authorised"
    assert raws["eastpay"].body["rc"] == "00" and raws["eastpay"].body["amt"] == "12.34"


def test_eastpay_amounts_are_decimal_strings_and_fees_parse_exactly() -> None:
    outcome = Eastpay(InMemoryBook()).normalize(
        RawResponse(200, {"rc": "00", "txn_ref": "EP1", "amt": "1.234", "ccy": "KWD",
                          "fee_amt": "0.023"}), Operation.CAPTURE)
    assert outcome.kind is OutcomeKind.SUCCEEDED and outcome.fee_minor == 23


def test_eastpay_late_response_code_is_an_unknown_outcome() -> None:
    outcome = Eastpay(InMemoryBook()).normalize(RawResponse(200, {"rc": "68"}), Operation.AUTHORIZE)
    assert outcome.kind is OutcomeKind.UNKNOWN


def test_timeout_after_charge_really_charged_and_lookup_finds_it() -> None:
    book = InMemoryBook()
    provider = Southbank(book)
    assert provider.execute(auth("r1", "tok_timeout_after_charge")).kind is OutcomeKind.UNKNOWN
    assert len(book.charges()) == 1
    found = provider.lookup(auth("r1", "tok_approve"))
    assert found.kind is OutcomeKind.SUCCEEDED and found.provider_reference


def test_timeout_before_charge_lookup_says_not_found() -> None:
    book = InMemoryBook()
    provider = Northwind(book)
    provider.execute(auth("r1", "tok_timeout_before_charge"))
    assert book.charges() == []
    assert provider.lookup(auth("r1", "tok_approve")).kind is OutcomeKind.NOT_FOUND


def test_provider_honouring_keys_does_not_charge_twice_for_the_same_request_id() -> None:
    book = InMemoryBook()
    provider = Northwind(book)
    first = provider.execute(auth("r1"))
    second = provider.execute(auth("r1"))
    assert first.provider_reference == second.provider_reference
    assert len(book.charges()) == 1 and duplicate_charges(book) == 0


def test_provider_ignoring_keys_charges_again_and_the_book_counts_the_duplicate() -> None:
    book = InMemoryBook()
    provider = Eastpay(book)
    provider.execute(auth("r1"))
    provider.execute(auth("r1"))
    assert len(book.charges()) == 2 and duplicate_charges(book) == 1


def test_faults_are_deterministic_for_a_seed() -> None:
    def outcomes(seed: int) -> list[str]:
        provider = Southbank(InMemoryBook(), seed=seed, faults=PROFILES["chaos"])
        return [provider.execute(auth(f"r{i}", payment=f"p{i}")).kind.value for i in range(200)]

    assert outcomes(3) == outcomes(3)
    assert outcomes(3) != outcomes(4)
    assert {"succeeded", "unknown", "retryable_error", "declined"} <= set(outcomes(3))


def test_lookup_unavailable_leaves_the_outcome_unknown() -> None:
    provider = Northwind(InMemoryBook(), faults=lambda: Faults(lookup_unavailable=1.0))
    provider.execute(auth("r1", "tok_timeout_after_charge"))
    assert provider.lookup(auth("r1", "tok_approve")).kind is OutcomeKind.UNKNOWN


def test_notifications_include_duplicates_and_out_of_order_deliveries() -> None:
    provider = Northwind(InMemoryBook(), seed=1,
                         faults=lambda: Faults(duplicate_notification=0.5, out_of_order_notification=0.5))
    for i in range(50):
        provider.execute(auth(f"r{i}", payment=f"p{i}"))
    notes = provider.drain_notifications()
    ids = [n.event_id for n in notes]
    assert len(ids) > len(set(ids))  # duplicates
    order = [int(n.payment_ref[1:]) for n in notes]
    assert order != sorted(order)  # out of order
    assert all(n.body["data"]["object"]["metadata"]["payment_id"] == n.payment_ref for n in notes)


@pytest.mark.parametrize("token", ["4242424242424242", "4242 4242 4242 4242", "", "card_123", None])
def test_card_numbers_and_non_tokens_are_refused(token: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate_payment_method(token)
    assert info.value.field == "payment_method"
