"""Production is wired like the simulation: `paysignal serve api` processes retry a failing
provider within a retry budget, each with jitter of its own, and the budget's refusals reach
on-call through `paysignal serve worker`'s alert pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import select

from engine.payments.merchants import create_merchant
from engine.storage import db
from engine.storage.tables import provider_attempts
from engine.testing import payment_method
from tests.support.http import WebhookRecorder, wait_for_http
from tests.support.postgres import ThrowawayPostgres, free_port, fresh_postgres_url

PAYSIGNAL = str(Path(sys.executable).with_name("paysignal"))
ROUTES = """
route:
  receiver: hook
  group_by: [alertname, provider]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook:
      url: http://127.0.0.1:{port}/paysignal
"""


def alerts_named(hook: WebhookRecorder, name: str) -> list[dict[str, object]]:
    return [alert for body in hook.bodies("paysignal") for alert in body.get("alerts", [])
            if alert.get("labels", {}).get("alertname") == name]


def waits_between_attempts(engine: object, payment_id: str) -> list[float]:
    """Seconds from one attempt's answer to the next attempt's (the backoff, give or take
    the provider's few milliseconds)."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(provider_attempts.c.at, provider_attempts.c.duration_ms)
                            .where(provider_attempts.c.payment_id == payment_id)
                            .order_by(provider_attempts.c.attempt)).all()
    return [(later.at - earlier.at).total_seconds() - later.duration_ms / 1000
            for earlier, later in zip(rows, rows[1:], strict=False)]


def test_a_failing_provider_spends_the_retry_budget_and_the_worker_raises_it(
        postgres: ThrowawayPostgres, tmp_path: Path, session_sandbox: object) -> None:
    url = fresh_postgres_url(postgres)
    engine = db.make_engine(url)
    api_key = create_merchant(engine, "wiring").api_key
    hook = WebhookRecorder()
    (tmp_path / "routes.yml").write_text(ROUTES.format(port=hook.port))
    # backoff of 1-2 s, so two processes' jitter differs by far more than the machine's noise
    env = {**os.environ, "PAYSIGNAL_DATABASE_URL": url, "PAYSIGNAL_LOG_LEVEL": "WARNING",
           "PAYSIGNAL_RETRY_INITIAL_BACKOFF_S": "1", "PAYSIGNAL_RETRY_MAX_BACKOFF_S": "2"}
    ports = [(free_port(), free_port()) for _ in range(2)]
    apis = [subprocess.Popen([PAYSIGNAL, "serve", "api", "--port", str(port),
                              "--metrics-port", str(metrics)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for port, metrics in ports]
    worker_metrics = free_port()
    worker = None
    try:
        for (port, _), api in zip(ports, apis, strict=True):
            wait_for_http(f"http://127.0.0.1:{port}/readyz", api)

        def pay(port: int, key: str) -> str:
            # Stripe's 500 with Stripe-Should-Retry: true: surely not charged, so retried
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/payments", timeout=60,
                headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": key},
                json={"amount": 1000, "currency": "USD", "reference": key, "provider": "stripe",
                      "payment_method": payment_method("stripe", "server_error")})
            assert response.json()["state"] == "failed", response.text
            return str(response.json()["id"])

        with ThreadPoolExecutor(8) as pool:
            first, second = pool.map(pay, [p for p, _ in ports], ["jitter-a", "jitter-b"])
            waits = [waits_between_attempts(engine, first), waits_between_attempts(engine, second)]
            assert all(len(w) == 3 for w in waits), waits  # 4 attempts each
            # the same seed in every process would give the same waits in both
            assert any(abs(a - b) > 0.05 for a, b in zip(*waits, strict=True)), waits
            # more failing payments than the budget's floor of 10 retries a minute allows
            list(pool.map(pay, [ports[0][0]] * 6, [f"flood-{i}" for i in range(6)]))

        worker = subprocess.Popen(
            [PAYSIGNAL, "serve", "worker", "--metrics-port", str(worker_metrics)],
            env={**env, "PAYSIGNAL_WORKER_INTERVAL_SCALE": "0.05",
                 "PAYSIGNAL_ALERT_ROUTES": str(tmp_path / "routes.yml")},
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while not alerts_named(hook, "RetryBudgetExhausted"):
            assert worker.poll() is None, "the worker stopped"
            assert time.monotonic() < deadline, "no RetryBudgetExhausted through the worker"
            time.sleep(0.5)
        alert = alerts_named(hook, "RetryBudgetExhausted")[0]
        assert alert["labels"]["provider"] == "stripe"  # type: ignore[index]
        assert "the retry budget refused" in str(alert)
    finally:
        for proc in [*apis, *([worker] if worker else [])]:
            proc.terminate()
        for proc in [*apis, *([worker] if worker else [])]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        hook.close()
        engine.dispose()
