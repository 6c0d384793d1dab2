"""The outbox on a real Kafka-protocol broker (Tansu): events reach a consumer group's effect
once per event id and in order per payment, even when the relay is SIGKILLed between publish
and mark; with the broker down nothing is marked published, and it all goes out once it is back."""

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, select

from engine.outbox.relay import (
    IdempotentConsumer,
    KafkaSink,
    OutboxEvent,
    OutboxRelay,
    consume_kafka,
    pending_count,
)
from engine.storage.tables import outbox
from engine.testing import payment_request
from paysignal.testing import make_service
from tests.support.kafka import TansuBroker


@pytest.fixture
def broker() -> Iterator[TansuBroker]:
    with TansuBroker() as running:
        yield running


@pytest.fixture
def topic(broker: TansuBroker) -> str:
    name = f"paysignal.payments.{uuid.uuid4().hex[:8]}"
    broker.create_topic(name)
    return name


def make_payments(engine: Engine, n: int = 6) -> None:
    service, _, _ = make_service(engine)
    for i in range(n):
        pid = service.create_payment("m", f"k{i}", payment_request(
            reference=f"o{i}", capture="manual")).body["id"]
        service.capture("m", f"c{i}", pid)


def recording_consumer(engine: Engine) -> tuple[IdempotentConsumer, dict[str, list[str]]]:
    applied: dict[str, list[str]] = defaultdict(list)

    def effect(_conn: Connection, event: OutboxEvent) -> None:
        applied[event.payment_id].append(event.event_id)

    return IdempotentConsumer(engine, f"ledger-export-{uuid.uuid4().hex[:6]}", effect), applied


def outbox_order(engine: Engine) -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    with engine.connect() as conn:
        for payment_id, event_id in conn.execute(select(outbox.c.payment_id, outbox.c.event_id)
                                                 .order_by(outbox.c.id)):
            order[payment_id].append(event_id)
    return order


def test_each_event_reaches_the_effect_once_in_order_per_payment(
        db_engine: Engine, broker: TansuBroker, topic: str) -> None:
    make_payments(db_engine)
    published = OutboxRelay(db_engine, KafkaSink(broker.bootstrap, topic)).drain()
    assert published == sum(len(v) for v in outbox_order(db_engine).values())
    assert pending_count(db_engine) == 0
    consumer, applied = recording_consumer(db_engine)
    assert consume_kafka(broker.bootstrap, topic, "exporters", consumer,
                         idle_timeout_s=2) == published
    assert dict(applied) == dict(outbox_order(db_engine))
    # the group committed its offsets after each effect: a second run reads nothing new
    assert consume_kafka(broker.bootstrap, topic, "exporters", consumer,
                         idle_timeout_s=2) == 0


def test_a_relay_killed_between_publish_and_mark_republishes_and_effects_stay_once(
        db_url: str, db_engine: Engine, broker: TansuBroker, topic: str) -> None:
    make_payments(db_engine)
    command = [sys.executable, "-m", "tests.support.relay_worker", "--database-url", db_url,
               "--bootstrap", broker.bootstrap, "--topic", topic]
    killed = subprocess.Popen([*command, "--pause-after-publish"], stdout=subprocess.PIPE,
                              text=True)
    assert killed.stdout is not None
    assert killed.stdout.readline().startswith("PUBLISHED")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    assert pending_count(db_engine) > 0  # published, never marked
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert pending_count(db_engine) == 0
    consumer, applied = recording_consumer(db_engine)
    total = consume_kafka(broker.bootstrap, topic, "exporters", consumer, idle_timeout_s=3)
    assert dict(applied) == dict(outbox_order(db_engine))  # each once, in order per payment
    assert total == sum(len(v) for v in applied.values())


def test_with_the_broker_down_nothing_is_marked_and_it_all_goes_out_when_it_is_back(
        db_engine: Engine, broker: TansuBroker, topic: str) -> None:
    make_payments(db_engine, 3)
    waiting = pending_count(db_engine)
    broker.stop()
    relay = OutboxRelay(db_engine, KafkaSink(broker.bootstrap, topic, flush_timeout_s=2))
    assert relay.drain() == 0
    assert pending_count(db_engine) == waiting
    broker.start()
    broker.create_topic(topic)
    assert OutboxRelay(db_engine, KafkaSink(broker.bootstrap, topic)).drain() == waiting
    assert pending_count(db_engine) == 0
    consumer, applied = recording_consumer(db_engine)
    consume_kafka(broker.bootstrap, topic, "exporters", consumer, idle_timeout_s=3)
    assert dict(applied) == dict(outbox_order(db_engine))
    assert json.dumps(applied)  # plain data the test could print on failure
