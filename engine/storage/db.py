"""Database engines, migrations and the schema-currency check."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import Field
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError

from engine.environment import EnvironmentSettings, read_settings
from engine.exceptions import ConfigurationError, SchemaOutOfDateError

DEFAULT_SQLITE_PATH = Path("var/paysignal.db")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def database_url(explicit: str | None = None) -> str:
    """The URL to use: explicit, else PAYSIGNAL_DATABASE_URL, else the embedded SQLite file."""
    url = explicit or os.environ.get("PAYSIGNAL_DATABASE_URL")
    if url:
        return normalize_url(url)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def normalize_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(f"database URL: {url!r} is not a valid URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"database URL: backend {parsed.get_backend_name()!r} is not supported "
            "(use sqlite:///path or postgresql://...)"
        )
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str | None = None, *, pool_size: int = 10) -> Engine:
    resolved = database_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, connect_args={"timeout": 60, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    engine = create_engine(resolved, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine, ping_idle_s())
    return engine


class DatabaseSettings(EnvironmentSettings):
    db_ping_idle_s: Annotated[float, Field(ge=0, le=86_400)] | Literal["off"] = Field(
        1.0, alias="PAYSIGNAL_DB_PING_IDLE_S",
        description="a pooled PostgreSQL connection idle for longer than this (seconds) is "
                    "checked before use; `off` never checks. Connections in steady use skip "
                    "the check (it would cost a round trip per transaction)")


def ping_idle_s() -> float | None:
    """How long a pooled connection may idle before it is checked (None: never)."""
    value = read_settings(DatabaseSettings).db_ping_idle_s
    return None if value == "off" else value


def _ping_when_idle(engine: Engine, idle_s: float | None) -> None:
    """Check a pooled connection before use only when it sat idle (a server restart or an idle
    time-out closes those): a connection in steady use needs no extra round trip per
    transaction, which SQLAlchemy's pre-ping would spend on every checkout. A connection
    found broken in use is invalidated with its whole pool by SQLAlchemy, and the request
    fails once (clients retry with their Idempotency-Key)."""
    if idle_s is None:
        return

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned <= idle_s:
            return
        try:
            dbapi_connection.execute("SELECT 1").fetchall()
            dbapi_connection.rollback()
        except Exception as exc:  # the pool replaces a broken connection and tries again
            raise DisconnectionError(f"pooled connection failed its check: {exc}") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Take the write lock up front so concurrent writers queue instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE")



def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


@lru_cache(maxsize=1)  # the migrations shipped with this code do not change while it runs
def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(_alembic_config(engine), revision)


def require_current_schema(engine: Engine) -> None:
    current = current_revision(engine)
    if current != head_revision():
        raise SchemaOutOfDateError(current, head_revision())
