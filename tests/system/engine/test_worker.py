"""The worker: each scheduled run executes once across workers, runs are recorded."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from engine.outbox.relay import pending_count
from engine.scheduling import Job, Worker
from engine.storage import db
from engine.storage.tables import job_runs
from engine.testing import payment_method, payment_request
from paysignal.testing import make_service
from tests.support.postgres import free_port, fresh_postgres_url


def test_a_slot_runs_once_and_is_recorded_with_its_outcome(db_engine: Engine) -> None:
    calls: list[int] = []

    def count() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    ok = Job("counting", 60, count)
    broken = Job("broken", 60, lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    a, b = Worker(db_engine, [ok, broken], name="a"), Worker(db_engine, [ok, broken], name="b")
    slot = a.slot_for(ok, datetime.now(UTC))
    assert a.run_slot(ok, slot) == "succeeded"
    assert b.run_slot(ok, slot) == "skipped"
    assert calls == [1]
    assert a.run_slot(broken, slot) == "failed"
    with db_engine.connect() as conn:
        rows = {r.job: r for r in conn.execute(select(job_runs))}
    assert rows["counting"].status == "succeeded" and rows["counting"].worker == "a"
    assert rows["broken"].status == "failed" and "ZeroDivisionError" in rows["broken"].error


def test_two_real_worker_processes_never_run_the_same_job_run_twice(
        postgres, tmp_path: Path, session_sandbox) -> None:
    url = fresh_postgres_url(postgres)
    engine = db.make_engine(url)
    service, _, _ = make_service(engine)
    for i in range(3):
        service.create_payment("m1", f"k{i}", payment_request(reference=f"o{i}"))
    assert pending_count(engine) == 9  # three events per automatic-capture payment
    paysignal = Path(sys.executable).with_name("paysignal")
    env = {**os.environ, "PAYSIGNAL_WORKER_INTERVAL_SCALE": "0.5", "PAYSIGNAL_LOG_LEVEL": "WARNING"}
    ports = [free_port(), free_port()]
    workers = [subprocess.Popen([str(paysignal), "serve", "worker", "--database-url", url,
                                 "--metrics-port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for port in ports]
    try:
        time.sleep(12)
        assert [w.poll() for w in workers] == [None, None]  # both alive and contending
        metrics = [httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=5).text for p in ports]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(30)
    with engine.connect() as conn:
        per_slot = conn.execute(select(job_runs.c.job, job_runs.c.slot, func.count())
                                .group_by(job_runs.c.job, job_runs.c.slot)).all()
        relay_runs = conn.execute(select(func.count()).select_from(job_runs).where(
            job_runs.c.job == "outbox_relay", job_runs.c.status == "succeeded")).scalar_one()
    assert per_slot and all(n == 1 for _job, _slot, n in per_slot)
    assert relay_runs >= 5
    assert pending_count(engine) == 0  # the relay job published everything
    assert any('paysignal_job_last_success_timestamp_seconds{job="outbox_relay"}' in m
               for m in metrics)


def test_a_worker_process_cannot_resolve_a_silent_provider_but_resolves_a_timeout(
        postgres, session_sandbox) -> None:
    """The documented sandbox value charges, times out and is never answered about again: the
    silence lives in the sandbox, so the worker (another process) meets it too."""
    from engine.domain.states import PaymentState
    from paysignal.bootstrap import build_service

    url = fresh_postgres_url(postgres)
    engine = db.make_engine(url)
    service = build_service(engine)  # the session's sandbox
    silent = service.create_payment("m1", "k-silent", payment_request(
        reference="o-silent", payment_method=payment_method("stripe", "unknown_forever"))
    ).body["id"]
    answered = service.create_payment("m1", "k-timeout", payment_request(
        reference="o-timeout", payment_method=payment_method("stripe", "timeout_after_charge"))
    ).body["id"]
    assert {service.get_payment("m1", p).state for p in (silent, answered)} == {
        PaymentState.UNKNOWN}
    paysignal = Path(sys.executable).with_name("paysignal")
    env = {**os.environ, "PAYSIGNAL_WORKER_INTERVAL_SCALE": "0.1", "PAYSIGNAL_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([str(paysignal), "serve", "worker", "--database-url", url,
                               "--metrics-port", str(free_port())], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while service.get_payment("m1", answered).state is PaymentState.UNKNOWN:
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(7)  # two more resolver runs (every 3 s)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert service.get_payment("m1", answered).state is PaymentState.CAPTURED
    assert service.get_payment("m1", silent).state is PaymentState.UNKNOWN
    engine.dispose()
