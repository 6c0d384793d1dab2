"""The outbox relay: publishes committed events, in order per payment, to a pluggable sink.

Delivery is at-least-once: an event is marked published only once its sink confirms it (a crash
after publishing and before marking, or an unconfirmed delivery, republishes it); consumers
dedupe by event id in the same transaction as their effect, so each effect happens once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import Field, model_validator
from sqlalchemy import Connection, Engine, func, select, text, update

from engine.environment import EnvironmentSettings, read_settings
from engine.exceptions import ConfigurationError
from engine.storage.sql import insert_ignoring_conflicts
from engine.storage.tables import event_log, outbox, processed_events

log = logging.getLogger("paysignal.outbox")
RELAY_LOCK_ID = 7_340_021  # pg advisory lock: one relay publishes at a time, preserving order


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    event_id: str
    payment_id: str
    name: str
    payload: dict[str, Any]
    occurred_at: datetime


class EventSink(Protocol):
    name: str

    def publish(self, events: list[OutboxEvent], relay_conn: Connection) -> set[str]:
        """Publish the events; returns the ids of those the sink confirmed. relay_conn is the
        relay's open transaction, for sinks that live in the same database."""
        ...


class DatabaseEventLogSink:
    """The default sink: an event_log table; re-publishing an event is a no-op.

    Without its own engine it writes inside the relay's transaction, so publishing and
    marking commit together. With a separate engine (another database) it is at-least-once.
    """

    name = "database"

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine

    def publish(self, events: list[OutboxEvent], relay_conn: Connection) -> set[str]:
        if not events:
            return set()
        now = datetime.now(UTC)
        rows = [{"event_id": e.event_id, "payment_id": e.payment_id, "name": e.name,
                 "payload": json.dumps(e.payload, sort_keys=True), "occurred_at": e.occurred_at,
                 "published_at": now} for e in events]
        if self.engine is None:
            self._insert(relay_conn, rows)
        else:
            with self.engine.begin() as conn:
                self._insert(conn, rows)
        return {e.event_id for e in events}

    @staticmethod
    def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
        conn.execute(insert_ignoring_conflicts(conn, event_log, "event_id"), rows)


class KafkaSink:
    """Publishes to a Kafka topic with an idempotent producer (acks=all), keyed by payment id so
    one payment's events stay in order within a partition; headers carry the event id and type.
    Only events whose delivery report says delivered count as published."""

    name = "kafka"

    def __init__(self, bootstrap_servers: str, topic: str = "paysignal.payments", *,
                 flush_timeout_s: float = 30.0) -> None:
        try:
            from confluent_kafka import Producer
        except ImportError:
            raise ConfigurationError(
                "PAYSIGNAL_OUTBOX_SINK=kafka needs confluent-kafka: pip install 'paysignal[kafka]'"
            ) from None
        self.topic, self.flush_timeout_s = topic, flush_timeout_s
        self._producer = Producer({
            "bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "acks": "all",
            "message.timeout.ms": int(max(flush_timeout_s, 1) * 1000)})

    def publish(self, events: list[OutboxEvent], relay_conn: Connection) -> set[str]:
        delivered: set[str] = set()
        failed: list[str] = []

        def report(event_id: str) -> Callable[[Any, Any], None]:
            def on_delivery(error: Any, _message: Any) -> None:
                if error is None:
                    delivered.add(event_id)
                else:
                    failed.append(f"{event_id}: {error}")

            return on_delivery

        for e in events:
            try:
                self._producer.produce(
                    self.topic, key=e.payment_id.encode(),
                    value=json.dumps({"event_id": e.event_id, "name": e.name,
                                      "payment_id": e.payment_id, **e.payload}).encode(),
                    headers={"event_id": e.event_id, "event_type": e.name},
                    on_delivery=report(e.event_id))
            except BufferError:
                break  # the local queue is full: the rest stay pending for the next run
        undelivered = self._producer.flush(self.flush_timeout_s)
        if undelivered or failed:
            log.warning("kafka: %d events unconfirmed, %d failed; they stay pending",
                        undelivered, len(failed), extra={"outcome": "kafka_unconfirmed"})
        return delivered


def consume_kafka(bootstrap_servers: str, topic: str, group: str,
                  consumer: IdempotentConsumer, *, max_messages: int = 1000,
                  idle_timeout_s: float = 5.0, join_timeout_s: float = 60.0) -> int:
    """Read events from Kafka in a consumer group and apply each through `consumer` (which
    dedupes by event id in the same transaction as its effect); the offset is committed only
    after the effect, so a crash re-reads and the dedupe makes it harmless. Returns how many
    effects were applied; stops after `max_messages`, or once the group has its partitions and
    `idle_timeout_s` pass without a message."""
    import time

    from confluent_kafka import Consumer

    # A short session lets a restarted consumer rejoin its group in seconds, not tens of them.
    kafka = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    assigned: list[object] = []
    kafka.subscribe([topic], on_assign=lambda _consumer, partitions: assigned.append(partitions))
    applied = seen = 0
    joining_until = time.monotonic() + join_timeout_s
    last_activity = time.monotonic()
    try:
        while seen < max_messages:
            message = kafka.poll(0.5)
            now = time.monotonic()
            if message is None:
                if not assigned and now < joining_until:
                    last_activity = now
                    continue
                if now - last_activity > idle_timeout_s:
                    break
                continue
            if message.error():
                raise RuntimeError(f"kafka: {message.error()}")
            body = json.loads(message.value() or b"{}")
            event = OutboxEvent(message.offset() or 0, body.pop("event_id"), body.pop("payment_id"),
                                body.pop("name"), body, datetime.now(UTC))
            applied += consumer.consume(event)
            kafka.commit(message=message, asynchronous=False)
            seen += 1
            last_activity = time.monotonic()
    finally:
        kafka.close()
    return applied


