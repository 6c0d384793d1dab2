"""Small SQL helpers shared by the adapters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(conn: Connection, table: Table, *index_elements: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on either backend (add .values() / .returning())."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements) or None)
