"""Dashboard load time: every page on 1 million payments in PostgreSQL, in headless Chromium.

Seeding (not timed): payments over the last six days with their state transitions and one
authorization call each (an adyen incident three hours ago: 20 minutes of time-outs and errors,
with the alert periods it raised), reconciliation checkpoints and breaks, duplicate-risk events,
stored SLO evaluations and alert states, in SQL.

Timed:
- cold_s: `paysignal serve dashboard` is started fresh (empty caches) and Chromium opens the
  Overview; from the request until its figures (Payments, Open breaks, Matched) are rendered.
- warm_s: opening it again in the same browser while the query cache is warm (best of 3).
- pages: every page (Overview with its charts, SLOs, the incident view of the adyen alert,
  Money, Reconciliation, Alerts) opened once (cold: 11 s after anything was cached), then warm: opened
  right after another load of it, so its queries are in the dashboard's 10 s cache (best of 3);
  each until its last part is on screen and its charts are drawn.
- queries_s: the Overview's queries alone (dashboard.queries, dashboard.timelines), no
  Streamlit.
Baseline, same run: the write-it-yourself way, pandas reading the week's payments and
transitions and computing the same state counts and flow (`baseline_s`; ratio = baseline/ours).

Targets: every page warm under 2 s, the Overview cold under 5 s.

    python bench/dashboard_load.py [--database-url URL] [--json] [--payments 1000000]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import base_parser, report, server  # noqa: E402

SEED = [
    """INSERT INTO payments (id, merchant_id, amount_minor, currency, provider, reference,
  capture_mode, state, captured_minor, refunded_minor, fee_minor, provider_reference,
  pending_amount_minor, created_at, updated_at, version)
SELECT 'pay_d' || lpad(g::text, 8, '0'), 'merchant-' || (g % 5), 100 + (g::bigint * 7919) % 99900,
  (ARRAY['USD','EUR','GBP'])[1 + (g / 3) % 3], (ARRAY['stripe','adyen','paypal'])[1 + g % 3],
  'order-' || g, 'automatic',
  CASE WHEN g % 50 = 0 THEN 'declined' WHEN g % 997 = 0 THEN 'unknown' ELSE 'captured' END,
  CASE WHEN g % 50 = 0 OR g % 997 = 0 THEN 0 ELSE 100 + (g::bigint * 7919) % 99900 END, 0, 0,
  'ref' || g, 0, now() - ((g % 518400) || ' seconds')::interval,
  now() - ((g % 518400) || ' seconds')::interval, 3
FROM generate_series(1, :n) AS g""",
    """INSERT INTO payment_transitions (payment_id, from_state, to_state, reason, actor, at)
SELECT p.id, t.from_state, CASE WHEN t.to_state = 'captured' AND p.state <> 'captured'
  THEN p.state ELSE t.to_state END, 'seeded', 'bench', p.created_at
FROM payments p CROSS JOIN (VALUES ('created', 'authorizing'), ('authorizing', 'authorized'),
  ('authorized', 'capturing'), ('capturing', 'captured')) AS t(from_state, to_state)""",
    """INSERT INTO recon_checkpoints (provider, settled_on, matched_count, break_count,
  reconciled_at)
SELECT provider, created_at::date + 1, count(*), 0, now()
FROM payments WHERE state = 'captured' GROUP BY provider, created_at::date + 1""",
    """INSERT INTO recon_checkpoint_amounts (provider, settled_on, currency, matched_count,
  matched_minor, break_count, break_minor)
SELECT provider, created_at::date + 1, currency, count(*), sum(amount_minor), 0, 0
FROM payments WHERE state = 'captured' GROUP BY provider, created_at::date + 1, currency""",
    """INSERT INTO recon_breaks (id, provider, settled_on, kind, provider_reference, payment_id,
  currency, expected_minor, actual_minor, status, opened_at, updated_at)
