"""Transactional outbox: same-transaction events, ordered relay, dedupe after a relay crash."""

import json

import pytest
from sqlalchemy import Connection, Engine, func, select

from engine.exceptions import ConfigurationError, ValidationError
from engine.outbox.relay import (
    DatabaseEventLogSink,
    IdempotentConsumer,
    OutboxEvent,
    OutboxRelay,
    pending_count,
    sink_from_environment,
)
from engine.storage import db
from engine.storage.tables import event_log, outbox, payments
from engine.testing import payment_request
from paysignal.testing import make_service


class Crash(Exception):
    pass


def test_each_state_change_writes_its_event_in_the_same_transaction(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    pid = service.create_payment("m1", "k", payment_request()).body["id"]
    with db_engine.connect() as conn:
        names = conn.execute(select(outbox.c.name).where(outbox.c.payment_id == pid)
                             .order_by(outbox.c.id)).scalars().all()
    # automatic capture is one provider call: authorized and captured at once
    assert names == ["PaymentCreated", "AuthorizationRequested", "PaymentCaptured"]


def test_relay_publishes_everything_in_order_per_payment(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    for i in range(5):
        service.create_payment("m1", f"k{i}", payment_request(reference=f"o{i}"))
    assert pending_count(db_engine) == 15
    assert OutboxRelay(db_engine, DatabaseEventLogSink(), batch_size=7).drain() == 15
    assert pending_count(db_engine) == 0
    with db_engine.connect() as conn:
        rows = conn.execute(select(event_log.c.payment_id, event_log.c.name, event_log.c.payload)
                            .order_by(event_log.c.id)).all()
    by_payment: dict[str, list[str]] = {}
    for pid, _name, payload in rows:
        by_payment.setdefault(pid, []).append(json.loads(payload)["state"])
    for states in by_payment.values():
        assert states == ["created", "authorizing", "captured"]


def test_relay_crash_after_publish_republishes_and_consumers_apply_once(
        db_engine: Engine, tmp_path) -> None:
    # The event store is another database, so publishing and marking are separate commits.
    store = db.make_engine(f"sqlite:///{tmp_path / 'events.db'}")
    db.upgrade(store)
    service, _, _ = make_service(db_engine)
    service.create_payment("m1", "k", payment_request())  # three events

    def crash(_events: list[OutboxEvent]) -> None:
        raise Crash("relay killed between publish and mark")

    with pytest.raises(Crash):
        OutboxRelay(db_engine, DatabaseEventLogSink(store), after_publish=crash).run_once()
    assert pending_count(db_engine) == 3  # not marked: it will be published again
    assert OutboxRelay(db_engine, DatabaseEventLogSink(store)).drain() == 3
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(event_log)).scalar_one() == 3

    applied: list[str] = []

    def handler(_conn: Connection, event: OutboxEvent) -> None:
        applied.append(event.event_id)

    consumer = IdempotentConsumer(store, "finance-projection", handler)
    last, n = consumer.consume_event_log()
    assert n == 3
    _, again = consumer.consume_event_log(after_id=0)  # redelivery from the start
    assert again == 0 and len(applied) == len(set(applied)) == 3


def test_kafka_sink_needs_bootstrap_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSIGNAL_OUTBOX_SINK", "kafka")
    monkeypatch.delenv("PAYSIGNAL_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_KAFKA_BOOTSTRAP_SERVERS"):
        sink_from_environment()
    monkeypatch.setenv("PAYSIGNAL_OUTBOX_SINK", "carrier-pigeon")
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_OUTBOX_SINK='carrier-pigeon': "
                       "must be 'database' or 'kafka'"):
        sink_from_environment()


def test_rolled_back_work_leaves_no_event(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    with pytest.raises(ValidationError):
        service.create_payment("m1", "k", payment_request(amount=-1))
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(payments)).scalar_one() == 0


class HalfDelivered:
    """A sink whose delivery reports confirm only some events (a broker that went away)."""

    name = "flaky"

    def __init__(self, lost: set[str]) -> None:
        self.lost = lost

    def publish(self, events: list[OutboxEvent], relay_conn: Connection) -> set[str]:
        return {e.event_id for e in events} - self.lost


def test_only_confirmed_events_are_marked_and_never_out_of_order(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    first = service.create_payment("m", "a", payment_request(reference="a")).body["id"]
    second = service.create_payment("m", "b", payment_request(reference="b")).body["id"]
    with db_engine.connect() as conn:
        events = conn.execute(select(outbox.c.event_id, outbox.c.payment_id)
                              .order_by(outbox.c.id)).all()
    lost = next(e.event_id for e in events if e.payment_id == first)  # the first one's first
    OutboxRelay(db_engine, HalfDelivered({lost})).drain()
    with db_engine.connect() as conn:
        pending = conn.execute(select(outbox.c.payment_id).where(
            outbox.c.published_at.is_(None))).scalars().all()
    # everything of the first payment waits behind its lost event; the second went out
    assert set(pending) == {first} and pending.count(first) == sum(
        e.payment_id == first for e in events)
    assert second not in pending
    assert OutboxRelay(db_engine, HalfDelivered(set())).drain() == len(pending)
    assert pending_count(db_engine) == 0
