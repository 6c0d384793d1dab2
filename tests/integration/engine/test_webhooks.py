"""Signed provider notifications: verification, dedupe, ordering, unmatched storage, settling."""

import json
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from engine.api.app import create_app
from engine.domain.operations import Operation
from engine.observability.metrics import Metrics, PrometheusObserver
from engine.payments.merchants import create_merchant
from engine.providers.base import ProviderRequest
from engine.providers.simulated import PROVIDER_CLASSES, Notification
from engine.storage.tables import webhook_events
from engine.testing import make_service

BODY = {"amount": 1299, "currency": "USD", "reference": "o-1", "capture": "manual"}


@pytest.fixture
def env(db_engine: Engine):  # type: ignore[no-untyped-def]
    metrics = Metrics()
    service, _, _ = make_service(db_engine, observer=PrometheusObserver(metrics))
    client = TestClient(create_app(db_engine, service, metrics=metrics))
    client.headers["Authorization"] = f"Bearer {create_merchant(db_engine, 'm').api_key}"
    return client, service, db_engine


def deliver(client: TestClient, service, note: Notification, *, timestamp=None,  # type: ignore[no-untyped-def]
            tamper: bool = False):
    headers, body = service.gateways[note.provider].signed(note, timestamp or int(time.time()))
    if tamper:
        body = body.replace(b"1299", b"9999")
    return client.post(f"/v1/webhooks/{note.provider}", content=body, headers=headers)


def webhook_metric(client: TestClient, provider: str, result: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == "paysignal_webhook_events_total" and s.labels == {
                    "provider": provider, "result": result}:
                return s.value
    return 0.0


@pytest.mark.parametrize("provider", list(PROVIDER_CLASSES))
def test_a_notification_settles_an_unknown_payment(env, provider: str) -> None:  # type: ignore[no-untyped-def]
    client, service, _ = env
    r = client.post("/v1/payments", json={**BODY, "provider": provider,
                                          "payment_method": "tok_timeout_after_charge"},
                    headers={"Idempotency-Key": "a"})
    assert r.json()["state"] == "unknown"
    notes = service.gateways[provider].drain_notifications()
    assert deliver(client, service, notes[0]).json() == {"result": "settled"}
    payment = client.get(f"/v1/payments/{r.json()['id']}").json()
    assert payment["state"] == "authorized"
    assert payment["audit_trail"][-1]["actor"] == f"webhook:{provider}"


def test_duplicates_are_deduplicated_by_provider_event_id(env) -> None:  # type: ignore[no-untyped-def]
    client, service, engine = env
    client.post("/v1/payments", json={**BODY, "provider": "eastpay",
                                      "payment_method": "tok_approve"}, headers={"Idempotency-Key": "a"})
    note = service.gateways["eastpay"].drain_notifications()[0]
    assert deliver(client, service, note).json() == {"result": "recorded"}
    assert deliver(client, service, note).json() == {"result": "duplicate"}
    with engine.connect() as conn:
        assert len(conn.execute(select(webhook_events)).all()) == 1
    assert webhook_metric(client, "eastpay", "duplicate") == 1


def test_an_out_of_order_notification_never_moves_a_payment_backwards(env) -> None:  # type: ignore[no-untyped-def]
    client, service, _ = env
    pid = client.post("/v1/payments", json={**BODY, "provider": "northwind",
                                            "payment_method": "tok_approve"},
                      headers={"Idempotency-Key": "a"}).json()["id"]
    client.post(f"/v1/payments/{pid}/capture", headers={"Idempotency-Key": "c"})
    authorized_note, captured_note = service.gateways["northwind"].drain_notifications()
    assert deliver(client, service, captured_note).json() == {"result": "recorded"}
    assert deliver(client, service, authorized_note).json() == {"result": "recorded"}
    assert client.get(f"/v1/payments/{pid}").json()["state"] == "captured"


def test_a_notification_for_an_unknown_payment_is_kept_for_reconciliation(env) -> None:  # type: ignore[no-untyped-def]
    client, service, engine = env
    gateway = service.gateways["southbank"]
    gateway.execute(ProviderRequest(Operation.AUTHORIZE, "other-system-1", "pay_notours", 500,
                                    "EUR", "tok_approve"))
    note = gateway.drain_notifications()[0]
    assert deliver(client, service, note).json() == {"result": "unmatched"}
    with engine.connect() as conn:
        row = conn.execute(select(webhook_events)).one()
    assert row.result == "unmatched" and row.payment_id is None
    assert json.loads(row.body)["notificationItems"][0]["NotificationRequestItem"][
        "merchantReference"] == "pay_notours"


@pytest.mark.parametrize("case", ["tampered", "expired", "unsigned"])
def test_bad_signatures_are_401_counted_and_kept_only_as_a_refusal(env, case: str) -> None:  # type: ignore[no-untyped-def]
    client, service, engine = env
    client.post("/v1/payments", json={**BODY, "provider": "northwind",
                                      "payment_method": "tok_timeout_after_charge"},
                headers={"Idempotency-Key": "a"})
    note = service.gateways["northwind"].drain_notifications()[0]
    if case == "unsigned":
        r = client.post("/v1/webhooks/northwind", content=json.dumps(note.body).encode())
    else:
        r = deliver(client, service, note, tamper=case == "tampered",
                    timestamp=int(time.time()) - 3600 if case == "expired" else None)
    assert r.status_code == 401 and r.json()["type"].endswith("unauthorized")
    assert webhook_metric(client, "northwind", "bad_signature") == 1
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_events)).all()
    assert [(r.result, r.body, r.payment_id) for r in rows] == [("bad_signature", "", None)]
    assert client.get("/v1/payments").json()["data"][0]["state"] == "unknown"


