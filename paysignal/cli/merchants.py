"""`paysignal merchants` and `paysignal toggles`: who may call the API, and how strictly
idempotency is enforced per provider."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from paysignal.cli._common import DatabaseUrl, JsonFlag, guarded, out, ready_engine

merchants_app = typer.Typer(no_args_is_help=True, help="Merchants and their API keys.")
toggles_app = typer.Typer(no_args_is_help=True,
                          help="Staged rollout of idempotency enforcement (off|shadow|enforce).")


@merchants_app.command("create")
def merchants_create(
    name: Annotated[str, typer.Argument(help="The merchant's name (unique).")],
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Create a merchant and print its API key. The key is shown only this once."""
    from engine.payments.merchants import create_merchant

    new = guarded(lambda: create_merchant(ready_engine(database_url), name))
    if as_json:
        print(json.dumps({"merchant_id": new.merchant_id, "name": new.name,
                          "api_key": new.api_key}))
        return
    out.print(f"merchant {new.name}: {new.merchant_id}")
    out.print(f"API key (shown once, store it now): {new.api_key}")



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
    from engine.payments.toggles import set_mode
    from engine.providers import provider_names

    change = guarded(lambda: set_mode(
        ready_engine(database_url), provider=provider, mode=mode, actor=actor,
        known_providers=provider_names(), payment_method=payment_method, reason=reason))
    if as_json:
        print(json.dumps(change))
    else:
        out.print(f"{change['provider']} / {change['payment_method']}: "
                  f"{change['from']} -> {change['to']} (by {change['actor']})")


@toggles_app.command("list")
def toggles_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Current toggles (providers not listed enforce) and the latest audited changes."""
    from engine.payments.toggles import audit_trail, current_modes

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


