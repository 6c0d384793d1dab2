"""`paysignal reconcile` and `paysignal breaks`: settlement files against the ledger, and the
finance queue of breaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from paysignal.cli._common import (
    DatabaseUrl,
    JsonFlag,
    console,
    esc,
    fail,
    guarded,
    id_table,
    json_default,
    money,
    out,
    ready_engine,
)

breaks_app = typer.Typer(no_args_is_help=True, help="Reconciliation breaks: the finance queue.")


def reconcile(
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Import every settlement file in DIR, then reconcile each provider-day.")] = None,
    provider: Annotated[str | None, typer.Option(help="Reconcile one provider-day...")] = None,
    day: Annotated[str | None, typer.Option("--date", help="...on this day (YYYY-MM-DD).")] = None,
    file: Annotated[Path | None, typer.Option(help="Import this file first.")] = None,
    supersedes: Annotated[str | None, typer.Option(
        help="With --file: the file id (stf_…) this corrected file replaces; the earlier "
             "file's lines are replaced, with an audit row.")] = None,
    actor: Annotated[str, typer.Option(help="Who supersedes (audited).")] = "cli",
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Import provider settlement reports (Stripe's itemized reports, Adyen's settlement
    details report, PayPal's STL) and match them against the ledger, recording breaks.

    With --dir, files are recognised by name; a file of unknown name is moved to
    DIR/quarantine/ and reported, and a file that cannot be taken is reported and left for
    the next run; neither stops the others."""
    from datetime import date as date_type

    from engine.settlement.run import reconcile_directory, reconcile_provider_day

    engine = ready_engine(database_url)
    if directory is not None and (provider or day or file):
        fail("use either --dir DIR, or --provider P --date D [--file F]")
    if directory is None and not (provider and day):
        fail("--provider and --date are required without --dir")
    if supersedes is not None and file is None:
        fail("--supersedes needs --file (the corrected file)")
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
            report = guarded(lambda: reconcile_provider_day(
                engine, provider or "", on, file, progress, supersedes=supersedes, actor=actor))
    figures = report.as_json()
    if as_json:
        print(json.dumps(figures))
        return
    for f in figures["files"]:
        note = "already imported" if f["already_imported"] else f"{f['lines']} lines"
        if f["duplicate_lines"]:
            note += f", {f['duplicate_lines']} lines already imported from an earlier file"
        out.print(f"{esc(f['file'])} ({f['provider']}): {note}"
                  + (f", {len(f['row_errors'])} rejected rows" if f["row_errors"] else ""))
        for e in f["row_errors"][:10]:
            out.print(f"  line {e['line']}: {esc(e['reason'])}")
        if len(f["row_errors"]) > 10:
            out.print(f"  … and {len(f['row_errors']) - 10} more (--json lists them all)")
    for f in figures["skipped"]:
        out.print(f"[yellow]{esc(f['file'])}: {f['status']}[/]: {esc(f['reason'])}")
    out.print(f"matched {figures['matched']:,} lines on {len(figures['days'])} provider-days")
    opened, closed = figures["opened"], figures["closed"]
    if opened:
        table = Table("kind", "provider", "provider reference", "payment", "expected", "actual",
                      title=f"{len(opened)} breaks opened")
        for b in opened:
            table.add_row(b["kind"], b["provider"], esc(b["provider_reference"]),
                          esc(b["payment_id"]),
                          money(b["expected_minor"], b["currency"]),
                          money(b["actual_minor"], b["currency"]))
        out.print(table)
    else:
        out.print("no new breaks")
    if closed:
        out.print(f"{len(closed)} breaks closed: " + ", ".join(
            f"{c['kind']} {c['provider']} {esc(c['provider_reference'])}" for c in closed))
    still = figures["already_open"]
    if still:
        out.print(f"{still} breaks of these days were already open "
                  "(paysignal breaks list --status open)")
    truth = directory / "ground_truth.json" if directory is not None else None
    if truth is not None and truth.is_file():
        from paysignal.simulation.settlement_files import in_flight_payment_ids, score

        verdict = score(json.loads(truth.read_text()), report, in_flight_payment_ids(engine))
        out.print(f"against {truth}: " + (verdict.describe() if verdict.exact
                                          else f"[bold red]{verdict.describe()}[/]"))


