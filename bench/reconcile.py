"""Reconciliation of 1 million settlement lines against 1 million payments on PostgreSQL,
against a naive pandas merge of the same data in the same run.

Seeding (not timed): captured payments with their capture and fee journal transactions are
generated in SQL, spread over three providers and several days; each provider-day's settlement
file is written in that provider's own format, with a few discrepancies of every kind injected.

Timed: `paysignal reconcile --dir DIR --json` as a subprocess (the command finance runs): parse
and import every file, then match each provider-day and record breaks and checkpoints. Its peak
memory is the peak RSS of the command and its worker processes together. Baseline: pandas reads
the expected lines (ledger) and the imported settlement lines from PostgreSQL and merges them on
(provider, reference, kind).

Checks: the matched counts of both agree, and the breaks found are exactly the injected ones.
Seeded once; each of `--runs` runs reconciles a fresh copy of the seeded database (made from it
as a template) and reports the median with the lowest and highest run.

    python bench/reconcile.py [--database-url URL] [--json] [--payments 1000000] [--days 10]
                              [--runs 3]
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    Server,
    base_parser,
    report,
    server,
    spread,
    spread_text,
)

PROVIDERS = ("stripe", "adyen", "paypal")
PER_KIND = 5  # injected discrepancies of each break kind

SEED_SQL = """
WITH s AS (
  SELECT g,
         'pay_b' || lpad(g::text, 8, '0') AS id,
         (ARRAY['stripe','adyen','paypal'])[1 + g % 3] AS provider,
         (ARRAY['USD','EUR','GBP'])[1 + (g / 3) % 3] AS currency,
         100 + (g::bigint * 7919) % 99900 AS amount,
         -- each provider's published price, as engine/providers/<name>.py PRICING
         (ARRAY[30, 13, 49])[1 + g % 3] + (100 + (g::bigint * 7919) % 99900)
           * (ARRAY[290, 60, 349])[1 + g % 3] / 10000 AS fee,
         timestamptz '2026-01-01 00:00:00+00' + ((g % :days) || ' days')::interval
           + ((g * 37 % 86000) || ' seconds')::interval AS at
  FROM generate_series(1, :n) AS g
)
{insert}
"""
INSERTS = {
    "payments": """INSERT INTO payments (id, merchant_id, amount_minor, currency, provider,
  reference, capture_mode, state, captured_minor, refunded_minor, fee_minor, provider_reference,
  pending_amount_minor, created_at, updated_at, version)
SELECT id, 'merchant-' || (g % 5), amount, currency, provider, 'order-' || g, 'automatic',
  'captured', amount, 0, fee, 'ref' || g, 0, at, at, 3 FROM s""",
    "journal_transactions": """INSERT INTO journal_transactions (id, payment_id, kind, currency, at)
SELECT 'jtx_c' || g, id, 'capture', currency, at FROM s
UNION ALL SELECT 'jtx_f' || g, id, 'provider_fee', currency, at FROM s""",
    "journal_entries": """INSERT INTO journal_entries (transaction_id, account, side, amount_minor)
