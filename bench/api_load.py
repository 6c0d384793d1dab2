"""The payment API over HTTP on PostgreSQL, against pgbench on the same server.

Starts the provider sandbox (`paysignal sandbox serve`, its own process) and `--replicas`
`paysignal serve api` processes pointed at it (each its own uvicorn, as replicas behind a load
balancer would run), then `--clients` concurrent clients send a mix for `--seconds`:
new payments (automatic capture), same-key retries of earlier requests, and manual payments
followed by a capture. A payment counts once it is committed (201/200), replays do not.

    python bench/api_load.py [--database-url URL] [--json] [--clients 16] [--replicas 2]
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench._common import base_parser, pgbench_tps, report, server  # noqa: E402
from engine.payments.merchants import create_merchant  # noqa: E402
from engine.providers.registry import PROVIDERS, new_webhook_credentials  # noqa: E402
from engine.storage import db  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402

PAYSIGNAL = Path(sys.executable).with_name("paysignal")


def start_sandbox(workdir: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """The provider sandbox as its own process (no faults: the calm profile declines a few)."""
    port = free_port()
    credentials = new_webhook_credentials()
    env_file = workdir / "sandbox.env"
    proc = subprocess.Popen(
        [str(PAYSIGNAL), "sandbox", "serve", "--port", str(port), "--profile", "calm",
         "--env-file", str(env_file)],
        env={**os.environ, **{PROVIDERS[n].webhook_variable: v for n, v in credentials.items()}},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not env_file.exists() or not _answers(f"{base}/_sandbox/books"):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.2)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line)
    return proc, base, env


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_replicas(url: str, count: int, sandbox_env: dict[str, str],
                   ) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    procs, bases = [], []
    for _ in range(count):
        port = free_port()
        procs.append(subprocess.Popen(
            [str(PAYSIGNAL), "serve", "api", "--port", str(port), "--metrics-port",
             str(free_port()), "--database-url", url],
            env={**os.environ, **sandbox_env, "PAYSIGNAL_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        bases.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 90
    for base in bases:
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready")
            time.sleep(0.2)
    return procs, bases


async def drive(bases: list[str], api_key: str, clients: int, seconds: float) -> dict[str, object]:
    latencies: list[float] = []
    counts = {"payments": 0, "replays": 0, "errors": 0}
    sent: list[tuple[str, dict[str, object]]] = []
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {api_key}"},
                                     timeout=30) as http:
            i = 0
            while time.monotonic() < deadline:
                i += 1
                base = bases[(n + i) % len(bases)]
                roll = rng.random()
                if roll < 0.15 and sent:
                    key, body = sent[rng.randrange(len(sent))]
                    path, expect_replay = "/v1/payments", True
                else:
                    key = f"c{n}-{i}"
                    manual = roll > 0.85
                    body = {"amount": rng.randint(100, 50_000), "currency": "USD",
                            "reference": key, "provider": "stripe",
                            "payment_method": "pm_card_visa",
                            "capture": "manual" if manual else "automatic"}
                    path, expect_replay = "/v1/payments", False
                started = time.perf_counter()
                r = await http.post(f"{base}{path}", json=body, headers={"Idempotency-Key": key})
                latencies.append(time.perf_counter() - started)
                if r.status_code >= 500 or r.status_code not in (200, 201, 202):
                    counts["errors"] += 1
                    continue
                if expect_replay:
                    counts["replays"] += 1
                    continue
                sent.append((key, body))
                if body["capture"] == "manual" and r.json()["state"] == "authorized":
                    started = time.perf_counter()
                    c = await http.post(f"{base}/v1/payments/{r.json()['id']}/capture",
                                        headers={"Idempotency-Key": f"{key}-capture"})
                    latencies.append(time.perf_counter() - started)
                    if c.status_code != 200:
                        counts["errors"] += 1
                        continue
                counts["payments"] += 1

    started = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.monotonic() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {"payments_per_s": counts["payments"] / elapsed, "replays": counts["replays"],
            "errors": counts["errors"], "requests": len(latencies),
            "p50_ms": quantiles[49] * 1000, "p95_ms": quantiles[94] * 1000,
            "p99_ms": quantiles[98] * 1000}


def duplicate_charges(sandbox_url: str) -> int:
    """Customers charged twice, from the sandbox's own books."""
    return int(httpx.get(f"{sandbox_url}/_sandbox/books", timeout=60).json()["duplicate_charges"])


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with server(args.database_url) as srv:
        tps = pgbench_tps(srv, clients=8, seconds=int(args.seconds))
        url = srv.database("paysignal_bench_api")
        engine = db.make_engine(url)
        db.upgrade(engine)
        api_key = create_merchant(engine, "bench").api_key
        engine.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            sandbox, sandbox_url, sandbox_env = start_sandbox(Path(tmp))
            procs, bases = start_replicas(url, args.replicas, sandbox_env)
            try:
                figures = asyncio.run(drive(bases, api_key, args.clients, args.seconds))
                figures["duplicate_charges"] = duplicate_charges(sandbox_url)
            finally:
                for p in [*procs, sandbox]:
                    p.terminate()
                    p.wait(30)
        srv.drop("paysignal_bench_api")
    figures.update(pgbench_tps=round(tps, 1), ratio=round(figures["payments_per_s"] / tps, 3),
                   clients=args.clients, replicas=args.replicas)
    for k in ("payments_per_s", "p50_ms", "p95_ms", "p99_ms"):
        figures[k] = round(figures[k], 1)
    report(figures, args.json, [
        f"API: {figures['payments_per_s']} payments/s over HTTP ({args.clients} clients, "
        f"{args.replicas} API processes), {figures['replays']} replays, "
        f"{figures['errors']} errors, {figures['duplicate_charges']} duplicate charges",
        f"latency p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, p99 {figures['p99_ms']} ms",
        f"pgbench TPC-B-like, 8 clients: {tps:.1f} tps",
        f"ratio: {figures['ratio']} (target >= 0.25)"])


if __name__ == "__main__":
    main()
