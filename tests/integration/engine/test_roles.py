"""On the real PostgreSQL: the application role runs payments but cannot rewrite the ledger or
the audit trail (no UPDATE, DELETE, TRUNCATE, nor disabling the guards); the read-only role
only reads."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from engine.outbox.relay import DatabaseEventLogSink, OutboxRelay
from engine.read_models.ledger import imbalances
from engine.storage import db
from engine.testing import payment_request
from paysignal.cli import app
from paysignal.testing import make_service
from tests.support.postgres import ThrowawayPostgres, fresh_postgres_url

APP_PASSWORD, READONLY_PASSWORD = "a" * 32, "r" * 32


@pytest.fixture
def owner_url(postgres: ThrowawayPostgres) -> str:
    url = fresh_postgres_url(postgres)
    result = CliRunner().invoke(app, ["db", "roles", "--database-url", url,
                                      "--app-password", APP_PASSWORD,
                                      "--readonly-password", READONLY_PASSWORD])
    assert result.exit_code == 0, result.output
    return url


def as_role(url: str, role: str, password: str) -> Iterator[Engine]:
    engine = db.make_engine(make_url(url).set(username=role, password=password)
                            .render_as_string(hide_password=False))
    yield engine
    engine.dispose()


@pytest.fixture
def app_engine(owner_url: str) -> Iterator[Engine]:
    yield from as_role(owner_url, "paysignal_app", APP_PASSWORD)


@pytest.fixture
def readonly_engine(owner_url: str) -> Iterator[Engine]:
    yield from as_role(owner_url, "paysignal_readonly", READONLY_PASSWORD)


def test_the_application_role_runs_payments_and_the_worker_jobs(app_engine: Engine) -> None:
    service, _, _ = make_service(app_engine)
    pid = service.create_payment("m", "k1", payment_request(capture="manual")).body["id"]
    assert service.capture("m", "k2", pid).body["state"] == "captured"
    assert service.refund("m", "k3", pid, 100).body["state"] == "partially_refunded"
    assert OutboxRelay(app_engine, DatabaseEventLogSink()).drain() > 0
    service.resolve_unknown_outcomes()
    service.recover_abandoned()
    service.expire_keys()
    assert imbalances(app_engine) == []


@pytest.mark.parametrize("statement", [
    "UPDATE journal_entries SET amount_minor = amount_minor + 1",
    "DELETE FROM journal_entries",
    "TRUNCATE journal_entries CASCADE",
    "UPDATE payment_transitions SET to_state = 'captured'",
    "DELETE FROM journal_transactions",
    "TRUNCATE toggle_audit",
    "ALTER TABLE journal_entries DISABLE TRIGGER ALL",
])
def test_the_application_role_cannot_rewrite_the_ledger_or_the_audit_trail(
        app_engine: Engine, statement: str) -> None:
    service, _, _ = make_service(app_engine)
    service.create_payment("m", "k1", payment_request())
    with pytest.raises(DBAPIError, match="permission denied|must be owner"), \
            app_engine.begin() as conn:
        conn.execute(text(statement))
    assert imbalances(app_engine) == []


def test_the_read_only_role_reads_and_writes_nothing(readonly_engine: Engine) -> None:
    with readonly_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM payments")).scalar_one() == 0
    with pytest.raises(DBAPIError, match="permission denied"), readonly_engine.begin() as conn:
        conn.execute(text("INSERT INTO merchants (id, name, created_at) VALUES ('m', 'm', now())"))


def test_roles_refuse_example_passwords_and_sqlite(tmp_path) -> None:
    result = CliRunner().invoke(app, ["db", "roles", "--database-url",
                                      f"sqlite:///{tmp_path / 'x.db'}",
                                      "--app-password", "change-me-app-password-xxxx",
                                      "--readonly-password", READONLY_PASSWORD])
    assert result.exit_code == 2 and "example value" in result.output
