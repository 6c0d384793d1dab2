import json

from sqlalchemy import select
from typer.testing import CliRunner

from engine.payments.merchants import authenticate, hash_api_key
from engine.storage.tables import merchants
from paysignal.cli import app


def test_merchants_create_prints_the_key_once_and_stores_only_its_hash(db_url: str, db_engine) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["merchants", "create", "Acme Books", "--json",
                                      "--database-url", db_url])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(created) >= {"merchant_id", "api_key"}
    with db_engine.connect() as conn:
        row = conn.execute(select(merchants)).one()
    assert row.api_key_hash == hash_api_key(created["api_key"])
    assert created["api_key"] not in str(tuple(row))
    assert authenticate(db_engine, created["api_key"]) == created["merchant_id"]
    assert authenticate(db_engine, created["api_key"] + "x") is None


def test_duplicate_or_bad_merchant_names_are_clear_errors(db_url: str) -> None:
    runner = CliRunner()
    runner.invoke(app, ["merchants", "create", "Acme", "--database-url", db_url])
    again = runner.invoke(app, ["merchants", "create", "Acme", "--database-url", db_url])
    assert again.exit_code == 2 and "name: a merchant named 'Acme' already exists" in again.output
    bad = runner.invoke(app, ["merchants", "create", "\x00", "--database-url", db_url])
    assert bad.exit_code == 2 and "name:" in bad.output
