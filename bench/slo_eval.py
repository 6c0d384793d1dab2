"""SLO evaluation over 30 days of traffic (10 million provider-call events) on PostgreSQL,
against a naive pandas scan of the raw events in the same run.

Seeding (not timed): provider calls spread over 30 days, generated in SQL, then rolled up into
per-minute aggregates by the shipped rollup (its time is printed too: in production it runs
incrementally every minute). Timed: `evaluate_all` for every shipped SLO over its SLO window and
every burn-rate window, results stored. Baseline: pandas reads the raw events and computes the
same good and total counts for the same windows. The numbers must agree.

    python bench/slo_eval.py [--database-url URL] [--json] [--events 10000000]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import base_parser, report, server

SEED_SQL = """
INSERT INTO provider_attempts (payment_id, provider, operation, attempt, request_id, outcome,
                               raw_status, duration_ms, at)
SELECT 'pay_' || g, (ARRAY['stripe','adyen','paypal'])[1 + g % 3],
       CASE WHEN g % 10 < 8 THEN 'authorize' ELSE 'capture' END, 1, 'req_' || g,
       CASE WHEN (g * 7919) % 1000 < 960 THEN 'succeeded'
            WHEN (g * 7919) % 1000 < 990 THEN 'declined'
            WHEN (g * 7919) % 1000 < 997 THEN 'retryable_error' ELSE 'unknown' END,
       'x', 20 + (g * 104729) % 3000,
       CAST(:end AS timestamptz) - make_interval(secs => (:n - g) * :step)
FROM generate_series(1::bigint, :n) AS g
"""


def seed(url: str, events: int, end: datetime) -> None:
    from sqlalchemy import text

    from engine.storage import db

    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(SEED_SQL), {"n": events, "end": end,
                                      "step": timedelta(days=30).total_seconds() / events})
    with engine.begin() as conn:
        conn.execute(text("ANALYZE provider_attempts"))
    engine.dispose()


def pandas_counts(url: str, slos: list, at: datetime) -> tuple[float, dict]:  # type: ignore[type-arg]
    """Naive scan: every event in memory, a boolean mask per SLO and window."""
    import pandas as pd

    from slo.evaluate import window_bounds

    started = time.perf_counter()
    from engine.storage import db

    engine = db.make_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql("SELECT provider, operation, outcome, duration_ms, at "
                            "FROM provider_attempts", conn, dtype_backend="pyarrow")
    engine.dispose()
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    out = {}
    for slo in slos:
        start, end, _length = window_bounds(slo, at)
        spans = sorted({w.long for w in slo.burn_windows} | {w.short for w in slo.burn_windows})
        ranges = [(start, end)] + [(max(start, at - s), at) for s in spans]
        for lo, hi in ranges:
            if slo.total.base != "paysignal_provider_call_duration_seconds":
                out[(slo.name, lo, hi)] = (0, 0)  # the seeded traffic has no such events
                continue
            in_range = (frame["at"] >= lo) & (frame["at"] < hi)
            total = in_range & _mask(frame, slo.total)
            part = slo.good or slo.bad
            hit = total & _mask(frame, part)
            good = int(hit.sum()) if slo.good else int(total.sum() - hit.sum())
            out[(slo.name, lo, hi)] = (good, int(total.sum()))
    return time.perf_counter() - started, out


def _mask(frame: Any, q: Any) -> Any:
    import pandas as pd

    mask = pd.Series(True, index=frame.index)
    for m in q.matchers:
        column = frame[m.label].astype(str)
        if m.op == "=":
            mask &= column == m.value
        elif m.op == "!=":
            mask &= column != m.value
        else:
            hit = column.str.fullmatch(m.value)
            mask &= hit if m.op == "=~" else ~hit
    if q.le is not None:
        mask &= frame["duration_ms"] / 1000 <= q.le
    return mask


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()
    from engine.storage import db
    from slo.backends.database import DatabaseBackend
    from slo.evaluate import evaluate_all, window_bounds
    from slo.spec import load_definitions

    slos = load_definitions()
    at = datetime.now(UTC).replace(second=0, microsecond=0)
    with server(args.database_url) as srv:
        url = srv.database("paysignal_bench_slo")
        print(f"seeding {args.events:,} provider-call events over 30 days...", file=sys.stderr)
        seed(url, args.events, at - timedelta(minutes=1))
        engine = db.make_engine(url)
        backend = DatabaseBackend(engine)
        started = time.perf_counter()
        rolled = backend.prepare(slos, at, progress=lambda n: print(
            f"  rolled up {n:,} events", file=sys.stderr) if n % 2_000_000 == 0 else None)
        rollup_seconds = time.perf_counter() - started
        started = time.perf_counter()
        results = evaluate_all(engine, backend, slos, at)
        seconds = time.perf_counter() - started
        ours = {}
        for slo, r in zip(slos, results, strict=True):
            start, end, _ = window_bounds(slo, at)
            spans = sorted({w.long for w in slo.burn_windows} | {w.short for w in slo.burn_windows})
            ours[(slo.name, start, end)] = (r.counts.good, r.counts.total)
            for s in spans:
                c = backend.counts(slo, max(start, at - s), at)
                ours[(slo.name, max(start, at - s), at)] = (c.good, c.total)
        engine.dispose()
        baseline_seconds, theirs = pandas_counts(url, slos, at)
        srv.drop("paysignal_bench_slo")
    disagreements = [k for k in ours if ours[k] != theirs.get(k)]
    figures = {"events": args.events, "slos": len(slos), "windows": len(ours),
               "seconds": round(seconds, 3), "baseline_seconds": round(baseline_seconds, 2),
               "speedup": round(baseline_seconds / seconds, 1),
               "rollup_seconds": round(rollup_seconds, 1), "events_rolled_up": rolled,
               "numbers_agree": not disagreements}
    report(figures, args.json, [
        f"evaluate {len(slos)} SLOs over {len(ours)} windows on {args.events:,} events: "
        f"{figures['seconds']} s (target < 1 s)",
        f"naive pandas scan of the raw events: {figures['baseline_seconds']} s; speedup "
        f"{figures['speedup']}x (target >= 20x)",
        f"one-off rollup of the seeded events into per-minute aggregates: "
        f"{figures['rollup_seconds']} s ({rolled:,} events)",
        f"numbers agree: {figures['numbers_agree']}"
        + (f" (first difference: {disagreements[0]})" if disagreements else "")])
    if disagreements:
        sys.exit(1)


if __name__ == "__main__":
    main()
