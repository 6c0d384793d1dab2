"""Traces (span tree), JSON logs, exemplars, and no secret or card number in any signal."""

import io
import json
import logging
import os

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from sqlalchemy import Engine, select

from engine.api.app import create_app
from engine.observability.logs import JsonFormatter
from engine.observability.metrics import Metrics, PrometheusObserver
from engine.payments.admins import create_admin
from engine.payments.merchants import create_merchant
from engine.storage.tables import payment_transitions
from engine.testing import payment_method
from paysignal.testing import make_service
from tests.support.spans import span_exporter

BODY = {"amount": 1299, "currency": "USD", "reference": "o-1", "payment_method": payment_method("stripe"),
        "provider": "stripe"}


@pytest.fixture
def setup(db_engine: Engine):
    exporter = span_exporter()
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    metrics = Metrics()
    service, _, _ = make_service(db_engine, observer=PrometheusObserver(metrics))
    app = create_app(db_engine, service, metrics=metrics)
    api_key = create_merchant(db_engine, "m").api_key
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {api_key}"
    yield client, exporter, logs, api_key
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_one_trace_per_request_with_the_expected_span_tree(setup, db_engine: Engine) -> None:
    client, exporter, _, _ = setup
    pid = client.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "a"}).json()["id"]
    spans = exporter.get_finished_spans()
    assert len({s.context.trace_id for s in spans}) == 1
    by_id = {s.context.span_id: s for s in spans}
    root = next(s for s in spans if s.parent is None)
    assert root.name == "POST /v1/payments" and root.attributes["http.response.status_code"] == 201
    names = [s.name for s in sorted(spans, key=lambda s: s.start_time)]
    assert names[:2] == ["POST /v1/payments", "idempotency.check"]
    assert names.count("payment.phase.write") == 2  # automatic capture: two durable phases
    auth = next(s for s in spans if s.name == "provider.authorize")
    assert dict(auth.attributes) == {"paysignal.provider": "stripe",
                                     "paysignal.operation": "authorize", "paysignal.attempt": 1,
                                     "paysignal.outcome": "succeeded"}
    assert not any(s.name == "provider.capture" for s in spans)  # one call authorized and captured
    writes = [s for s in spans if s.name == "payment.phase.write"]
    assert sum(s.attributes["paysignal.ledger.entries"] for s in writes) > 0
    assert sum(s.attributes["paysignal.outbox.events"] for s in writes) == 3
    for span in spans:  # every span hangs off the request's root
        while span.parent is not None:
            span = by_id[span.parent.span_id]
        assert span is root
    with db_engine.connect() as conn:
        trace_ids = set(conn.execute(select(payment_transitions.c.trace_id).where(
            payment_transitions.c.payment_id == pid)).scalars())
    assert trace_ids == {format(root.context.trace_id, "032x")}


def test_each_provider_attempt_is_its_own_span(setup) -> None:
    client, exporter, _, _ = setup
    client.post("/v1/payments", json={**BODY, "payment_method": payment_method("stripe", "server_error")},
                headers={"Idempotency-Key": "a"})
    attempts = [s for s in exporter.get_finished_spans() if s.name == "provider.authorize"]
    assert [s.attributes["paysignal.attempt"] for s in attempts] == [1, 2, 3, 4]
    assert {s.attributes["paysignal.outcome"] for s in attempts} == {"retryable_error"}


def test_logs_are_json_with_trace_payment_and_merchant_ids(setup) -> None:
    client, exporter, logs, _ = setup
    pid = client.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "a"}).json()["id"]
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    trace_id = format(exporter.get_finished_spans()[0].context.trace_id, "032x")
    engine_lines = [line for line in lines if line["logger"] == "paysignal.engine"]
    assert engine_lines and all(line["payment_id"] == pid and line["merchant_id"].startswith("mer_")
                                and line["trace_id"] == trace_id for line in engine_lines)
    request_line = next(line for line in lines if line["message"] == "request")
    assert request_line["route"] == "/v1/payments" and request_line["status"] == 201


def test_histograms_carry_trace_id_exemplars_in_openmetrics(setup) -> None:
    client, exporter, _, _ = setup
    client.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "a"})
    trace_ids = {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}
    text = client.get("/metrics", headers={"Accept": "application/openmetrics-text"}).text
    exemplars = [line for line in text.splitlines()
                 if "paysignal_provider_call_duration_seconds_bucket" in line and "# {" in line]
    assert exemplars and any(t in exemplars[0] for t in trace_ids)


