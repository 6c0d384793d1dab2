"""`paysignal db`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.storage import db
from paysignal.cli._common import DatabaseUrl, fail, guarded, out

db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations and roles.")


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



@db_app.command("roles")
def db_roles(
    app_password: Annotated[str, typer.Option(
        envvar="PAYSIGNAL_APP_DB_PASSWORD", show_envvar=True,
        help="Password of the application role (API and worker).")],
    readonly_password: Annotated[str, typer.Option(
        envvar="PAYSIGNAL_READONLY_DB_PASSWORD", show_envvar=True,
        help="Password of the read-only role (dashboard reads).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Create the least-privilege PostgreSQL roles and grant them the current schema: run as the
    owner (the role that runs `db upgrade`), after every upgrade. paysignal_app may only SELECT
    and INSERT the ledger and audit tables; paysignal_readonly only SELECTs."""
    from engine.secrets import secret_problem
    from engine.storage.roles import ensure_roles

    for variable, value in (("--app-password", app_password),
                            ("--readonly-password", readonly_password)):
        problem = secret_problem(variable, value)
        if problem:
            fail(problem)
    engine = guarded(lambda: db.make_engine(database_url))
    guarded(lambda: db.require_current_schema(engine))
    ran = guarded(lambda: ensure_roles(engine, app_password, readonly_password))
    out.print(f"roles paysignal_app and paysignal_readonly ready ({len(ran)} statements)")
