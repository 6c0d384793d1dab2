"""Signed provider notifications: verification, dedupe, ordering, unmatched storage, settling."""

import json
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from engine.api.app import create_app
from engine.domain.operations import Operation
from engine.domain.states import PaymentState
from engine.observability.metrics import Metrics, PrometheusObserver
from engine.payments.merchants import create_merchant
from engine.payments.service import PaymentService
from engine.payments.webhooks import MAX_STORED_BODY, RESULTS, ingest
from engine.providers.base import ProviderRequest
from engine.providers.registry import provider_names
from engine.providers.sandbox import OutgoingWebhook, Sandbox
from engine.providers.stripe import sign
from engine.storage.tables import webhook_events, webhook_rejections
from engine.testing import ManualClock, payment_method
from paysignal.bootstrap import build_service
from paysignal.testing import make_service, virtual_environment

BODY = {"amount": 1299, "currency": "USD", "reference": "o-1", "capture": "manual"}
SANDBOXES: dict[int, Sandbox] = {}


@pytest.fixture
def env(db_engine: Engine):
    metrics = Metrics()
    service, sandbox, _ = make_service(db_engine, observer=PrometheusObserver(metrics),
                                       clock=ManualClock(datetime.now(UTC)))
    SANDBOXES[id(service)] = sandbox
    client = TestClient(create_app(db_engine, service, metrics=metrics))
    client.headers["Authorization"] = f"Bearer {create_merchant(db_engine, 'm').api_key}"
    return client, service, db_engine


def drain(service: PaymentService, provider: str) -> list[OutgoingWebhook]:
    """The provider's notifications the sandbox has queued (duplicates once), as delivered."""
    queued = SANDBOXES[id(service)].due_webhooks(float("inf"))
    return list(dict.fromkeys(w for w in queued if w.provider == provider))


def body_of(note: OutgoingWebhook) -> dict:
    return dict(json.loads(note.body))


def deliver(client: TestClient, service, note: OutgoingWebhook, *, timestamp=None,
            tamper: bool = False, body: bytes | None = None):
    headers = note.headers(timestamp or time.time())
    content = body if body is not None else note.body
    if tamper:
        content = content.replace(b"1299", b"9999")
    return client.post(f"/v1/webhooks/{note.provider}", content=content, headers=headers)


def result_of(client: TestClient, service, note: OutgoingWebhook,
              body: bytes | None = None) -> str:
    """Deliver the notification and say what became of it, from the metrics: the answer to the
    sender is the same whatever happened."""
    before = {r: webhook_metric(client, note.provider, r) for r in RESULTS}
    response = deliver(client, service, note, body=body)
    expected = service.gateways[note.provider].acknowledgement().body.encode()
    assert response.status_code == 200 and response.content == expected
    changed = [r for r in RESULTS if webhook_metric(client, note.provider, r) > before[r]]
    assert len(changed) == 1
    return changed[0]


