"""Staged rollout of idempotency enforcement: off | shadow | enforce, audited, exposed."""

import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from engine.api.app import create_app
from engine.exceptions import ValidationError
from engine.observability.metrics import Metrics, PrometheusObserver
from engine.payments.admins import create_admin
from engine.payments.merchants import create_merchant
from engine.payments.toggles import ToggleReader, audit_trail, set_mode
from engine.read_models.gauges import watch_tables
from engine.storage.tables import duplicate_risk_events
from engine.testing import payment_method
from paysignal.cli import app as cli
from paysignal.testing import make_service

METHOD = payment_method("paypal")
BODY = {"amount": 1299, "currency": "USD", "reference": "o-1", "payment_method": METHOD,
        "provider": "paypal"}
PROVIDERS = ["paypal", "stripe", "adyen"]


@pytest.fixture
def env(db_engine: Engine, monkeypatch: pytest.MonkeyPatch):
    metrics = Metrics()
    service, sandbox, _ = make_service(db_engine, observer=PrometheusObserver(metrics),
                                 toggles=ToggleReader(db_engine, ttl_s=0))
    watch_tables(metrics, db_engine, PROVIDERS, ttl_s=0)
    client = TestClient(create_app(db_engine, service, metrics=metrics))
    client.headers["Authorization"] = f"Bearer {create_merchant(db_engine, 'm').api_key}"
    return client, sandbox, db_engine


