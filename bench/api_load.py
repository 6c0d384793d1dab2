"""The payment API over HTTP on PostgreSQL, against pgbench on the same server.

Starts the provider sandbox (`paysignal sandbox serve`, its own process, answering at once) and
`--replicas` `paysignal serve api` processes pointed at it (each its own uvicorn, as replicas
behind a load balancer would run); then wrk (compiled, Lua script bench/api_load.lua), one per
replica, keeps `--clients` connections busy for `--seconds`: new payments (automatic capture),
same-key retries of earlier requests (15 %), and manual payments (15 %) captured as soon as
they are authorized. A payment counts once it is captured (201/200), replays do not. Repeated
`--runs` times; CPU per payment of each process (API, PostgreSQL, sandbox) and wrk's share of
the machine come from /proc.

    python bench/api_load.py [--database-url URL] [--json] [--clients 32] [--replicas 2]
                             [--seconds 15] [--runs 3]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench._common import (  # noqa: E402
    Server,
    base_parser,
    pgbench_tps,
    postgres_cpu_s,
    process_cpu_s,
    report,
    server,
    spread,
    spread_text,
)
from engine.payments.merchants import create_merchant  # noqa: E402
from engine.providers.registry import PROVIDERS, new_webhook_credentials  # noqa: E402
from engine.storage import db  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402

PAYSIGNAL = Path(sys.executable).with_name("paysignal")
LUA = Path(__file__).with_name("api_load.lua")


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit("wrk is not installed: apt-get install wrk (the load generator must not be "
                 "a Python process sharing the cores it measures)")
    return found


def start_sandbox(workdir: Path, latency_ms: float = 0.0,
                  ) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """The provider sandbox as its own process (the calm profile declines a few cards; with
    `latency_ms`, every provider call takes exactly that long)."""
    port = free_port()
    credentials = new_webhook_credentials()
    env_file = workdir / "sandbox.env"
    latency = ["--latency-ms", str(latency_ms)] if latency_ms else []
    proc = subprocess.Popen(
        [str(PAYSIGNAL), "sandbox", "serve", "--port", str(port), "--profile", "calm",
         "--env-file", str(env_file), *latency],
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
                   ) -> tuple[list[subprocess.Popen[bytes]], list[str], list[str]]:
    """`count` API processes: (the processes, their base URLs, their metrics URLs)."""
    procs, bases, metrics = [], [], []
    for _ in range(count):
        port, metrics_port = free_port(), free_port()
        metrics.append(f"http://127.0.0.1:{metrics_port}/metrics")
        procs.append(subprocess.Popen(
            [str(PAYSIGNAL), "serve", "api", "--port", str(port), "--metrics-port",
             str(metrics_port), "--database-url", url],
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
    return procs, bases, metrics


@dataclass
class Load:
    """What the wrk processes measured together."""
    payments: int
    replays: int
    errors: int
    in_flight: int
    requests: int
    socket_errors: int
    seconds: float
    latencies_ms: list[tuple[float, float]]  # (latency, weight): each wrk's percentiles

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        total = sum(w for _, w in ordered)
        running = 0.0
        for value, weight in ordered:
            running += weight
            if running >= total * p / 100:
                return value
        return ordered[-1][0]


def run_wrk(bases: list[str], api_key: str, clients: int, seconds: float, *,
            mode: str = "mix", delay_ms: float = 0.0, seed: int = 1) -> Load:
    """One wrk per replica (one thread each, `clients` connections shared out), in parallel;
    each prints its counts and 1,000 latency percentiles, merged here by request count."""
    wrk = wrk_binary()
    per = max(1, clients // len(bases))
    env = {**os.environ, "PAYSIGNAL_BENCH_API_KEY": api_key, "PAYSIGNAL_BENCH_MODE": mode,
           "PAYSIGNAL_BENCH_DELAY_MS": str(delay_ms)}
    procs = []
    for n, base in enumerate(bases):
        procs.append(subprocess.Popen(
            [wrk, "-t1", f"-c{per}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
             "-s", str(LUA), base],
            env={**env, "PAYSIGNAL_BENCH_SEED": str(seed * 100 + n)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    totals: dict[str, float] = {}
    latencies: list[tuple[float, float]] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        line = next((x for x in out.splitlines() if x.startswith("PAYSIGNAL ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no figures:\n{out}")
        for other in out.splitlines():
            if other.startswith("first error: "):
                print(f"wrk: {other}", file=sys.stderr)
        figures = json.loads(line.removeprefix("PAYSIGNAL "))
        points = figures.pop("percentiles_ms")
        for key, value in figures.items():
            totals[key] = (max(totals.get(key, 0.0), value) if key == "duration_s"
                           else totals.get(key, 0.0) + value)
        latencies += [(v, figures["requests"] / len(points)) for v in points]
    return Load(int(totals["payments"]), int(totals["replays"]), int(totals["errors"]),
                int(totals["in_flight"]), int(totals["requests"]), int(totals["socket_errors"]),
                totals["duration_s"], latencies)


def measure(bases: list[str], api_key: str, clients: int, seconds: float, api_pids: list[int],
            sandbox_pid: int, seed: int) -> dict[str, float]:
    """One run: the rate, latency and each process's CPU per payment."""
    before = [process_cpu_s(p) for p in api_pids], process_cpu_s(sandbox_pid), postgres_cpu_s()
    children = os.times()
    load = run_wrk(bases, api_key, clients, seconds, seed=seed)
    spent = os.times()
    wrk_cpu = (spent.children_user - children.children_user
               + spent.children_system - children.children_system)
    api_cpu = sum(process_cpu_s(p) for p in api_pids) - sum(before[0])
    sandbox_cpu = process_cpu_s(sandbox_pid) - before[1]
    pg_cpu = postgres_cpu_s() - before[2]
    per = max(load.payments, 1)
    return {"payments_per_s": load.payments / load.seconds, "replays": load.replays,
            "errors": load.errors, "in_flight_rejected": load.in_flight,
            "socket_errors": load.socket_errors, "requests": load.requests,
            "p50_ms": load.percentile(50), "p95_ms": load.percentile(95),
            "p99_ms": load.percentile(99),
            "api_cpu_ms": api_cpu / per * 1000, "postgres_cpu_ms": pg_cpu / per * 1000,
            "sandbox_cpu_ms": sandbox_cpu / per * 1000,
            "generator_cpu_share": wrk_cpu / (load.seconds * (os.cpu_count() or 1))}


