"""A real Prometheus (Debian's package) scrapes a real `paysignal serve api`; PromQL sees the
counters the traffic produced."""

import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from engine.payments.merchants import create_merchant
from engine.providers.sandbox.faults import PROFILES
from engine.storage import db
from tests.support.http import wait_for_http
from tests.support.postgres import free_port
from tests.support.sandbox import loopback_sandbox


@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    assert shutil.which("prometheus"), "needs Debian's prometheus package (tests/run.sh installs it)"


def start_api(db_url: str, port: int, metrics_port: int,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    paysignal = Path(sys.executable).with_name("paysignal")
    return subprocess.Popen([str(paysignal), "serve", "api", "--port", str(port),
                             "--metrics-port", str(metrics_port), "--database-url", db_url],
                            env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_prometheus(tmp_path: Path, target_port: int, port: int) -> subprocess.Popen[bytes]:
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: paysignal-api
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
""")
    return subprocess.Popen(["prometheus", f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def promql(prom: str, query: str) -> dict[str, float]:
    data = httpx.get(f"{prom}/api/v1/query", params={"query": query}, timeout=5).json()
    return {r["metric"].get("outcome", ""): float(r["value"][1]) for r in data["data"]["result"]}


def test_prometheus_scrapes_the_api_and_promql_returns_the_counters(
        db_url: str, tmp_path: Path, session_sandbox) -> None:
    engine = db.make_engine(db_url)
    api_key = create_merchant(engine, "scraped").api_key
    api_port, prom_port, metrics_port = free_port(), free_port(), free_port()
    api = start_api(db_url, api_port, metrics_port)
    prometheus = start_prometheus(tmp_path, metrics_port, prom_port)
    try:
        base, prom = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prom_port}"
        wait_for_http(f"{base}/readyz")
        # metrics only on their own loopback listener, never on the public port
        assert httpx.get(f"{base}/metrics").status_code == 404
        assert "paysignal_http_requests_total" in httpx.get(
            f"http://127.0.0.1:{metrics_port}/metrics").text
        headers = {"Authorization": f"Bearer {api_key}"}
        for i in range(5):
            body = {"amount": 1000 + i, "currency": "EUR", "reference": f"o{i}",
                    "provider": "stripe", "payment_method": "pm_card_visa"}
            for _ in range(2 if i < 3 else 1):  # three of them retried once
                r = httpx.post(f"{base}/v1/payments", json=body,
                               headers={**headers, "Idempotency-Key": f"k{i}"}, timeout=10)
                assert r.status_code == 201, r.text
        wait_for_http(f"{prom}/-/ready")
        query = 'sum by (outcome) (paysignal_idempotency_requests_total{job="paysignal-api"})'
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if promql(prom, query) == {"new": 5.0, "replayed": 3.0}:
                break
            time.sleep(0.5)
        assert promql(prom, query) == {"new": 5.0, "replayed": 3.0}
        created = promql(prom, 'sum(paysignal_http_requests_total{route="/v1/payments",'
                               'status="201"})')
        assert created == {"": 8.0}
    finally:
        for proc in (api, prometheus):
            proc.terminate()
            proc.wait(20)


def test_the_database_and_prometheus_slo_backends_agree_on_the_same_traffic(
        db_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from engine.storage.tables import provider_attempts
    from slo.backends import make_backend
    from slo.spec import load_definitions

    engine = db.make_engine(db_url)
    api_key = create_merchant(engine, "agreeing").api_key
    api_port, prom_port, metrics_port = free_port(), free_port(), free_port()
    faulty = loopback_sandbox(PROFILES["default"], seed=3)
    _sandbox, sandbox_env = faulty.__enter__()
    api = start_api(db_url, api_port, metrics_port, sandbox_env)
    prometheus = start_prometheus(tmp_path, metrics_port, prom_port)
    try:
        base, prom = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prom_port}"
        wait_for_http(f"{base}/readyz")
        wait_for_http(f"{prom}/-/ready")
        for i in range(40):
            # every fifth card always meets a provider 5xx: technical failures are certain
            httpx.post(f"{base}/v1/payments", timeout=30, json={
                "amount": 500 + i, "currency": "EUR", "reference": f"a{i}", "provider": "stripe",
                "payment_method": "pm_card_sandbox_serverError" if i % 5 == 0 else "pm_card_visa"},
                headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": f"a{i}"})
        with engine.connect() as conn:
            attempts = conn.execute(select(func.count()).select_from(provider_attempts)
                                    ).scalar_one()
        query = "sum(paysignal_provider_call_duration_seconds_count)"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and promql(prom, query).get("") != attempts:
            time.sleep(0.5)
        assert promql(prom, query).get("") == attempts
        at = datetime.now(UTC)
        slos = [s for s in load_definitions()
                if s.total.base == "paysignal_provider_call_duration_seconds"]
        database = make_backend("database", engine=engine)
        database.prepare(slos, at)
        prometheus_backend = make_backend("prometheus", prometheus_url=prom)
        compared = 0
        for slo in slos:
            for window in (timedelta(hours=1), timedelta(days=30)):
                ours = database.counts(slo, at - window, at)
                theirs = prometheus_backend.counts(slo, at - window, at)
                assert ours == theirs, (slo.name, window, ours, theirs)
                compared += ours.total
        assert compared > 0
        assert any(database.counts(s, at - timedelta(hours=1), at).bad for s in slos)
    finally:
        for proc in (api, prometheus):
            proc.terminate()
            proc.wait(20)
        faulty.__exit__(None, None, None)
