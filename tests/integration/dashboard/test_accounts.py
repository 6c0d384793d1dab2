"""Named dashboard accounts: hashed passwords, the account name on the audit trail, failed
logins rate-limited, disabled accounts refused."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from dashboard.accounts import (
    FAILURE_WINDOW,
    MAX_FAILURES,
    create_account,
    disable_account,
    has_accounts,
    log_in,
)
from dashboard.auth import LoginError, Role
from engine.storage.tables import dashboard_accounts
from paysignal.cli import app

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_an_account_logs_in_under_its_own_name_and_its_password_is_only_hashed(
        db_engine: Engine) -> None:
    assert not has_accounts(db_engine)
    create_account(db_engine, "ana", "correct horse battery", "finance,engineering")
    user = log_in(db_engine, "ana", "correct horse battery", NOW)
    assert user.name == "ana" and user.roles == {Role.FINANCE, Role.ENGINEERING}
    assert user.actor == "ana (dashboard, password)"
    with db_engine.connect() as conn:
        stored = conn.execute(select(dashboard_accounts.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert has_accounts(db_engine)


def test_failed_logins_are_rate_limited_per_name(db_engine: Engine) -> None:
    create_account(db_engine, "ana", "correct horse battery", "finance")
    for i in range(MAX_FAILURES):
        with pytest.raises(LoginError, match="not a dashboard account"):
            log_in(db_engine, "ana", f"guess {i}", NOW + timedelta(seconds=i))
    with pytest.raises(LoginError, match="too many failed logins"):
        log_in(db_engine, "ana", "correct horse battery", NOW + timedelta(minutes=1))
    later = NOW + FAILURE_WINDOW + timedelta(minutes=1)
    assert log_in(db_engine, "ana", "correct horse battery", later).name == "ana"


def test_unknown_and_disabled_accounts_are_refused_alike(db_engine: Engine) -> None:
    create_account(db_engine, "bo", "another good password", "viewer")
    disable_account(db_engine, "bo")
    for name in ("bo", "nobody"):
        with pytest.raises(LoginError, match="not a dashboard account"):
            log_in(db_engine, name, "another good password", NOW)


@pytest.mark.parametrize(("password", "field"), [("short", "password"),
                                                  ("change-me-please-now", "password")])
def test_weak_passwords_are_refused(db_engine: Engine, password: str, field: str) -> None:
    from engine.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        create_account(db_engine, "cy", password, "viewer")
    assert info.value.field == field


def test_users_are_managed_from_the_cli(db_url: str, db_engine: Engine,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASH_PW", "a long enough password")
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "dee", "--roles", "engineering",
                                "--password-env", "DASH_PW", "--database-url", db_url])
    assert added.exit_code == 0, added.output
    assert log_in(db_engine, "dee", "a long enough password", NOW).roles == {Role.ENGINEERING}
    assert runner.invoke(app, ["users", "disable", "dee", "--database-url", db_url]).exit_code == 0
    with pytest.raises(LoginError):
        log_in(db_engine, "dee", "a long enough password", NOW)