class OutboxSettings(EnvironmentSettings):
    outbox_sink: Literal["database", "kafka"] = Field(
        "database", alias="PAYSIGNAL_OUTBOX_SINK",
        description="where the relay publishes outbox events: `database` (the `event_log` "
                    "table) or `kafka`")
    kafka_bootstrap_servers: str | None = Field(
        None, alias="PAYSIGNAL_KAFKA_BOOTSTRAP_SERVERS",
        description="required when the sink is `kafka` (needs `pip install "
                    "'paysignal[kafka]'`)")
    kafka_topic: str = Field(
        "paysignal.payments", alias="PAYSIGNAL_KAFKA_TOPIC",
        description="topic for outbox events, keyed by payment id")

    @model_validator(mode="after")
    def _kafka_needs_servers(self) -> OutboxSettings:
        if self.outbox_sink == "kafka" and not self.kafka_bootstrap_servers:
            raise ValueError("PAYSIGNAL_KAFKA_BOOTSTRAP_SERVERS: required when "
                             "PAYSIGNAL_OUTBOX_SINK=kafka")
        return self


def sink_from_environment() -> EventSink:
    settings = read_settings(OutboxSettings)
    if settings.outbox_sink == "kafka" and settings.kafka_bootstrap_servers:
        return KafkaSink(settings.kafka_bootstrap_servers, settings.kafka_topic)
    return DatabaseEventLogSink()


class OutboxRelay:
    def __init__(self, engine: Engine, sink: EventSink, batch_size: int = 500,
                 after_publish: Callable[[list[OutboxEvent]], None] | None = None) -> None:
        self.engine = engine
        self.sink = sink
        self.batch_size = batch_size
        self._after_publish = after_publish  # test hook: crash between publish and mark

    def _lock(self, conn: Connection) -> bool:
        if conn.dialect.name != "postgresql":
            return True
        return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                 {"k": RELAY_LOCK_ID}).scalar())

    def run_once(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        with self.engine.begin() as conn:
            if not self._lock(conn):
                return 0
            rows = conn.execute(select(outbox).where(outbox.c.published_at.is_(None))
                                .order_by(outbox.c.id).limit(self.batch_size)).all()
            events = [OutboxEvent(r.id, r.event_id, r.payment_id, r.name, json.loads(r.payload),
                                  r.occurred_at) for r in rows]
            if not events:
                return 0
            confirmed = self.sink.publish(events, conn)
            if self._after_publish:
                self._after_publish(events)
            published = _in_order(events, confirmed)
            if published:
                conn.execute(update(outbox).where(outbox.c.id.in_([e.id for e in published]))
                             .values(published_at=datetime.now(UTC)))
        return len(published)

    def drain(self) -> int:
        total = 0
        while (n := self.run_once()):
            total += n
        return total


def _in_order(events: list[OutboxEvent], confirmed: set[str]) -> list[OutboxEvent]:
    """The confirmed events that may be marked: per payment, only those before its first
    unconfirmed one, so a payment's events are never marked out of order."""
    blocked: set[str] = set()
    marked = []
    for e in events:
        if e.payment_id in blocked:
            continue
        if e.event_id in confirmed:
            marked.append(e)
        else:
            blocked.add(e.payment_id)
    return marked


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)
                                .where(outbox.c.published_at.is_(None))).scalar_one())


class IdempotentConsumer:
    """Runs a handler at most once per event id, recording it in the same transaction."""

    def __init__(self, engine: Engine, name: str,
                 handler: Callable[[Connection, OutboxEvent], None]) -> None:
        self.engine, self.name, self.handler = engine, name, handler

    def consume(self, event: OutboxEvent) -> bool:
        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert_ignoring_conflicts(conn, processed_events)
                .values(consumer=self.name, event_id=event.event_id,
                        processed_at=datetime.now(UTC))
                .returning(processed_events.c.event_id)).first()
            if inserted is None:
                return False
            self.handler(conn, event)
        return True

    def consume_event_log(self, after_id: int = 0, limit: int = 1000) -> tuple[int, int]:
        """Consume from the database event log; returns (last id seen, events applied)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(event_log).where(event_log.c.id > after_id)
                                .order_by(event_log.c.id).limit(limit)).all()
        applied = 0
        for r in rows:
            applied += self.consume(OutboxEvent(r.id, r.event_id, r.payment_id, r.name,
                                                json.loads(r.payload), r.occurred_at))
        return (rows[-1].id if rows else after_id), applied
