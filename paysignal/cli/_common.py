"""What every command module shares: consoles, the --database-url and --json options, and
error handling that turns a PaysignalError into one red line and exit status 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine

from engine.exceptions import PaysignalError
from engine.files import write_atomically
from engine.storage import db

console = Console(stderr=True)
out = Console()
T = TypeVar("T")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="PAYSIGNAL_DATABASE_URL", show_envvar=True,
    help="SQLAlchemy URL (postgresql://... or sqlite:///path). Default: sqlite:///var/paysignal.db")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def fail(message: str) -> NoReturn:
    # soft wrap: the terminal folds a long message; a path or value is never cut by a newline
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def esc(value: object) -> str:
    """Text from outside (a settlement file, a provider, a note) printed as it is: never read
    as Rich markup."""
    return escape("" if value is None else str(value))


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except PaysignalError as exc:
        fail(str(exc))


def write_out_file(path: Path, text: str) -> None:
    """Write an --out file whole or not at all: a temporary file renamed into place."""
    if not path.parent.is_dir():
        fail(f"--out: {path.parent} is not a directory")
    write_atomically(path, lambda partial: partial.write_text(text))



def ready_engine(url: str | None, pool_size: int = 10) -> Engine:
    """An engine on a database whose schema is current, or a clear error saying how to fix it."""
    engine = guarded(lambda: db.make_engine(url, pool_size=pool_size))
    guarded(lambda: db.require_current_schema(engine))
    return engine


def money(minor: int | None, currency: str | None) -> str:
    """An amount for a table cell: 'EUR 1,234.56'; the bare minor units when the currency is
    unknown; empty when there is no amount."""
    from engine.domain.money import CURRENCY_EXPONENTS, Money

    if minor is None:
        return ""
    if currency in CURRENCY_EXPONENTS:
        return Money(minor, str(currency)).display()
    return f"{minor} minor units"


def id_table(*headers: str, title: str | None = None) -> Table:
    """A table whose first column holds ids: printed whole (never cut or folded), so they can
    be copied into the next command; the other columns wrap instead."""
    table = Table(*headers, title=title)
    table.columns[0].no_wrap = True
    table.columns[0].overflow = "ignore"
    return table


def json_default(value: object) -> str:
    """For json.dumps: timestamps and dates in ISO 8601 (with their UTC offset), else str."""
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)
