"""Shared fixtures and markers. PostgreSQL is real: a throwaway cluster started once per test
session. Every test under tests/system is marked `system`; every test that touches the cluster is
marked `postgres`. The fast lane is `pytest -m "not slow and not system"`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.providers.registry import PROVIDERS, new_webhook_credentials
from engine.providers.sandbox import SandboxServer
from engine.providers.sandbox.registry import build_sandbox, sandbox_environment
from engine.storage import db
from engine.testing import NO_FAULTS
from tests.support.postgres import ThrowawayPostgres, fresh_postgres_url

pytest_plugins = ["tests.support.dashboard"]  # the seeded-day fixtures
# Each test session verifies provider notifications with its own random credentials (there is no
# default); the processes the tests start inherit them.
for _provider, _credential in new_webhook_credentials().items():
    os.environ.setdefault(PROVIDERS[_provider].webhook_variable, _credential)


@pytest.fixture(scope="session")
def session_sandbox() -> Iterator[SandboxServer]:
    """One provider sandbox over loopback for the session, without faults; the environment
    points every process a test starts (serve api, serve worker, ...) at it."""
    credentials = {n: os.environ[PROVIDERS[n].webhook_variable].split(",")[0]
                   for n in PROVIDERS}
    with SandboxServer(build_sandbox(credentials, profile=NO_FAULTS)) as server:
        saved = dict(os.environ)
        os.environ.update(sandbox_environment(server.url, credentials))
        for name in PROVIDERS:  # a stalled answer (a sandbox fault) costs the read time-out
            os.environ[f"PAYSIGNAL_{name.upper()}_READ_TIMEOUT_S"] = "2"
        try:
            yield server
        finally:
            os.environ.clear()
            os.environ.update(saved)
# Table gauges are cached for 15 s in production; tests read them right after each change.
os.environ.setdefault("PAYSIGNAL_TABLE_GAUGES_TTL_S", "0")
SYSTEM_DIR = Path(__file__).parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SYSTEM_DIR in item.path.parents:
            item.add_marker(pytest.mark.system)
        if "postgres" in getattr(item, "fixturenames", ()) or _on_postgres(item):
            item.add_marker(pytest.mark.postgres)


def _on_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in callspec.params.values()


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


@pytest.fixture
def cli_width() -> Iterator[Callable[[int], None]]:
    """Sets the width the CLI's consoles print at, whatever terminal (or none: 80 columns, or
    COLUMNS when the suite was started with it) runs the suite; restored afterwards. Rich reads
    COLUMNS once, when a console is made, so a CliRunner's env cannot change it."""
    from paysignal.cli import _common

    saved = [(c, c._width) for c in (_common.out, _common.console)]

    def set_width(columns: int) -> None:
        for console, _ in saved:
            console.width = columns

    yield set_width
    for console, width in saved:
        console._width = width


@pytest.fixture
def wide_terminal(cli_width: Callable[[int], None]) -> None:
    """The CLI's tables as a 200-column terminal prints them: for tests that read a table's
    cells rather than `--json`."""
    cli_width(200)
