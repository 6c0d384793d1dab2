"""A real Prometheus (Debian's package) scrapes a real `paysignal serve api`; PromQL sees the
counters the traffic produced."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from engine import db
from engine.merchants import create_merchant
from engine.testing.postgres import free_port



@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    assert shutil.which("prometheus"), "needs Debian's prometheus package (tests/run.sh installs it)"


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready")


def start_api(db_url: str, port: int) -> subprocess.Popen[bytes]:
    paysignal = Path(sys.executable).with_name("paysignal")
    return subprocess.Popen([str(paysignal), "serve", "api", "--port", str(port),
                             "--database-url", db_url],
                            env={**os.environ, "PAYSIGNAL_PROVIDER_PROFILE": "calm"},
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


def test_prometheus_scrapes_the_api_and_promql_returns_the_counters(db_url: str,
                                                                      tmp_path: Path) -> None:
    engine = db.make_engine(db_url)
    api_key = create_merchant(engine, "scraped").api_key
    api_port, prom_port = free_port(), free_port()
    api = start_api(db_url, api_port)
    prometheus = start_prometheus(tmp_path, api_port, prom_port)
    try:
        base, prom = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prom_port}"
        wait_for(f"{base}/readyz")
        headers = {"Authorization": f"Bearer {api_key}"}
        for i in range(5):
            body = {"amount": 1000 + i, "currency": "EUR", "reference": f"o{i}",
                    "payment_method": "tok_approve"}
            for _ in range(2 if i < 3 else 1):  # three of them retried once
                r = httpx.post(f"{base}/v1/payments", json=body,
                               headers={**headers, "Idempotency-Key": f"k{i}"}, timeout=10)
                assert r.status_code == 201, r.text
        wait_for(f"{prom}/-/ready")
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
