"""The double-entry ledger: balanced, append-only, with balances and an imbalance check."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import DBAPIError

from engine.payments.toggles import set_mode
from engine.read_models.ledger import balances, imbalances, total_imbalance_minor
from engine.storage.tables import journal_entries, journal_transactions, recon_break_audit
from engine.testing import payment_request
from paysignal.testing import make_service


def test_balances_sum_to_zero_per_currency(db_engine: Engine) -> None:
    service, _, _ = make_service(db_engine)
    service.create_payment("m1", "a", payment_request(amount=1234))
    service.create_payment("m1", "b", payment_request(amount=500, currency="JPY"))
    per_currency: dict[str, int] = {}
    for (_account, currency), value in balances(db_engine).items():
        per_currency[currency] = per_currency.get(currency, 0) + value
    assert per_currency == {"USD": 0, "JPY": 0}
    assert imbalances(db_engine) == []


def test_the_check_reports_a_planted_imbalance(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(insert(journal_transactions).values(
            id="jtx_bad", payment_id="p", kind="capture", currency="USD", at=datetime.now(UTC)))
        conn.execute(insert(journal_entries), [
            {"transaction_id": "jtx_bad", "account": "a", "side": "debit", "amount_minor": 100},
            {"transaction_id": "jtx_bad", "account": "b", "side": "credit", "amount_minor": 90}])
    found = imbalances(db_engine)
    assert [(i.transaction_id, i.debits_minus_credits) for i in found] == [("jtx_bad", 10)]
    assert total_imbalance_minor(db_engine) == 10


@pytest.mark.parametrize("statement", [
    "UPDATE journal_entries SET amount_minor = amount_minor + 1",
    "DELETE FROM journal_entries",
    "UPDATE journal_transactions SET currency = 'EUR'",
    "DELETE FROM payment_transitions",
    "UPDATE payment_transitions SET to_state = 'captured'",
])
def test_ledger_and_audit_rows_are_append_only(db_engine: Engine, statement: str) -> None:
    service, _, _ = make_service(db_engine)
    service.create_payment("m1", "a", payment_request())
    with pytest.raises(DBAPIError, match="append-only"), db_engine.begin() as conn:
        conn.execute(text(statement))
    assert imbalances(db_engine) == []


APPEND_ONLY = ("payment_transitions", "journal_transactions", "journal_entries", "toggle_audit",
               "recon_break_audit")


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_truncate_and_replace_cannot_rewrite_append_only_tables(db_engine: Engine,
                                                                table: str) -> None:
    service, _, _ = make_service(db_engine)
    service.create_payment("m1", "a", payment_request())
    set_mode(db_engine, provider="paypal", mode="shadow", actor="ana", reason="trial",
             known_providers=["paypal"])
    with db_engine.begin() as conn:
        conn.execute(insert(recon_break_audit).values(
            break_id="brk_1", from_status="open", to_status="investigating", actor="ana",
            note="asked", at=datetime.now(UTC)))
        before = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    assert before > 0
    if db_engine.dialect.name == "postgresql":
        statement = f"TRUNCATE {table} CASCADE"
    else:  # REPLACE deletes the old row without firing delete triggers
        statement = (f"INSERT OR REPLACE INTO {table} SELECT * FROM {table} "
                     f"WHERE id = (SELECT min(id) FROM {table})")
    with pytest.raises(DBAPIError, match="append-only"), db_engine.begin() as conn:
        conn.execute(text(statement))
    with db_engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == before
    assert imbalances(db_engine) == []
