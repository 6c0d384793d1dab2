"""`paysignal sandbox serve --latency-ms N`: every provider call takes exactly N ms, so a
benchmark can subtract the provider's own time from the API's latency."""

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from engine.providers.registry import new_webhook_credentials, provider_names
from engine.providers.sandbox.registry import build_sandbox, in_process_connectors
from engine.testing import NO_FAULTS, payment_method, payment_request
from paysignal.bootstrap import build_service
from tests.support.postgres import free_port


def test_a_fixed_latency_is_spent_on_every_provider_call(db_engine: Engine) -> None:
    slept: list[float] = []
    credentials = new_webhook_credentials()
    sandbox = build_sandbox(credentials, profile=NO_FAULTS, sleep=slept.append)
    sandbox.fixed_latency_s = 0.05
    service = build_service(db_engine, gateways=in_process_connectors(sandbox, credentials))
    for n, provider in enumerate(provider_names()):
        created = service.create_payment("m-1", f"k-{n}", payment_request(
            provider=provider, payment_method=payment_method(provider)))
        assert created.body["state"] == "captured"
    # one call each (authorize and capture at once), each exactly the fixed latency
    assert slept == [0.05] * len(provider_names())


def test_the_sandbox_command_says_its_latency(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("paysignal")), "sandbox", "serve", "--port",
         str(port), "--latency-ms", "80"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "80 ms per call" in banner and f":{port}" in banner
    finally:
        proc.terminate()
        proc.wait(30)
