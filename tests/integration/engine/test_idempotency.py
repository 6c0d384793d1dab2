"""Idempotency-Key semantics on SQLite and the real PostgreSQL."""

from collections import Counter

import pytest
from sqlalchemy import Engine, func, select

from engine.exceptions import (
    IdempotencyKeyConflictError,
    IdempotencyKeyInProgressError,
    PaymentNotFoundError,
    ValidationError,
)
from engine.storage.tables import (
    duplicate_risk_events,
    idempotency_keys,
    outbox,
    payment_transitions,
    payments,
)
from engine.testing import RecordingObserver, payment_request
from paysignal.testing import make_service


def counts(engine: Engine) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (idempotency_keys, payments, payment_transitions, outbox))


def test_second_request_with_same_key_replays_first_response(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    first = service.create_payment("m1", "key-1", payment_request())
    second = service.create_payment("m1", "key-1", payment_request())
    assert first.status_code == 201 and not first.replayed
    assert second.replayed and second.status_code == 201
    assert second.body_text == first.body_text  # byte for byte
    assert len(sandbox.books.charges()) == 1


def test_same_key_with_a_different_request_is_a_conflict_naming_the_fields(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    service.create_payment("m1", "key-1", payment_request())
    before = counts(db_engine)
    with pytest.raises(IdempotencyKeyConflictError) as info:
        service.create_payment("m1", "key-1", payment_request(amount=9999, reference="other"))
    assert info.value.differing_fields == ["amount", "reference"]
    assert counts(db_engine) == before and len(sandbox.books.charges()) == 1


def test_same_key_while_the_first_request_runs_is_in_progress_and_retryable(db_engine: Engine) -> None:
    observer = RecordingObserver()
    service, sandbox, _ = make_service(db_engine, observer=observer)
    seen: list[Exception] = []
    gateway = service.gateways["stripe"]
    original = gateway.execute

    def execute_with_concurrent_retry(request):
        try:
            service.create_payment("m1", "key-1", payment_request())
        except IdempotencyKeyInProgressError as exc:
            seen.append(exc)
        return original(request)

    gateway.execute = execute_with_concurrent_retry  # type: ignore[method-assign]
    service.create_payment("m1", "key-1", payment_request())
    assert len(seen) == 1  # during the one authorize-and-capture call
    assert isinstance(seen[0], IdempotencyKeyInProgressError) and seen[0].retry_after_s >= 1
    assert observer.idempotency_outcomes["in_flight"] == 1
    assert len(sandbox.books.charges()) == 1
    assert risk_events(db_engine) == [("m1", "stripe", "in_flight")]


def risk_events(engine: Engine) -> list[tuple[str, str, str]]:
    e = duplicate_risk_events.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(e.merchant_id, e.provider, e.outcome).order_by(e.id))]


def test_replays_and_conflicts_are_kept_as_duplicate_risk_events(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    first = service.create_payment("m1", "key-1", payment_request())
    assert risk_events(db_engine) == []  # a new key is not a risk
    service.create_payment("m1", "key-1", payment_request())
    with pytest.raises(IdempotencyKeyConflictError):
        service.create_payment("m1", "key-1", payment_request(amount=9999))
    assert risk_events(db_engine) == [("m1", "stripe", "replayed"),
                                      ("m1", "stripe", "conflict")]
    with db_engine.connect() as conn:
        replayed_payment = conn.execute(select(duplicate_risk_events.c.payment_id).where(
            duplicate_risk_events.c.outcome == "replayed")).scalar_one()
    assert replayed_payment == first.body["id"]


def test_keys_are_scoped_to_their_merchant(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    a = service.create_payment("merchant-a", "shared-key", payment_request())
    b = service.create_payment("merchant-b", "shared-key", payment_request(amount=700))
    assert not b.replayed and a.body["id"] != b.body["id"]
    assert len(sandbox.books.charges()) == 2
    with pytest.raises(PaymentNotFoundError):
        service.capture("merchant-b", "cap", a.body["id"])


@pytest.mark.parametrize(("key", "reason"), [("", "required"), ("k" * 256, "at most 255")])
def test_missing_or_overlong_keys_are_rejected_before_anything_is_written(
        db_engine: Engine, key: str, reason: str) -> None:
    service, sandbox, _ = make_service(db_engine)
    with pytest.raises(ValidationError) as info:
        service.create_payment("m1", key, payment_request())
    assert info.value.field == "Idempotency-Key" and reason in info.value.reason
    assert counts(db_engine) == (0, 0, 0, 0) and sandbox.books.charges() == []


def test_a_rejected_request_writes_nothing_and_frees_the_key(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    with pytest.raises(ValidationError) as info:
        service.create_payment("m1", "key-1", payment_request(currency="XXX"))
    assert info.value.field == "currency"
    assert counts(db_engine) == (0, 0, 0, 0)
    assert service.create_payment("m1", "key-1", payment_request()).status_code == 201


def test_keys_expire_after_the_ttl_and_cleanup_removes_them(db_engine: Engine) -> None:
    service, sandbox, clock = make_service(db_engine)
    service.create_payment("m1", "key-1", payment_request())
    clock.advance(23 * 3600)
    assert service.expire_keys() == 0
    assert service.create_payment("m1", "key-1", payment_request()).replayed
    clock.advance(2 * 3600)
    # an expired key is a new key: the request runs again as a new payment
    fresh = service.create_payment("m1", "key-1", payment_request(amount=99))
    assert not fresh.replayed and len(sandbox.books.charges()) == 2
    clock.advance(25 * 3600)
    assert service.expire_keys() == 1
    assert counts(db_engine)[0] == 0


def test_capture_void_and_refund_are_idempotent_too(db_engine: Engine) -> None:
    service, sandbox, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request(capture="manual")).body["id"]
    cap1 = service.capture("m1", "cap-1", pid, 1500)
    cap2 = service.capture("m1", "cap-1", pid, 1500)
    assert cap2.replayed and cap1.body_text == cap2.body_text
    ref1 = service.refund("m1", "ref-1", pid, 500)
    assert service.refund("m1", "ref-1", pid, 500).replayed
    assert ref1.body["refunded_amount"] == 500 and ref1.body["state"] == "partially_refunded"
    with pytest.raises(IdempotencyKeyConflictError) as info:
        service.refund("m1", "ref-1", pid, 600)
    assert info.value.differing_fields == ["amount"]
    done = Counter(e.operation for e in sandbox.books.entries() if e.payment_ref == pid)
    assert done == {"authorize": 1, "capture": 1, "refund": 1}