def merchant_database(srv: Server, name: str) -> tuple[str, str]:
    """A fresh, migrated database with one merchant: (its URL, the merchant's API key)."""
    url = srv.database(name)
    engine = db.make_engine(url)
    db.upgrade(engine)
    api_key = create_merchant(engine, "bench").api_key
    engine.dispose()
    return url, api_key


def duplicate_charges(sandbox_url: str) -> int:
    """Customers charged twice, from the sandbox's own books."""
    return int(httpx.get(f"{sandbox_url}/_sandbox/books", timeout=60).json()["duplicate_charges"])


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="connections, all replicas")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3, help="repeat and report the spread")
    args = parser.parse_args()
    wrk_binary()
    runs = []
    with server(args.database_url) as srv:
        tps = pgbench_tps(srv, clients=8, seconds=int(args.seconds))
        url, api_key = merchant_database(srv, "paysignal_bench_api")
        with tempfile.TemporaryDirectory() as tmp:
            sandbox, sandbox_url, sandbox_env = start_sandbox(Path(tmp))
            procs, bases, _ = start_replicas(url, args.replicas, sandbox_env)
            try:
                for n in range(args.runs):
                    run = measure(bases, api_key, args.clients, args.seconds,
                                  [p.pid for p in procs], sandbox.pid, seed=n + 1)
                    runs.append(run)
                    print(f"run {n + 1}: {run['payments_per_s']:.1f} payments/s, p50 "
                          f"{run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, CPU per payment "
                          f"API {run['api_cpu_ms']:.2f} ms, postgres {run['postgres_cpu_ms']:.2f}"
                          f" ms, sandbox {run['sandbox_cpu_ms']:.2f} ms, wrk "
                          f"{run['generator_cpu_share']:.1%} of the machine", file=sys.stderr)
                duplicates = duplicate_charges(sandbox_url)
            finally:
                for p in [*procs, sandbox]:
                    p.terminate()
                    p.wait(30)
        srv.drop("paysignal_bench_api")
    figures: dict[str, object] = {
        name: spread([r[name] for r in runs]) for name in (
            "payments_per_s", "p50_ms", "p95_ms", "p99_ms", "api_cpu_ms", "postgres_cpu_ms",
            "sandbox_cpu_ms", "generator_cpu_share")}
    figures["ratio"] = spread([r["payments_per_s"] / tps for r in runs])
    for name in ("errors", "socket_errors", "replays", "in_flight_rejected", "requests"):
        figures[name] = int(sum(r[name] for r in runs))
    figures.update(duplicate_charges=duplicates, pgbench_tps=round(tps, 1), runs=args.runs,
                   clients=args.clients, replicas=args.replicas, seconds=args.seconds)

    def m(name: str) -> str:
        return spread_text(figures, name)

    report(figures, args.json, [
        f"API: {m('payments_per_s')} payments/s over HTTP, median (min-max) of {args.runs} "
        f"runs; {args.clients} connections, {args.replicas} API processes",
        f"latency p50 {m('p50_ms')} ms, p95 {m('p95_ms')} ms, p99 {m('p99_ms')} ms",
        f"CPU per payment: API {m('api_cpu_ms')} ms, postgres {m('postgres_cpu_ms')} ms, "
        f"sandbox {m('sandbox_cpu_ms')} ms; wrk used {m('generator_cpu_share')} of the machine",
        f"{figures['replays']} replays, {figures['in_flight_rejected']} same-key retries "
        f"refused while in flight, {figures['errors']} errors, {figures['socket_errors']} socket "
        f"errors, {figures['duplicate_charges']} duplicate charges in the sandbox's books",
        f"pgbench TPC-B-like, 8 clients: {tps:.1f} tps",
        f"ratio: {m('ratio')} (target >= 0.2)"])


if __name__ == "__main__":
    main()