SELECT 'jtx_c' || g, 'authorization_hold_offsets:' || provider, 'debit', amount FROM s
UNION ALL SELECT 'jtx_c' || g, 'authorization_holds:' || provider, 'credit', amount FROM s
UNION ALL SELECT 'jtx_c' || g, 'provider_receivable:' || provider, 'debit', amount FROM s
UNION ALL SELECT 'jtx_c' || g, 'merchant_payable:merchant-' || (g % 5), 'credit', amount FROM s
UNION ALL SELECT 'jtx_f' || g, 'provider_fees:' || provider, 'debit', fee FROM s
UNION ALL SELECT 'jtx_f' || g, 'provider_receivable:' || provider, 'credit', fee FROM s""",
}


def seed(url: str, payments: int, days: int) -> None:
    from sqlalchemy import text

    from engine.storage import db

    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        for table, insert in INSERTS.items():
            conn.execute(text(SEED_SQL.format(insert=insert)), {"n": payments, "days": days})
            print(f"  seeded {table}", file=sys.stderr)
        # voided payments the provider knows: a settlement line for one is a status mismatch
        conn.execute(text("""INSERT INTO payments (id, merchant_id, amount_minor, currency,
            provider, reference, capture_mode, state, provider_reference, pending_amount_minor,
            created_at, updated_at) SELECT 'pay_void' || g, 'merchant-0', 5000, 'USD',
            (ARRAY['stripe','adyen','paypal'])[1 + g % 3], 'void-' || g, 'manual',
            'voided', 'void' || g, 0, now(), now() FROM generate_series(1, :k) AS g"""),
            {"k": PER_KIND})
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def write_files(url: str, directory: Path) -> set[tuple[str, str, str]]:
    """One file per provider-day from the seeded ledger, with PER_KIND discrepancies of each
    kind. Returns the injected (kind, provider, provider reference) triples."""
    from engine.domain.settlement_lines import SettlementLine
    from engine.providers.sandbox.registry import SANDBOXED
    from engine.settlement.expected import iter_expected
    from engine.settlement.kinds import kinds_of
    from engine.storage import db

    BREAK_KINDS = kinds_of("line")  # noqa: N806 (the line-level kinds a file can carry)
    engine = db.make_engine(url)
    lines = [SettlementLine(e.provider, "", e.provider_reference, e.payment_id, e.kind,
                            e.amount_minor, e.fee_minor, e.currency, e.expected_on)
             for e in iter_expected(engine)]
    engine.dispose()
    rng = random.Random(7)
    picked = rng.sample(range(len(lines)), PER_KIND * len(BREAK_KINDS))
    injected: set[tuple[str, str, str]] = set()
    removed: set[int] = set()
    extra: list[SettlementLine] = []
    for n, i in enumerate(picked):
        kind = BREAK_KINDS[n % len(BREAK_KINDS)]
        line = lines[i]
        if kind == "missing_in_provider":
            removed.add(i)
        elif kind == "amount_mismatch":
            lines[i] = replace(line, amount_minor=line.amount_minor + 1)
        elif kind == "currency_mismatch":
            lines[i] = replace(line, currency="EUR" if line.currency != "EUR" else "GBP")
        elif kind == "fee_mismatch":
            lines[i] = replace(line, fee_minor=line.fee_minor + 2)  # beyond the tolerance
        elif kind == "duplicate_charge":
            extra.append(line)
        elif kind == "late_settlement":
            lines[i] = replace(line, settled_on=line.settled_on + timedelta(days=1))
        elif kind == "missing_in_ledger":
            line = replace(line, provider_reference=f"stranger{n}", payment_reference=None)
            extra.append(line)
        elif kind == "status_mismatch":
            number = n // len(BREAK_KINDS) + 1
            line = SettlementLine(PROVIDERS[number % 3], "", f"void{number}",
                                  f"pay_void{number}", "charge", 5000, 0, "USD", line.settled_on)
            extra.append(line)
        injected.add((kind, line.provider, line.provider_reference))
    by_file: dict[tuple[str, date], list[SettlementLine]] = defaultdict(list)
    for i, line in enumerate(lines):
        if i not in removed:
            by_file[(line.provider, line.settled_on)].append(line)
    for line in extra:
        by_file[(line.provider, line.settled_on)].append(line)
    for (provider, day), day_lines in by_file.items():
        for name, data in SANDBOXED[provider].render_report(day_lines, day).items():
            (directory / name).write_bytes(data)
    return injected


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants (its worker processes)."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        children[int(fields["PPid"])].append(int(entry))
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def run_reconcile(url: str, directory: Path) -> tuple[float, float, dict[str, object]]:
    """Seconds, peak RSS (MiB, summed over the command and its worker processes, sampled every
    100 ms) and the JSON output of `paysignal reconcile --dir` run as a subprocess."""
    import json
    import threading

    peak = 0
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, "-m", "paysignal", "reconcile", "--dir",
                                 str(directory), "--json", "--database-url", url], stdout=out,
                                cwd=Path(__file__).resolve().parent.parent)

        def sample() -> None:
            nonlocal peak
            while proc.poll() is None:
                peak = max(peak, _tree_rss_kib(proc.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        seconds = time.perf_counter() - started
        sampler.join()
        out.seek(0)
        output = out.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"paysignal reconcile failed:\n{output[-2000:]}")
    return seconds, peak / 1024, json.loads(output.strip().splitlines()[-1])


def pandas_baseline(url: str) -> tuple[float, int]:
    """Naive merge: read both sides whole into pandas, join on the reference, count exact
    matches once per (provider, reference, kind)."""
    import pandas as pd
    from sqlalchemy import text

    from engine.storage import db

    engine = db.make_engine(url)
    started = time.perf_counter()
    with engine.connect() as conn:
        expected = pd.read_sql(text("""
            SELECT p.provider, p.provider_reference, 'charge' AS kind, e.amount_minor,
                   p.currency, (t.at AT TIME ZONE 'UTC')::date + 1 AS settled_on,
                   (SELECT coalesce(sum(fe.amount_minor), 0) FROM journal_transactions ft
                    JOIN journal_entries fe ON fe.transaction_id = ft.id
                    WHERE ft.payment_id = t.payment_id AND ft.kind = 'provider_fee'
                      AND fe.side = 'debit') AS fee_minor
            FROM journal_transactions t JOIN journal_entries e ON e.transaction_id = t.id
            JOIN payments p ON p.id = t.payment_id
            WHERE t.kind = 'capture' AND e.side = 'debit'
              AND e.account LIKE 'provider_receivable:%'"""), conn)
        actual = pd.read_sql(text("""SELECT provider, provider_reference, kind, amount_minor,
            currency, settled_on, fee_minor FROM settlement_lines"""), conn)
    merged = expected.merge(actual, on=["provider", "provider_reference", "kind"],
                            suffixes=("_expected", "_actual"))
    exact = merged[(merged.amount_minor_expected == merged.amount_minor_actual)
                   & (merged.currency_expected == merged.currency_actual)
                   & (merged.fee_minor_expected == merged.fee_minor_actual)
                   & (pd.to_datetime(merged.settled_on_expected)
                      == pd.to_datetime(merged.settled_on_actual))]
    matched = len(exact.drop_duplicates(["provider", "provider_reference", "kind"]))
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, matched


def open_break_identities(url: str) -> set[tuple[str, str, str]]:
    """Breaks still open: a late line closes its day's missing-settlement break."""
    from engine.settlement.reconcile import open_breaks
    from engine.storage import db

    engine = db.make_engine(url)
    found = {(str(b["kind"]), str(b["provider"]), str(b["provider_reference"]))
             for b in open_breaks(engine)}
    engine.dispose()
    return found


