from engine.domain.fingerprint import differing_fields, request_fingerprint


def test_key_order_does_not_change_the_fingerprint() -> None:
    a = request_fingerprint("create_payment", {"amount": 100, "currency": "USD"})
    b = request_fingerprint("create_payment", {"currency": "USD", "amount": 100})
    assert a == b and len(a) == 64


def test_operation_and_values_change_the_fingerprint() -> None:
    base = request_fingerprint("capture", {"amount": 100})
    assert request_fingerprint("refund", {"amount": 100}) != base
    assert request_fingerprint("capture", {"amount": 101}) != base
    assert request_fingerprint("capture", {"amount": 100, "extra": None}) != base


def test_differing_fields_names_exactly_the_changed_fields() -> None:
    a = {"amount": 100, "currency": "USD", "reference": "x"}
    b = {"amount": 200, "currency": "USD", "reference": "y"}
    assert differing_fields("create_payment", a, "create_payment", b) == ["amount", "reference"]
    assert differing_fields("capture", a, "refund", a) == ["operation"]
