"""The `paysignal` command line. Later packages register command groups through the
`paysignal.commands` entry-point group, so the engine never imports them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from engine import db
from engine.exceptions import PaysignalError

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="paysignal: idempotent payments, SLOs and actionable alerts.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")
outbox_app = typer.Typer(no_args_is_help=True, help="The transactional outbox.")
keys_app = typer.Typer(no_args_is_help=True, help="Idempotency keys.")
merchants_app = typer.Typer(no_args_is_help=True, help="Merchants and their API keys.")
serve_app = typer.Typer(no_args_is_help=True, help="Run the long-lived processes.")
breaks_app = typer.Typer(no_args_is_help=True, help="Reconciliation breaks: the finance queue.")
toggles_app = typer.Typer(no_args_is_help=True,
                          help="Staged rollout of idempotency enforcement (off|shadow|enforce).")
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(outbox_app, name="outbox")
app.add_typer(keys_app, name="keys")
app.add_typer(merchants_app, name="merchants")
app.add_typer(serve_app, name="serve")
app.add_typer(toggles_app, name="toggles")
app.add_typer(breaks_app, name="breaks")

console = Console(stderr=True)
out = Console()
T = TypeVar("T")

DatabaseUrl = Annotated[Optional[str], typer.Option(
    "--database-url", envvar="PAYSIGNAL_DATABASE_URL", show_envvar=True,
    help="SQLAlchemy URL (postgresql://... or sqlite:///path). Default: sqlite:///var/paysignal.db")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except PaysignalError as exc:
        fail(str(exc))
        raise  # unreachable


def write_out_file(path: Path, text: str) -> None:
    """Write an --out file whole or not at all: a temporary file renamed into place."""
    if not path.parent.is_dir():
        fail(f"--out: {path.parent} is not a directory")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def ready_engine(url: str | None) -> Any:
    """An engine on a database whose schema is current, or a clear error saying how to fix it."""
    engine = guarded(lambda: db.make_engine(url))
    guarded(lambda: db.require_current_schema(engine))
    return engine


# --- db ---------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None,
               revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the schema migrations (safe to run again)."""
    engine = guarded(lambda: db.make_engine(database_url))
    before = db.current_revision(engine)
    db.upgrade(engine, revision)
    after = db.current_revision(engine)
    out.print(f"schema: {before or 'empty'} -> {after}")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None) -> None:
    """Show the schema revision and whether it is current."""
    engine = guarded(lambda: db.make_engine(database_url))
    current, head = db.current_revision(engine), db.head_revision()
    out.print(f"current: {current or 'empty'}  head: {head}  "
              f"{'(up to date)' if current == head else '(run `paysignal db upgrade`)'}")


# --- simulate ---------------------------------------------------------------------------