SELECT 'brk_' || g, (ARRAY['stripe','adyen','paypal'])[1 + g % 3],
  current_date - (g % 7), (ARRAY['amount_mismatch','missing_in_provider','duplicate_charge'])[1 + g % 3],
  'ref' || (g * 101), 'pay_d' || lpad((g * 101)::text, 8, '0'), 'USD', 1000 + g, 1100 + g,
  CASE WHEN g % 4 = 0 THEN 'resolved' ELSE 'open' END, now(), now()
FROM generate_series(1, 300) AS g""",
    """INSERT INTO provider_attempts (payment_id, provider, operation, attempt, request_id,
  outcome, raw_status, duration_ms, at)
SELECT p.id, p.provider, 'authorize', 1, 'req_' || p.id,
  CASE WHEN p.provider = 'adyen' AND p.created_at BETWEEN now() - interval '3 hours'
              AND now() - interval '2 hours 40 minutes' AND right(p.id, 1) IN ('1', '4', '7')
         THEN 'unknown'
       WHEN p.provider = 'adyen' AND p.created_at BETWEEN now() - interval '3 hours'
              AND now() - interval '2 hours 40 minutes' AND right(p.id, 1) IN ('2', '5')
         THEN 'retryable_error'
       WHEN p.state = 'declined' THEN 'declined' WHEN p.state = 'unknown' THEN 'unknown'
       ELSE 'succeeded' END,
  'seeded', 80 + (length(p.id) * 37 + ascii(right(p.id, 1)) * 13) % 900, p.created_at
FROM payments p""",
    """INSERT INTO alert_firings (fingerprint, name, labels, summary, starts_at, ends_at)
VALUES ('bench-page', 'SLOBurnRatePage',
  '{"alertname": "SLOBurnRatePage", "severity": "page", "team": "payments", '
  || '"slo": "authorization-technical-success-adyen", "provider": "adyen", "burn_tier": "1h"}',
  'adyen authorizations failing (seeded incident)', now() - interval '2 hours 58 minutes',
  now() - interval '2 hours 35 minutes'),
  ('bench-ticket', 'SLOBurnRateTicket',
  '{"alertname": "SLOBurnRateTicket", "severity": "ticket", "team": "payments", '
  || '"slo": "authorization-technical-success-adyen", "provider": "adyen", "burn_tier": "1d"}',
  'adyen authorizations failing (seeded incident)', now() - interval '2 hours 35 minutes',
  NULL)""",
    """INSERT INTO duplicate_risk_events (merchant_id, provider, outcome, payment_id, at)
SELECT 'merchant-' || (g % 5), (ARRAY['stripe','adyen','paypal'])[1 + g % 3],
  (ARRAY['replayed','conflict','in_flight','shadow_replay'])[1 + g % 4],
  'pay_d' || lpad(g::text, 8, '0'), now() - ((g * 60) || ' seconds')::interval
