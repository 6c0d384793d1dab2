"""`paysignal alerts ...`: the alert catalogue, routing checks, and Alertmanager export."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli import fail, guarded, out

app = typer.Typer(help="Alerts: the catalogue, routing to receivers, Alertmanager export.",
                  no_args_is_help=True)

Config = Annotated[Optional[Path], typer.Option(
    "--config", envvar="PAYSIGNAL_ALERT_ROUTES", show_envvar=True,
    help="Routing YAML. Default: the shipped alerts/routing.yaml.")]


@app.command("route")
def route(label: Annotated[list[str], typer.Option(
              "--label", help="A label of the alert, as key=value; repeat for more.")],
          config: Config = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
          ) -> None:
    """Which receivers an alert with these labels reaches (like amtool config routes test)."""
    from alerts.routing import load_config

    labels: dict[str, str] = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--label: {item!r} is not key=value")
        labels[key.strip()] = value
    receivers = guarded(lambda: load_config(config)).receivers_for(labels)
    if as_json:
        print(json.dumps(receivers))
        return
    out.print(",".join(receivers))


@app.command("alertmanager-config")
def alertmanager_config(
        out_file: Annotated[Optional[Path], typer.Option("--out", help="Write here instead of "
                                                         "printing.")] = None,
        config: Config = None) -> None:
    """Render the routing as an equivalent alertmanager.yml (secrets as *_file paths)."""
    from alerts.alertmanager import render_alertmanager_config
    from alerts.routing import load_config

    text = render_alertmanager_config(guarded(lambda: load_config(config)))
    if out_file is None:
        print(text, end="")
        return
    if not out_file.parent.is_dir():
        fail(f"--out: {out_file.parent} is not a directory")
    partial = out_file.with_name(f".{out_file.name}.partial")
    partial.write_text(text)
    os.replace(partial, out_file)
    out.print(f"wrote {out_file}")


@app.command("catalogue")
def catalogue() -> None:
    """Every alert paysignal can raise: severity, owner team, condition, runbook."""
    from alerts.catalogue import CATALOGUE

    table = Table("alert", "severity", "team", "fires when", "runbook")
    for a in CATALOGUE:
        table.add_row(a.name, a.severity, a.team, a.condition, f"alerts/runbooks/{a.name}.md")
    out.print(table)
