"""A real Alertmanager (Debian's prometheus-alertmanager) receives alerts posted by paysignal
and delivers them to a local webhook receiver started by the test."""

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from alerts.model import Alert
from alerts.pipeline import evaluate_alerts
from alerts.receivers import deliver_pending
from alerts.routing import parse_config
from tests.support.http import WebhookRecorder
from tests.support.postgres import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture(autouse=True)
def _alertmanager_installed() -> None:
    assert ALERTMANAGER, "needs Debian's prometheus-alertmanager (tests/run.sh installs it)"


def test_alerts_reach_a_webhook_through_a_real_alertmanager(db_engine: Engine,
                                                            tmp_path: Path) -> None:
    hook = WebhookRecorder()
    am_port, cluster_port = free_port(), free_port()
    (tmp_path / "am.yml").write_text(f"""
route:
  receiver: hook
  group_by: [alertname, provider]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{hook.port}/
""")
    am = subprocess.Popen([str(ALERTMANAGER), f"--config.file={tmp_path / 'am.yml'}",
                           f"--storage.path={tmp_path / 'data'}",
                           f"--web.listen-address=127.0.0.1:{am_port}",
                           f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{am_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        cfg = parse_config({"route": {"receiver": "am", "group_wait": "0s"},
                            "receivers": [{"name": "am", "alertmanager": {"url": base}}]},
                           "test.yaml")
        alert = Alert.of("UnknownOutcomesStale", "4 adyen payments unknown for 20 min",
                         provider="adyen")
        now = datetime.now(UTC)
        evaluate_alerts(db_engine, cfg, [alert], now)
        assert deliver_pending(db_engine, cfg, now) == {"sent": 1, "failed": 0}
        deadline = time.monotonic() + 30
        while not hook.bodies() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        am.terminate()
        am.wait(20)
        hook.close()
    assert hook.bodies(), "Alertmanager never called the webhook"
    delivered = hook.bodies()[0]["alerts"][0]
    assert delivered["labels"]["alertname"] == "UnknownOutcomesStale"
    assert delivered["labels"]["provider"] == "adyen"
    assert delivered["annotations"]["summary"] == "4 adyen payments unknown for 20 min"
    assert delivered["annotations"]["runbook_url"].endswith("/runbooks?alert=UnknownOutcomesStale")