@app.command()
def simulate(
    payments: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many payments.")] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed and profile replay the same traffic.")] = 42,
    profile: Annotated[str, typer.Option(
        help="Fault profile: calm, default, provider-outage, chaos.")] = "default",
    duration: Annotated[float, typer.Option(
        help="Hours of simulated time, ending now.", min=0.01)] = 6.0,
    settlements: Annotated[Optional[Path], typer.Option(
        help="Also write each provider's settlement files for the simulated days into this "
             "directory, with ground_truth.json.")] = None,
    discrepancies: Annotated[int, typer.Option(
        min=0, help="How many discrepancies to inject into the settlement files.")] = 8,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Drive payments through the engine with realistic clients under injected provider faults."""
    from engine.providers.faults import PROFILES
    from engine.simulate import run_simulation

    if profile not in PROFILES:
        fail(f"--profile: unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    engine = ready_engine(database_url)
    kwargs: dict[str, Any] = {"payments": payments, "seed": seed, "profile": profile,
                              "duration": timedelta(hours=duration)}
    if as_json:
        result = guarded(lambda: run_simulation(engine, **kwargs))
    else:
        with Progress(TextColumn("[bold]simulating[/]"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("payments", total=payments)
            result = guarded(lambda: run_simulation(
                engine, progress=lambda n: bar.update(task, completed=n), **kwargs))
    if settlements is not None:
        from engine.settlement.generate import write_settlement_files

        truth = write_settlement_files(engine, settlements, discrepancies=discrepancies,
                                       seed=seed)
        result.figures["settlement_dir"] = str(settlements)
        result.figures["discrepancies_injected"] = len(truth)
    if as_json:
        print(json.dumps(result.figures, sort_keys=False))
        return
    _print_simulation(result.figures)
    if settlements is not None:
        out.print(f"settlement files and ground_truth.json ({len(truth)} injected "
                  f"discrepancies) written to {settlements}")


def _print_simulation(f: dict[str, Any]) -> None:
    table = Table(title=f"simulation: {f['payments']} payments, profile {f['profile']}, "
                        f"seed {f['seed']}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    meanings = {
        "provider_charges": "charges the providers actually made",
        "duplicate_charges": "customers charged twice (must be 0)",
        "idempotent_replays": "same-key retries answered from the stored response",
        "conflicts_rejected": "same key reused for a different request",
        "in_progress_rejected": "same key while the first request was still running",
        "unknown_outcomes": "provider timeouts where the charge may have happened",
        "unknown_resolved": "of those, settled by asking the provider",
        "unresolved": "payments still unknown (provider cannot tell yet)",
        "retries": "provider calls retried after a retryable error",
        "retry_budget_exhausted": "retries refused by the retry budget",
        "ledger_imbalance_minor": "unbalanced journal amount (must be 0)",
        "outbox_pending": "events not yet published (must be 0)",
        "elapsed_s": "wall-clock seconds",
    }
    for name, meaning in meanings.items():
        value = f[name]
        style = "bold red" if name in ("duplicate_charges", "ledger_imbalance_minor",
                                       "outbox_pending") and value else ""
        table.add_row(name, f"[{style}]{value}[/]" if style else str(value), meaning)
    out.print(table)
    states = ", ".join(f"{k} {v}" for k, v in f["final_states"].items())
    out.print(f"final states: {states}")
    if f["client_errors"]:
        out.print("client errors (rejected as they should be): " +
                  ", ".join(f"{k} {v}" for k, v in f["client_errors"].items()))


# --- ledger, outbox, keys ---------------------------------------------------------------

@ledger_app.command("balances")
def ledger_balances(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Balance (debits minus credits) per account and currency, in minor units."""
    from engine.ledger_queries import balances

    rows = balances(ready_engine(database_url))
    if as_json:
        print(json.dumps([{"account": a, "currency": c, "balance_minor": v}
                          for (a, c), v in rows.items()]))
        return
    table = Table("account", "currency", "balance (minor units)")
    for (account, currency), value in rows.items():
        table.add_row(account, currency, str(value))
    out.print(table)


