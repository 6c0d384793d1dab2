"""`paysignal ledger`, `paysignal outbox` and `paysignal keys`: the engine's books and queues."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from paysignal.cli._common import DatabaseUrl, JsonFlag, guarded, out, ready_engine

ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")
outbox_app = typer.Typer(no_args_is_help=True, help="The transactional outbox.")
keys_app = typer.Typer(no_args_is_help=True, help="Idempotency keys.")


@ledger_app.command("balances")
def ledger_balances(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Balance (debits minus credits) per account and currency, in minor units."""
    from engine.read_models.ledger import balances

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
    from engine.read_models.ledger import imbalances

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
    from engine.outbox.relay import OutboxRelay, sink_from_environment

    engine = ready_engine(database_url)
    sink = guarded(sink_from_environment)
    out.print(f"published {OutboxRelay(engine, sink).drain()} events to {sink.name}")


@keys_app.command("expire")
def keys_expire(database_url: DatabaseUrl = None) -> None:
    """Delete finished idempotency keys past their expiry (PAYSIGNAL_IDEMPOTENCY_KEY_TTL_S)."""
    from paysignal.bootstrap import build_service

    service = build_service(ready_engine(database_url))
    out.print(f"expired {service.expire_keys()} idempotency keys")