def test_no_api_key_secret_or_card_number_reaches_logs_metrics_or_spans(
        setup, db_engine: Engine) -> None:
    client, exporter, logs, api_key = setup
    planted_key = "psk_PLANTEDsecretVALUE0123456789"
    pan = "4111111111111111"
    client.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "a"})
    client.post("/v1/payments", json={**BODY, "payment_method": pan},
                headers={"Idempotency-Key": "b"})
    client.post("/v1/payments", json=BODY,
                headers={"Idempotency-Key": "c", "Authorization": f"Bearer {planted_key}"})
    logging.getLogger("paysignal.engine").info("operator pasted Bearer %s and %s", planted_key, pan)
    admin_token = create_admin(db_engine, "ops").token
    webhook_secret = os.environ["PAYSIGNAL_WEBHOOK_SECRET_STRIPE"].split(",")[0]
    db_url = "postgresql://paysignal_app:PLANTEDdbPASSWORD42@postgres:5432/paysignal"
    logging.getLogger("paysignal.engine").warning(
        "config dump: admin %s, stripe %s, database %s", admin_token, webhook_secret, db_url)
    span_text = json.dumps([{"name": s.name, "attributes": dict(s.attributes or {}),
                             "events": [e.name for e in s.events]}
                            for s in exporter.get_finished_spans()])
    signals = {"logs": logs.getvalue(), "metrics": client.get("/metrics").text, "spans": span_text}
    for where, text in signals.items():
        for secret in (api_key, planted_key, pan, "tok_approve", admin_token, webhook_secret,
                       "PLANTEDdbPASSWORD42"):
            assert secret not in text, f"{secret[:8]}… leaked into {where}"


def test_no_provider_credential_reaches_logs_metrics_or_spans(
        db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each provider's credentials, planted in the environment as production sets them, used
    for real traffic through the three connectors (and webhooks), then pasted into a log line:
    none of them appears in any signal."""
    from engine.payments.webhooks import ingest
    from engine.providers.registry import connectors_from_environment, new_webhook_credentials
    from engine.providers.sandbox import SandboxTransport
    from engine.providers.sandbox.registry import build_sandbox, sandbox_environment
    from paysignal.bootstrap import build_service

    planted = {"PAYSIGNAL_STRIPE_API_KEY": "sk_test_PLANTEDstripeKEY0123456789",
               "PAYSIGNAL_ADYEN_API_KEY": "AQEPLANTEDadyenKEY0123456789",
               "PAYSIGNAL_PAYPAL_CLIENT_SECRET": "PLANTEDpaypalSECRET0123456789"}
    credentials = new_webhook_credentials()
    sandbox = build_sandbox(credentials, sleep=None)
    for name, value in {**sandbox_environment(sandbox.public_url, credentials),
                        **planted}.items():
        monkeypatch.setenv(name, value)
    exporter = span_exporter()
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        metrics = Metrics()
        service = build_service(db_engine, gateways=connectors_from_environment(SandboxTransport(sandbox)),
                                 observer=PrometheusObserver(metrics))
        for provider in ("stripe", "adyen", "paypal"):
            service.create_payment("m", f"k-{provider}", {
                "amount": 1000, "currency": "EUR", "reference": provider, "provider": provider,
                "payment_method": payment_method(provider), "capture": "manual"})
        for webhook in sandbox.due_webhooks(float("inf")):
            ingest(service, webhook.provider, webhook.headers(sandbox.clock()), webhook.body)
        logging.getLogger("paysignal.engine").warning(
            "config dump: %s; webhook credentials %s", planted, credentials)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    span_text = json.dumps([{"name": s.name, "attributes": dict(s.attributes or {})}
                            for s in exporter.get_finished_spans()])
    signals = {"logs": logs.getvalue(), "metrics": generate_latest(metrics.registry).decode(),
               "spans": span_text}
    assert "config dump" in signals["logs"] and len(exporter.get_finished_spans()) > 3
    secrets = [*planted.values(), credentials["stripe"], credentials["adyen"]]
    for where, text in signals.items():
        for secret in secrets:
            assert secret not in text, f"{secret[:10]}… leaked into {where}"
