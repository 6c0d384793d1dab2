"""Disputes in the payment's life: each provider's own dispute notifications (Stripe
charge.dispute.*, Adyen NOTIFICATION_OF_CHARGEBACK / CHARGEBACK / CHARGEBACK_REVERSED /
SECOND_CHARGEBACK, PayPal CUSTOMER.DISPUTE.*) move the payment, the ledger and the outbox; the
provider's report then settles exactly what moved."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from engine.domain.states import PaymentState
from engine.providers.base import DisputeStage, ParsedDispute
from engine.providers.registry import PROVIDERS, provider_names
from engine.providers.sandbox.registry import SANDBOXED
from engine.read_models.ledger import total_imbalance_minor
from engine.settlement.breaks import list_breaks
from engine.settlement.run import reconcile_directory
from engine.storage.tables import (
    disputes,
    journal_entries,
    journal_transactions,
    outbox,
    payment_transitions,
)
from engine.testing import payment_method, payment_request
from paysignal.simulation.day import deliver_webhooks
from paysignal.simulation.settlement_files import write_settlement_files
from paysignal.testing import make_service


def journal(engine: Engine, payment_id: str) -> list[tuple[str, str, str, int]]:
    jt, je = journal_transactions.c, journal_entries.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(jt.kind, je.account, je.side, je.amount_minor)
            .join(journal_entries, je.transaction_id == jt.id)
            .where(jt.payment_id == payment_id, jt.kind.in_(("chargeback",
                                                             "chargeback_reversal")))
            .order_by(je.id))]


@pytest.mark.parametrize("provider", provider_names())
@pytest.mark.parametrize("outcome", ["lost", "won"])
def test_a_dispute_moves_the_payment_the_ledger_and_the_outbox_then_settles_cleanly(
        db_engine: Engine, tmp_path: Path, provider: str, outcome: str) -> None:
    service, sandbox, clock = make_service(db_engine)
    created = service.create_payment("m-1", "k-1", payment_request(
        provider=provider, payment_method=payment_method(provider), amount=5_000,
        currency="EUR"))
    payment = service.get_payment("m-1", str(created.payment_id))
    assert payment.state is PaymentState.CAPTURED
    clock.advance(3600)
    dispute_ref = sandbox.dispute(provider, str(payment.provider_reference), 3_000, outcome)
    assert dispute_ref
    clock.advance(600)
    delivered = deliver_webhooks(service, sandbox)
    assert delivered, "the provider's dispute notifications were delivered"

    after = service.get_payment("m-1", payment.id)
    assert after.state is (PaymentState.CHARGED_BACK if outcome == "lost"
                           else PaymentState.DISPUTE_WON)
    fee = PROVIDERS[provider].pricing().dispute_fee_minor
    withdrawn = [("chargeback", "merchant_payable:m-1", "debit", 3_000),
                 ("chargeback", f"provider_receivable:{provider}", "credit", 3_000),
                 ("chargeback", f"provider_fees:{provider}", "debit", fee),
                 ("chargeback", f"provider_receivable:{provider}", "credit", fee)]
    returned = [("chargeback_reversal", f"provider_receivable:{provider}", "debit", 3_000),
                ("chargeback_reversal", "merchant_payable:m-1", "credit", 3_000)]
    assert journal(db_engine, payment.id) == withdrawn + (returned if outcome == "won" else [])
    assert total_imbalance_minor(db_engine) == 0
    with db_engine.connect() as conn:
        row = conn.execute(select(disputes)).one()
        moves = [(r.from_state, r.to_state) for r in conn.execute(
            select(payment_transitions).where(payment_transitions.c.payment_id == payment.id)
            .order_by(payment_transitions.c.id))][-2:]
        events = [r.name for r in conn.execute(select(outbox).where(
            outbox.c.payment_id == payment.id).order_by(outbox.c.id))]
    assert (row.provider, row.payment_id, row.amount_minor, row.currency, row.status,
            row.funds_withdrawn, row.fee_minor) == (provider, payment.id, 3_000, "EUR", outcome,
                                                    True, fee)
    assert row.due_by is not None and row.closed_at is not None
    assert moves == [("captured", "disputed"),
                     ("disputed", "charged_back" if outcome == "lost" else "dispute_won")]
    assert events[-3:] == ["PaymentDisputed", "DisputeFundsWithdrawn",
                           "PaymentChargedBack" if outcome == "lost" else "DisputeWon"]

    # finance's summary counts it, with its amount in its currency
    from engine.read_models.finance import finance_summary

    [money] = finance_summary(db_engine, clock.now() - timedelta(days=1),
                              clock.now() + timedelta(days=1))
    assert (money.provider, money.disputes_opened, money.disputed_minor) == (
        provider, 1, {"EUR": 3_000})
    assert (money.disputes_won, money.disputes_lost) == ((1, 0) if outcome == "won" else (0, 1))

    # the provider's report of the next day carries the chargeback (and its reversal): matched
    write_settlement_files(sandbox.books.entries(), tmp_path / "reports")
    report = reconcile_directory(db_engine, tmp_path / "reports")
    assert list_breaks(db_engine, status="open") == [], report.as_json()["opened"]
    assert sum(d.matched for d in report.days) == (3 if outcome == "won" else 2)

    # the same notifications again change nothing
    assert set(deliver_webhooks(service, sandbox, every_pending=True)) <= {"duplicate"}
    assert journal(db_engine, payment.id) == withdrawn + (returned if outcome == "won" else [])


def test_a_decision_before_the_opening_and_repeats_are_absorbed(db_engine: Engine) -> None:
    from engine.payments import disputes as dispute_flow

    service, _, clock = make_service(db_engine)
    created = service.create_payment("m-1", "k-1", payment_request(amount=5_000))
    payment = service.get_payment("m-1", str(created.payment_id))

    def note(stage: DisputeStage, event: str) -> ParsedDispute:
        return ParsedDispute(event, "dp_1", str(payment.provider_reference), stage, 5_000,
                             "USD")

    for stage, event in ((DisputeStage.LOST, "evt_2"), (DisputeStage.FUNDS_WITHDRAWN, "evt_1"),
                         (DisputeStage.WON, "evt_3")):
        with service.unit_of_work() as uow:
            current = dispute_flow.find_payment(uow, "stripe", note(stage, event))
            assert current is not None
            if dispute_flow.apply(uow, "stripe", current, note(stage, event), "test",
                                  clock.now()):
                uow.payments.flush(current)
            uow.commit()
    final = service.get_payment("m-1", payment.id)
    assert final.state is PaymentState.CHARGED_BACK  # decided once; later words change nothing
    assert [k for k, *_ in journal(db_engine, payment.id)] == ["chargeback"] * 4
    assert total_imbalance_minor(db_engine) == 0


@pytest.mark.parametrize("provider", provider_names())
@pytest.mark.parametrize("outcome", ["lost", "won"])
def test_a_dispute_only_the_report_tells_of_is_booked_from_its_lines_and_stays_a_break(
        db_engine: Engine, tmp_path: Path, provider: str, outcome: str) -> None:
    service, sandbox, clock = make_service(db_engine)
    created = service.create_payment("m-1", "k-1", payment_request(
        provider=provider, payment_method=payment_method(provider), amount=5_000,
        currency="EUR"))
    payment = service.get_payment("m-1", str(created.payment_id))
    clock.advance(60)
    sandbox.dispute(provider, str(payment.provider_reference), None, outcome)
    sandbox.due_webhooks(float("inf"))  # its notifications are lost: only the report tells
    write_settlement_files(sandbox.books.entries(), tmp_path / "reports")
    reconcile_directory(db_engine, tmp_path / "reports")

    breaks = list_breaks(db_engine, status="open")
    lines = [-5_000] + ([5_000] if outcome == "won" else [])
    assert sorted((b["kind"], b["provider_reference"], b["payment_id"], b["actual_minor"])
                  for b in breaks) == sorted(
        ("dispute_not_in_ledger", payment.provider_reference, payment.id, amount)
        for amount in lines)
    # the ledger now holds what the report moved, and the payment follows
    after = service.get_payment("m-1", payment.id)
    assert after.state is (PaymentState.DISPUTE_WON if outcome == "won"
                           else PaymentState.DISPUTED)
    assert [k for k, *_ in journal(db_engine, payment.id)] == (
        ["chargeback"] * 4 + (["chargeback_reversal"] * 2 if outcome == "won" else []))
    assert total_imbalance_minor(db_engine) == 0
    with db_engine.connect() as conn:
        [row] = conn.execute(select(disputes)).all()
        events = [r.name for r in conn.execute(select(outbox.c.name).where(
            outbox.c.payment_id == payment.id).order_by(outbox.c.id))]
    assert row.dispute_ref.startswith("report:") and row.funds_withdrawn
    assert row.status == ("won" if outcome == "won" else "open")
    assert "DisputeFundsWithdrawn" in events

    # reconciled again: nothing booked twice, and the breaks stay open for a person
    again = reconcile_directory(db_engine, tmp_path / "reports")
    assert not again.closed()
    assert len(list_breaks(db_engine, status="open")) == len(lines)
    assert len(journal(db_engine, payment.id)) == 4 + (2 if outcome == "won" else 0)

    if outcome == "lost":
        # the provider's own notification, late: it names the dispute, books nothing again
        note = ParsedDispute("evt-late", "dp-provider-1", str(payment.provider_reference),
                             DisputeStage.LOST, 5_000, "EUR", payment.id)
        from engine.payments import disputes as dispute_flow

        with service.unit_of_work() as uow:
            current = dispute_flow.find_payment(uow, provider, note)
            assert current is not None
            assert dispute_flow.apply(uow, provider, current, note, "test", clock.now())
            uow.payments.flush(current)
            uow.commit()
        with db_engine.connect() as conn:
            [row] = conn.execute(select(disputes)).all()
        assert (row.dispute_ref, row.status) == ("dp-provider-1", "lost")
        assert len(journal(db_engine, payment.id)) == 4
        assert service.get_payment("m-1", payment.id).state is PaymentState.CHARGED_BACK


def test_a_chargeback_for_a_payment_never_captured_books_nothing(
        db_engine: Engine, tmp_path: Path) -> None:
    service, sandbox, clock = make_service(db_engine)
    created = service.create_payment("m-1", "k-1", payment_request(amount=5_000,
                                                                   capture="manual"))
    payment = service.get_payment("m-1", str(created.payment_id))
    assert payment.state is PaymentState.AUTHORIZED
    from engine.domain.settlement_lines import CHARGEBACK, SettlementLine

    day = clock.now().date() + timedelta(days=1)
    line = SettlementLine("stripe", "", str(payment.provider_reference), payment.id,
                          CHARGEBACK, -5_000, 1_500, "USD", day, -6_500, "USD")
    (tmp_path / "reports").mkdir()
    for name, data in SANDBOXED["stripe"].render_report([line], day).items():
        (tmp_path / "reports" / name).write_bytes(data)
    reconcile_directory(db_engine, tmp_path / "reports")
    [brk] = list_breaks(db_engine, status="open")
    assert (brk["kind"], brk["payment_id"]) == ("dispute_not_in_ledger", payment.id)
    assert service.get_payment("m-1", payment.id).state is PaymentState.AUTHORIZED
    assert journal(db_engine, payment.id) == []


def test_a_dispute_rate_near_the_schemes_thresholds_alerts_and_finance_sees_it(
        db_engine: Engine, db_url: str, wide_terminal: None) -> None:
    import json

    from typer.testing import CliRunner

    from alerts.detectors import Thresholds, operational_alerts
    from paysignal.cli import app

    service, sandbox, clock = make_service(db_engine)
    references = []
    for n in range(10):
        created = service.create_payment("m-1", f"k-{n}", payment_request(amount=1_000 + n))
        references.append(service.get_payment("m-1", str(created.payment_id)).provider_reference)
    for reference in references[:3]:
        sandbox.dispute("stripe", str(reference), None, "open")
    clock.advance(600)
    deliver_webhooks(service, sandbox)
    # Visa's defaults (0.65 % and 75 disputes) are far: no alert for 3 disputes
    assert not [a for a in operational_alerts(db_engine, clock.now(), Thresholds())
                if a.name == "DisputeRateHigh"]
    near = Thresholds(dispute_ratio=0.25, dispute_min_count=3)
    [alert] = [a for a in operational_alerts(db_engine, clock.now(), near)
               if a.name == "DisputeRateHigh"]
    assert alert.labels["provider"] == "stripe"
    assert (alert.details["count"], alert.details["captured"], alert.details["ratio"]) == (
        3, 10, 0.3)
    assert "30.00%" in alert.summary
    month = clock.now().strftime("%Y-%m")
    listed = json.loads(CliRunner().invoke(app, ["disputes", "list", "--status", "open",
                                                 "--month", month, "--json",
                                                 "--database-url", db_url]).stdout)
    assert len(listed["disputes"]) == 3
    assert {d["status"] for d in listed["disputes"]} == {"open"}
    assert all(d["due_by"] for d in listed["disputes"])
    assert listed["rates"][0]["disputes"] == 3 and listed["rates"][0]["captured"] == 10
    human = CliRunner().invoke(app, ["disputes", "list", "--month", month, "--database-url",
                                     db_url], env={"COLUMNS": "140"})
    assert "fraudulent" in human.stdout and "30.00%" in human.stdout


def test_the_sandbox_knows_which_disputes_went_unnotified_and_the_grade_accepts_their_breaks(
        db_engine: Engine, tmp_path: Path) -> None:
    from engine.providers.sandbox.faults import FaultProfile, Faults
    from engine.testing import NO_FAULTS
    from paysignal.simulation.settlement_files import grade, injected_count

    service, sandbox, clock = make_service(db_engine)
    references = []
    for n in range(2):
        created = service.create_payment("m-1", f"k-{n}", payment_request(amount=4_000 + n))
        references.append(str(service.get_payment("m-1", str(created.payment_id))
                              .provider_reference))
    sandbox.dispute("stripe", references[0], None, "open")  # notified
    sandbox.profile = FaultProfile("lossy", "every notification lost",
                                   Faults(lost_notification=1.0))
    sandbox.dispute("stripe", references[1], None, "open")  # never notified
    sandbox.profile = NO_FAULTS
    assert sandbox.unnotified_disputes == {("stripe", references[1])}
    clock.advance(600)
    deliver_webhooks(service, sandbox)

    truth = write_settlement_files(sandbox.books.entries(), tmp_path / "reports",
                                   unnotified_disputes=sandbox.unnotified_disputes)
    assert injected_count(truth) == 0
    assert [(t["kind"], t["provider_reference"], t["possible"]) for t in truth] == [
        ("dispute_not_in_ledger", references[1], "true")]
    reconcile_directory(db_engine, tmp_path / "reports")
    found = [(b["kind"], b["provider"], b["provider_reference"], b["payment_id"])
             for b in list_breaks(db_engine, status="open")]
    assert [f[:3] for f in found] == [("dispute_not_in_ledger", "stripe", references[1])]
    assert grade(truth, found) == ([], [], 1)  # a true finding, neither missed nor false
    assert grade(truth, []) == ([], [], 0)  # and not required