def test_unknown_provider_and_malformed_bodies_are_refused(env) -> None:  # type: ignore[no-untyped-def]
    client, service, _ = env
    assert client.post("/v1/webhooks/acme", content=b"{}").status_code == 404
    gateway = service.gateways["eastpay"]
    headers = gateway.sign(b'{"hello": 1}', int(time.time()))
    r = client.post("/v1/webhooks/eastpay", content=b'{"hello": 1}', headers=headers)
    assert r.status_code == 400 and "eastpay" in r.json()["detail"]


def test_freshness_is_the_time_from_the_providers_signature_to_processing(
        db_engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from engine.testing import ManualClock
    from slo.backends import make_backend
    from slo.evaluate import evaluate_all
    from slo.spec import load_definitions

    now = datetime.now(UTC).replace(microsecond=0)
    metrics = Metrics()
    service, _, _ = make_service(db_engine, observer=PrometheusObserver(metrics),
                                 clock=ManualClock(now))
    client = TestClient(create_app(db_engine, service, metrics=metrics))
    client.headers["Authorization"] = f"Bearer {create_merchant(db_engine, 'm').api_key}"
    for key, lag in (("fresh", 12), ("stale", 100)):
        r = client.post("/v1/payments", json={**BODY, "provider": "southbank", "reference": key,
                                              "payment_method": "tok_timeout_after_charge"},
                        headers={"Idempotency-Key": key})
        note = service.gateways["southbank"].drain_notifications()[0]
        signed = int(now.timestamp()) - lag
        assert deliver(client, service, note, timestamp=signed).status_code == 200, r.text
    with db_engine.connect() as conn:
        lags = sorted((row.received_at.replace(tzinfo=UTC) - row.sent_at.replace(tzinfo=UTC)
                       ).total_seconds() for row in conn.execute(select(webhook_events)))
    assert lags == [12.0, 100.0]
    text = client.get("/metrics").text
    assert 'paysignal_webhook_processing_lag_seconds_bucket{le="30.0",provider="southbank"} 1.0' \
        in text
    slo = [s for s in load_definitions() if s.name == "webhook-processing-freshness"]
    result = evaluate_all(db_engine, make_backend("database", engine=db_engine), slo,
                          now + timedelta(minutes=1), store=False)[0]
    assert (result.counts.good, result.counts.total) == (1, 2)
