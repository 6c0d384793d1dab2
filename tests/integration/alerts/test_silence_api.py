"""Silences over the admin API: create, list, expire; each admin's own token guards them and
names them on the record; bad input is a 400 problem naming the field; no silence is longer
than 14 days or mutes everything by accident."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.payments.admins import create_admin, revoke_admin
from paysignal.api import api_app
from paysignal.testing import make_service

BODY = {"matchers": ['provider="adyen"'], "comment": "provider maintenance", "duration": "2h"}


@pytest.fixture
def client(db_engine: Engine) -> TestClient:
    service, _, _ = make_service(db_engine)
    client = TestClient(api_app(db_engine, service))
    client.headers["Authorization"] = f"Bearer {create_admin(db_engine, 'ana').token}"
    return client


def test_silences_are_created_listed_and_expired_by_admins_only(client: TestClient) -> None:
    assert client.post("/v1/admin/silences", json=BODY,
                       headers={"Authorization": "Bearer pat_forged"}).status_code == 401
    created = client.post("/v1/admin/silences", json=BODY)
    assert created.status_code == 201, created.text
    silence_id = created.json()["id"]
    listed = client.get("/v1/admin/silences").json()["silences"]
    assert [s["id"] for s in listed] == [silence_id]
    assert listed[0]["matchers"] == ['provider="adyen"'] and listed[0]["author"] == "ana"
    bad = client.post("/v1/admin/silences", json={**BODY, "matchers": ["provider=adyen"]})
    assert bad.status_code == 400 and "matchers" in bad.text
    assert client.post("/v1/admin/silences",
                       json={**BODY, "duration": "forever"}).status_code in (400, 422)
    assert client.delete(f"/v1/admin/silences/{silence_id}").status_code == 200
    assert client.get("/v1/admin/silences").json()["silences"] == []
    missing = client.delete("/v1/admin/silences/sil_nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_the_author_is_the_token_holder_not_a_field(client: TestClient) -> None:
    spoofed = client.post("/v1/admin/silences", json={**BODY, "author": "mallory"})
    assert spoofed.status_code == 400 and "author" in spoofed.text


@pytest.mark.parametrize(("duration", "accepted"), [("14d", True), ("15d", False),
                                                    ("9999w", False), ("999999w", False)])
def test_silences_last_at_most_fourteen_days(client: TestClient, duration: str,
                                             accepted: bool) -> None:
    r = client.post("/v1/admin/silences", json={**BODY, "duration": duration})
    assert r.status_code == (201 if accepted else 400), r.text
    if not accepted:
        assert r.json()["errors"][0]["field"] == "duration"


@pytest.mark.parametrize("matchers", [['alertname=~".*"'], ['severity=~".*"', 'team=~".*"'],
                                      ['alertname!="nothing-is-called-this"']])
def test_a_silence_of_everything_needs_an_explicit_flag(client: TestClient,
                                                        matchers: list[str]) -> None:
    refused = client.post("/v1/admin/silences", json={**BODY, "matchers": matchers})
    assert refused.status_code == 400 and "every alert" in refused.text
    meant = client.post("/v1/admin/silences",
                        json={**BODY, "matchers": matchers, "match_everything": True})
    assert meant.status_code == 201


def test_a_revoked_admin_token_is_refused(client: TestClient, db_engine: Engine) -> None:
    assert client.get("/v1/admin/silences").status_code == 200
    revoke_admin(db_engine, "ana")
    assert client.get("/v1/admin/silences").status_code == 401