@breaks_app.command("list")
def breaks_list(
    status: Annotated[str | None, typer.Option(help="open, investigating, resolved, written_off")] = None,
    provider: Annotated[str | None, typer.Option()] = None,
    kind: Annotated[str | None, typer.Option()] = None,
    export_to: Annotated[Path | None, typer.Option(
        "--export", help="Write the breaks to this .csv or .parquet file.")] = None,
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """List breaks (filters combine). Ids are printed whole, to paste into assign/resolve."""
    from engine.settlement.breaks import BREAK_EXPORT_COLUMNS, break_export_rows, export, list_breaks

    rows = guarded(lambda: list_breaks(ready_engine(database_url), status=status,
                                       provider=provider, kind=kind))
    if export_to is not None:
        guarded(lambda: export(break_export_rows(rows), export_to, BREAK_EXPORT_COLUMNS))
        out.print(f"wrote {len(rows)} breaks to {export_to}")
        return
    if as_json:
        print(json.dumps(rows, default=json_default))
        return
    if not rows:
        out.print("no breaks")
        return
    table = id_table("id", "day · provider", "kind", "expected → actual", "status · owner",
                     "age h")
    for r in rows:
        table.add_row(r["id"], f"{r['settled_on']} {r['provider']}", r["kind"],
                      _expected_actual(r), f"{r['status']}" + (f" {esc(r['owner'])}"
                                                                 if r["owner"] else ""),
                      str(r["age_hours"]))
    out.print(table)


def _expected_actual(r: dict[str, Any]) -> str:
    expected = money(r["expected_minor"], r.get("expected_currency") or r["currency"]) or "—"
    return f"{expected} → {money(r['actual_minor'], r['currency']) or '—'}"


@breaks_app.command("show")
def breaks_show(break_id: str, database_url: DatabaseUrl = None, as_json: JsonFlag = False,
                ) -> None:
    """One break: what differs, whose it is, and its audit trail."""
    from engine.settlement.breaks import show_break

    row = guarded(lambda: show_break(ready_engine(database_url), break_id))
    if as_json:
        print(json.dumps(row, default=json_default, indent=2))
        return
    out.print(f"[bold]{row['id']}[/]  {row['kind']} at {row['provider']}, settlement day "
              f"{row['settled_on']}")
    out.print(f"provider reference {esc(row['provider_reference'])} · payment "
              f"{esc(row['payment_id'] or '—')}")
    out.print(f"expected → actual: {_expected_actual(row)}")
    out.print(f"status {row['status']}" + (f", owner {esc(row['owner'])}" if row["owner"] else "")
              + f" · opened {row['opened_at']:%Y-%m-%d %H:%M %Z} · updated "
              f"{row['updated_at']:%Y-%m-%d %H:%M %Z}")
    if row["audit"]:
        trail = Table("at", "from → to", "by", "note", title="audit trail")
        for a in row["audit"]:
            trail.add_row(f"{a['at']:%Y-%m-%d %H:%M %Z}", f"{a['from_status']} → {a['to_status']}",
                          esc(a["actor"]), esc(a["note"]))
        out.print(trail)
    else:
        out.print("no audit entries yet")


@breaks_app.command("assign")
def breaks_assign(break_id: str, owner: Annotated[str, typer.Option()],
                  actor: Annotated[str, typer.Option()],
                  note: Annotated[str, typer.Option()] = "assigned",
                  database_url: DatabaseUrl = None) -> None:
    """Give a break an owner and start investigating it."""
    from engine.settlement.breaks import move_break

    row = guarded(lambda: move_break(ready_engine(database_url), break_id, "investigating",
                                     actor=actor, note=note, owner=owner))
    out.print(f"{row['id']}: {row['status']}, owner {esc(row['owner'])}")


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
                    override: Annotated[str | None, typer.Option(
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
    out.print(f"{esc(provider)} {esc(day)} signed off by {esc(row['signed_off_by'])}"
              + (f" with override: {esc(row['sign_off_override'])}"
                 if row["sign_off_override"] else ""))
    earlier = row["sign_offs"][:-1]
    if earlier:
        last = earlier[-1]
        out.print(f"this supersedes {len(earlier)} earlier sign-off(s), the last by "
                  f"{esc(last['actor'])} at {last['at']}; all are kept (breaks checkpoints)")


@breaks_app.command("checkpoints")
def breaks_checkpoints(export_to: Annotated[Path | None, typer.Option(
        "--export", help="Write the checkpoints to this .csv or .parquet file (one row per "
                         "provider-day and currency).")] = None,
                       database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Reconciliation checkpoints per provider-day: lines matched and breaks, amounts per
    currency, and who signed the day off (every sign-off is kept)."""
    from engine.settlement.breaks import (
        CHECKPOINT_EXPORT_COLUMNS,
        checkpoint_export_rows,
        checkpoints,
        export,
    )

    rows = checkpoints(ready_engine(database_url), with_history=export_to is None)
    if export_to is not None:
        guarded(lambda: export(checkpoint_export_rows(rows), export_to,
                               CHECKPOINT_EXPORT_COLUMNS))
        out.print(f"wrote {len(rows)} checkpoints to {export_to}")
        return
    if as_json:
        print(json.dumps(rows, default=json_default, indent=2))
        return
    if not rows:
        out.print("no provider-day has been reconciled yet")
        return
    table = Table("day · provider", "lines matched", "breaks", "matched", "at stake",
                  "signed off")
    for r in rows:
        matched = "\n".join(money(a["matched_minor"], a["currency"]) for a in r["amounts"]
                            if a["matched_minor"])
        at_stake = "\n".join(money(a["break_minor"], a["currency"]) for a in r["amounts"]
                             if a["break_minor"])
        signed = "—"
        if r["signed_off_by"]:
            signed = f"{esc(r['signed_off_by'])} {r['signed_off_at']:%Y-%m-%d %H:%M %Z}"
            if len(r["sign_offs"]) > 1:
                signed += f" (supersedes {len(r['sign_offs']) - 1})"
            if r["sign_off_override"]:
                signed += f"; override: {esc(r['sign_off_override'])}"
        table.add_row(f"{r['settled_on']} {r['provider']}", f"{r['matched_count']:,}",
                      f"{r['break_count']:,}", matched or "—", at_stake or "—", signed)
    out.print(table)