FROM generate_series(1, 20000) AS g""",
]


def seed(url: str, payments: int) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from alerts.detectors import detect
    from alerts.pipeline import evaluate_alerts
    from alerts.routing import load_config
    from engine.storage import db
    from slo.backends import make_backend
    from slo.evaluate import evaluate_all
    from slo.spec import load_definitions

    engine = db.make_engine(url)
    db.upgrade(engine)
    for statement in SEED:
        with engine.begin() as conn:
            conn.execute(text(statement), {"n": payments})
        print(f"  seeded: {statement.split('(')[0].strip()}", file=sys.stderr)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    now = datetime.now(UTC)
    backend = make_backend("database", engine=engine)
    slos = load_definitions()
    for minutes in range(120, -1, -10):  # a burn-down's worth of stored evaluations
        evaluate_all(engine, backend, slos, now - timedelta(minutes=minutes))
    evaluate_alerts(engine, load_config(), detect(engine, now), now)
    engine.dispose()


def overview_queries(url: str) -> float:
    from dashboard import queries, timelines
    from dashboard.filters import Filters
    from engine.storage import db

    engine = db.make_engine(url)
    f = Filters.default()
    started = time.perf_counter()
    for name, args in (("payment_states", (f,)), ("duplicate_risk", (f,)),
                       ("unknown_outcomes", (f,)), ("duplicate_charges", (f,)),
                       ("reconciliation_status", (f,)), ("slo_history", (f.since,)),
                       ("alerts", ("firing", None, f)), ("break_aging", (f,)),
                       ("payouts_view", (f,))):
        getattr(queries, name)(engine, *args)
    now = datetime.now(UTC)
    window = timelines.activity_window(engine, f)
    assert window is not None
    timelines.timeline(engine, f, window)
    timelines.alert_bands(engine, window, "", now)
    timelines.provider_tiles(engine, f, now)
    timelines.money_at_risk(engine, f)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def pandas_baseline(url: str) -> float:
    import pandas as pd
    from sqlalchemy import text

    from dashboard.filters import Filters
    from engine.storage import db

    engine = db.make_engine(url)
    f = Filters.default()
    started = time.perf_counter()
    with engine.connect() as conn:
        pays = pd.read_sql(text("SELECT id, state, currency, amount_minor FROM payments "
                                "WHERE created_at >= :a AND created_at < :b"), conn,
                           params={"a": f.since, "b": f.until})
        moves = pd.read_sql(text("SELECT from_state, to_state FROM payment_transitions "
                                 "WHERE at >= :a AND at < :b"), conn,
                            params={"a": f.since, "b": f.until})
    pays.groupby(["state", "currency"])["amount_minor"].agg(["count", "sum"])
    moves.groupby(["from_state", "to_state"]).size()
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def time_overview(browser, base: str, total: int) -> float:  # type: ignore[no-untyped-def]
    """From navigating to the Overview until its key figures are on screen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = f"{total:,}"
    browser.get("about:blank")
    started = time.perf_counter()
    browser.get(f"{base}/")

    def rendered(driver) -> bool:  # type: ignore[no-untyped-def]
        values = {}
        for card in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
            try:
                label = card.find_element(By.CSS_SELECTOR,
                                          '[data-testid="stMetricLabel"]').text.strip()
                values[label] = card.find_element(
                    By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
            except Exception:  # re-rendered while we read it
                return False
        return (values.get("Payments") == expected and "Open breaks" in values
                and "Matched" in values)

    try:
        WebDriverWait(browser, 120, poll_frequency=0.05).until(rendered)
    except Exception:
        shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR,
                                                        '[data-testid="stMetric"]')]
        raise RuntimeError(f"the Overview did not show {expected} payments in 120 s "
                           f"(on screen: {shown})") from None
    return time.perf_counter() - started


PAGES = (  # (name, path, what is on screen once the page is complete, charts drawn)
    ("overview", "", "Errors and time-outs:", 6),  # 4 time series, matching, break ages
    ("slos", "slos", "Error budget burn-down", 2),
    ("incident", "incident?alert=SLOBurnRatePage&provider=adyen"
     "&slo=authorization-technical-success-adyen", "What was done about them", 4),
    ("money", "money", "Open breaks by age", 0),
    ("reconciliation", "reconciliation", "Reconciliation", 0),
    ("alerts", "alerts", "Rollout toggles", 0),
)


