"""`paysignal slo ...`: evaluate SLOs, list them, export Prometheus rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from paysignal.cli._common import (
    DatabaseUrl,
    JsonFlag,
    fail,
    guarded,
    out,
    ready_engine,
    write_out_file,
)

app = typer.Typer(help="SLOs: evaluate budgets and burn rates, export Prometheus rules.",
                  no_args_is_help=True)

Definitions = Annotated[Path | None, typer.Option(
    "--definitions", envvar="PAYSIGNAL_SLO_DIR", show_envvar=True,
    help="Directory of OpenSLO YAML files. Default: the shipped slo/definitions.")]


def _parse_at(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        fail(f"--at: {at!r} is not an ISO 8601 timestamp (e.g. 2026-11-22T10:00:00Z)")
        raise  # unreachable
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("evaluate")
def evaluate(
    at: Annotated[str | None, typer.Option(help="Evaluate as of this ISO 8601 time (UTC if "
                                              "no offset). Default: now.")] = None,
    backend: Annotated[str, typer.Option(envvar="PAYSIGNAL_SLI_BACKEND",
                                         help="SLI backend: database or prometheus.")] = "database",
    prometheus_url: Annotated[str | None, typer.Option(envvar="PAYSIGNAL_PROMETHEUS_URL",
                                                          help="For --backend prometheus.")] = None,
    definitions: Definitions = None, database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Evaluate every SLO (budget, burn rates, firing conditions) and store the results."""
    from slo.backends import make_backend
    from slo.evaluate import evaluate_all
    from slo.spec import load_definitions

    slos = guarded(lambda: load_definitions(definitions))
    when = _parse_at(at)
    engine = ready_engine(database_url)
    chosen = guarded(lambda: make_backend(backend, engine=engine, prometheus_url=prometheus_url))
    results = guarded(lambda: evaluate_all(engine, chosen, slos, when))
    if as_json:
        print(json.dumps([r.as_json() for r in results]))
        return
    def figures(r: Any) -> tuple[str, ...]:
        fired = ", ".join(f"{c.severity} {c.tier}" + (" (inhibited)" if c.inhibited_by else "")
                          for c in r.conditions) or "—"
        return ("no data" if r.sli is None else f"{r.sli:.4%}", f"{r.slo.target:.2%}",
                f"{r.counts.total:,}", f"{r.budget.remaining:.1%}",
                f"{r.burn_rates.get('1h', 0):.2f}x", fired)

    title = f"SLOs at {when.isoformat(timespec='seconds')}"
    if out.width >= 130:
        table = Table("SLO", "owner", "SLI", "objective", "events", "budget left", "burn 1h",
                      "conditions", title=title)
        table.columns[0].no_wrap = True
        for r in results:
            table.add_row(r.slo.name, r.slo.owner, *figures(r))
        out.print(table)
    else:  # narrow terminal: one block per SLO, so names are never cut into pieces
        out.print(f"[bold]{title}[/]")
        for r in results:
            sli, objective, events, left, burn, fired = figures(r)
            out.print(f"[bold]{r.slo.name}[/] ({r.slo.owner})", overflow="ignore", crop=False)
            out.print(f"  SLI {sli} (objective {objective}, {events} events) · budget left "
                      f"{left}")
            out.print(f"  burn 1h {burn} · conditions: {fired}")
    for r in results:
        for line in r.policy:
            out.print(f"[bold yellow]{r.slo.name}[/]: {line}")


@app.command("list")
def list_slos(definitions: Definitions = None) -> None:
    """The SLO definitions and what they measure."""
    from slo.spec import load_definitions

    table = Table("SLO", "owner", "window", "objective", "total events", "file")
    table.columns[0].overflow = table.columns[4].overflow = "fold"
    for s in guarded(lambda: load_definitions(definitions)):
        table.add_row(s.name, s.owner, s.window.text, f"{s.target:.3%}", s.total.metric, s.source)
    out.print(table)


@app.command("rules")
def rules(out_file: Annotated[Path, typer.Option("--out", help="Write the rules here.")],
          definitions: Definitions = None) -> None:
    """Write Prometheus recording and burn-rate alerting rules for every SLO."""
    from slo.rules import render_rules
    from slo.spec import load_definitions

    slos = guarded(lambda: load_definitions(definitions))
    write_out_file(out_file, render_rules(slos))
    out.print(f"wrote rules for {len(slos)} SLOs to {out_file}")


@app.command("report")
def report(
    period: Annotated[str, typer.Option(help="How far back, e.g. 28d or 7d.")] = "28d",
    fmt: Annotated[str, typer.Option("--format", help="md, html or csv.")] = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of "
                                                     "printing.")] = None,
    backend: Annotated[str, typer.Option(envvar="PAYSIGNAL_SLI_BACKEND",
                                         help="SLI backend: database or prometheus.")] = "database",
    prometheus_url: Annotated[str | None, typer.Option(envvar="PAYSIGNAL_PROMETHEUS_URL",
                                                          help="For --backend prometheus.")] = None,
    definitions: Definitions = None, database_url: DatabaseUrl = None,
) -> None:
    """The SLO review report: objectives, attainment, budget burn-down, worst days, top
    providers by bad events, alerts fired; engineering and finance side by side."""
    from engine.read_models.finance import finance_summary
    from slo.backends import make_backend
    from slo.report import build_report, render_csv, render_html, render_markdown
    from slo.spec import load_definitions, to_timedelta

    if fmt not in ("md", "html", "csv"):
        fail(f"--format: {fmt!r} is not one of md, html, csv")
    try:
        span = to_timedelta(period)
    except ValueError as exc:
        fail(f"--period: {exc}")
        raise  # unreachable
    if span < timedelta(days=1):
        fail("--period: must be at least 1d")
    slos = guarded(lambda: load_definitions(definitions))
    engine = ready_engine(database_url)
    chosen = guarded(lambda: make_backend(backend, engine=engine, prometheus_url=prometheus_url))
    reports = guarded(lambda: build_report(engine, chosen, slos, span))
    now = datetime.now(UTC)
    money = finance_summary(engine, now - span, now)
    text = (render_markdown(reports, span, money) if fmt == "md" else
            render_html(reports, span, money) if fmt == "html" else render_csv(reports))
    if out_file is None:
        print(text)
        return
    write_out_file(out_file, text)
    out.print(f"wrote the {fmt} report for {len(reports)} SLOs to {out_file}")
