"""Silences over the admin API: create, list, expire; the admin token guards them; bad input
is a 400 problem naming the field."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.testing import make_service
from paysignal.api import api_app


@pytest.fixture
def client(db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("PAYSIGNAL_ADMIN_TOKEN", "adm1n")
    service, _, _ = make_service(db_engine)
    return TestClient(api_app(db_engine, service))


def test_silences_are_created_listed_and_expired_by_admins_only(client: TestClient) -> None:
    admin = {"Authorization": "Bearer adm1n"}
    body = {"matchers": ['provider="southbank"'], "author": "ana",
            "comment": "provider maintenance", "duration": "2h"}
    assert client.post("/v1/admin/silences", json=body).status_code == 401
    created = client.post("/v1/admin/silences", json=body, headers=admin)
    assert created.status_code == 201, created.text
    silence_id = created.json()["id"]
    listed = client.get("/v1/admin/silences", headers=admin).json()["silences"]
    assert [s["id"] for s in listed] == [silence_id]
    assert listed[0]["matchers"] == ['provider="southbank"'] and listed[0]["author"] == "ana"
    bad = client.post("/v1/admin/silences", headers=admin,
                      json={**body, "matchers": ["provider=southbank"]})
    assert bad.status_code == 400 and "matchers" in bad.text
    assert client.post("/v1/admin/silences", headers=admin,
                       json={**body, "duration": "forever"}).status_code in (400, 422)
    gone = client.delete(f"/v1/admin/silences/{silence_id}", params={"by": "ana"},
                         headers=admin)
    assert gone.status_code == 200
    assert client.get("/v1/admin/silences", headers=admin).json()["silences"] == []
    missing = client.delete("/v1/admin/silences/sil_nope", params={"by": "ana"}, headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