def time_page(browser, base: str, path: str, marker: str, charts: int) -> float:  # type: ignore[no-untyped-def]
    """From navigating to a page until `marker` is on it, `charts` Vega charts are drawn and
    the script has finished running."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get("about:blank")
    started = time.perf_counter()
    browser.get(f"{base}/{path}")

    def complete(driver) -> bool:  # type: ignore[no-untyped-def]
        try:
            text = driver.find_element(By.TAG_NAME, "body").text
            drawn = driver.find_elements(By.CSS_SELECTOR,
                                         ".vega-embed canvas, .vega-embed svg.marks")
            running = driver.find_elements(By.CSS_SELECTOR,
                                           '[data-testid="stStatusWidget"] img, '
                                           '[data-testid="stStatusWidgetRunningIcon"]')
        except Exception:  # re-rendered while we read it
            return False
        return marker in text and len(drawn) >= charts and not running

    try:
        WebDriverWait(browser, 120, poll_frequency=0.05).until(complete)
    except Exception:
        drawn = len(browser.find_elements(By.CSS_SELECTOR,
                                          ".vega-embed canvas, .vega-embed svg.marks"))
        text = browser.find_element(By.TAG_NAME, "body").text
        raise RuntimeError(f"/{path} did not show {marker!r} with {charts} charts in 120 s "
                           f"({drawn} charts; on screen: {text[-600:]!r})") from None
    return time.perf_counter() - started


def serve(url: str, port: int, workdir: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYSIGNAL_DASHBOARD")}
    paysignal = str(Path(sys.executable).with_name("paysignal"))
    proc = subprocess.Popen([paysignal, "serve", "dashboard", "--port", str(port),
                             "--database-url", url], env=env, cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from tests.support.http import wait_for_http

    try:
        wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", proc)
    except AssertionError:
        proc.kill()
        raise
    return proc


def main() -> None:
    from sqlalchemy import func, select

    from dashboard.ui import CACHE_TTL_S
    from engine.storage import db
    from engine.storage.tables import payments
    from tests.support.browser import headless_chromium
    from tests.support.postgres import free_port

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    args = parser.parse_args()
    with server(args.database_url) as srv, tempfile.TemporaryDirectory() as tmp:
        url = srv.database("paysignal_bench_dashboard")
        print(f"seeding {args.payments:,} payments...", file=sys.stderr)
        seed(url, args.payments)
        engine = db.make_engine(url)
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(payments)).scalar_one()
        engine.dispose()
        baseline = pandas_baseline(url)
        queries_s = min(overview_queries(url) for _ in range(3))
        port = free_port()
        proc = serve(url, port, tmp)
        base = f"http://127.0.0.1:{port}"
        try:
            with headless_chromium() as browser:
                browser.set_window_size(1600, 2400)  # every chart on screen, so drawn
                cold = time_overview(browser, base, total)  # fresh server, fresh browser
                warm = min(time_overview(browser, base, total) for _ in range(3))
                pages: dict[str, dict[str, float]] = {}
                for name, path, marker, charts in PAGES:
                    time.sleep(CACHE_TTL_S + 1)  # what earlier pages cached has expired
                    first = time_page(browser, base, path, marker, charts)
                    runs = []
                    for _ in range(3):  # each right after a load: its queries are cached
                        time_page(browser, base, path, marker, charts)
                        runs.append(time_page(browser, base, path, marker, charts))
                    again = min(runs)
                    pages[name] = {"cold_s": round(first, 3), "warm_s": round(again, 3)}
                    print(f"  {name}: cold {first:.2f} s, then "
                          f"{', '.join(f'{r:.2f}' for r in runs)} s", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        srv.drop("paysignal_bench_dashboard")
    slowest = max(pages, key=lambda n: pages[n]["warm_s"])
    figures = {"payments": total, "cold_s": round(cold, 3), "warm_s": round(warm, 3),
               "pages": pages, "slowest_warm_page": slowest,
               "slowest_warm_s": pages[slowest]["warm_s"],
               "queries_s": round(queries_s, 3), "baseline_s": round(baseline, 3),
               "ratio": round(baseline / queries_s, 2)}
    report(figures, args.json, [
        f"Overview on {total:,} payments: cold {figures['cold_s']} s, warm {figures['warm_s']} s "
        "in headless Chromium until its figures show (targets: < 5 s cold, < 2 s warm)",
        "each page until complete, charts drawn: " + ", ".join(
            f"{n} {p['warm_s']} s warm ({p['cold_s']} s cold)" for n, p in pages.items())
        + f"; slowest warm: {slowest} {pages[slowest]['warm_s']} s (target < 2 s)",
        f"the Overview's queries alone: {figures['queries_s']} s; pandas reading the week and "
        f"computing the same state counts and flow: {figures['baseline_s']} s "
        f"(ratio baseline/ours {figures['ratio']})"])


if __name__ == "__main__":
    main()
