"""The transactional outbox: events written with the change that caused them, published by a
relay to a sink (database event log or Kafka), consumed idempotently."""
