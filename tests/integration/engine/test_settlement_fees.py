"""Each settled line's fee: held to the provider's configured pricing (a fee_mismatch beyond the
tolerance), and posted to the ledger's fee expense once, whatever the day's re-runs."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from engine.domain.settlement_lines import SettlementLine
from engine.providers.registry import PROVIDERS
from engine.providers.sandbox.registry import SANDBOXED
from engine.read_models.ledger import total_imbalance_minor
from engine.settlement.breaks import list_breaks
from engine.settlement.run import reconcile_provider_day
from engine.storage.tables import journal_entries, journal_transactions, settlement_files
from engine.testing import payment_request
from paysignal.testing import make_service


def fee_expense(engine: Engine, payment_id: str) -> int:
    je, jt = journal_entries.c, journal_transactions.c
    with engine.connect() as conn:
        rows = conn.execute(select(je.side, func.sum(je.amount_minor))
                            .join(journal_transactions, jt.id == je.transaction_id)
                            .where(jt.payment_id == payment_id,
                                   je.account == "provider_fees:stripe")
                            .group_by(je.side)).all()
    return sum(int(total) if side == "debit" else -int(total) for side, total in rows)


def report(tmp_path: Path, tag: str, line: SettlementLine) -> Path:
    [(name, data)] = SANDBOXED["stripe"].render_report([line], line.settled_on).items()
    (tmp_path / tag).mkdir()
    (tmp_path / tag / name).write_bytes(data)
    return tmp_path / tag / name


def test_a_fee_within_tolerance_is_posted_once_and_one_beyond_it_is_a_break(
        db_engine: Engine, tmp_path: Path) -> None:
    service, _, clock = make_service(db_engine)
    created = service.create_payment("m-1", "k-1", payment_request(amount=10_000))
    payment_id = str(created.payment_id)
    booked = PROVIDERS["stripe"].published_pricing.capture_fee(10_000)  # what Stripe reported
    assert fee_expense(db_engine, payment_id) == booked == 320
    payment = service.get_payment("m-1", payment_id)
    day = (clock.now() + timedelta(days=1)).date()

    def line(fee: int, line_id: str = "txn_fee_1") -> SettlementLine:
        return SettlementLine("stripe", line_id, str(payment.provider_reference), payment_id,
                              "charge", 10_000, fee, "USD", day)

    # 1. one minor unit more than the pricing predicts: within the tolerance, no break, but the
    # ledger's fee expense becomes the provider's fee; reconciling again posts nothing more
    first = report(tmp_path, "1", line(booked + 1))
    reconcile_provider_day(db_engine, "stripe", day, first)
    reconcile_provider_day(db_engine, "stripe", day)
    assert list_breaks(db_engine) == []
    assert fee_expense(db_engine, payment_id) == booked + 1
    assert total_imbalance_minor(db_engine) == 0

    # 2. a corrected file says 40 more: a fee_mismatch against the pricing, and the ledger
    # posts only the difference still missing
    with db_engine.connect() as conn:
        old = conn.execute(select(settlement_files.c.id)).scalar_one()
    corrected = report(tmp_path, "2", line(booked + 40))
    reconcile_provider_day(db_engine, "stripe", day, corrected, supersedes=old)
    [brk] = list_breaks(db_engine, status="open")
    assert (brk["kind"], brk["expected_minor"], brk["actual_minor"]) == (
        "fee_mismatch", booked, booked + 40)
    assert fee_expense(db_engine, payment_id) == booked + 40
    assert total_imbalance_minor(db_engine) == 0
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(journal_transactions).where(
            journal_transactions.c.kind == "settlement_fee")).scalar_one() == 2


def test_fees_are_held_to_the_configured_pricing(db_engine: Engine, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A negotiated rate configured for the provider (2.5 % + 30) makes a line charged at the
    published price (2.9 % + 30) a fee_mismatch; the tolerance is configurable too."""
    service, _, clock = make_service(db_engine)
    created = service.create_payment("m-1", "k-1", payment_request(amount=10_000))
    payment = service.get_payment("m-1", str(created.payment_id))
    day = (clock.now() + timedelta(days=1)).date()
    path = report(tmp_path, "1", SettlementLine(
        "stripe", "txn_1", str(payment.provider_reference), payment.id, "charge", 10_000, 320,
        "USD", day))
    monkeypatch.setenv("PAYSIGNAL_STRIPE_FEE_BPS", "250")
    reconcile_provider_day(db_engine, "stripe", day, path)
    [brk] = list_breaks(db_engine, status="open")
    assert (brk["kind"], brk["expected_minor"], brk["actual_minor"]) == ("fee_mismatch", 280, 320)
    monkeypatch.setenv("PAYSIGNAL_FEE_TOLERANCE_MINOR", "50")
    reconcile_provider_day(db_engine, "stripe", day)
    assert list_breaks(db_engine, status="open") == []
    monkeypatch.setenv("PAYSIGNAL_FEE_TOLERANCE_MINOR", "a little")
    from engine.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="PAYSIGNAL_FEE_TOLERANCE_MINOR"):
        reconcile_provider_day(db_engine, "stripe", day)
    monkeypatch.setenv("PAYSIGNAL_FEE_TOLERANCE_MINOR", "1")
    monkeypatch.setenv("PAYSIGNAL_STRIPE_FEE_BPS", "-3")
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_STRIPE_FEE_BPS='-3'"):
        reconcile_provider_day(db_engine, "stripe", day)
