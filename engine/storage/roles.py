"""Least-privilege PostgreSQL roles. The role that runs the migrations owns the tables; the API
and the worker connect as the application role, which may read and write operational tables but
only SELECT and INSERT the ledger and audit tables (no UPDATE, DELETE or TRUNCATE, and, not being
the owner, no ALTER TABLE … DISABLE TRIGGER); the dashboard reads as the read-only role."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import Engine, inspect

from engine.exceptions import ConfigurationError
from engine.storage.tables import metadata

APPEND_ONLY = ("payment_transitions", "journal_transactions", "journal_entries", "toggle_audit",
               "recon_break_audit", "recon_sign_offs", "budget_policy_notes")


@dataclass(frozen=True, slots=True)
class Roles:
    app: str = "paysignal_app"
    readonly: str = "paysignal_readonly"


def ensure_roles(engine: Engine, app_password: str, readonly_password: str,
                 roles: Roles = Roles()) -> list[str]:
    """Create (or update the passwords of) both roles and grant exactly what each needs on the
    current schema. Run it as the owner after every `db upgrade`; it is safe to run again.
    Returns the statements it ran, passwords masked."""
    if engine.dialect.name != "postgresql":
        raise ConfigurationError("database roles are a PostgreSQL feature; SQLite has none")
    tables = sorted(set(inspect(engine).get_table_names()) & set(metadata.tables))
    if not tables:
        raise ConfigurationError("the schema is empty: run `paysignal db upgrade` first")
    ran: list[str] = []
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        database = conn.exec_driver_sql("SELECT current_database()").scalar_one()

        def run(statement: sql.Composable, shown: str | None = None) -> None:
            with driver.cursor() as cursor:
                cursor.execute(statement)
            ran.append(shown or statement.as_string(driver))

        for role, password in ((roles.app, app_password), (roles.readonly, readonly_password)):
            exists = conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                          (role,)).first()
            verb = "ALTER" if exists else "CREATE"
            run(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)), f"{verb} ROLE {role} LOGIN PASSWORD ***")
            run(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(role)))
            run(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        app, ro = sql.Identifier(roles.app), sql.Identifier(roles.readonly)
        for table in tables:
            name = sql.Identifier(table)
            run(sql.SQL("REVOKE ALL ON {} FROM {}, {}").format(name, app, ro))
            run(sql.SQL("GRANT SELECT ON {} TO {}").format(name, ro))
            privileges = ("SELECT, INSERT" if table in APPEND_ONLY
                          else "SELECT, INSERT, UPDATE, DELETE")
            run(sql.SQL("GRANT " + privileges + " ON {} TO {}").format(name, app))
        run(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(app))
    return ran