def sample(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def send_twice(client: TestClient, body: dict) -> list[int]:
    return [client.post("/v1/payments", json=body, headers={"Idempotency-Key": "k"}).status_code
            for _ in range(2)]


def test_enforce_is_the_default_and_blocks_duplicates(env) -> None:
    client, sandbox, _ = env
    assert send_twice(client, BODY) == [201, 201]
    assert sandbox.books.duplicate_charges() == 0 and len(sandbox.books.charges()) == 1
    assert sample(client, "paysignal_idempotency_enforcement_mode", provider="paypal",
                  method_type="*", mode="enforce") == 1


def test_shadow_lets_a_would_be_duplicate_through_and_counts_it(env) -> None:
    client, sandbox, engine = env
    set_mode(engine, provider="paypal", mode="shadow", actor="alice", reason="test",
             known_providers=PROVIDERS)
    assert send_twice(client, BODY) == [201, 201]
    assert len(sandbox.books.charges()) == 2  # shadow does not block: that is what it measures
    assert sample(client, "paysignal_idempotency_shadow_detections_total", provider="paypal",
                  method_type="card", would_be="replay") == 1
    client.post("/v1/payments", json={**BODY, "amount": 7}, headers={"Idempotency-Key": "k"})
    assert sample(client, "paysignal_idempotency_shadow_detections_total", provider="paypal",
                  method_type="card", would_be="conflict") == 1
    with engine.connect() as conn:  # kept for the dashboard's duplicate-risk panel too
        kept = conn.execute(select(duplicate_risk_events.c.provider,
                                   duplicate_risk_events.c.outcome)
                            .order_by(duplicate_risk_events.c.id)).all()
    assert [tuple(r) for r in kept] == [("paypal", "shadow_replay"), ("paypal", "shadow_conflict")]


def test_off_ignores_keys_and_other_providers_keep_enforcing(env) -> None:
    client, sandbox, engine = env
    set_mode(engine, provider="paypal", mode="off", actor="alice", reason="test",
             known_providers=PROVIDERS)
    assert send_twice(client, BODY) == [201, 201]
    assert len(sandbox.books.charges()) == 2
    assert sample(client, "paysignal_idempotency_shadow_detections_total", provider="paypal",
                  method_type="card", would_be="replay") == 0
    r = [client.post("/v1/payments", json={**BODY, "provider": "stripe",
                                             "payment_method": payment_method("stripe")},
                     headers={"Idempotency-Key": "n"}) for _ in range(2)]
    assert r[1].headers["Idempotent-Replayed"] == "true"


def test_a_method_type_toggle_overrides_the_provider_toggle_for_every_token_of_that_type(
        env) -> None:
    client, sandbox, engine = env
    set_mode(engine, provider="paypal", mode="off", actor="a", reason="test",
             known_providers=PROVIDERS)
    set_mode(engine, provider="paypal", method_type="card", mode="enforce", actor="a",
             reason="test", known_providers=PROVIDERS)
    assert send_twice(client, BODY) == [201, 201]
    card = payment_method("paypal", "approve")
    other_card = payment_method("paypal", "decline_do_not_honor")
    assert card != other_card
    for i, token in enumerate((card, other_card)):  # a saved card, another saved card
        for _ in range(2):
            client.post("/v1/payments", json={**BODY, "payment_method": token},
                        headers={"Idempotency-Key": f"card-{i}"})
    # each key ran once whichever card it paid with (the declined one charged nothing)
    assert len(sandbox.books.charges()) == 2
    wallet = f"paypal:{card}"  # a PayPal wallet's vault token: off at paypal, charged twice
    assert send_twice_with(client, {**BODY, "payment_method": wallet}, "w") == [201, 201]
    assert len(sandbox.books.charges()) == 4


def test_a_merchant_toggle_is_the_most_specific(env) -> None:
    _, _, engine = env
    set_mode(engine, provider="paypal", method_type="card", mode="off", actor="a",
             reason="test", known_providers=PROVIDERS)
    reader = ToggleReader(engine, ttl_s=0)
    assert reader.mode_for("paypal", "card", "mer_other").value == "off"
    set_mode(engine, provider="paypal", method_type="card", merchant_id="mer_one",
             mode="enforce", actor="a", reason="one merchant first", known_providers=PROVIDERS)
    assert reader.mode_for("paypal", "card", "mer_one").value == "enforce"
    assert reader.mode_for("paypal", "card", "mer_other").value == "off"
    assert reader.mode_for("paypal", "wallet", "mer_one").value == "enforce"  # the default
    with pytest.raises(ValidationError, match="method_type: must be"):
        set_mode(engine, provider="paypal", method_type="pm_card_visa", mode="off", actor="a",
                 reason="a token is not a type", known_providers=PROVIDERS)


def send_twice_with(client: TestClient, body: dict, key: str) -> list[int]:
    return [client.post("/v1/payments", json=body, headers={"Idempotency-Key": key}).status_code
            for _ in range(2)]


def test_changes_are_audited_and_the_audit_is_append_only(env) -> None:
    _, _, engine = env
    set_mode(engine, provider="adyen", mode="shadow", actor="alice", reason="rollout step 1",
             known_providers=PROVIDERS)
    set_mode(engine, provider="adyen", mode="enforce", actor="bob", reason="test",
             known_providers=PROVIDERS)
    trail = audit_trail(engine)
    assert [(a["from"], a["to"], a["actor"]) for a in trail] == [
        ("shadow", "enforce", "bob"), ("enforce", "shadow", "alice")]
    assert trail[1]["reason"] == "rollout step 1"
    same = set_mode(engine, provider="adyen", mode="enforce", actor="carol", reason="again",
                    known_providers=PROVIDERS)
    assert same == {"provider": "adyen", "method_type": "*", "merchant_id": "*",
                    "from": "enforce", "to": "enforce", "changed": False}
    assert len(audit_trail(engine)) == 2  # a change that changes nothing is not audited
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE toggle_audit SET actor = 'mallory'"))


@pytest.mark.slow
def test_toggles_through_the_cli(env, db_url: str) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["toggles", "set", "--provider", "stripe", "--mode", "shadow",
                            "--actor", "carol", "--reason", "canary", "--json",
                            "--database-url", db_url])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["to"] == "shadow"
    listed = json.loads(runner.invoke(cli, ["toggles", "list", "--json",
                                            "--database-url", db_url]).stdout)
    assert listed["toggles"][0]["mode"] == "shadow" and listed["audit"][0]["actor"] == "carol"
    bad = runner.invoke(cli, ["toggles", "set", "--provider", "acme", "--mode", "off",
                              "--actor", "x", "--reason", "r", "--database-url", db_url])
    assert bad.exit_code == 2 and "provider: unknown provider 'acme'" in bad.output
    bad = runner.invoke(cli, ["toggles", "set", "--provider", "paypal", "--mode", "sometimes",
                              "--actor", "x", "--reason", "r", "--database-url", db_url])
    assert bad.exit_code == 2 and "mode: must be one of" in bad.output
    unexplained = runner.invoke(cli, ["toggles", "set", "--provider", "paypal", "--mode", "off",
                                      "--actor", "x", "--reason", " ", "--database-url", db_url])
    assert unexplained.exit_code == 2 and "reason: is required" in unexplained.output


