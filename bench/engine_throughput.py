"""Engine core throughput on PostgreSQL (no HTTP) against pgbench on the same server.

Each counted payment is create + authorize-and-capture (one provider call, automatic capture),
committed: two transactions with the idempotency record, audit rows, ledger entries and outbox
events. Workers are processes, as the API runs them in production; the providers are the real
connectors on the provider sandbox mounted in process (no faults, no simulated latency), so the
figure is the engine's own cost.

    python bench/engine_throughput.py [--database-url URL] [--json] [--workers 8] [--seconds 15]
                                      [--runs 3]
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from multiprocessing.synchronize import Event
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    base_parser,
    pgbench_tps,
    postgres_cpu_s,
    report,
    server,
    spread,
)


def _worker(url: str, worker: int, seconds: float, start_at: float,
            results: mp.Queue[tuple[int, int, float]], measured: Event) -> None:
    from engine.api.app import freeze_start_up_objects
    from engine.providers.registry import new_webhook_credentials
    from engine.providers.sandbox.registry import build_sandbox, in_process_connectors, payment_method
    from engine.storage import db
    from engine.testing import NO_FAULTS
    from paysignal.bootstrap import build_service

    engine = db.make_engine(url, pool_size=2)
    credentials = new_webhook_credentials()
    sandbox = build_sandbox(credentials, profile=NO_FAULTS, sleep=None)
    service = build_service(engine, gateways=in_process_connectors(sandbox, credentials))
    providers = ("stripe", "adyen", "paypal")
    methods = {p: payment_method(p) for p in providers}
    freeze_start_up_objects()  # as `serve api` does
    time.sleep(max(0.0, start_at - time.time()))
    cpu_start = time.process_time()
    done = failed = 0
    deadline = time.time() + seconds
    i = 0
    while time.time() < deadline:
        i += 1
        response = service.create_payment(f"merchant-{worker % 3}", f"w{worker}-{i}", {
            "amount": 1000 + i, "currency": "USD", "reference": f"w{worker}-{i}",
            "payment_method": methods[providers[i % 3]], "provider": providers[i % 3]})
        if response.body["state"] == "captured":
            done += 1
        else:
            failed += 1
    results.put((done, failed, time.process_time() - cpu_start))
    measured.wait(60)  # keep the server backends alive until their CPU time has been read
    engine.dispose()


def engine_payments_per_s(url: str, workers: int, seconds: float,
                          ) -> tuple[float, int, int, float, float]:
    from engine.storage import db

    db.upgrade(db.make_engine(url))
    ctx = mp.get_context("spawn")
    results: mp.Queue[tuple[int, int, float]] = ctx.Queue()
    measured = ctx.Event()
    start_at = time.time() + 3.0
    procs = [ctx.Process(target=_worker, args=(url, w, seconds, start_at, results, measured))
             for w in range(workers)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    pg_cpu_start = postgres_cpu_s()
    outcomes = [results.get(timeout=seconds + 120) for _ in procs]
    pg_cpu = postgres_cpu_s() - pg_cpu_start
    measured.set()
    for p in procs:
        p.join()
    done = sum(o[0] for o in outcomes)
    failed = sum(o[1] for o in outcomes)
    python_cpu = sum(o[2] for o in outcomes)
    per = max(done, 1)
    return done / seconds, done, failed, python_cpu / per * 1000, pg_cpu / per * 1000


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3, help="repeat and report the spread")
    args = parser.parse_args()
    runs = []
    with server(args.database_url) as srv:
        tps = pgbench_tps(srv, clients=args.workers, seconds=int(args.seconds))
        for n in range(args.runs):
            url = srv.database("paysignal_bench_engine")
            try:
                rate, done, failed, py_ms, pg_ms = engine_payments_per_s(url, args.workers,
                                                                         args.seconds)
            finally:
                srv.drop("paysignal_bench_engine")
            runs.append({"payments_per_s": rate, "payments": done, "not_captured": failed,
                         "engine_cpu_ms": py_ms, "postgres_cpu_ms": pg_ms})
            print(f"run {n + 1}: {rate:.1f} payments/s, CPU per payment {py_ms:.2f} ms engine, "
                  f"{pg_ms:.2f} ms postgres", file=sys.stderr)
    rates = spread([r["payments_per_s"] for r in runs])
    ratio = spread([r["payments_per_s"] / tps for r in runs])
    engine_ms = spread([r["engine_cpu_ms"] for r in runs])
    postgres_ms = spread([r["postgres_cpu_ms"] for r in runs])
    figures = {"payments_per_s": rates["median"], "pgbench_tps": round(tps, 1),
               "ratio": ratio["median"], "workers": args.workers, "seconds": args.seconds,
               "runs": args.runs, "payments_per_s_spread": rates, "ratio_spread": ratio,
               "engine_cpu_ms_per_payment": engine_ms, "postgres_cpu_ms_per_payment": postgres_ms,
               "not_captured": sum(int(r["not_captured"]) for r in runs)}
    report(figures, args.json, [
        f"engine: {rates['median']:.1f} payments/s median of {args.runs} runs "
        f"({rates['min']:.1f}-{rates['max']:.1f}; create + authorize-and-capture, "
        f"{args.workers} workers)",
        f"CPU per payment: engine processes {engine_ms['median']:.2f} ms "
        f"({engine_ms['min']:.2f}-{engine_ms['max']:.2f}), postgres "
        f"{postgres_ms['median']:.2f} ms ({postgres_ms['min']:.2f}-{postgres_ms['max']:.2f}) "
        "(postgres is 0 when the server is not local)",
        f"pgbench TPC-B-like, {args.workers} clients: {tps:.1f} tps",
        f"ratio: {ratio['median']:.3f} ({ratio['min']:.3f}-{ratio['max']:.3f}; target >= 0.3)"])


if __name__ == "__main__":
    main()
