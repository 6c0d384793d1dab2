"""Alembic environment: runs on the engine handed over by engine.storage.db (never reads alembic.ini)."""

from alembic import context

from engine.storage.tables import metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
