"""A real process is killed with SIGKILL at each recovery point; a restart finishes the payment
with exactly one provider charge and a balanced ledger. The provider is PayPal in the sandbox
over loopback: the sandbox outlives the killed process, and its books count what was charged."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.domain.recovery import AUTOMATIC_CAPTURE_PATH
from engine.providers.sandbox import SandboxServer
from engine.read_models.ledger import total_imbalance_minor
from engine.storage import db
from engine.storage.tables import idempotency_keys, outbox, payments
from tests.support.sandbox import loopback_sandbox

POINTS = list(AUTOMATIC_CAPTURE_PATH)
LOCK_TIMEOUT_S = 1.0


SANDBOX_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def sandbox():
    with loopback_sandbox() as (server, env):
        SANDBOX_ENV.clear()
        SANDBOX_ENV.update(env)
        yield server


def worker(db_url: str, *extra: str, lock_timeout: float = LOCK_TIMEOUT_S) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "paysignal.simulation.crash_worker", "--database-url", db_url,
         "--key", "order-42", "--lock-timeout", str(lock_timeout), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **SANDBOX_ENV})


def kill_at(db_url: str, point: str, *extra: str) -> None:
    proc = worker(db_url, "--pause-at", point, *extra)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.strip() == "PAUSED":
            break
        assert time.monotonic() < deadline
    else:
        pytest.fail(f"worker never reached {point}: {proc.stderr.read() if proc.stderr else ''}")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def finish(db_url: str, *extra: str, lock_timeout: float = LOCK_TIMEOUT_S) -> dict:
    proc = worker(db_url, *extra, lock_timeout=lock_timeout)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def charges(sandbox: SandboxServer) -> int:
    return len(sandbox.sandbox.books.charges())


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_any_recovery_point_the_retry_finishes_with_one_charge(
        db_url: str, point: str, sandbox: SandboxServer) -> None:
    kill_at(db_url, point)
    time.sleep(LOCK_TIMEOUT_S + 0.2)  # the dead process's lock expires
    result = finish(db_url)
    assert result["body"]["state"] == "captured"
    assert result["replayed"] is (point == "finished")
    engine = db.make_engine(db_url)
    assert charges(sandbox) == 1
    assert total_imbalance_minor(engine) == 0
    with engine.connect() as conn:
        key = conn.execute(select(idempotency_keys)).one()
        events = conn.execute(select(outbox.c.name).order_by(outbox.c.id)).scalars().all()
    assert key.recovery_point == "finished" and key.locked_at is None
    # automatic capture is one provider call: two durable phases
    assert events == ["PaymentCreated", "AuthorizationRequested", "PaymentCaptured"]


def test_the_worker_sweep_recovers_a_request_whose_client_never_came_back(
        db_url: str, sandbox: SandboxServer) -> None:
    kill_at(db_url, "authorize_provider_returned")
    time.sleep(LOCK_TIMEOUT_S + 0.2)
    assert finish(db_url, "--recover") == {"recovered": 1}
    engine = db.make_engine(db_url)
    assert charges(sandbox) == 1 and total_imbalance_minor(engine) == 0
    result = finish(db_url)  # the client finally retries: it gets the stored response
    assert result["replayed"] and result["body"]["state"] == "captured"


def test_a_live_lock_is_not_taken_over(db_url: str, sandbox: SandboxServer) -> None:
    proc = worker(db_url, "--pause-at", "authorize_provider_returned", lock_timeout=300)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "PAUSED":
            break
    try:
        assert finish(db_url, "--recover", lock_timeout=300) == {"recovered": 0}
        assert charges(sandbox) == 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)


def happened(sandbox: SandboxServer, operation: str) -> int:
    """How many times the provider really did `operation` (its answer lost or not)."""
    return sum(e.operation == operation and e.status == "succeeded"
               for e in sandbox.sandbox.books.entries())


@pytest.mark.parametrize("settled_by", ["resolver", "webhook"])
def test_an_unknown_automatic_capture_payment_is_settled_captured_by_its_one_call(
        db_url: str, tmp_path: Path, settled_by: str, sandbox: SandboxServer) -> None:
    """The provider authorized and captured in the call whose answer was lost: another process
    (the worker's resolver, or the webhook) settles the payment captured, with no second call."""
    notes = tmp_path / "notifications.jsonl"
    first = finish(db_url, "--behaviour", "timeout_after_charge")
    assert first["status"] == 202 and first["body"]["state"] == "unknown"
    notes.write_text("".join(json.dumps({
        "provider": w.provider, "headers": w.headers(time.time()), "body": w.body.decode()}) + "\n"
        for w in sandbox.sandbox.due_webhooks(float("inf"))))
    settle = ["--resolve"] if settled_by == "resolver" else ["--webhook", str(notes)]
    finish(db_url, *settle)
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        state = conn.execute(select(payments.c.state)).scalar_one()
    assert state == "captured"
    assert happened(sandbox, "authorize") == 1 and happened(sandbox, "capture") == 0
    assert sandbox.sandbox.books.charges()[0].captured
    assert total_imbalance_minor(engine) == 0
    assert finish(db_url, "--recover") == {"recovered": 0}



@pytest.mark.parametrize("point", ["authorize_requested", "authorize_provider_returned",
                                   "finished"])
def test_killed_while_the_provider_asks_the_customer_to_act_nothing_is_lost(
        db_url: str, tmp_path: Path, point: str, sandbox: SandboxServer) -> None:
    """3-D Secure: a process killed before, at or after the answer that the customer must act;
    a retry finds (or replays) the payment waiting for its customer, the customer
    authenticates, and another process's notice captures it: one charge, a balanced ledger."""
    three_ds = ["--provider", "stripe", "--payment-method", "pm_card_authenticationRequired"]
    kill_at(db_url, point, *three_ds)
    time.sleep(LOCK_TIMEOUT_S + 0.2)  # the dead process's lock expires
    waiting = finish(db_url, *three_ds)
    assert waiting["status"] == 202 and waiting["body"]["state"] == "requires_customer_action"
    assert waiting["body"]["customer_action"]["type"] == "use_stripe_sdk"
    assert charges(sandbox) == 0
    assert sandbox.sandbox.complete_action("stripe", waiting["body"]["provider_reference"])
    notes = tmp_path / "notifications.jsonl"
    notes.write_text("".join(json.dumps({
        "provider": w.provider, "headers": w.headers(time.time()), "body": w.body.decode()}) + "\n"
        for w in sandbox.sandbox.due_webhooks(float("inf"))))
    assert "settled" in finish(db_url, "--webhook", str(notes))["results"]
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(payments.c.state)).scalar_one() == "captured"
    assert charges(sandbox) == 1 and total_imbalance_minor(engine) == 0
