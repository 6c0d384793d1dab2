"""Prometheus metrics from the catalogue, exposed at /metrics, fed by real traffic."""

import re

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.observability.metrics import Metrics, PrometheusObserver
from engine.observability.signals import CATALOGUE
from engine.payments.merchants import create_merchant
from engine.read_models.gauges import watch_tables
from engine.testing import payment_method
from paysignal.testing import make_service

BODY = {"amount": 1299, "currency": "USD", "reference": "o-1", "payment_method": payment_method("stripe"),
        "provider": "stripe"}


@pytest.fixture
def client(db_engine: Engine):
    metrics = Metrics()
    watch_tables(metrics, db_engine, ttl_s=0)
    service, _, _ = make_service(db_engine, observer=PrometheusObserver(metrics))
    app = create_app(db_engine, service, metrics=metrics)
    key = create_merchant(db_engine, "m").api_key
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {key}"
    return c


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(s, name: str, **labels: str) -> float:
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


def test_traffic_shows_up_in_the_catalogue_metrics(client: TestClient) -> None:
    client.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "a"})
    client.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "a"})
    client.post("/v1/payments", json={**BODY, "amount": 5}, headers={"Idempotency-Key": "a"})
    silent = payment_method("stripe", "unknown_forever")
    unknown = client.post("/v1/payments", json={**BODY, "payment_method": silent,
                                                 "reference": "o-2"}, headers={"Idempotency-Key": "b"})
    pid = unknown.json()["id"]
    client.get(f"/v1/payments/{pid}")
    s = samples(client)
    assert value(s, "paysignal_idempotency_requests_total", outcome="new") == 2
    assert value(s, "paysignal_idempotency_requests_total", outcome="replayed") == 1
    assert value(s, "paysignal_idempotency_requests_total", outcome="conflict") == 1
    assert value(s, "paysignal_payment_transitions_total", from_state="authorizing",
                 to_state="captured", provider="stripe") == 1
    assert value(s, "paysignal_payment_transitions_total", from_state="authorizing",
                 to_state="unknown", provider="stripe") == 1
    assert value(s, "paysignal_unknown_outcomes_total", provider="stripe") == 1
    assert value(s, "paysignal_unknown_outcomes_open", provider="stripe") == 1
    assert value(s, "paysignal_unknown_outcome_oldest_age_seconds", provider="stripe") > 0
    assert value(s, "paysignal_provider_call_duration_seconds_count", provider="stripe",
                 operation="authorize", outcome="succeeded") == 1
    assert value(s, "paysignal_http_requests_total", route="/v1/payments", method="POST",
                 status="201") == 2  # the first request and its replay
    assert value(s, "paysignal_http_requests_total", route="/v1/payments", method="POST",
                 status="202") == 1
    assert value(s, "paysignal_http_requests_total", route="/v1/payments", method="POST",
                 status="422") == 1
    assert value(s, "paysignal_http_requests_total", route="/v1/payments/{payment_id}",
                 method="GET", status="200") == 1
    assert value(s, "paysignal_outbox_pending_events") >= 5


def test_every_catalogue_metric_is_exposed_and_no_label_carries_an_id(client: TestClient) -> None:
    pid = client.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "a"}).json()["id"]
    text = client.get("/metrics").text
    for spec in CATALOGUE:
        assert f"# HELP {spec.name} " in text or f"# HELP {spec.name.removesuffix('_total')} " in text
    assert pid not in text and "merchant" not in text
    assert not re.search(r'="(pay|mer|idk)_[0-9a-f]', text)


def test_openmetrics_is_served_when_asked_for(client: TestClient) -> None:
    r = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_table_gauges_read_the_database_at_most_once_per_interval(db_engine: Engine) -> None:
    from engine.read_models.gauges import TableGauges

    gauges = TableGauges(db_engine, ["paypal"], ttl_s=60)
    for _ in range(5):
        families = list(gauges.collect())
    assert gauges.reads == 1 and families  # five scrapes, one read
    fresh = TableGauges(db_engine, ["paypal"], ttl_s=0)
    list(fresh.collect())
    list(fresh.collect())
    assert fresh.reads == 2
