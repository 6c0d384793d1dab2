"""`paysignal serve dashboard` (registered through the `paysignal.serve` entry point)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from dashboard import auth
from engine.cli import DatabaseUrl, fail, guarded

APP = Path(__file__).parent / "app.py"


def streamlit_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "dashboard.launch", "run", str(APP),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
            "--server.fileWatcherType", "none"]


def serve_dashboard(
    host: Annotated[str, typer.Option(envvar="PAYSIGNAL_DASHBOARD_HOST",
                                      help="Address to bind. Anything but loopback needs a "
                                           "login (role passwords or OIDC).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PAYSIGNAL_DASHBOARD_PORT", min=1,
                                      max=65535)] = 8501,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the Streamlit dashboard: payment states, duplicate risk, reconciliation, SLOs and
    alerts, for engineering and finance."""
    login = guarded(auth.login_configured)
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
