"""`paysignal demo`, the README's first command: the day runs, then the API, the worker and the
dashboard are served together and stop together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.storage import db
from engine.storage.tables import alert_states, recon_breaks
from tests.support.postgres import free_port

PAYSIGNAL = str(Path(sys.executable).with_name("paysignal"))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PAYSIGNAL_")}


def test_demo_runs_the_day_and_exits_with_no_serve(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    for _ in range(2):  # a second run on the same database raises only its own breaks
        done = subprocess.run([PAYSIGNAL, "demo", "--fast", "--no-serve", "--database-url", url,
                               "--workdir", str(tmp_path / "demo"),
                               "--sandbox-port", str(free_port())], env=clean_env(),
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        text = " ".join(done.stdout.split())
        assert "duplicate charges 0" in text, text
        assert "over HTTP to the provider sandbox" in text, text
        # per provider, from the sandbox's own books: charges made and none twice
        rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
                for line in done.stdout.splitlines()
                if line.count("│") >= 6 and line.split("│")[1].strip() in
                ("stripe", "adyen", "paypal")}
        assert set(rows) == {"stripe", "adyen", "paypal"}, done.stdout
        assert all(int(r[1].replace(",", "")) > 0 and r[2] == "0" for r in rows.values()), rows
        assert "every one found, no false breaks" in text, text
    truth = json.loads((tmp_path / "demo" / "settlements" / "ground_truth.json").read_text())
    engine = db.make_engine(url)
    with engine.connect() as conn:
        kinds = {r[0] for r in conn.execute(select(recon_breaks.c.kind))}
        firing = {r[0] for r in conn.execute(select(alert_states.c.name)
                                             .where(alert_states.c.status == "firing"))}
        assert conn.execute(select(func.count()).select_from(recon_breaks)).scalar_one() \
            >= len(truth)
    engine.dispose()
    assert {t["kind"] for t in truth} <= kinds
    assert "DuplicateChargeFound" in firing  # an injected duplicate charge pages
    notifications = (tmp_path / "demo" / "alerts.log").read_text().splitlines()
    assert notifications and all(json.loads(line)["receiver"] == "demo-file"
                                 for line in notifications)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_demo_serves_api_worker_and_dashboard_until_interrupted(tmp_path: Path,
                                                                stop: signal.Signals) -> None:
    ports = {"api": free_port(), "dashboard": free_port(), "worker": free_port(),
             "api_metrics": free_port(), "sandbox": free_port()}
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    proc = subprocess.Popen(
        [PAYSIGNAL, "demo", "--fast", "--payments", "60", "--database-url", url, "--workdir",
         str(tmp_path / "demo"), "--api-port", str(ports["api"]), "--dashboard-port",
         str(ports["dashboard"]), "--worker-metrics-port", str(ports["worker"]),
         "--api-metrics-port", str(ports["api_metrics"]), "--sandbox-port",
         str(ports["sandbox"])],
        env=clean_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not any("paysignal demo is running" in line for line in lines):
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        for path in (f"http://127.0.0.1:{ports['api']}/healthz",
                     f"http://127.0.0.1:{ports['worker']}/metrics",
                     f"http://127.0.0.1:{ports['api_metrics']}/metrics",
                     f"http://127.0.0.1:{ports['dashboard']}/_stcore/health",
                     f"http://127.0.0.1:{ports['sandbox']}/_sandbox/books"):
            with urllib.request.urlopen(path, timeout=10) as response:
                assert response.status == 200, path
        proc.send_signal(stop)
        rest = proc.stdout.read()  # type: ignore[union-attr]
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, "".join(lines) + rest
    text = "".join(lines) + rest
    assert f"http://127.0.0.1:{ports['dashboard']}/" in text and "API key" in text
    for port in ports.values():  # every service stopped with it
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            raise AssertionError(f"port {port} still answers after the demo stopped")
        except OSError:
            pass


def test_demo_refuses_a_port_in_use_before_starting_anything(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [PAYSIGNAL, "demo", "--fast", "--payments", "20", "--database-url",
             f"sqlite:///{tmp_path / 'demo.db'}", "--workdir", str(tmp_path / "demo"),
             "--api-port", str(port)], env=clean_env(), cwd=tmp_path, capture_output=True,
            text=True, timeout=300)
    assert done.returncode == 2
    assert f"--api-port: port {port} is already in use" in " ".join(done.stderr.split())
