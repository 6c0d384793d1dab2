"""Small SQL helpers shared by the adapters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def increment(conn: Connection, table: Table, key: dict[str, Any], column: str = "count") -> None:
    """INSERT the row with `column` = 1, or add 1 to it if the key exists (either backend)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**key, **{column: 1})
    conn.execute(stmt.on_conflict_do_update(
        index_elements=list(key), set_={column: table.c[column] + 1}))


def insert_ignoring_conflicts(conn: Connection, table: Table, *index_elements: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on either backend (add .values() / .returning())."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements) or None)
