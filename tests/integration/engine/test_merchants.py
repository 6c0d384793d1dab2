import json
from datetime import timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from engine.payments.merchants import authenticate, hash_api_key
from engine.storage.tables import merchant_keys, merchants
from paysignal.cli import app


def test_merchants_create_prints_the_key_once_and_stores_only_its_hash(db_url: str, db_engine) -> None:
    result = CliRunner().invoke(app, ["merchants", "create", "Acme Books", "--json",
                                      "--database-url", db_url])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(created) >= {"merchant_id", "api_key"}
    with db_engine.connect() as conn:
        row = conn.execute(select(merchant_keys)).one()
        merchant = conn.execute(select(merchants)).one()
    assert row.key_hash == hash_api_key(created["api_key"])
    assert created["api_key"] not in str(tuple(row)) + str(tuple(merchant))
    assert authenticate(db_engine, created["api_key"]) == created["merchant_id"]
    assert authenticate(db_engine, created["api_key"] + "x") is None


def test_duplicate_or_bad_merchant_names_are_clear_errors(db_url: str) -> None:
    runner = CliRunner()
    runner.invoke(app, ["merchants", "create", "Acme", "--database-url", db_url])
    again = runner.invoke(app, ["merchants", "create", "Acme", "--database-url", db_url])
    assert again.exit_code == 2 and "name: a merchant named 'Acme' already exists" in again.output
    bad = runner.invoke(app, ["merchants", "create", "\x00", "--database-url", db_url])
    assert bad.exit_code == 2 and "name:" in bad.output


def test_a_rotation_overlaps_then_the_old_key_stops(db_engine) -> None:
    from datetime import UTC, datetime, timedelta

    from engine.payments.merchants import create_merchant, rotate_key

    old = create_merchant(db_engine, "Acme")
    new = rotate_key(db_engine, "Acme", timedelta(hours=24))
    now = datetime.now(UTC)
    assert authenticate(db_engine, new.api_key, now) == old.merchant_id
    assert authenticate(db_engine, old.api_key, now) == old.merchant_id  # still, for a while
    later = now + timedelta(hours=25)
    assert authenticate(db_engine, old.api_key, later) is None
    assert authenticate(db_engine, new.api_key, later) == old.merchant_id


def test_a_revoked_key_stops_at_once_through_the_cli(db_url: str, db_engine) -> None:
    runner = CliRunner()
    created = json.loads(runner.invoke(app, ["merchants", "create", "Acme", "--json",
                                             "--database-url", db_url]).stdout)
    rotated = runner.invoke(app, ["merchants", "rotate-key", "Acme", "--overlap", "7d", "--json",
                                  "--database-url", db_url])
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    keys = json.loads(runner.invoke(app, ["merchants", "keys", "Acme", "--json",
                                          "--database-url", db_url]).stdout)
    old_id = next(k["id"] for k in keys if k["id"] != new["key_id"])
    assert authenticate(db_engine, created["api_key"]) == created["merchant_id"]
    revoked = runner.invoke(app, ["merchants", "revoke-key", "Acme", old_id,
                                  "--database-url", db_url])
    assert revoked.exit_code == 0, revoked.output
    assert authenticate(db_engine, created["api_key"]) is None
    assert authenticate(db_engine, new["api_key"]) == created["merchant_id"]
    again = runner.invoke(app, ["merchants", "revoke-key", "Acme", old_id, "--database-url", db_url])
    assert again.exit_code == 2 and "no active key" in again.output
    too_long = runner.invoke(app, ["merchants", "rotate-key", "Acme", "--overlap", "90d",
                                   "--database-url", db_url])
    assert too_long.exit_code == 2 and "overlap" in too_long.output


def test_merchants_list_shows_every_merchant_with_its_working_keys(db_url: str) -> None:
    runner = CliRunner()
    assert "no merchants yet" in runner.invoke(app, ["merchants", "list", "--database-url",
                                                     db_url]).stdout
    acme = json.loads(runner.invoke(app, ["merchants", "create", "Acme", "--json",
                                          "--database-url", db_url]).stdout)
    runner.invoke(app, ["merchants", "create", "Globex", "--database-url", db_url])
    runner.invoke(app, ["merchants", "rotate-key", "Acme", "--overlap", "0s",
                        "--database-url", db_url])
    listed = json.loads(runner.invoke(app, ["merchants", "list", "--json", "--database-url",
                                            db_url]).stdout)
    assert [(m["name"], m["keys"], m["working_keys"]) for m in listed] == [
        ("Acme", 2, 1), ("Globex", 1, 1)]
    assert listed[0]["id"] == acme["merchant_id"] and listed[0]["created_at"].endswith("+00:00")
    table = runner.invoke(app, ["merchants", "list", "--database-url", db_url],
                          env={"COLUMNS": "60"})
    assert acme["merchant_id"] in table.stdout and "1 of 2" in table.stdout


def test_silence_ids_are_printed_whole_at_80_columns(db_url: str, db_engine) -> None:
    from alerts.pipeline import create_silence

    silence = create_silence(db_engine, ['provider="adyen"', 'alertname="OutboxBacklog"'],
                             author="ana@example.com", comment="provider maintenance window "
                             "announced by adyen for tonight, ticket OPS-1234",
                             duration=timedelta(hours=2))
    listed = CliRunner().invoke(app, ["alerts", "silence", "list", "--database-url", db_url],
                                env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert str(silence["id"]) in listed.stdout