def test_toggles_through_the_admin_api_need_an_admins_own_token(env) -> None:
    client, _, engine = env
    change = {"mode": "shadow", "reason": "canary"}
    denied = client.put("/v1/admin/toggles/paypal", json=change)  # a merchant key is not enough
    assert denied.status_code == 401
    admin = {"Authorization": f"Bearer {create_admin(engine, 'dave').token}"}
    r = client.put("/v1/admin/toggles/paypal", json=change, headers=admin)
    assert r.status_code == 200 and r.json()["to"] == "shadow"
    state = client.get("/v1/admin/toggles", headers=admin).json()
    assert state["toggles"][0]["mode"] == "shadow" and state["audit"][0]["reason"] == "canary"
    assert state["audit"][0]["actor"] == "dave"  # the token's holder, not a self-declared name
    spoofed = client.put("/v1/admin/toggles/paypal", headers=admin,
                         json={**change, "actor": "mallory"})
    assert spoofed.status_code == 400
    unexplained = client.put("/v1/admin/toggles/paypal", headers=admin,
                             json={"mode": "off", "reason": ""})
    assert unexplained.status_code == 400 and unexplained.json()["errors"][0]["field"] == "reason"
    assert sample(client, "paysignal_idempotency_enforcement_mode", provider="paypal",
                  method_type="*", mode="shadow") == 1
    bad = client.put("/v1/admin/toggles/paypal", json={"mode": "maybe", "reason": "x"},
                     headers=admin)
    assert bad.status_code == 400


def test_a_shadow_rollout_of_cards_at_adyen_counts_would_be_duplicates_per_method_type(
        env) -> None:
    """The staged rollout the toggles exist for: an admin puts cards at Adyen in shadow mode;
    every Adyen card token lets a retried key through and counts it, while Adyen's other
    method types and the other providers' cards keep enforcing."""
    client, sandbox, engine = env
    admin = {"Authorization": f"Bearer {create_admin(engine, 'dave').token}"}
    change = client.put("/v1/admin/toggles/adyen", headers=admin, json={
        "mode": "shadow", "method_type": "card", "reason": "cards at Adyen, step 1"})
    assert change.status_code == 200 and change.json()["from"] == "inherited"
    bad = client.put("/v1/admin/toggles/adyen", headers=admin, json={
        "mode": "shadow", "method_type": "pm_card_visa", "reason": "a token"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "method_type"
    adyen_cards = [payment_method("adyen", "approve"), payment_method("adyen",
                                                                       "decline_do_not_honor")]
    for i, token in enumerate(adyen_cards):
        send_twice_with(client, {**BODY, "provider": "adyen", "currency": "EUR",
                                 "payment_method": token}, f"adyen-{i}")
    assert sample(client, "paysignal_idempotency_shadow_detections_total", provider="adyen",
                  method_type="card", would_be="replay") == 2  # one per token, both cards
    stripe = {**BODY, "provider": "stripe", "payment_method": payment_method("stripe")}
    assert [r.headers.get("Idempotent-Replayed") for r in (
        client.post("/v1/payments", json=stripe, headers={"Idempotency-Key": "s"})
        for _ in range(2))] == [None, "true"]
    assert sandbox.books.duplicate_charges() == 0
    assert [c.provider for c in sandbox.books.charges()].count("adyen") == 2  # shadow lets the
    # approved card's retry through (the declined one charged nothing)
    assert sample(client, "paysignal_idempotency_enforcement_mode", provider="adyen",
                  method_type="card", mode="shadow") == 1
    state = client.get("/v1/admin/toggles", headers=admin).json()
    assert state["audit"][0]["method_type"] == "card"
    with engine.connect() as conn:
        kept = conn.execute(select(duplicate_risk_events.c.provider,
                                   duplicate_risk_events.c.outcome)).all()
    assert sorted(tuple(r) for r in kept) == [("adyen", "shadow_replay")] * 2 + [
        ("stripe", "replayed")]  # stripe's retry was replayed, as enforcement does
