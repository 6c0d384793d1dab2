"""`paysignal sim-test` (registered through the `paysignal.toplevel` entry point)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from paysignal.cli._common import console, fail, out


def sim_test(
    seeds: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many seeds to run.")] = 5,
    from_seed: Annotated[int, typer.Option(min=0, help="The first seed.")] = 1,
    profile: Annotated[str, typer.Option(help="Provider fault profile of the traffic: "
                                              "calm, default, provider-outage, incident, "
                                              "chaos.")] = "default",
    keep_going: Annotated[bool, typer.Option(help="Run every seed even after a failure.")]
    = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes running seeds side by "
                                                            "side (same results).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: seeds, "
                                                         "violations, first_failing_seed.")]
    = False,
) -> None:
    """Run seeded workloads under faults (provider timeouts after charging, processes killed at
    recovery points, duplicate and out-of-order webhooks, dropped database connections, relay
    crashes between publish and mark, settlement discrepancies) and check the invariants after
    each. A failing seed replays exactly: the command to reproduce it is printed."""
    from engine.providers.sandbox.faults import PROFILES
    from paysignal.simulation.simtest import INVARIANTS, SeedResult, run_seeds

    if profile not in PROFILES:
        fail(f"--profile: unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    chosen = list(range(from_seed, from_seed + seeds))
    with Progress(TextColumn("[bold]sim-test[/] seed {task.fields[seed]}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=as_json) as bar:
        task = bar.add_task("seeds", total=len(chosen), seed=from_seed)

        def done(r: SeedResult) -> None:
            bar.update(task, advance=1, seed=r.seed + 1)
            if r.violations and not as_json:
                for v in r.violations:
                    console.print(f"[bold red]seed {r.seed}: {v.invariant}[/] — {v.detail}")

        results = run_seeds(chosen, profile, on_seed=done, stop_at_first=not keep_going,
                            workers=workers)
    failing = [r for r in results if r.violations]
    first = failing[0] if failing else None
    reproduce = (f"paysignal sim-test --seeds 1 --from-seed {first.seed} --profile {profile}"
                 if first else None)
    if as_json:
        print(json.dumps({
            "seeds": len(results), "profile": profile,
            "violations": [{"seed": r.seed, "invariant": v.invariant, "detail": v.detail}
                           for r in failing for v in r.violations],
            "first_failing_seed": first.seed if first else None,
            "first_failing_invariant": first.violations[0].invariant if first else None,
            "reproduce": reproduce}))
    elif first:
        out.print(f"[bold red]{len(failing)} of {len(results)} seeds broke an invariant[/]; "
                  f"first: seed {first.seed} ({first.violations[0].invariant})")
        out.print(f"reproduce: {reproduce}")
    else:
        out.print(f"{len(results)} seeds ({from_seed}..{from_seed + len(results) - 1}, profile "
                  f"{profile}): every invariant held — {', '.join(INVARIANTS)}")
    if failing:
        raise typer.Exit(1)