@ledger_app.command("check")
def ledger_check(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Report every journal transaction that does not balance; exit 1 if any."""
    from engine.ledger_queries import imbalances

    found = imbalances(ready_engine(database_url))
    if as_json:
        print(json.dumps({"imbalanced_transactions": len(found),
                          "imbalance_minor": sum(abs(i.debits_minus_credits) for i in found)}))
    elif found:
        for i in found:
            out.print(f"[red]{i.transaction_id}[/] {i.currency}: off by {i.debits_minus_credits}")
    else:
        out.print("ledger balanced: every journal transaction's debits equal its credits")
    if found:
        raise typer.Exit(1)


@outbox_app.command("relay")
def outbox_relay(database_url: DatabaseUrl = None) -> None:
    """Publish every pending outbox event to the configured sink (PAYSIGNAL_OUTBOX_SINK)."""
    from engine.outbox import OutboxRelay, sink_from_environment

    engine = ready_engine(database_url)
    sink = guarded(sink_from_environment)
    out.print(f"published {OutboxRelay(engine, sink).drain()} events to {sink.name}")


@keys_app.command("expire")
def keys_expire(database_url: DatabaseUrl = None) -> None:
    """Delete finished idempotency keys past their expiry (PAYSIGNAL_IDEMPOTENCY_KEY_TTL_S)."""
    from engine.bootstrap import build_service

    service = build_service(ready_engine(database_url))
    out.print(f"expired {service.expire_keys()} idempotency keys")


@app.command()
def reconcile(
    directory: Annotated[Optional[Path], typer.Option(
        "--dir", help="Import every settlement file in DIR, then reconcile each provider-day.")] = None,
    provider: Annotated[Optional[str], typer.Option(help="Reconcile one provider-day...")] = None,
    day: Annotated[Optional[str], typer.Option("--date", help="...on this day (YYYY-MM-DD).")] = None,
    file: Annotated[Optional[Path], typer.Option(help="Import this file first.")] = None,
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Match provider settlement files against the ledger and record breaks."""
    from datetime import date as date_type

    from engine.settlement.run import reconcile_directory

    engine = ready_engine(database_url)
    if directory is not None and (provider or day or file):
        fail("use either --dir DIR, or --provider P --date D [--file F]")
    if directory is None and not (provider and day):
        fail("--provider and --date are required without --dir")
    with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(),
                  TaskProgressColumn(), TimeRemainingColumn(), console=console,
                  transient=True, disable=as_json) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        if directory is not None:
            report = guarded(lambda: reconcile_directory(engine, directory, progress))
        else:
            try:
                on = date_type.fromisoformat(day or "")
            except ValueError:
                fail(f"--date: {day!r} is not a date (YYYY-MM-DD)")
            if file is not None and not file.is_file():
                fail(f"--file: {file} does not exist")
            files = [(provider or "", file)] if file else []
            report = guarded(lambda: _reconcile_one(engine, provider or "", on, files, progress))
    figures = report.as_json()
    if as_json:
        print(json.dumps(figures))
        return
    for f in figures["files"]:  # type: ignore[union-attr]
        note = "already imported" if f["already_imported"] else f"{f['lines']} lines"
        out.print(f"{f['file']}: {note}" + (f", {len(f['row_errors'])} rejected rows"
                                            if f["row_errors"] else ""))
        for e in f["row_errors"][:10]:
            out.print(f"  line {e['line']}: {e['reason']}")
    out.print(f"matched {figures['matched']} lines, {figures['matched_amount_minor']} minor units")
    table = Table("kind", "provider", "provider reference", "payment", "expected", "actual")
    for b in figures["breaks"]:  # type: ignore[union-attr]
        table.add_row(b["kind"], b["provider"], b["provider_reference"], b["payment_id"] or "",
                      str(b["expected_minor"]), str(b["actual_minor"]))
    out.print(table if figures["breaks"] else "no breaks")


