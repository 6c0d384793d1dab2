"""`paysignal demo`: a simulated day end to end, then the API, the worker and the dashboard
together (registered through the `paysignal.toplevel` entry point)."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from paysignal.cli._common import DatabaseUrl, console, fail, guarded, out

DEMO_ROUTING = """# The demo's alert routing: every alert to a local file (no pager, no e-mail).
route:
  receiver: demo-file
  group_by: [alertname, slo, provider]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="ticket"']
    equal: [slo, provider]
receivers:
  - name: demo-file
    file:
      path: {path}
"""


def _check_port_free(port: int, option: str) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            fail(f"{option}: port {port} is already in use (is another demo running?); "
                 f"choose another with {option}")


def _summary(day: Any, routing_log: Path) -> None:
    from paysignal.cli.simulate import per_provider_table

    sim = day.simulation
    out.print(f"[bold]payments[/]: {sim['payments']:,} simulated · provider charges "
              f"{sim['provider_charges']:,} · [bold]duplicate charges {sim['duplicate_charges']}[/]"
              f" · idempotent replays {sim['idempotent_replays']:,} · unknown outcomes "
              f"{sim['unknown_outcomes']} ({sim['unknown_resolved']} resolved by asking the "
              f"provider) · ledger imbalance {sim['ledger_imbalance_minor']}")
    out.print(per_provider_table(sim["per_provider"]))
    closed = sum(d["closed_automatically"] for d in day.reconciliation["days"])
    verdict = day.score.describe()
    out.print(f"[bold]reconciliation[/]: {day.reconciliation['matched']:,} settlement lines "
              f"matched; {verdict if day.score.exact else f'[bold red]{verdict}[/]'} "
              f"({len(day.reconciliation['opened'])} breaks opened, {closed} closed when a "
              "late settlement arrived)")
    pages = ", ".join(f"{name} ({about})" for name, about in day.pages) or "none"
    out.print(f"[bold]pages during the day[/]: {pages}")
    out.print(f"[bold]SLOs[/]: {day.slos_evaluated} evaluated · [bold]alerts firing now[/]: "
              f"{', '.join(day.alerts_firing) or 'none'} · {day.notifications} notifications "
              f"written to {routing_log}")


def demo(
    fast: Annotated[bool, typer.Option("--fast", help="A compressed day (fewer payments) "
                                                       "for CI and a first look.")] = False,
    serve: Annotated[bool, typer.Option("--serve/--no-serve",
                                        help="After the day, serve the API, the worker and "
                                             "the dashboard until Ctrl-C.")] = True,
    payments: Annotated[int | None, typer.Option(
        min=10, max=1_000_000, help="Payments in the day [default: 2000, or 300 with --fast]",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same day.")] = 42,
    workdir: Annotated[Path, typer.Option(help="Settlement files, alert log and routing.")] =
        Path("var/demo"),
    api_port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    dashboard_port: Annotated[int, typer.Option(min=1, max=65535)] = 8501,
    worker_metrics_port: Annotated[int, typer.Option(min=1, max=65535)] = 9101,
    api_metrics_port: Annotated[int, typer.Option(min=1, max=65535)] = 9100,
    sandbox_port: Annotated[int, typer.Option(
        min=1, max=65535, help="The provider sandbox's port (stripe, adyen, paypal).")] = 8010,
    database_url: DatabaseUrl = None,
) -> None:
    """Run a simulated day through the Stripe, Adyen and PayPal connectors over HTTP to the
    provider sandbox, with a scripted adyen incident (timeouts after charging, failures,
    recovery), settlement files with injected discrepancies, reconciliation, SLO evaluation and
    alert routing to a local file; then serve the API, the worker, the dashboard and the
    sandbox together."""
    from engine.payments.merchants import create_merchant
    from engine.providers.registry import new_webhook_credentials
    from engine.providers.sandbox.registry import sandbox_environment
    from engine.storage import db
    from paysignal.simulation.demo_day import run_day
    from paysignal.simulation.supervisor import Supervised, SupervisedProcessError, Supervisor

    count = payments or (300 if fast else 2000)
    _check_port_free(sandbox_port, "--sandbox-port")
    credentials = new_webhook_credentials()
    workdir.mkdir(parents=True, exist_ok=True)
    routing_log = (workdir / "alerts.log").resolve()
    routing = workdir / "routing.yaml"
    routing.write_text(DEMO_ROUTING.format(path=routing_log))
    engine = guarded(lambda: db.make_engine(database_url))
    guarded(lambda: db.upgrade(engine))
    url = engine.url.render_as_string(hide_password=False)
    merchant = guarded(lambda: create_merchant(engine, f"demo-shop-{os.getpid()}"))
    with console.status("starting") as status:
        day = guarded(lambda: run_day(engine, workdir, payments=count, seed=seed,
                                      duration=timedelta(hours=24), routing=routing,
                                      step=lambda s: status.update(s), over_loopback=True,
                                      credentials=credentials, sandbox_port=sandbox_port))
    engine.dispose()
    sandbox = day.sandbox_server
    assert sandbox is not None
    _summary(day, routing_log)
    out.print(f"the day ran through the stripe, adyen and paypal connectors over HTTP to the "
              f"provider sandbox at {sandbox.url} (webhook credentials random for this run)")
    if not serve:
        sandbox.stop()
        return
    # From now on the sandbox keeps the wall clock and posts its notifications to the API.
    sandbox.sandbox.clock, sandbox.sandbox.sleep = time.time, None
    sandbox.sandbox.until_end = None
    sandbox.deliver_to(lambda provider: f"http://127.0.0.1:{api_port}/v1/webhooks/{provider}")
    for port, option in ((api_port, "--api-port"), (dashboard_port, "--dashboard-port"),
                         (worker_metrics_port, "--worker-metrics-port"),
                         (api_metrics_port, "--api-metrics-port")):
        _check_port_free(port, option)
    env = {**os.environ, **sandbox_environment(sandbox.url, credentials),
           "PAYSIGNAL_DATABASE_URL": url,
           "PAYSIGNAL_ALERT_ROUTES": str(routing.resolve()),
           "PAYSIGNAL_SETTLEMENT_DIR": str(day.settlement_dir.resolve()),
           "PAYSIGNAL_DASHBOARD_URL": f"http://127.0.0.1:{dashboard_port}"}
    processes = [
        Supervised("api", ["serve", "api", "--port", str(api_port),
                           "--metrics-port", str(api_metrics_port)],
                   f"http://127.0.0.1:{api_port}/healthz"),
        Supervised("worker", ["serve", "worker", "--metrics-port", str(worker_metrics_port)],
                   f"http://127.0.0.1:{worker_metrics_port}/metrics"),
        Supervised("dashboard", ["serve", "dashboard", "--port", str(dashboard_port)],
                   f"http://127.0.0.1:{dashboard_port}/_stcore/health")]
    with Supervisor(env, workdir) as supervisor:
        try:
            supervisor.start(processes)
        except SupervisedProcessError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            console.print("stopping")
            return
        # plain print: a terminal-width wrap would break the URLs and the curl command
        print(f"""
