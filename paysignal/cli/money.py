"""`paysignal payouts` and `paysignal bank`: the providers' payouts to the bank and the bank's
statements that show them arriving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from paysignal.cli._common import (
    DatabaseUrl,
    JsonFlag,
    esc,
    fail,
    guarded,
    id_table,
    json_default,
    money,
    out,
    ready_engine,
)

payouts_app = typer.Typer(no_args_is_help=True,
                          help="Payouts: each provider's transfers to the bank.")
bank_app = typer.Typer(no_args_is_help=True, help="Bank statements: payouts arriving.")

PAYOUT_EXPORT_COLUMNS = ("id", "provider", "reference", "currency", "amount_minor",
                         "lines_net_minor", "line_count", "paid_on", "status", "arrived_on",
                         "bank_credit_id", "breaks")


@payouts_app.command("list")
def payouts_list(
    provider: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="arrived or in_transit")] = None,
    export_to: Annotated[Path | None, typer.Option(
        "--export", help="Write the payouts to this .csv file (spreadsheet-safe).")] = None,
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Payouts with their amount, the net of the lines they pay out, and whether they arrived
    at the bank (newest first)."""
    from engine.exports import csv_text
    from engine.files import write_atomically
    from engine.settlement.payouts import list_payouts

    if status not in (None, "arrived", "in_transit"):
        fail(f"--status: {status!r} is neither arrived nor in_transit")
    rows = guarded(lambda: list_payouts(ready_engine(database_url), provider=provider,
                                        status=status))
    if export_to is not None:
        if export_to.suffix.lower() != ".csv" or not export_to.parent.is_dir():
            fail(f"--export: {export_to} must be a .csv file in an existing directory")
        text = csv_text(({**r, "breaks": " ".join(map(str, r["breaks"]))}
                         for r in rows), PAYOUT_EXPORT_COLUMNS)
        write_atomically(export_to, lambda partial: partial.write_text(text))
        out.print(f"wrote {len(rows)} payouts to {export_to}")
        return
    if as_json:
        print(json.dumps(rows, default=json_default))
        return
    if not rows:
        out.print("no payouts yet (they come with the providers' settlement reports)")
        return
    table = id_table("payout", "paid · provider", "amount", "lines' net", "bank", "breaks")
    for r in rows:
        amount, net = (money(int(str(r[k])), str(r["currency"])) for k in ("amount_minor",
                                                                          "lines_net_minor"))
        table.add_row(esc(r["reference"]), f"{r['paid_on']} {r['provider']}", amount,
                      net if net != amount else "= amount",
                      f"arrived {r['arrived_on']}" if r["status"] == "arrived" else "in transit",
                      ", ".join(map(str, r["breaks"])) or "—")
    out.print(table)