@breaks_app.command("list")
def breaks_list(
    status: Annotated[Optional[str], typer.Option(help="open, investigating, resolved, written_off")] = None,
    provider: Annotated[Optional[str], typer.Option()] = None,
    kind: Annotated[Optional[str], typer.Option()] = None,
    export_to: Annotated[Optional[Path], typer.Option(
        "--export", help="Write the breaks to this .csv or .parquet file.")] = None,
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """List breaks (filters combine)."""
    from engine.adapters.tables import recon_breaks
    from engine.settlement.breaks import export, list_breaks

    rows = guarded(lambda: list_breaks(ready_engine(database_url), status=status,
                                       provider=provider, kind=kind))
    if export_to is not None:
        guarded(lambda: export(rows, export_to, recon_breaks))
        out.print(f"wrote {len(rows)} breaks to {export_to}")
        return
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("id", "day", "provider", "kind", "reference", "expected", "actual", "status",
                  "owner", "age h")
    for r in rows:
        table.add_row(r["id"], str(r["settled_on"]), r["provider"], r["kind"],
                      r["provider_reference"], str(r["expected_minor"]), str(r["actual_minor"]),
                      r["status"], r["owner"] or "", str(r["age_hours"]))
    out.print(table if rows else "no breaks")


@breaks_app.command("show")
def breaks_show(break_id: str, database_url: DatabaseUrl = None) -> None:
    """One break with its audit trail."""
    from engine.settlement.breaks import show_break

    print(json.dumps(guarded(lambda: show_break(ready_engine(database_url), break_id)),
                     default=str, indent=2))


@breaks_app.command("assign")
def breaks_assign(break_id: str, owner: Annotated[str, typer.Option()],
                  actor: Annotated[str, typer.Option()],
                  note: Annotated[str, typer.Option()] = "assigned",
                  database_url: DatabaseUrl = None) -> None:
    """Give a break an owner and start investigating it."""
    from engine.settlement.breaks import move_break

    row = guarded(lambda: move_break(ready_engine(database_url), break_id, "investigating",
                                     actor=actor, note=note, owner=owner))
    out.print(f"{row['id']}: {row['status']}, owner {row['owner']}")


@breaks_app.command("resolve")
def breaks_resolve(break_id: str, actor: Annotated[str, typer.Option()],
                   note: Annotated[str, typer.Option(help="What was done (audited).")],
                   write_off: Annotated[bool, typer.Option(
                       "--write-off", help="Close as written off instead of resolved.")] = False,
                   database_url: DatabaseUrl = None) -> None:
    """Close a break as resolved (or written off), with a note."""
    from engine.settlement.breaks import move_break

    row = guarded(lambda: move_break(ready_engine(database_url), break_id,
                                     "written_off" if write_off else "resolved",
                                     actor=actor, note=note))
    out.print(f"{row['id']}: {row['status']}")


@breaks_app.command("sign-off")
def breaks_sign_off(provider: Annotated[str, typer.Option()],
                    day: Annotated[str, typer.Option("--date")],
                    actor: Annotated[str, typer.Option()],
                    override: Annotated[Optional[str], typer.Option(
                        help="Accept open breaks, with this reason (audited).")] = None,
                    database_url: DatabaseUrl = None) -> None:
    """Finance sign-off of a reconciled provider-day."""
    from datetime import date as date_type

    from engine.settlement.breaks import sign_off

    try:
        on = date_type.fromisoformat(day)
    except ValueError:
        fail(f"--date: {day!r} is not a date (YYYY-MM-DD)")
    row = guarded(lambda: sign_off(ready_engine(database_url), provider, on, actor=actor,
                                   override=override))
    out.print(f"{provider} {day} signed off by {row['signed_off_by']}"
              + (f" with override: {row['sign_off_override']}" if row["sign_off_override"] else ""))


@breaks_app.command("checkpoints")
def breaks_checkpoints(export_to: Annotated[Optional[Path], typer.Option(
        "--export", help="Write the checkpoints to this .csv or .parquet file.")] = None,
                       database_url: DatabaseUrl = None) -> None:
    """Reconciliation checkpoints per provider-day (JSON, or a file with --export)."""
    from engine.adapters.tables import recon_checkpoints
    from engine.settlement.breaks import checkpoints, export

    rows = checkpoints(ready_engine(database_url))
    if export_to is not None:
        guarded(lambda: export(rows, export_to, recon_checkpoints))
        out.print(f"wrote {len(rows)} checkpoints to {export_to}")
        return
    print(json.dumps(rows, default=str, indent=2))


def _reconcile_one(engine: Any, provider: str, on: Any, files: list[tuple[str, Path]],
                   progress: Callable[[str, int, int], None]) -> Any:
    from engine.settlement.formats import FORMATS
    from engine.settlement.reconcile import reconcile_day
    from engine.settlement.run import RunReport, reconcile_files
    if provider not in FORMATS:
        from engine.exceptions import ValidationError
        raise ValidationError("provider", f"unknown provider {provider!r}")
    if files:
        report = reconcile_files(engine, files, progress)
        report.days = [d for d in report.days if d.settled_on == on] or [
            reconcile_day(engine, provider, on)]
        return report
    report = RunReport()
    report.days.append(reconcile_day(engine, provider, on))
    return report


@merchants_app.command("create")
def merchants_create(
    name: Annotated[str, typer.Argument(help="The merchant's name (unique).")],
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Create a merchant and print its API key. The key is shown only this once."""
    from engine.merchants import create_merchant

    new = guarded(lambda: create_merchant(ready_engine(database_url), name))
    if as_json:
        print(json.dumps({"merchant_id": new.merchant_id, "name": new.name,
                          "api_key": new.api_key}))
        return
    out.print(f"merchant {new.name}: {new.merchant_id}")
    out.print(f"API key (shown once, store it now): {new.api_key}")


@serve_app.command("api")
def serve_api(
    host: Annotated[str, typer.Option(envvar="PAYSIGNAL_API_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PAYSIGNAL_API_PORT", min=1, max=65535)] = 8000,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the payment HTTP API (uvicorn). OpenAPI at /openapi.json."""
    import uvicorn

    from engine.bootstrap import build_api
    from engine.logs import configure_logging
    from engine.tracing import configure_tracing

    configure_logging(os.environ.get("PAYSIGNAL_LOG_LEVEL", "INFO"))
    configure_tracing("paysignal-api")
    api = guarded(lambda: build_api(ready_engine(database_url)))
    # uvicorn's own logging is replaced by the JSON logs (the app logs each request itself)
    uvicorn.run(api, host=host, port=port, log_config=None, access_log=False,
                server_header=False)


@toggles_app.command("set")
def toggles_set(
    provider: Annotated[str, typer.Option(help="Provider the toggle applies to.")],
    mode: Annotated[str, typer.Option(help="off, shadow or enforce.")],
    actor: Annotated[str, typer.Option(help="Who is making the change (audited).")],
    payment_method: Annotated[str, typer.Option(help="A payment-method token, or * for all.")] = "*",
    reason: Annotated[str, typer.Option(help="Why (audited).")] = "",
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Change idempotency enforcement for a provider (and payment method); audited."""
    from engine.bootstrap import simulated_provider_names
    from engine.toggles import set_mode

    change = guarded(lambda: set_mode(
        ready_engine(database_url), provider=provider, mode=mode, actor=actor,
        known_providers=simulated_provider_names(), payment_method=payment_method, reason=reason))
    if as_json:
        print(json.dumps(change))
    else:
        out.print(f"{change['provider']} / {change['payment_method']}: "
                  f"{change['from']} -> {change['to']} (by {change['actor']})")


@toggles_app.command("list")
def toggles_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Current toggles (providers not listed enforce) and the latest audited changes."""
    from engine.toggles import audit_trail, current_modes

    engine = ready_engine(database_url)
    toggles, audit = current_modes(engine), audit_trail(engine, 20)
    if as_json:
        print(json.dumps({"toggles": toggles, "audit": audit}))
        return
    table = Table("provider", "payment method", "mode", "changed by", "at")
    for t in toggles:
        table.add_row(t["provider"], t["payment_method"], t["mode"], t["updated_by"],
                      t["updated_at"])
    out.print(table if toggles else "no toggles set: every provider enforces idempotency")
    for a in audit:
        out.print(f"{a['at']}  {a['provider']}/{a['payment_method']}: {a['from']} -> {a['to']} "
                  f"by {a['actor']} ({a['reason']})")


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
    """Run the scheduled jobs: outbox relay, unknown-outcome resolver, abandoned-request
    recovery, idempotency-key expiry, and settlement reconciliation (PAYSIGNAL_SETTLEMENT_DIR)."""
    from prometheus_client import start_http_server

    from engine.bootstrap import build_service
    from engine.logs import configure_logging
    from engine.metrics import Metrics, PrometheusObserver
    from engine.tracing import configure_tracing
    from engine.worker import Worker, default_jobs

    configure_logging(os.environ.get("PAYSIGNAL_LOG_LEVEL", "INFO"))
    configure_tracing("paysignal-worker")
    engine = ready_engine(database_url)
    metrics = Metrics()
    service = build_service(engine, PrometheusObserver(metrics))
    metrics.watch_tables(engine, list(service.gateways))
    start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    worker = Worker(engine, default_jobs(engine, service), metrics)
    console.print(f"worker {worker.name}: {', '.join(j.name for j in worker.jobs)}; "
                  f"metrics on {metrics_host}:{metrics_port}")
    worker.scheduler().start()


@app.command()
def states() -> None:
    """Print the payment state machine's transition table (Markdown)."""
    from engine.domain.states import transition_table_markdown

    print(transition_table_markdown())


def _register_plugins() -> None:
    for ep in entry_points(group="paysignal.commands"):
        app.add_typer(ep.load(), name=ep.name)
    for ep in entry_points(group="paysignal.serve"):
        serve_app.command(ep.name)(ep.load())
    for ep in entry_points(group="paysignal.toplevel"):
        app.command(ep.name)(ep.load())


def main() -> None:
    _register_plugins()
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # `python -m engine.cli`, as the demo starts its services
    main()
