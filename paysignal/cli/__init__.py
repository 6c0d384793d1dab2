"""The `paysignal` command line: every command, in the order a newcomer meets them.

Each command group lives in its own module; `_common` holds what they share."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from paysignal.cli import (
    alerts,
    db,
    ledger,
    merchants,
    money,
    reconcile,
    sandbox,
    serve,
    simtest,
    simulate,
    slo,
)
from paysignal.cli import demo as demo_command
from paysignal.cli._common import console

# The order of `paysignal --help`: first what a newcomer runs, then daily work, then plumbing.
ORDER = ("demo", "serve", "sandbox", "simulate", "sim-test", "reconcile", "breaks", "payouts",
         "disputes", "bank", "slo", "alerts",
         "toggles", "admins", "users", "merchants", "ledger", "outbox", "keys", "states", "db")


class _InOrder(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:  # Any: typer vendors its own click Context
        return sorted(super().list_commands(ctx), key=lambda name: (
            ORDER.index(name) if name in ORDER else len(ORDER), name))


app = typer.Typer(cls=_InOrder, no_args_is_help=True, add_completion=False,
                  rich_markup_mode="markdown",
                  help="paysignal: idempotent payments, SLOs and actionable alerts.")
app.command("demo")(demo_command.demo)
app.add_typer(serve.serve_app, name="serve")
app.add_typer(sandbox.sandbox_app, name="sandbox")
app.command("simulate")(simulate.simulate)
app.command("sim-test")(simtest.sim_test)
app.command("reconcile")(reconcile.reconcile)
app.add_typer(reconcile.breaks_app, name="breaks")
app.add_typer(money.payouts_app, name="payouts")
app.add_typer(money.bank_app, name="bank")
app.add_typer(money.disputes_app, name="disputes")
app.add_typer(slo.app, name="slo")
app.add_typer(alerts.app, name="alerts")
app.add_typer(merchants.merchants_app, name="merchants")
app.add_typer(merchants.toggles_app, name="toggles")
app.add_typer(merchants.admins_app, name="admins")
app.add_typer(merchants.users_app, name="users")
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(ledger.outbox_app, name="outbox")
app.add_typer(ledger.keys_app, name="keys")


@app.command()
def states() -> None:
    """Print the payment state machine's transition table (Markdown)."""
    from engine.domain.states import transition_table_markdown

    print(transition_table_markdown())


app.add_typer(db.db_app, name="db")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