def copy_database(srv: Server, template: str, name: str) -> str:
    """A fresh copy of the seeded database (a file copy: no WAL for a gigabyte of data)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(srv.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}" '
                          "STRATEGY = FILE_COPY"))
    engine.dispose()
    return make_url(srv.admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="repeat and report the spread")
    args = parser.parse_args()
    runs: list[dict[str, float]] = []
    with server(args.database_url) as srv, tempfile.TemporaryDirectory() as tmp:
        seeded = "paysignal_bench_reconcile_seed"
        url = srv.database(seeded)
        print(f"seeding {args.payments:,} payments...", file=sys.stderr)
        seed(url, args.payments, args.days)
        injected = write_files(url, Path(tmp))
        try:
            for n in range(args.runs):
                run_url = copy_database(srv, seeded, "paysignal_bench_reconcile")
                print(f"run {n + 1}: reconciling {len(list(Path(tmp).iterdir()))} files...",
                      file=sys.stderr)
                seconds, peak_mib, result = run_reconcile(run_url, Path(tmp))
                baseline_seconds, baseline_matched = pandas_baseline(run_url)
                found = open_break_identities(run_url)
                srv.drop("paysignal_bench_reconcile")
                lines = sum(f["lines"] for f in result["files"])  # type: ignore[attr-defined]
                runs.append({"seconds": seconds, "baseline_seconds": baseline_seconds,
                             "ratio": baseline_seconds / seconds, "peak_rss_mib": peak_mib,
                             "lines": lines, "matched": float(str(result["matched"])),
                             "agree": float(result["matched"] == baseline_matched),
                             "exact": float(found == injected), "found": len(found)})
                print(f"run {n + 1}: {seconds:.1f} s, pandas {baseline_seconds:.1f} s, "
                      f"peak RSS {peak_mib:.0f} MiB", file=sys.stderr)
        finally:
            srv.drop(seeded)
    settlement_lines = int(runs[0]["lines"])
    seconds_spread = spread([r["seconds"] for r in runs])
    figures = {
        "payments": args.payments, "settlement_lines": settlement_lines, "runs": args.runs,
        "seconds": seconds_spread,
        "baseline_seconds": spread([r["baseline_seconds"] for r in runs]),
        "ratio": spread([r["ratio"] for r in runs]),
        "rows_per_s": round(settlement_lines / seconds_spread["median"]),
        "peak_rss_mib": spread([r["peak_rss_mib"] for r in runs]),
        "matched": int(runs[0]["matched"]),
        "counts_agree": all(r["agree"] for r in runs),
        "breaks_found": int(runs[0]["found"]), "breaks_injected": len(injected),
        "breaks_exactly_injected": all(r["exact"] for r in runs),
    }

    def m(name: str) -> str:
        return spread_text(figures, name)

    report(figures, args.json, [
        f"reconcile --dir: {settlement_lines:,} settlement lines against {args.payments:,} "
        f"payments in {m('seconds')} s, median (min-max) of {args.runs} runs "
        f"({figures['rows_per_s']:,} lines/s), peak RSS {m('peak_rss_mib')} MiB "
        "(targets: < 60 s, < 2048 MiB)",
        f"naive pandas merge of the same data: {m('baseline_seconds')} s "
        f"(ratio baseline/ours {m('ratio')}; target >= 1.5)",
        f"matched: {figures['matched']:,} (agrees with pandas in every run: "
        f"{figures['counts_agree']})",
        f"breaks: {figures['breaks_found']} found, {len(injected)} injected "
        f"(exactly the injected ones in every run: {figures['breaks_exactly_injected']})"])
    if not (figures["counts_agree"] and figures["breaks_exactly_injected"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
