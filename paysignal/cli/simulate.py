"""`paysignal simulate`: drive payments through the engine under injected provider faults."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from paysignal.cli._common import DatabaseUrl, JsonFlag, console, fail, guarded, out, ready_engine


def simulate(
    payments: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many payments.")] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed and profile replay the same traffic.")] = 42,
    profile: Annotated[str, typer.Option(
        help="Fault profile: calm, default, provider-outage, chaos.")] = "default",
    duration: Annotated[float, typer.Option(
        help="Hours of simulated time, ending now.", min=0.01)] = 6.0,
    settlements: Annotated[Path | None, typer.Option(
        help="Also write each provider's settlement files for the simulated days into this "
             "directory, with ground_truth.json.")] = None,
    discrepancies: Annotated[int, typer.Option(
        min=0, help="How many discrepancies to inject into the settlement files.")] = 8,
    loopback: Annotated[bool, typer.Option(
        "--loopback", help="Reach the provider sandbox over HTTP on a loopback port instead "
                           "of in process (time stays simulated; slower).")] = False,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Drive payments through the engine with realistic clients under injected provider faults."""
    from engine.providers.sandbox.faults import PROFILES
    from paysignal.simulation.day import run_simulation

    if profile not in PROFILES:
        fail(f"--profile: unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    engine = ready_engine(database_url)
    kwargs: dict[str, Any] = {"payments": payments, "seed": seed, "profile": profile,
                              "duration": timedelta(hours=duration), "over_loopback": loopback}
    if as_json:
        result = guarded(lambda: run_simulation(engine, **kwargs))
    else:
        with Progress(TextColumn("[bold]simulating[/]"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("payments", total=payments)
            result = guarded(lambda: run_simulation(
                engine, progress=lambda n: bar.update(task, completed=n), **kwargs))
    if result.sandbox_server is not None:
        result.sandbox_server.stop()
    if settlements is not None:
        from paysignal.simulation.settlement_files import injected_count, write_settlement_files

        assert result.sandbox is not None
        truth = write_settlement_files(result.sandbox.books.entries(), settlements,
                                       discrepancies=discrepancies, seed=seed,
                                       payment_ids=result.payment_ids,
                                       unnotified_disputes=result.sandbox.unnotified_disputes)
        result.figures["settlement_dir"] = str(settlements)
        result.figures["discrepancies_injected"] = injected_count(truth)
    if as_json:
        print(json.dumps(result.figures, sort_keys=False))
        return
    _print_simulation(result.figures)
    if settlements is not None:
        out.print(f"settlement files and ground_truth.json ({injected_count(truth)} injected "
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
    out.print(per_provider_table(f["per_provider"]))
    states = ", ".join(f"{k} {v}" for k, v in f["final_states"].items())
    out.print(f"final states: {states}")
    if f["client_errors"]:
        out.print("client errors (rejected as they should be): " +
                  ", ".join(f"{k} {v}" for k, v in f["client_errors"].items()))


def per_provider_table(per_provider: dict[str, dict[str, int]]) -> Table:
    """Per provider: payments, what it really charged (its own books), customers charged twice,
    and payments still waiting on it."""
    table = Table(title="per provider (charges from the sandbox's own books)")
    columns = ("payments", "charges", "duplicate_charges", "unknown", "awaiting_confirmation")
    table.add_column("provider")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for provider, figures in per_provider.items():
        cells = [f"[bold red]{figures[c]}[/]" if c == "duplicate_charges" and figures[c]
                 else f"{figures[c]:,}" for c in columns]
        table.add_row(provider, *cells)
    return table
