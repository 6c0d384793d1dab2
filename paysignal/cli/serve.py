"""`paysignal serve api|worker|dashboard`: the long-lived processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

import dashboard
from dashboard import auth
from paysignal.cli._common import DatabaseUrl, console, fail, guarded, ready_engine

serve_app = typer.Typer(no_args_is_help=True, help="Run the long-lived processes.")


def _require_secrets(database_url: str | None) -> None:
    """The API and the worker verify provider notifications: no secret, no start; nor with a
    database password left at its example value."""
    from engine.secrets import GENERATE_HINT, disabled_providers, startup_problems
    from engine.storage import db

    problems = startup_problems(None, guarded(lambda: db.database_url(database_url)))
    if problems:
        fail("refusing to start:\n  " + "\n  ".join(problems) + f"\n{GENERATE_HINT}")
    disabled = disabled_providers()
    if disabled:
        console.print(f"[yellow]providers disabled (no credentials): {', '.join(disabled)}[/]")


@serve_app.command("api")
def serve_api(
    host: Annotated[str, typer.Option(envvar="PAYSIGNAL_API_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PAYSIGNAL_API_PORT", min=1, max=65535)] = 8000,
    metrics_port: Annotated[int, typer.Option(
        envvar="PAYSIGNAL_API_METRICS_PORT", min=1, max=65535,
        help="Port of the API's /metrics, a listener of its own (never the public port).")
    ] = 9100,
    metrics_host: Annotated[str, typer.Option(
        envvar="PAYSIGNAL_API_METRICS_HOST",
        help="Address of the API's /metrics (0.0.0.0 in a container, for Prometheus).")
    ] = "127.0.0.1",
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the payment HTTP API (uvicorn). OpenAPI at /openapi.json; Prometheus metrics on a
    separate listener, loopback by default."""
    import uvicorn
    from prometheus_client import start_http_server

    from engine.api.app import freeze_start_up_objects
    from engine.observability.logs import configure_logging
    from engine.observability.tracing import configure_tracing
    from paysignal.bootstrap import build_api
    from paysignal.settings import load_settings

    settings = guarded(load_settings)
    _require_secrets(database_url)
    configure_logging(settings.log_level)
    configure_tracing("paysignal-api")
    api, metrics = guarded(lambda: build_api(
        ready_engine(database_url, pool_size=settings.api_concurrency), settings))
    start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    freeze_start_up_objects()
    # uvicorn's own logging is replaced by the JSON logs (the app logs each request itself)
    uvicorn.run(api, host=host, port=port, log_config=None, access_log=False,
                server_header=False)



@serve_app.command("worker")
def serve_worker(
    metrics_port: Annotated[int, typer.Option(envvar="PAYSIGNAL_WORKER_METRICS_PORT",
                                              help="Port of the worker's /metrics.")] = 9101,
    metrics_host: Annotated[str, typer.Option(
        envvar="PAYSIGNAL_WORKER_METRICS_HOST",
        help="Address of the worker's /metrics (0.0.0.0 in a container, for Prometheus).")
    ] = "127.0.0.1",
    database_url: DatabaseUrl = None,
) -> None:
    """Run the scheduled jobs (listed in paysignal/worker.py): outbox relay, unknown-outcome
    resolver, abandoned-request recovery, idempotency-key expiry, SLO and alert evaluation, and
    settlement reconciliation (when PAYSIGNAL_SETTLEMENT_DIR is set)."""
    from prometheus_client import start_http_server

    from engine.observability.logs import configure_logging
    from engine.observability.tracing import configure_tracing
    from engine.scheduling import Worker
    from paysignal.bootstrap import build_observed_service
    from paysignal.settings import load_settings
    from paysignal.worker import worker_jobs

    settings = guarded(load_settings)
    _require_secrets(database_url)
    configure_logging(settings.log_level)
    configure_tracing("paysignal-worker")
    engine = ready_engine(database_url)
    service, metrics = guarded(lambda: build_observed_service(engine, settings))
    start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    worker = Worker(engine, guarded(lambda: worker_jobs(engine, service, settings)), metrics)
    console.print(f"worker {worker.name}: {', '.join(j.name for j in worker.jobs)}; "
                  f"metrics on {metrics_host}:{metrics_port}")
    worker.scheduler().start()


DASHBOARD_APP = Path(dashboard.__file__).parent / "app.py"


def streamlit_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "dashboard.launch", "run", str(DASHBOARD_APP),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
            "--server.fileWatcherType", "none"]


@serve_app.command("dashboard")
def serve_dashboard(
    host: Annotated[str, typer.Option(envvar="PAYSIGNAL_DASHBOARD_HOST",
                                      help="Address to bind. Anything but loopback needs a "
                                           "login (named accounts or OIDC).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PAYSIGNAL_DASHBOARD_PORT", min=1,
                                      max=65535)] = 8501,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the Streamlit dashboard: payment states, duplicate risk, reconciliation, SLOs and
    alerts, for engineering and finance."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard.accounts import has_accounts
    from engine.storage import db

    engine = guarded(lambda: db.make_engine(database_url))
    try:
        accounts_exist = has_accounts(engine)
    except SQLAlchemyError:  # no database (yet): no accounts; the dashboard says what to run
        accounts_exist = False
    login = guarded(lambda: auth.login_configured(accounts_exist))
    try:
        auth.check_bind(host, login)
    except auth.BindRefusedError as exc:
        fail(str(exc))
    if database_url:
        os.environ["PAYSIGNAL_DATABASE_URL"] = database_url
    command = streamlit_command(host, port)
    typer.echo(f"dashboard on http://{host}:{port}/"
               + ("" if login else " (no login configured: local use only)"))
    os.execv(command[0], command)
