"""Latency the payment API adds to the provider's own, at half the API's peak rate.

The provider sandbox runs as its own process with a fixed latency per call (`--provider-ms`,
default 50 ms: `paysignal sandbox serve --latency-ms`); `--replicas` `paysignal serve api`
processes on PostgreSQL serve new automatic-capture payments (one provider call each) sent by
wrk (bench/api_load.lua in its latency mode). First the peak rate is measured with every
connection busy; then each connection pauses between requests so the API runs at half that
rate, and the added latency of each payment is its API latency minus the provider's fixed
latency. Repeated `--runs` times; the baseline is the provider's own latency.

Beside it: the provider call as the engine timed it (from the API's
paysignal_provider_call_duration_seconds: the round trip to the sandbox process and the
sandbox's own work beyond its fixed latency, which is the provider's time though the added
figure counts it), and a run with one connection, one request at a time with nothing to queue
behind: the floor, what a single payment's own path costs.

    python bench/added_latency.py [--database-url URL] [--json] [--provider-ms 50]
                                  [--replicas 2] [--seconds 15] [--runs 3]
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench._common import base_parser, report, server, spread, spread_text  # noqa: E402
from bench.api_load import (  # noqa: E402
    Load,
    merchant_database,
    run_wrk,
    start_replicas,
    start_sandbox,
    wrk_binary,
)

PEAK_CONNECTIONS = 64  # enough that the provider's latency never limits the peak
PACED_CONNECTIONS = 16


def paced(bases: list[str], api_key: str, target_per_s: float, seconds: float,
          mean_latency_ms: float, seed: int) -> tuple[Load, float]:
    """A run at about `target_per_s`: each connection pauses so that connections / (latency +
    pause) is the target; the pause is corrected once from a short calibration run."""
    pause_ms = max(0.0, PACED_CONNECTIONS * 1000 / target_per_s - mean_latency_ms)
    calibration = run_wrk(bases, api_key, PACED_CONNECTIONS, 3, mode="latency",
                          delay_ms=pause_ms, seed=seed * 10)
    achieved = calibration.requests / calibration.seconds
    cycle_ms = PACED_CONNECTIONS * 1000 / max(achieved, 1e-9)  # latency + pause, as measured
    pause_ms = max(0.0, pause_ms + PACED_CONNECTIONS * 1000 / target_per_s - cycle_ms)
    load = run_wrk(bases, api_key, PACED_CONNECTIONS, seconds, mode="latency",
                   delay_ms=pause_ms, seed=seed)
    return load, pause_ms


def provider_call_seconds(metrics_urls: list[str]) -> tuple[float, int]:
    """The API processes' provider calls so far: (seconds spent in them, how many)."""
    total, count = 0.0, 0
    for url in metrics_urls:
        page = httpx.get(url, timeout=10).text
        total += sum(float(v) for v in re.findall(
            r"^paysignal_provider_call_duration_seconds_sum\{[^}]*\} (\S+)$", page, re.M))
        count += sum(int(float(v)) for v in re.findall(
            r"^paysignal_provider_call_duration_seconds_count\{[^}]*\} (\S+)$", page, re.M))
    return total, count


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--provider-ms", type=float, default=50.0,
                        help="the sandbox's fixed latency per provider call")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3, help="repeat and report the spread")
    args = parser.parse_args()
    wrk_binary()
    runs: list[dict[str, float]] = []
    with server(args.database_url) as srv:
        url, api_key = merchant_database(srv, "paysignal_bench_latency")
        with tempfile.TemporaryDirectory() as tmp:
            sandbox, _, sandbox_env = start_sandbox(Path(tmp), latency_ms=args.provider_ms)
            procs, bases, metrics = start_replicas(url, args.replicas, sandbox_env)
            try:
                peak = run_wrk(bases, api_key, PEAK_CONNECTIONS, args.seconds, mode="latency",
                               seed=7777)  # every run its own keys: never a replay
                peak_rate = peak.payments / peak.seconds
                print(f"peak: {peak_rate:.1f} payments/s with {PEAK_CONNECTIONS} connections, "
                      f"p50 {peak.percentile(50):.1f} ms", file=sys.stderr)
                alone = run_wrk(bases[:1], api_key, 1, args.seconds, mode="latency",
                                seed=8888)
                floor = {f"alone_p{p}_ms": alone.percentile(p) - args.provider_ms
                         for p in (50, 99)}
                print(f"one request at a time: added p50 {floor['alone_p50_ms']:.1f} ms, "
                      f"p99 {floor['alone_p99_ms']:.1f} ms", file=sys.stderr)
                for n in range(args.runs):
                    calls_before = provider_call_seconds(metrics)
                    load, pause_ms = paced(bases, api_key, peak_rate / 2, args.seconds,
                                           peak.percentile(50) if n == 0 else
                                           runs[-1]["p50_ms"] + args.provider_ms, seed=n + 1)
                    rate = load.payments / load.seconds
                    calls_after = provider_call_seconds(metrics)
                    call_ms = 1000 * (calls_after[0] - calls_before[0]) / max(
                        1, calls_after[1] - calls_before[1])
                    run = {"provider_call_ms": call_ms, "payments_per_s": rate,
                           "share_of_peak": rate / peak_rate,
                           "pause_ms": pause_ms, "errors": load.errors + load.socket_errors,
                           **{f"p{p}_ms": load.percentile(p) - args.provider_ms
                              for p in (50, 95, 99)}}
                    runs.append(run)
                    print(f"run {n + 1}: {rate:.1f} payments/s ({run['share_of_peak']:.0%} of "
                          f"the peak), added p50 {run['p50_ms']:.1f} ms, p95 "
                          f"{run['p95_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms", file=sys.stderr)
            finally:
                for p in [*procs, sandbox]:
                    p.terminate()
                    p.wait(30)
        srv.drop("paysignal_bench_latency")
    figures: dict[str, object] = {
        name: spread([r[name] for r in runs])
        for name in ("p50_ms", "p95_ms", "p99_ms", "payments_per_s", "share_of_peak",
                     "provider_call_ms")}
    figures.update(peak_payments_per_s=round(peak_rate, 1), provider_ms=args.provider_ms,
                   errors=int(sum(r["errors"] for r in runs)) + alone.errors + alone.socket_errors,
                   runs=args.runs,
                   replicas=args.replicas, seconds=args.seconds,
                   **{k: round(v, 2) for k, v in floor.items()})

    def m(name: str) -> str:
        return spread_text(figures, name)

    report(figures, args.json, [
        f"added latency (API minus the provider's fixed {args.provider_ms:g} ms), median "
        f"(min-max) of {args.runs} runs: p50 {m('p50_ms')} ms, p95 {m('p95_ms')} ms, "
        f"p99 {m('p99_ms')} ms (target p50 < 5, p99 < 25)",
        f"at {m('payments_per_s')} payments/s, {m('share_of_peak')} of the peak "
        f"{peak_rate:.1f}/s; {figures['errors']} errors",
        f"the provider call as the engine timed it: mean {m('provider_call_ms')} ms (the "
        f"sandbox's fixed {args.provider_ms:g} ms, its own work and the round trip)",
        f"one request at a time (the floor, nothing to queue behind): added p50 "
        f"{floor['alone_p50_ms']:.1f} ms, p99 {floor['alone_p99_ms']:.1f} ms"])


if __name__ == "__main__":
    main()
