"""Concurrent retries of one key on the real PostgreSQL: exactly one caller proceeds."""

import json
import subprocess
import sys
import threading
import time
from collections import Counter

from engine.providers.simulated import SqlBook
from sqlalchemy import func, select

from engine.exceptions import IdempotencyKeyInProgressError
from engine.storage import db
from engine.storage.tables import payments, sim_provider_operations
from engine.testing import make_service, payment_request
from tests.support.postgres import fresh_postgres_url


def provider_charges(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(sim_provider_operations).where(
            sim_provider_operations.c.operation == "authorize")).scalar_one()


def test_fifty_threads_with_the_same_key_make_one_charge(postgres) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(fresh_postgres_url(postgres), pool_size=30)
    service, _, _ = make_service(engine, book=SqlBook(engine))
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
    assert outcomes["new"] == 1
    assert outcomes["new"] + outcomes["replayed"] + outcomes["in_progress"] == 50
    assert provider_charges(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)).scalar_one() == 1


def test_eight_processes_with_the_same_key_make_one_charge(postgres) -> None:  # type: ignore[no-untyped-def]
    url = fresh_postgres_url(postgres)
    start_at = time.time() + 4  # let every interpreter import before the race starts
    procs = [subprocess.Popen([sys.executable, "-m", "tests.support.race", url, "shared", str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outcomes = Counter()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outcomes[json.loads(out.strip().splitlines()[-1])["outcome"]] += 1
    assert outcomes["new"] == 1 and sum(outcomes.values()) == 8
    assert provider_charges(db.make_engine(url)) == 1

