"""Shared fixtures. PostgreSQL is real: a throwaway cluster started once per test session."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.storage import db
from tests.support.postgres import ThrowawayPostgres

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres(settings={"fsync": "off", "synchronous_commit": "off",
                                         "full_page_writes": "off"})
    server.start()
    template = server.create_database("paysignal_template")
    engine = db.make_engine(template)
    db.upgrade(engine)
    engine.dispose()
    yield server
    server.stop()


def fresh_postgres_url(server: ThrowawayPostgres) -> str:
    name = f"t{os.getpid()}_{next(_db_counter)}"
    subprocess.run(["psql", "-q", "-c", f'CREATE DATABASE "{name}" TEMPLATE paysignal_template'],
                   env=server.libpq_env, check=True, stdout=subprocess.DEVNULL)
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database URL on each backend."""
    if request.param == "postgres":
        return fresh_postgres_url(request.getfixturevalue("postgres"))
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "paysignal.db"
    target.write_bytes(template.read_bytes())
    return f"sqlite:///{target}"


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()