def webhook_metric(client: TestClient, provider: str, result: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == "paysignal_webhook_events_total" and s.labels == {
                    "provider": provider, "result": result}:
                return s.value
    return 0.0


@pytest.mark.parametrize("provider", provider_names())
def test_a_notification_settles_an_unknown_payment(env, provider: str) -> None:
    client, service, _ = env
    r = client.post("/v1/payments", json={
        **BODY, "provider": provider,
        "payment_method": payment_method(provider, "timeout_after_charge")},
        headers={"Idempotency-Key": "a"})
    assert r.json()["state"] == "unknown"
    notes = drain(service, provider)
    assert result_of(client, service, notes[0]) == "settled"
    payment = client.get(f"/v1/payments/{r.json()['id']}").json()
    assert payment["state"] == "authorized"
    assert payment["audit_trail"][-1]["actor"] == f"webhook:{provider}"


def test_duplicates_are_deduplicated_by_provider_event_id(env) -> None:
    client, service, engine = env
    client.post("/v1/payments", json={**BODY, "provider": "paypal",
                                      "payment_method": payment_method("paypal")},
                headers={"Idempotency-Key": "a"})
    note = drain(service, "paypal")[0]
    assert result_of(client, service, note) == "recorded"
    assert result_of(client, service, note) == "duplicate"
    with engine.connect() as conn:
        assert len(conn.execute(select(webhook_events)).all()) == 1
    assert webhook_metric(client, "paypal", "duplicate") == 1


def test_an_out_of_order_notification_never_moves_a_payment_backwards(env) -> None:
    client, service, _ = env
    pid = client.post("/v1/payments", json={**BODY, "provider": "stripe",
                                            "payment_method": payment_method("stripe")},
                      headers={"Idempotency-Key": "a"}).json()["id"]
    client.post(f"/v1/payments/{pid}/capture", headers={"Idempotency-Key": "c"})
    notes = {body_of(n)["type"]: n for n in drain(service, "stripe")}
    authorized_note = notes["payment_intent.amount_capturable_updated"]
    captured_note = notes["payment_intent.succeeded"]
    assert result_of(client, service, captured_note) == "recorded"
    assert result_of(client, service, authorized_note) == "recorded"
    assert client.get(f"/v1/payments/{pid}").json()["state"] == "captured"


def test_a_notification_for_an_unknown_payment_is_kept_for_reconciliation(env) -> None:
    client, service, engine = env
    gateway = service.gateways["adyen"]
    gateway.execute(ProviderRequest(Operation.AUTHORIZE, "other-system-1", "pay_notours", 500,
                                    "EUR", payment_method("adyen")))
    note = drain(service, "adyen")[0]
    assert result_of(client, service, note) == "unmatched"
    with engine.connect() as conn:
        row = conn.execute(select(webhook_events)).one()
    assert row.result == "unmatched" and row.payment_id is None
    assert json.loads(row.body)["notificationItems"][0]["NotificationRequestItem"][
        "merchantReference"] == "pay_notours"


@pytest.mark.parametrize("case", ["tampered", "expired", "unsigned"])
def test_bad_signatures_are_401_counted_and_kept_only_as_a_refusal(env, case: str) -> None:
    client, service, engine = env
    client.post("/v1/payments", json={
        **BODY, "provider": "stripe", "payment_method": payment_method("stripe",
                                                                       "timeout_after_charge")},
        headers={"Idempotency-Key": "a"})
    note = drain(service, "stripe")[0]
    if case == "unsigned":
        r = client.post("/v1/webhooks/stripe", content=note.body)
    else:
        r = deliver(client, service, note, tamper=case == "tampered",
                    timestamp=int(time.time()) - 3600 if case == "expired" else None)
    assert r.status_code == 401 and r.json()["type"].endswith("unauthorized")
    assert webhook_metric(client, "stripe", "bad_signature") == 1
    with engine.connect() as conn:
        assert conn.execute(select(webhook_events)).all() == []
        counted = conn.execute(select(webhook_rejections)).all()
    assert [(c.provider, c.reason, c.count) for c in counted] == [
        ("stripe", "bad_signature", 1)]
    assert client.get("/v1/payments").json()["data"][0]["state"] == "unknown"


def test_unknown_provider_and_malformed_bodies_are_refused(env) -> None:
    client, service, _ = env
    assert client.post("/v1/webhooks/acme", content=b"{}").status_code == 404
    secret = service.gateways["stripe"].config.webhook_secrets[0]
    headers = {"Stripe-Signature": sign(secret, b'{"hello": 1}', int(time.time()))}
    r = client.post("/v1/webhooks/stripe", content=b'{"hello": 1}', headers=headers)
    assert r.status_code == 400 and "stripe" in r.json()["detail"]


def test_freshness_is_the_time_from_the_providers_signature_to_processing(
        db_engine: Engine) -> None:
    from datetime import timedelta

    from slo.backends import make_backend
    from slo.evaluate import evaluate_all
    from slo.spec import load_definitions

    now = datetime.now(UTC).replace(microsecond=0)
    metrics = Metrics()
    service, _sandbox, _ = make_service(db_engine, observer=PrometheusObserver(metrics),
                                        clock=ManualClock(now))
    client = TestClient(create_app(db_engine, service, metrics=metrics))
    client.headers["Authorization"] = f"Bearer {create_merchant(db_engine, 'm').api_key}"
    sandbox = SANDBOXES.setdefault(id(service), _sandbox)
    for key, lag in (("fresh", 12), ("stale", 100)):
        r = client.post("/v1/payments", json={
            **BODY, "provider": "stripe", "reference": key,
            "payment_method": payment_method("stripe", "timeout_after_charge")},
            headers={"Idempotency-Key": key})
        note = [w for w in sandbox.due_webhooks(float("inf")) if w.provider == "stripe"][0]
        signed = int(now.timestamp()) - lag
        assert deliver(client, service, note, timestamp=signed).status_code == 200, r.text
    with db_engine.connect() as conn:
        lags = sorted((row.received_at.replace(tzinfo=UTC) - row.sent_at.replace(tzinfo=UTC)
                       ).total_seconds() for row in conn.execute(select(webhook_events)))
    assert lags == [12.0, 100.0]
    text = client.get("/metrics").text
    assert 'paysignal_webhook_processing_lag_seconds_bucket{le="30.0",provider="stripe"} 1.0' \
        in text
    slo = [s for s in load_definitions() if s.name == "webhook-processing-freshness"]
    result = evaluate_all(db_engine, make_backend("database", engine=db_engine), slo,
                          now + timedelta(minutes=1), store=False)[0]
    assert (result.counts.good, result.counts.total) == (1, 2)


def test_a_flood_of_forgeries_is_one_counted_row_and_then_refused_unverified(
        env, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = Metrics()
    client, service, engine = env
    client = TestClient(create_app(engine, service, metrics=metrics,
                                   webhook_rejections_per_minute=5))
    # the limit counts per wall-clock minute: start the flood well inside one, even on a slow
    # machine (it takes well under a second)
    if time.time() % 60 > 40:
        time.sleep(60.5 - time.time() % 60)
    forged = {"Stripe-Signature": f"t={int(time.time())},v1={'00' * 32}"}
    minute = int(time.time() // 60)
    codes = [client.post("/v1/webhooks/stripe", content=b'{"id": "evt"}',
                         headers=forged).status_code for _ in range(8)]
    assert int(time.time() // 60) == minute, "the flood outlasted its minute: a stalled machine"
    assert codes == [401] * 5 + [429] * 3
    with engine.connect() as conn:
        counted = conn.execute(select(webhook_rejections)).all()
    assert len(counted) == 1 and counted[0].count == 5


@pytest.mark.parametrize("body", [
    b'{"id": 123, "type": "charge.succeeded", "data": {"object": {"id": "ch_1", "amount": 5, '
    b'"metadata": {"payment_id": "pay_1"}}}}',
    b'[' * 5000 + b']' * 5000,
    b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", '
    b'"status": "succeeded", "currency": "usd", "amount": "lots", "metadata": {}}}}',
])
def test_signed_but_malformed_notifications_are_400_not_500(env, body: bytes) -> None:
    client, service, engine = env
    secret = service.gateways["stripe"].config.webhook_secrets[0]
    headers = {"Stripe-Signature": sign(secret, body, int(time.time()))}
    r = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert r.status_code == 400 and r.json()["type"].endswith("validation-error"), r.text
    with engine.connect() as conn:
        assert conn.execute(select(webhook_events)).all() == []


def test_the_answer_never_tells_whether_a_payment_exists(env) -> None:
    client, service, _ = env
    client.post("/v1/payments", json={**BODY, "provider": "paypal",
                                      "payment_method": payment_method("paypal")},
                headers={"Idempotency-Key": "a"})
    ours = drain(service, "paypal")[0]
    service.gateways["paypal"].execute(ProviderRequest(
        Operation.AUTHORIZE, "theirs-1", "pay_notours", 1299, "USD", payment_method("paypal")))
    theirs = drain(service, "paypal")[0]
    answers = [deliver(client, service, n) for n in (ours, theirs)]
    assert [(a.status_code, a.content) for a in answers] == [(200, b'{"received":true}')] * 2


def test_a_stored_notification_body_is_capped(env) -> None:
    client, service, engine = env
    gateway = service.gateways["stripe"]
    gateway.execute(ProviderRequest(Operation.AUTHORIZE, "big-1", "pay_notours", 500, "USD",
                                    payment_method("stripe")))
    note = drain(service, "stripe")[0]
    padded = json.dumps({**body_of(note), "padding": "x" * 40_000}).encode()
    secret = gateway.config.webhook_secrets[0]
    note = OutgoingWebhook("stripe", padded, "big", lambda at: {
        "Stripe-Signature": sign(secret, padded, at)})
    assert result_of(client, service, note) == "unmatched"
    with engine.connect() as conn:
        stored = conn.execute(select(webhook_events.c.body)).scalar_one()
    assert len(stored) == MAX_STORED_BODY


def test_a_late_answer_for_one_refund_does_not_settle_the_next(db_engine: Engine) -> None:
    from engine.providers.registry import new_webhook_credentials
    from engine.providers.sandbox.faults import FaultProfile, Faults

    service, sandbox, clock = make_service(db_engine, credentials=new_webhook_credentials())
    pid = service.create_payment("m", "pay", {**BODY, "provider": "stripe",
                                              "payment_method": payment_method("stripe")}
                                 ).body["id"]
    service.capture("m", "cap", pid)
    assert service.refund("m", "refund-1", pid, 300).body_state() is PaymentState.PARTIALLY_REFUNDED
    first = [n for n in drain_sandbox(sandbox, "stripe") if body_of(n)["type"] == "refund.created"][0]
    sandbox.profile = FaultProfile("timeouts", "", Faults(timeout_after_charge=1.0))
    late = build_service(db_engine, gateways=service.gateways, toggles=None,
                         environment=virtual_environment(clock, sequential_ids=False))
    assert late.refund("m", "refund-2", pid, 300).body_state() is PaymentState.UNKNOWN
    second = drain_sandbox(sandbox, "stripe")[-1]
    assert ingest_signed(service, first) == "recorded"  # refund #1's answer, arriving late
    assert service.get_payment("m", pid).state is PaymentState.UNKNOWN
    assert ingest_signed(service, second) == "settled"
    payment = service.get_payment("m", pid)
    assert payment.state is PaymentState.PARTIALLY_REFUNDED and payment.refunded_minor == 600


def drain_sandbox(sandbox: Sandbox, provider: str) -> list[OutgoingWebhook]:
    return list(dict.fromkeys(w for w in sandbox.due_webhooks(float("inf"))
                              if w.provider == provider))


def ingest_signed(service, note: OutgoingWebhook) -> str:
    return ingest(service, note.provider, note.headers(time.time()), note.body)


@pytest.mark.parametrize("provider", provider_names())
def test_a_verified_notice_of_a_type_paysignal_does_not_use_is_acknowledged_and_kept(
        env, provider: str) -> None:
    """A provider retries a notice it did not get its 2xx for, for days, and counts the
    endpoint as failing: every verified notice is acknowledged, whatever its type."""
    client, service, engine = env
    SANDBOXES[id(service)].announce(provider)
    [note] = drain(service, provider)
    assert result_of(client, service, note) == "ignored"
    assert result_of(client, service, note) == "duplicate"
    with engine.connect() as conn:
        row = conn.execute(select(webhook_events)).one()
    assert (row.result, row.operation, row.outcome, row.payment_id) == (
        "ignored", "none", "unused_type", None)
    assert webhook_metric(client, provider, "malformed") == 0


def test_a_pending_refund_stays_awaiting_until_the_provider_says_it_succeeded(env) -> None:
    client, service, _ = env
    pid = client.post("/v1/payments", json={
        **BODY, "capture": "automatic", "provider": "stripe",
        "payment_method": "pm_card_pendingRefund"}, headers={"Idempotency-Key": "a"}).json()["id"]
    drain(service, "stripe")
    refund = client.post(f"/v1/payments/{pid}/refunds", json={"amount": 300},
                         headers={"Idempotency-Key": "r"})
    assert refund.json()["state"] == "awaiting_confirmation"
    created, updated = (n for n in drain(service, "stripe"))
    assert body_of(created)["type"] == "refund.created"
    assert body_of(created)["data"]["object"]["status"] == "pending"
    assert result_of(client, service, created) == "ignored"  # pending: no outcome yet
    assert client.get(f"/v1/payments/{pid}").json()["state"] == "awaiting_confirmation"
    assert body_of(updated)["type"] == "refund.updated"
    assert result_of(client, service, updated) == "settled"
    payment = client.get(f"/v1/payments/{pid}").json()
    assert (payment["state"], payment["refunded_amount"]) == ("partially_refunded", 300)


def test_a_stripe_inquiry_withdraws_nothing_and_closing_it_returns_nothing(env) -> None:
    from engine.read_models.ledger import balances

    client, service, engine = env
    pid = client.post("/v1/payments", json={
        **BODY, "capture": "automatic", "provider": "stripe",
        "payment_method": payment_method("stripe")}, headers={"Idempotency-Key": "a"}
    ).json()["id"]
    drain(service, "stripe")
    before = balances(engine, pid)
    intent = service.get_payment(None, pid).provider_reference
    secret = service.gateways["stripe"].config.webhook_secrets[0]
    for n, (event_type, status) in enumerate([("charge.dispute.created", "warning_needs_response"),
                                              ("charge.dispute.closed", "warning_closed")]):
        body = json.dumps({"id": f"evt_inq_{n}", "type": event_type, "data": {"object": {
            "id": "du_inq", "object": "dispute", "payment_intent": intent, "amount": 1299,
            "currency": "usd", "status": status, "reason": "fraudulent"}}}).encode()
        r = client.post("/v1/webhooks/stripe", content=body,
                        headers={"Stripe-Signature": sign(secret, body, int(time.time()))})
        assert r.status_code == 200
    assert client.get(f"/v1/payments/{pid}").json()["state"] == "dispute_won"
    assert balances(engine, pid) == before  # no withdrawal, no dispute fee, no reinstatement
