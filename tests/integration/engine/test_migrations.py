import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from engine.exceptions import SchemaOutOfDateError
from engine.storage import db
from engine.storage.tables import metadata
from paysignal.cli import app


def test_migrations_produce_exactly_the_tables_the_code_uses(db_url: str) -> None:
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_downgrade_and_upgrade_round_trip(db_url: str) -> None:
    engine = db.make_engine(db_url)
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()


@pytest.mark.slow
def test_app_refuses_a_schema_that_is_behind_and_names_the_fix(db_url: str) -> None:
    engine = db.make_engine(db_url)
    db.downgrade(engine, "base")
    with pytest.raises(SchemaOutOfDateError, match="paysignal db upgrade"):
        db.require_current_schema(engine)
    result = CliRunner().invoke(app, ["simulate", "--payments", "5", "--database-url", db_url])
    assert result.exit_code == 2
    assert "paysignal db upgrade" in result.output
    upgraded = CliRunner().invoke(app, ["db", "upgrade", "--database-url", db_url])
    assert upgraded.exit_code == 0 and f"-> {db.head_revision()}" in upgraded.output


def test_bad_database_urls_get_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["db", "upgrade", "--database-url", "mysql://x/y"])
    assert result.exit_code == 2 and "not supported" in result.output


def test_policy_notes_written_as_no_op_toggle_changes_move_to_their_own_table(
        db_url: str) -> None:
    """Before 0020 the error-budget policy wrote 'enforce -> enforce' rows to the toggle audit;
    the upgrade copies them to budget_policy_notes and the toggle audit no longer shows them."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from engine.payments.toggles import audit_trail, policy_notes
    from engine.storage.tables import toggle_audit

    engine = db.make_engine(db_url)
    db.downgrade(engine, "0019")
    with engine.begin() as conn:
        conn.execute(insert(toggle_audit), [
            {"provider": "adyen", "payment_method": "*", "from_mode": "enforce",
             "to_mode": "enforce", "actor": "slo-policy", "at": datetime.now(UTC),
             "reason": "authorization-technical-success-adyen: error budget exhausted"},
            {"provider": "paypal", "payment_method": "*", "from_mode": "enforce",
             "to_mode": "shadow", "actor": "ana", "reason": "canary", "at": datetime.now(UTC)}])
    db.upgrade(engine)
    assert [n["note"] for n in policy_notes(engine)] == [
        "authorization-technical-success-adyen: error budget exhausted"]
    assert [(a["provider"], a["to"]) for a in audit_trail(engine)] == [("paypal", "shadow")]
    engine.dispose()


def test_token_keyed_toggles_become_card_toggles_keeping_the_most_protective_mode(
        db_url: str) -> None:
    """Before 0028 a toggle named one payment-method token; every token then was a card, so a
    provider's token toggles become its one `card` toggle (enforce over shadow over off), each
    move audited, and the provider-wide toggles stay as they were."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from engine.payments.toggles import audit_trail, current_modes

    engine = db.make_engine(db_url)
    db.downgrade(engine, "0027")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for provider, token, mode in [("paypal", "B-VAULT-1", "off"), ("paypal", "B-VAULT-2",
                                                                        "shadow"),
                                      ("stripe", "pm_card_visa", "off"), ("adyen", "*", "off")]:
            conn.execute(text("INSERT INTO rollout_toggles VALUES (:p, :t, :m, :at, 'ana')"),
                         {"p": provider, "t": token, "m": mode, "at": now})
        conn.execute(text("INSERT INTO payments (id, merchant_id, amount_minor, currency, "
                          "provider, reference, capture_mode, state, created_at, updated_at) "
                          "VALUES ('pay_1', 'm', 100, 'EUR', 'adyen', 'r', 'automatic', "
                          "'captured', :at, :at)"), {"at": now})
    db.upgrade(engine)
    assert [(t["provider"], t["method_type"], t["merchant_id"], t["mode"])
            for t in current_modes(engine)] == [
        ("adyen", "*", "*", "off"), ("paypal", "card", "*", "shadow"),
        ("stripe", "card", "*", "off")]
    moves = [(a["provider"], a["method_type"], a["from"], a["to"]) for a in audit_trail(engine)
             if a["actor"] == "migration 0028"]
    assert moves == [("paypal", "card", "off", "shadow")]  # the others kept their mode
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM toggle_audit WHERE actor = "
                                 "'migration 0028'")).scalar() == 3  # one per token
        assert conn.execute(text("SELECT method_type FROM payments")).scalar() == "card"
    engine.dispose()
