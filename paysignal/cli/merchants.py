"""`paysignal merchants` and `paysignal toggles`: who may call the API, and how strictly
idempotency is enforced per provider."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from paysignal.cli._common import (
    DatabaseUrl,
    JsonFlag,
    fail,
    guarded,
    id_table,
    json_default,
    out,
    ready_engine,
)

merchants_app = typer.Typer(no_args_is_help=True, help="Merchants and their API keys.")
users_app = typer.Typer(no_args_is_help=True,
                        help="Dashboard accounts: each person logs in as themselves.")
admins_app = typer.Typer(no_args_is_help=True,
                         help="Operators of the admin API (toggles, silences), each with a token.")
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
    out.print(f"API key {new.key_id} (shown once, store it now): {new.api_key}")


@merchants_app.command("list")
def merchants_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Every merchant, with how many of its API keys work now."""
    from engine.payments.merchants import list_merchants

    rows = guarded(lambda: list_merchants(ready_engine(database_url)))
    if as_json:
        print(json.dumps(rows, default=json_default))
        return
    if not rows:
        out.print("no merchants yet: paysignal merchants create NAME")
        return
    table = id_table("id", "name", "created", "working keys")
    for r in rows:
        table.add_row(str(r["id"]), str(r["name"]), f"{r['created_at']:%Y-%m-%d %H:%M %Z}",
                      f"{r['working_keys']} of {r['keys']}")
    out.print(table)