@bank_app.command("import")
def bank_import(
    files: Annotated[list[Path], typer.Argument(
        help="camt.053 XML (*camt053*.xml) or CSV exports (bank-*.csv).")],
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Import bank statements, then match their credits to payouts (breaks for payouts not
    arrived within PAYSIGNAL_PAYOUT_ARRIVAL_DAYS, short ones, and credits nothing explains)."""
    from engine.settlement.bank import import_statement, match_bank

    engine = ready_engine(database_url)
    imported = []
    for path in files:
        if not path.is_file():
            fail(f"{path}: no such file")
        imported.append(guarded(lambda path=path: import_statement(  # type: ignore[misc]
            engine, path.read_bytes(), path.name)))
    matched = guarded(lambda: match_bank(engine))
    figures = {
        "statements": [{"file": s.filename, "already_imported": s.already_imported,
                        "credits": s.credits, "duplicate_credits": s.duplicate_credits,
                        "row_errors": [{"line": e.line_no, "reason": e.reason}
                                       for e in s.row_errors]} for s in imported],
        "payouts_matched": matched.matched,
        "as_of": matched.as_of.isoformat() if matched.as_of else None,
        "opened": [{"kind": b.kind, "provider": b.provider, "reference": b.provider_reference,
                    "currency": b.currency, "expected_minor": b.expected_minor,
                    "actual_minor": b.actual_minor} for b in matched.opened],
        "closed": len(matched.closed)}
    if as_json:
        print(json.dumps(figures))
        return
    for s in imported:
        note = ("already imported" if s.already_imported else
                f"{s.credits} credits" + (f", {s.duplicate_credits} already known"
                                          if s.duplicate_credits else ""))
        out.print(f"{esc(s.filename)}: {note}")
        for e in s.row_errors[:10]:
            out.print(f"  entry {e.line_no}: {esc(e.reason)}")
    out.print(f"{matched.matched} payouts matched to credits; statements cover up to "
              f"{matched.as_of or '—'}")
    for b in matched.opened:
        out.print(f"[yellow]{b.kind}[/] {b.provider} {esc(b.provider_reference)}: "
                  f"{money(b.expected_minor, b.currency) or '—'} → "
                  f"{money(b.actual_minor, b.currency) or '—'}")
    if matched.closed:
        out.print(f"{len(matched.closed)} breaks closed")


disputes_app = typer.Typer(no_args_is_help=True,
                           help="Disputes (chargebacks): deadlines, amounts, outcomes.")
DISPUTE_EXPORT_COLUMNS = ("id", "provider", "dispute_ref", "payment_id", "amount_minor",
                          "currency", "reason", "status", "funds_withdrawn", "fee_minor",
                          "due_by", "opened_at", "closed_at")


@disputes_app.command("list")
def disputes_list(
    status: Annotated[str | None, typer.Option(help="open, won or lost")] = None,
    provider: Annotated[str | None, typer.Option()] = None,
    month: Annotated[str | None, typer.Option(
        help="The month of the dispute ratios, YYYY-MM (default: this one, UTC).")] = None,
    export_to: Annotated[Path | None, typer.Option(
        "--export", help="Write the disputes to this .csv file (spreadsheet-safe).")] = None,
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Disputes, the open ones whose evidence is due soonest first; with each provider's
    dispute ratio this month against the card schemes' monitoring thresholds."""
    from datetime import UTC, datetime

    from engine.exports import csv_text
    from engine.files import write_atomically
    from engine.read_models.disputes import dispute_rates, list_disputes

    if status not in (None, "open", "won", "lost"):
        fail(f"--status: {status!r} is not open, won or lost")
    try:
        at = (datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC) if month
              else datetime.now(UTC))
    except ValueError:
        fail(f"--month: {month!r} is not a month (YYYY-MM)")
    engine = ready_engine(database_url)
    rows = guarded(lambda: list_disputes(engine, status=status, provider=provider))
    if export_to is not None:
        if export_to.suffix.lower() != ".csv" or not export_to.parent.is_dir():
            fail(f"--export: {export_to} must be a .csv file in an existing directory")
        text = csv_text(rows, DISPUTE_EXPORT_COLUMNS)
        write_atomically(export_to, lambda partial: partial.write_text(text))
        out.print(f"wrote {len(rows)} disputes to {export_to}")
        return
    rates = dispute_rates(engine, at)
    if as_json:
        print(json.dumps({"disputes": rows, "rates": [
            {"provider": rate.provider, "month": rate.month.isoformat(),
             "disputes": rate.disputes, "captured": rate.captured,
             "ratio": round(rate.ratio, 6)} for rate in rates]},
            default=json_default))
        return
    if not rows:
        out.print("no disputes")
    else:
        table = id_table("dispute", "provider · payment", "amount", "reason", "status",
                         "evidence due")
        for r in rows:
            table.add_row(esc(r["dispute_ref"]), f"{r['provider']} {esc(r['payment_id'])}",
                          money(int(r["amount_minor"]), str(r["currency"])), esc(r["reason"]),
                          str(r["status"]) + (" (funds withdrawn)" if r["funds_withdrawn"]
                                              and r["status"] == "open" else ""),
                          f"{r['due_by']:%Y-%m-%d %H:%M}" if r["due_by"] else "—")
        out.print(table)
    for rate in rates:
        out.print(f"{rate.provider} {rate.month:%Y-%m}: {rate.disputes} disputes / "
                  f"{rate.captured} captured = {rate.ratio:.2%} (Visa warns at 0.65 % and 75, "
                  "Mastercard monitors at 1.0 % and 100)")
