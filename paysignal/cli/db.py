"""`paysignal db`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.storage import db
from paysignal.cli._common import DatabaseUrl, guarded, out

db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")


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

