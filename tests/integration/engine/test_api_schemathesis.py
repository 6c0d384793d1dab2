"""schemathesis against the served OpenAPI spec: no 5xx, no schema violations (bounded).

The schemathesis pytest plugin does not work with this pytest, so each operation's
hypothesis strategy is driven directly. Each generated request gets its own Idempotency-Key:
a reused key with another body is rightly a 422, which the contract tests cover. The
positive-data check is left out: an opaque cursor or an unknown payment id is schema-valid
and still rightly refused; every other check (5xx, status codes, content types, headers,
response schemas, negative data) runs."""

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.payments.merchants import create_merchant
from paysignal.testing import make_service

EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def served_schema(db_engine: Engine):
    service, _, _ = make_service(db_engine)
    app = create_app(db_engine, service)
    api_key = create_merchant(db_engine, "schemathesis").api_key
    return schemathesis.openapi.from_asgi("/openapi.json", app), api_key


@pytest.mark.slow
def test_generated_requests_never_get_a_5xx_or_an_undocumented_response(served_schema) -> None:
    schema, api_key = served_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {api_key}",
                                            "Idempotency-Key": uuid.uuid4().hex},
                                   excluded_checks=[positive_data_acceptance])

        check()
