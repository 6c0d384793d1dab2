"""HTTP contract of the payment API, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from engine.api.app import create_app
from engine.payments.merchants import create_merchant
from engine.payments.service import PaymentService
from engine.storage.tables import idempotency_keys, payments
from engine.testing import payment_method
from paysignal.testing import make_service

BODY = {"amount": 1299, "currency": "USD", "reference": "order-1", "payment_method": payment_method("stripe"),
        "provider": "stripe"}


@dataclass
class Api:
    client: TestClient
    engine: Engine
    key_a: str
    key_b: str
    service: PaymentService

    def post(self, path: str, body: object = None, *, key: str | None = "k1",
             api_key: str | None = None):
        headers = {"Authorization": f"Bearer {api_key or self.key_a}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, api_key: str | None = None,
            params: dict[str, str | int] | None = None):
        return self.client.get(path, headers={"Authorization": f"Bearer {api_key or self.key_a}"},
                               params=params)


@pytest.fixture
def api(db_engine: Engine) -> Api:
    service, _, _ = make_service(db_engine)
    app = create_app(db_engine, service, max_body_bytes=2048)
    a = create_merchant(db_engine, "Merchant A")
    b = create_merchant(db_engine, "Merchant B")
    return Api(TestClient(app, raise_server_exceptions=False), db_engine, a.api_key, b.api_key,
               service)


def rows(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:paysignal:problem:{slug}" and body["status"] == status
    assert body["detail"] and "Traceback" not in response.text
    return body


def test_create_returns_201_with_the_payment(api: Api) -> None:
    r = api.post("/v1/payments", BODY)
    assert r.status_code == 201
    body = r.json()
    for field in ("id", "state", "amount", "currency", "provider", "reference", "created_at"):
        assert field in body
    assert body["state"] == "captured" and body["amount"] == 1299
    assert "Idempotent-Replayed" not in r.headers


def test_replay_returns_the_original_status_and_body_byte_for_byte(api: Api) -> None:
    first = api.post("/v1/payments", BODY)
    again = api.post("/v1/payments", BODY)
    assert again.status_code == first.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"


def test_missing_key_is_400_and_writes_nothing(api: Api) -> None:
    body = assert_problem(api.post("/v1/payments", BODY, key=None), 400, "idempotency-key-missing")
    assert body["errors"] == [{"field": "Idempotency-Key", "reason": "is required"}]
    assert rows(api.engine, payments) == 0


def test_key_longer_than_255_characters_is_400(api: Api) -> None:
    body = assert_problem(api.post("/v1/payments", BODY, key="k" * 256), 400, "validation-error")
    assert body["errors"][0]["field"] == "Idempotency-Key"


def test_same_key_different_payload_is_422_naming_the_fields(api: Api) -> None:
    api.post("/v1/payments", BODY)
    body = assert_problem(api.post("/v1/payments", {**BODY, "amount": 5}), 422,
                          "idempotency-key-reused")
    assert body["differing_fields"] == ["amount"]


def test_same_key_in_flight_is_409_with_retry_after(api: Api) -> None:
    gateway = api.service.gateways["stripe"]
    original = gateway.execute
    seen: list[Any] = []  # what the test client answered

    def execute(request):
        if not seen:
            seen.append(api.post("/v1/payments", BODY))
        return original(request)

    gateway.execute = execute  # type: ignore[method-assign]
    assert api.post("/v1/payments", BODY).status_code == 201
    assert_problem(seen[0], 409, "idempotency-key-in-use")
    assert int(seen[0].headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("body", "field"), [
    ({**BODY, "amount": -5}, "amount"), ({**BODY, "amount": "12.99"}, "amount"),
    ({**BODY, "amount": 12.99}, "amount"), ({**BODY, "currency": "XYZ"}, "currency"),
    ({**BODY, "payment_method": "4242424242424242"}, "payment_method"),
    ({**BODY, "provider": "acme"}, "provider"), ({**BODY, "surprise": 1}, "surprise"),
    ({k: v for k, v in BODY.items() if k != "reference"}, "reference"),
])
def test_invalid_bodies_are_400_naming_the_field_and_write_nothing(api: Api, body: dict,
                                                                   field: str) -> None:
    problem = assert_problem(api.post("/v1/payments", body), 400, "validation-error")
    assert field in [e["field"] for e in problem["errors"]]
    assert rows(api.engine, payments) == 0 and rows(api.engine, idempotency_keys) == 0


def test_malformed_json_is_400(api: Api) -> None:
    r = api.client.post("/v1/payments", content=b"{not json", headers={
        "Authorization": f"Bearer {api.key_a}", "Idempotency-Key": "x",
        "Content-Type": "application/json"})
    assert_problem(r, 400, "validation-error")


def test_bodies_over_the_limit_are_413_and_write_nothing(api: Api) -> None:
    huge = {**BODY, "reference": "x" * 5000}
    assert_problem(api.post("/v1/payments", huge), 413, "request-too-large")

    def chunks():
        yield b'{"reference": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    r = api.client.post("/v1/payments", content=chunks(), headers={
        "Authorization": f"Bearer {api.key_a}", "Idempotency-Key": "y",
        "Content-Type": "application/json"})
    assert_problem(r, 413, "request-too-large")
    assert rows(api.engine, payments) == 0


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_missing_or_wrong_api_key_is_401(api: Api, authorization: str | None) -> None:
    headers = {"Idempotency-Key": "k"}
    if authorization is not None:
        headers["Authorization"] = authorization
    r = api.client.post("/v1/payments", json=BODY, headers=headers)
    assert_problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_merchants_cannot_see_or_touch_each_others_payments(api: Api) -> None:
    pid = api.post("/v1/payments", {**BODY, "capture": "manual"}).json()["id"]
    foreign = api.key_b
    responses = [api.get(f"/v1/payments/{pid}", api_key=foreign),
                 api.post(f"/v1/payments/{pid}/capture", {}, key="c", api_key=foreign),
                 api.post(f"/v1/payments/{pid}/void", None, key="v", api_key=foreign),
                 api.post(f"/v1/payments/{pid}/refunds", {"amount": 1}, key="r", api_key=foreign)]
    unknown = api.get("/v1/payments/pay_doesnotexist")
    for r in responses:
        body = assert_problem(r, 404, "not-found")
        assert pid not in r.text and body["detail"] == unknown.json()["detail"]
    assert api.get("/v1/payments", api_key=foreign).json()["data"] == []
    # B's replay of A's key is B's own new request, never A's stored response
    assert api.post("/v1/payments", BODY, key="k1", api_key=foreign).json()["id"] != pid


def test_capture_void_and_refund_flows(api: Api) -> None:
    pid = api.post("/v1/payments", {**BODY, "capture": "manual"}).json()["id"]
    r = api.post(f"/v1/payments/{pid}/capture", {"amount": 1000}, key="cap")
    assert r.status_code == 200 and r.json()["captured_amount"] == 1000
    r = api.post(f"/v1/payments/{pid}/refunds", {"amount": 400}, key="ref1")
    assert r.json()["state"] == "partially_refunded"
    first = r.json()["refund"]
    assert first["amount"] == 400 and first["status"] == "succeeded"
    assert first["id"].startswith("rfd_")
    again = api.post(f"/v1/payments/{pid}/refunds", {"amount": 400}, key="ref1")
    assert again.json()["refund"] == first  # the retry names the same refund
    second = api.post(f"/v1/payments/{pid}/refunds", {"amount": 100}, key="ref1b").json()
    assert second["refund"]["id"] != first["id"] and second["refunded_amount"] == 500
    assert "refund" not in api.get(f"/v1/payments/{pid}").json()
    too_much = api.post(f"/v1/payments/{pid}/refunds", {"amount": 601}, key="ref2")
    assert assert_problem(too_much, 400, "validation-error")["errors"][0]["field"] == "amount"
    void = api.post(f"/v1/payments/{pid}/void", None, key="void")
    assert_problem(void, 409, "invalid-state-transition")
    other = api.post("/v1/payments", {**BODY, "capture": "manual"}, key="k2").json()["id"]
    assert api.post(f"/v1/payments/{other}/void", None, key="void2").json()["state"] == "voided"


def test_unknown_outcome_is_202_and_get_shows_the_audit_trail(api: Api) -> None:
    r = api.post("/v1/payments", {**BODY, "payment_method": payment_method("stripe", "timeout_after_charge"),
                                   "capture": "manual"})
    assert r.status_code == 202 and r.json()["state"] == "unknown"
    pid = r.json()["id"]
    captured = api.post(f"/v1/payments/{pid}/capture", None, key="cap")
    assert captured.json()["state"] == "captured"
    detail = api.get(f"/v1/payments/{pid}").json()
    assert [(t["from"], t["to"]) for t in detail["audit_trail"]] == [
        ("created", "authorizing"), ("authorizing", "unknown"), ("unknown", "authorized"),
        ("authorized", "capturing"), ("capturing", "captured")]
    kinds = {e["kind"] for e in detail["ledger_entries"]}
    assert {"authorization_hold", "capture", "provider_fee"} <= kinds
    assert detail["provider_attempts"][0]["outcome"] == "unknown"


def test_list_filters_and_paginates_with_a_cursor(api: Api) -> None:
    for i in range(5):
        api.post("/v1/payments", {**BODY, "reference": f"o{i}"}, key=f"k{i}")
    declined = payment_method("stripe", "decline_do_not_honor")
    api.post("/v1/payments", {**BODY, "payment_method": declined}, key="d")
    page1 = api.get("/v1/payments", params={"limit": 2, "state": "captured"}).json()
    page2 = api.get("/v1/payments", params={"limit": 2, "state": "captured",
                                            "cursor": page1["next_cursor"]}).json()
    page3 = api.get("/v1/payments", params={"limit": 2, "state": "captured",
                                            "cursor": page2["next_cursor"]}).json()
    ids = [p["id"] for p in page1["data"] + page2["data"] + page3["data"]]
    assert len(ids) == len(set(ids)) == 5 and page3["next_cursor"] is None
    declined = api.get("/v1/payments", params={"state": "declined"}).json()["data"]
    assert [p["state"] for p in declined] == ["declined"]
    bad = api.get("/v1/payments", params={"cursor": "garbage"})
    assert assert_problem(bad, 400, "validation-error")["errors"][0]["field"] == "cursor"
    assert_problem(api.get("/v1/payments", params={"state": "sideways"}), 400, "validation-error")
    assert_problem(api.get("/v1/payments", params={"limit": 1000}), 400, "validation-error")


def test_health_readiness_and_openapi(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    spec = api.client.get("/openapi.json").json()
    assert {"/v1/payments", "/v1/payments/{payment_id}/capture", "/v1/payments/{payment_id}/void",
            "/v1/payments/{payment_id}/refunds", "/v1/payments/{payment_id}"} <= set(spec["paths"])
    assert_problem(api.client.get("/no/such/route"), 404, "not-found")
    assert_problem(api.client.delete("/v1/payments"), 405, "method-not-allowed")


def test_readyz_is_503_when_the_schema_is_behind(api: Api) -> None:
    from engine.storage import db
    db.downgrade(api.engine, "0001")
    body = assert_problem(api.client.get("/readyz"), 503, "service-unavailable")
    assert "paysignal db upgrade" in body["detail"]


@pytest.mark.parametrize("reference", ["a\x00b", "line\nbreak", "tab\there"])
def test_control_characters_in_text_fields_are_400_not_a_database_error(api: Api,
                                                                        reference: str) -> None:
    r = api.post("/v1/payments", {**BODY, "reference": reference})
    assert assert_problem(r, 400, "validation-error")["errors"][0]["field"] == "reference"
    assert rows(api.engine, payments) == 0


def test_odd_ids_and_filters_are_404_or_400_never_5xx(api: Api) -> None:
    assert_problem(api.get("/v1/payments/pay%00x"), 404, "not-found")
    assert_problem(api.post("/v1/payments/pay%00x/capture", None, key="c"), 404, "not-found")
    bad = api.get("/v1/payments", params={"provider": "north\x00wind"})
    assert assert_problem(bad, 400, "validation-error")["errors"][0]["field"] == "provider"
