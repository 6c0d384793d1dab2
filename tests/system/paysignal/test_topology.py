"""compose.yaml's topology without Docker: PostgreSQL, `paysignal serve api`, `paysignal serve
worker`, Prometheus and Alertmanager as real local processes. A adyen incident (every
authorization meets a 5xx) driven through the API pages a local webhook twice over: through
Prometheus → Alertmanager with the rules `paysignal slo rules` exports, and through paysignal's
own router in the worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from engine.payments.merchants import create_merchant
from engine.storage import db
from engine.testing import payment_method
from tests.support.http import WebhookRecorder, wait_for_http
from tests.support.postgres import ThrowawayPostgres, free_port, fresh_postgres_url

PAYSIGNAL = str(Path(sys.executable).with_name("paysignal"))
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
ROUTES = """
route:
  receiver: hook
  group_by: [alertname, slo, provider]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook:
      url: http://127.0.0.1:{port}/{path}
"""


def pages(hook: WebhookRecorder, path: str) -> set[str]:
    """The SLOs a receiver was paged for."""
    found = set()
    for body in hook.bodies(path):
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            if labels.get("alertname") == "SLOBurnRatePage" and \
                    alert.get("status", "firing") == "firing":
                found.add(labels.get("slo", ""))
    return found


def test_a_provider_incident_pages_through_alertmanager_and_through_paysignal(
        postgres: ThrowawayPostgres, tmp_path: Path, session_sandbox: object) -> None:
    assert shutil.which("prometheus") and ALERTMANAGER, "tests/run.sh installs them"
    url = fresh_postgres_url(postgres)
    engine = db.make_engine(url)
    api_key = create_merchant(engine, "topology").api_key
    engine.dispose()

    hook = WebhookRecorder()
    api_port, worker_port, prom_port, am_port, am_cluster, api_metrics = (
        free_port() for _ in range(6))
    (tmp_path / "paysignal-routes.yml").write_text(ROUTES.format(port=hook.port,
                                                                 path="paysignal"))
    (tmp_path / "am-routes.yml").write_text(ROUTES.format(port=hook.port,
                                                          path="alertmanager"))
    env = {**os.environ, "PAYSIGNAL_DATABASE_URL": url}
    for args in (["alerts", "alertmanager-config", "--config", str(tmp_path / "am-routes.yml"),
                  "--out", str(tmp_path / "alertmanager.yml")],
                 ["slo", "rules", "--out", str(tmp_path / "rules.yml")]):
        subprocess.run([PAYSIGNAL, *args], env=env, check=True, capture_output=True)
    # the exported rules as they are, evaluated every 2 s instead of every minute
    rules = (tmp_path / "rules.yml").read_text()
    (tmp_path / "rules.yml").write_text(rules.replace("interval: 1m", "interval: 2s"))
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 2s
rule_files: [{tmp_path / 'rules.yml'}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
scrape_configs:
  - job_name: paysignal-api
    static_configs: [{{targets: ["127.0.0.1:{api_metrics}"]}}]
  - job_name: paysignal-worker
    static_configs: [{{targets: ["127.0.0.1:{worker_port}"]}}]
""")
    procs = [
        subprocess.Popen([PAYSIGNAL, "serve", "api", "--port", str(api_port),
                          "--metrics-port", str(api_metrics)],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([PAYSIGNAL, "serve", "worker", "--metrics-port", str(worker_port)],
                         env={**env, "PAYSIGNAL_WORKER_INTERVAL_SCALE": "0.05",
                              "PAYSIGNAL_ALERT_ROUTES": str(tmp_path / "paysignal-routes.yml")},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                          f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{prom_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([str(ALERTMANAGER), f"--config.file={tmp_path / 'alertmanager.yml'}",
                          f"--storage.path={tmp_path / 'am'}",
                          f"--web.listen-address=127.0.0.1:{am_port}",
                          f"--cluster.listen-address=127.0.0.1:{am_cluster}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    api, worker, prometheus, alertmanager = procs
    try:
        wait_for_http(f"http://127.0.0.1:{api_port}/readyz", api)
        wait_for_http(f"http://127.0.0.1:{worker_port}/metrics", worker)
        wait_for_http(f"http://127.0.0.1:{prom_port}/-/ready", prometheus)
        wait_for_http(f"http://127.0.0.1:{am_port}/-/ready", alertmanager)

        # Prometheus has scraped the API's (zero) provider-call series before the incident:
        # increase() counts from a series' first sample, as it does in production
        deadline = time.monotonic() + 30
        while not httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": (
                'paysignal_provider_call_duration_seconds_count{job="paysignal-api",'
                'provider="adyen",operation="authorize"}')}).json()["data"]["result"]:
            assert time.monotonic() < deadline, "Prometheus never scraped the API"
            time.sleep(0.5)

        def pay(i: int) -> int:
            # the incident: adyen answers every authorization with a 5xx
            return httpx.post(
                f"http://127.0.0.1:{api_port}/v1/payments", timeout=60,
                headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": f"t{i}"},
                json={"amount": 1000 + i, "currency": "EUR", "reference": f"t{i}",
                      "provider": "adyen",
                      "payment_method": payment_method("adyen", "server_error")}).status_code

        with ThreadPoolExecutor(12) as pool:  # enough calls for the rules' minimum of events
            statuses = list(pool.map(pay, range(160)))
        # Adyen's 5xx may have acted: unknown outcomes (202), resolved by the worker later
        assert set(statuses) <= {201, 202, 502, 503}, statuses
        slo = "authorization-technical-success-adyen"
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if slo in pages(hook, "alertmanager") and slo in pages(hook, "paysignal"):
                break
            time.sleep(1)
        assert slo in pages(hook, "alertmanager"), (
            "no page through Prometheus → Alertmanager: Prometheus alerts "
            f"{httpx.get(f'http://127.0.0.1:{prom_port}/api/v1/alerts').text[:1500]}; "
            f"Alertmanager {httpx.get(f'http://127.0.0.1:{am_port}/api/v2/alerts').text[:800]}; "
            + httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": (
                'sum by (outcome) (increase(paysignal_provider_call_duration_seconds_count'
                '{provider="adyen", operation="authorize"}[1h]))')}).text[:600])
        assert slo in pages(hook, "paysignal"), "no page through paysignal's router"
        # nothing pages for the providers that stayed healthy
        assert not {s for s in pages(hook, "alertmanager") | pages(hook, "paysignal")
                    if "stripe" in s or "paypal" in s}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        hook.close()