@merchants_app.command("rotate-key")
def merchants_rotate_key(
    merchant: Annotated[str, typer.Argument(help="The merchant's id or name.")],
    overlap: Annotated[str, typer.Option(
        help="How long the old keys keep working, e.g. 24h or 7d (at most 30d; 0s stops them "
             "now).")] = "24h",
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Issue a new API key; the merchant's old keys keep working for the overlap, then stop."""
    from alerts.routing import RoutingConfigError, parse_duration
    from engine.payments.merchants import rotate_key

    try:
        span = parse_duration(overlap, "--overlap", "overlap")
    except RoutingConfigError:
        fail(f"--overlap: {overlap!r} is not a duration like 30m, 24h or 7d")
    new = guarded(lambda: rotate_key(ready_engine(database_url), merchant, span))
    if as_json:
        print(json.dumps({"merchant_id": new.merchant_id, "key_id": new.key_id,
                          "api_key": new.api_key, "old_keys_stop_in_s": span.total_seconds()}))
        return
    out.print(f"new API key {new.key_id} for {new.name} (shown once, store it now): "
              f"{new.api_key}")
    out.print(f"the old keys keep working for {overlap}")


@merchants_app.command("revoke-key")
def merchants_revoke_key(
    merchant: Annotated[str, typer.Argument(help="The merchant's id or name.")],
    key_id: Annotated[str, typer.Argument(help="The key to stop (see `merchants keys`).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Stop one API key at once (a leaked key, say)."""
    from engine.payments.merchants import revoke_key

    guarded(lambda: revoke_key(ready_engine(database_url), merchant, key_id))
    out.print(f"{key_id}: revoked")


@merchants_app.command("keys")
def merchants_keys(
    merchant: Annotated[str, typer.Argument(help="The merchant's id or name.")],
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """A merchant's API keys (ids and dates only; keys are never stored)."""
    from engine.payments.merchants import list_keys

    rows = guarded(lambda: list_keys(ready_engine(database_url), merchant))
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = id_table("key", "created", "stops", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), str(r["created_at"]), str(r["expires_at"] or ""),
                      str(r["revoked_at"] or ""))
    out.print(table)



@toggles_app.command("set")
def toggles_set(
    provider: Annotated[str, typer.Option(help="Provider the toggle applies to.")],
    mode: Annotated[str, typer.Option(help="off, shadow or enforce.")],
    actor: Annotated[str, typer.Option(help="Who is making the change (audited).")],
    reason: Annotated[str, typer.Option(help="Why (audited; required).")],
    method_type: Annotated[str, typer.Option(
        help="card, wallet, bank_debit, bank_transfer, or * for every type.")] = "*",
    merchant: Annotated[str, typer.Option(help="One merchant's id, or * for all.")] = "*",
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Change idempotency enforcement for a provider, optionally for one payment-method type
    and one merchant (the most specific toggle wins); audited."""
    from engine.payments.toggles import set_mode
    from engine.providers import provider_names

    change = guarded(lambda: set_mode(
        ready_engine(database_url), provider=provider, mode=mode, actor=actor,
        known_providers=provider_names(), method_type=method_type, merchant_id=merchant,
        reason=reason))
    scope = _toggle_scope(change)
    if as_json:
        print(json.dumps(change))
    elif not change["changed"]:
        out.print(f"{scope} is already {change['to']}: nothing changed, nothing audited")
    else:
        out.print(f"{scope}: {change['from']} -> {change['to']} (by {change['actor']})")


def _toggle_scope(toggle: dict[str, str]) -> str:
    """provider / method type, and the merchant when the toggle is for one."""
    merchant = toggle.get("merchant_id", "*")
    return (f"{toggle['provider']} / {toggle['method_type']}"
            + ("" if merchant == "*" else f" / merchant {merchant}"))


@toggles_app.command("list")
def toggles_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Current toggles (providers not listed enforce), the latest audited changes and the
    error-budget policy notes."""
    from engine.payments.toggles import audit_trail, current_modes, policy_notes

    engine = ready_engine(database_url)
    toggles, audit = current_modes(engine), audit_trail(engine, 20)
    notes = policy_notes(engine, 10)
    if as_json:
        print(json.dumps({"toggles": toggles, "audit": audit, "budget_policy": notes}))
        return
    table = Table("provider", "method type", "merchant", "mode", "changed by", "at")
    for t in toggles:
        table.add_row(t["provider"], t["method_type"], t["merchant_id"], t["mode"],
                      t["updated_by"], t["updated_at"])
    out.print(table if toggles else "no toggles set: every provider enforces idempotency")
    for a in audit:
        out.print(f"{a['at']}  {_toggle_scope(a)}: {a['from']} -> {a['to']} "
                  f"by {a['actor']} ({a['reason']})", soft_wrap=True)
    if notes:
        out.print("[bold]error-budget policy[/] (latest first; read before changing a toggle):")
    for n in notes:
        out.print(f"{n['at']}  {n['provider']}: {n['note']}")




@admins_app.command("create")
def admins_create(
    name: Annotated[str, typer.Argument(help="The operator's name, e.g. ana@example.com.")],
    database_url: DatabaseUrl = None, as_json: JsonFlag = False,
) -> None:
    """Give an operator an admin-API token. The token is shown only this once; the audit trail
    of every change made with it names the operator."""
    from engine.payments.admins import create_admin

    new = guarded(lambda: create_admin(ready_engine(database_url), name))
    if as_json:
        print(json.dumps({"name": new.name, "token": new.token}))
        return
    out.print(f"admin {new.name}")
    out.print(f"token (shown once, store it now): {new.token}")


@admins_app.command("revoke")
def admins_revoke(name: Annotated[str, typer.Argument(help="The operator to revoke.")],
                  database_url: DatabaseUrl = None) -> None:
    """Revoke an operator's admin-API token at once."""
    from engine.payments.admins import revoke_admin

    guarded(lambda: revoke_admin(ready_engine(database_url), name))
    out.print(f"admin {name}: token revoked")


@admins_app.command("list")
def admins_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Operators with admin-API tokens, and which are revoked."""
    from engine.payments.admins import list_admins

    rows = list_admins(ready_engine(database_url))
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("name", "created", "revoked")
    for r in rows:
        table.add_row(str(r["name"]), str(r["created_at"]), str(r["revoked_at"] or ""))
    out.print(table if rows else "no admins: create one with `paysignal admins create NAME`")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The account name, e.g. ana or ana@example.com.")],
    roles: Annotated[str, typer.Option(help="finance, engineering and/or viewer, comma-separated.")],
    password_env: Annotated[str | None, typer.Option(
        help="Read the password from this environment variable instead of prompting.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a dashboard account (the password is stored as a scrypt hash)."""
    import os

    from dashboard.accounts import create_account

    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            fail(f"--password-env: {password_env} is not set")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    guarded(lambda: create_account(ready_engine(database_url), name, password, roles))
    out.print(f"dashboard account {name} ({roles})")


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="The account to disable.")],
                  database_url: DatabaseUrl = None) -> None:
    """Disable a dashboard account at once."""
    from dashboard.accounts import disable_account

    guarded(lambda: disable_account(ready_engine(database_url), name))
    out.print(f"dashboard account {name}: disabled")


@users_app.command("list")
def users_list(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Dashboard accounts and their roles."""
    from dashboard.accounts import list_accounts

    rows = list_accounts(ready_engine(database_url))
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("name", "roles", "created", "disabled")
    for r in rows:
        table.add_row(str(r["name"]), str(r["roles"]), str(r["created_at"]),
                      str(r["disabled_at"] or ""))
    out.print(table if rows else "no dashboard accounts: add one with `paysignal users add`")
