"""Concurrent retries of one key on the real PostgreSQL: exactly one caller proceeds."""

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter

from sqlalchemy import func, select

from engine.exceptions import IdempotencyKeyInProgressError
from engine.payments.service import PaymentService
from engine.providers.registry import connectors_from_environment
from engine.storage import db
from engine.storage.tables import payments
from engine.testing import payment_request
from paysignal.bootstrap import build_service
from tests.support.postgres import fresh_postgres_url
from tests.support.sandbox import loopback_sandbox


def test_fifty_threads_with_the_same_key_make_one_charge(postgres) -> None:
    """Over real loopback HTTP to the sandbox: one charge in its books."""
    engine = db.make_engine(fresh_postgres_url(postgres), pool_size=30)
    with loopback_sandbox() as (server, env):
        service = build_service(engine, gateways=connectors_from_environment(env=env))
        outcomes = race_fifty(service)
        charges = server.sandbox.books.charges()
    assert outcomes["new"] == 1
    assert outcomes["new"] + outcomes["replayed"] + outcomes["in_progress"] == 50
    assert len(charges) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)).scalar_one() == 1


def race_fifty(service: PaymentService) -> Counter[str]:
    barrier = threading.Barrier(50)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        barrier.wait()
        try:
            response = service.create_payment("m1", "same-key", payment_request(provider="paypal"))
            outcome = "replayed" if response.replayed else "new"
        except IdempotencyKeyInProgressError:
            outcome = "in_progress"
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=client) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


def test_eight_processes_with_the_same_key_make_one_charge(postgres) -> None:
    url = fresh_postgres_url(postgres)
    with loopback_sandbox() as (server, env):
        start_at = time.time() + 4  # let every interpreter import before the race starts
        procs = [subprocess.Popen([sys.executable, "-m", "tests.support.race", url, "shared",
                                   str(start_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env={**os.environ, **env})
                 for _ in range(8)]
        outcomes: Counter[str] = Counter()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outcomes[json.loads(out.strip().splitlines()[-1])["outcome"]] += 1
        charges = server.sandbox.books.charges()
    assert outcomes["new"] == 1 and sum(outcomes.values()) == 8
    assert len(charges) == 1

