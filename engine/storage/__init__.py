"""Storage: the tables, the payment repository, database engines and Alembic migrations."""
