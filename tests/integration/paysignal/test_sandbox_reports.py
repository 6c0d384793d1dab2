"""`paysignal sandbox reports`: a running sandbox's books become each provider's own settlement
report, which `paysignal reconcile` matches against the ledger that made those payments."""

import json
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from engine.providers.registry import provider_names
from engine.providers.sandbox import SandboxServer
from engine.testing import payment_request
from paysignal.cli import app
from paysignal.simulation.day import deliver_webhooks
from paysignal.testing import make_service
from tests.support.sandbox import closed_port


def test_the_sandbox_writes_a_days_reports_that_reconcile_exactly(
        db_engine: Engine, db_url: str, tmp_path: Path) -> None:
    service, sandbox, clock = make_service(db_engine)
    for n in range(12):
        provider = provider_names()[n % 3]
        created = service.create_payment("merchant-1", f"key-{n}", payment_request(
            provider=provider, amount=1000 + 37 * n, currency=("USD", "EUR", "JPY")[n % 3],
            reference=f"order-{n}"))
        assert created.status_code == 201, created.body_text
        if n % 4 == 0:
            refunded = service.refund("merchant-1", f"refund-{n}", str(created.payment_id),
                                      amount=300)
            assert refunded.status_code in (200, 201, 202), refunded.body_text  # Adyen: 202
        clock.advance(60)
    clock.advance(600)
    deliver_webhooks(service, sandbox)  # Adyen confirms its refunds by notification
    settles = (clock.now() + timedelta(days=1)).date()
    runner = CliRunner()
    with SandboxServer(sandbox) as server:
        written = runner.invoke(app, ["sandbox", "reports", "--from", server.url, "--dir",
                                      str(tmp_path / "reports"), "--date", settles.isoformat(),
                                      "--discrepancies", "5", "--seed", "3"])
    assert written.exit_code == 0, written.output
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert names[0].startswith("Itemized_balance_change_from_activity_")
    assert names[1] == "STL-" + settles.strftime("%Y%m%d") + ".01.009.CSV"
    assert names[2].startswith("camt053_") and names[3] == "ground_truth.json"
    assert re.fullmatch(r"settlement_detail_report_batch_\d+\.csv", names[4])
    truth = json.loads((tmp_path / "reports" / "ground_truth.json").read_text())
    assert len(truth) == 5
    result = runner.invoke(app, ["reconcile", "--dir", str(tmp_path / "reports"), "--json",
                                 "--database-url", db_url])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    found = {(b["kind"], b["provider"], b["provider_reference"]) for b in figures["opened"]}
    assert found == {(t["kind"], t["provider"], t["provider_reference"]) for t in truth}
    assert figures["matched"] == 12 + 3 - sum(1 for t in truth if t["kind"] in (
        "missing_in_provider", "amount_mismatch", "currency_mismatch", "fee_mismatch",
        "duplicate_charge"))
    human = runner.invoke(app, ["reconcile", "--dir", str(tmp_path / "reports"),
                                "--database-url", db_url])
    assert "5 discrepancies injected: every one found, no false breaks" in " ".join(
        human.stdout.split())


def test_a_sandbox_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    port = closed_port()
    result = CliRunner().invoke(app, ["sandbox", "reports", "--from",
                                      f"http://127.0.0.1:{port}", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"--from: cannot read the sandbox's books at http://127.0.0.1:{port}" in " ".join(
        result.output.split())
    bad = CliRunner().invoke(app, ["sandbox", "reports", "--dir", str(tmp_path), "--date", "soon"])
    assert bad.exit_code == 2 and "--date: 'soon' is not a date" in bad.output


def test_a_dispute_whose_notifications_were_lost_is_a_true_finding_not_a_false_break(
        db_engine: Engine, db_url: str, tmp_path: Path) -> None:
    from engine.providers.sandbox.faults import FaultProfile, Faults
    from engine.testing import NO_FAULTS

    service, sandbox, clock = make_service(db_engine)
    created = service.create_payment("merchant-1", "key-1", payment_request(amount=4_200))
    reference = str(service.get_payment("merchant-1", str(created.payment_id))
                    .provider_reference)
    sandbox.profile = FaultProfile("lossy", "every notification lost",
                                   Faults(lost_notification=1.0))
    sandbox.dispute("stripe", reference, None, "open")
    sandbox.profile = NO_FAULTS
    runner = CliRunner()
    with SandboxServer(sandbox) as server:
        written = runner.invoke(app, ["sandbox", "reports", "--from", server.url, "--dir",
                                      str(tmp_path / "reports")])
    assert written.exit_code == 0, written.output
    truth = json.loads((tmp_path / "reports" / "ground_truth.json").read_text())
    assert truth == [{"kind": "dispute_not_in_ledger", "provider": "stripe",
                      "provider_reference": reference, "payment_id": str(created.payment_id),
                      "possible": "true"}]
    human = runner.invoke(app, ["reconcile", "--dir", str(tmp_path / "reports"),
                                "--database-url", db_url])
    assert human.exit_code == 0, human.output
    said = " ".join(human.stdout.split())
    assert "0 discrepancies injected: every one found, no false breaks; 1 more true" in said