paysignal demo is running (Ctrl-C stops it)
  dashboard  http://127.0.0.1:{dashboard_port}/   start here: Overview, then Reconciliation
  API        http://127.0.0.1:{api_port}/docs
  API key    {merchant.api_key}   (a demo merchant's; shown once)
  sandbox    {sandbox.url}/stripe  /adyen  /paypal   (its books: {sandbox.url}/_sandbox/books)
  metrics    http://127.0.0.1:{api_metrics_port}/metrics and http://127.0.0.1:{worker_metrics_port}/metrics
  alerts     {routing_log}
  logs       {workdir}/api.log, worker.log, dashboard.log

What to look at:
  - Overview: no customer charged twice at any provider despite the retries and the
    timeouts after charging; the adyen incident in the time series, inside the bands of
    the alerts it raised. Incidents: what an alert's link opens (the payments it touched).
  - SLOs: every SLO at a glance, the adyen one burning its budget.
  - Reconciliation: the injected discrepancies as breaks (a duplicate charge among them):
    assign one, resolve it, sign off a day.
  - Payments: paste a payment id from the break queue: audit trail, ledger, events.
  - Retry a payment; the second answer is a replay (Idempotent-Replayed: true):
    curl -i -X POST http://127.0.0.1:{api_port}/v1/payments \\
      -H 'Authorization: Bearer {merchant.api_key}' -H 'Idempotency-Key: demo-1' \\
      -H 'Content-Type: application/json' \\
      -d '{{"amount": 1250, "currency": "EUR", "reference": "order-1",
           "provider": "stripe", "payment_method": "pm_card_visa"}}'
""", flush=True)
        dead = supervisor.run_until_stopped()
        console.print("stopping")
        if dead:
            fail(f"{', '.join(dead)} stopped unexpectedly; stopping the demo")
