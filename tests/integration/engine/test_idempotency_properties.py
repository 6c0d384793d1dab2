"""Property: any interleaving of retries of one key makes at most one provider charge, and
paysignal's record agrees with the provider's books: an approved payment whose request ran to
the end is charged exactly once, for its amount, and a payment paysignal calls failed or
declined was not charged at all.

Hypothesis draws a schedule of client retries (some dying at a recovery point, as a killed
process would), clock jumps past the lock timeout, recovery sweeps and unknown-outcome
resolutions, against each provider's connector on the in-process sandbox."""

import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.domain.recovery import AUTOMATIC_CAPTURE_PATH, RecoveryPoint
from engine.domain.states import PaymentState
from engine.exceptions import IdempotencyKeyInProgressError
from engine.observability.observer import EngineObserver
from engine.providers.registry import provider_names
from engine.read_models.ledger import total_imbalance_minor
from engine.storage import db
from engine.testing import payment_method, payment_request
from paysignal.testing import make_service
from tests.support.postgres import fresh_postgres_url

POINTS = list(AUTOMATIC_CAPTURE_PATH)


class ProcessDied(Exception):
    pass


class DieAt(EngineObserver):
    def __init__(self) -> None:
        self.point: str | None = None

    def recovery_point(self, name: RecoveryPoint) -> None:
        if name == self.point:
            self.point = None
            raise ProcessDied(name)


crash_points = st.one_of(st.none(), st.sampled_from(POINTS))
steps = st.lists(st.one_of(
    st.tuples(st.just("request"), crash_points),
    st.tuples(st.just("advance"), st.sampled_from([1, 31])),  # 31 s: past the lock timeout
    st.tuples(st.just("recover"), st.none()),
    st.tuples(st.just("resolve"), st.none()),
), min_size=1, max_size=8).map(lambda s: [step for pair in zip(s, [("advance", 31)] * len(s), strict=True)
                                          for step in pair])
tokens = st.tuples(st.sampled_from(provider_names()), st.sampled_from([
    "approve", "approve", "timeout_after_charge", "timeout_before_charge", "server_error",
    "decline_do_not_honor"]))


def run_schedule(url: str, token: tuple[str, str], schedule: list, capture: str) -> None:
    engine = db.make_engine(url)
    try:
        observer = DieAt()
        service, sandbox, clock = make_service(engine, observer=observer, lock_timeout_s=30)
        provider, behaviour = token
        request = payment_request(provider=provider, capture=capture,
                                  payment_method=payment_method(provider, behaviour))
        for action, arg in schedule:
            try:
                if action == "request":
                    observer.point = arg
                    service.create_payment("m1", "the-key", request)
                elif action == "advance":
                    clock.advance(arg)
                elif action == "recover":
                    service.recover_abandoned()
                else:
                    service.resolve_unknown_outcomes()
            except (ProcessDied, IdempotencyKeyInProgressError):
                pass
            finally:
                observer.point = None
            assert len(sandbox.books.charges()) <= 1, schedule
        # Eventually: locks expire, the sweep and the resolver run; still one charge at most.
        clock.advance(60)
        service.recover_abandoned()
        service.resolve_unknown_outcomes()
        charges = sandbox.books.charges()
        assert len(charges) <= 1
        assert total_imbalance_minor(engine) == 0
        with service.unit_of_work() as uow:
            record = uow.payments.find_key("m1", "the-key")
        payment = (service.get_payment("m1", record.payment_id)
                   if record is not None and record.payment_id else None)
        state = payment.state if payment else None
        if state in (PaymentState.AUTHORIZED, PaymentState.CAPTURED,
                     PaymentState.AWAITING_CONFIRMATION):
            assert [(c.payment_ref, c.amount_minor) for c in charges] == [
                (payment.id, request["amount"])], (schedule, state)  # type: ignore[union-attr]
        elif state in (None, PaymentState.DECLINED, PaymentState.FAILED):
            assert charges == [], (schedule, state)
        ran_to_the_end = any(action == "request" and arg is None for action, arg in schedule)
        if behaviour == "approve" and ran_to_the_end:
            assert state in (PaymentState.AUTHORIZED, PaymentState.CAPTURED), (schedule, state)
            assert len(charges) == 1
    finally:
        engine.dispose()


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=tokens, schedule=steps, capture=st.sampled_from(["automatic", "manual"]))
def test_any_interleaving_of_retries_charges_an_approved_payment_exactly_once_sqlite(
        sqlite_template: Path, tmp_path: Path, token: tuple[str, str], schedule: list, capture: str) -> None:
    target = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(sqlite_template, target)
    try:
        run_schedule(f"sqlite:///{target}", token, schedule, capture)
    finally:
        target.unlink()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=tokens, schedule=steps, capture=st.sampled_from(["automatic", "manual"]))
def test_any_interleaving_of_retries_charges_an_approved_payment_exactly_once_postgres(
        postgres, token: tuple[str, str], schedule: list, capture: str) -> None:
    run_schedule(fresh_postgres_url(postgres), token, schedule, capture)
