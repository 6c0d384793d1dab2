"""A seeded demo day (traffic with an incident, settlement files, reconciliation, SLO and alert
evaluation) once per backend, copied for every test that writes."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine
from streamlit import config
from streamlit.testing.v1 import AppTest

from engine.storage import db
from paysignal.simulation.demo_day import run_day
from tests.support.postgres import ThrowawayPostgres, fresh_postgres_url

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
SEED_PAYMENTS = 400
_copies = itertools.count()


def seed(url: str, workdir: Path) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    # the day's 6 hours never cross midnight (UTC): settlement days are keyed by date, and a
    # capture learnt of after midnight would settle a day after the provider booked it
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = now if now - midnight >= timedelta(hours=6) else midnight - timedelta(minutes=1)
    run_day(engine, workdir, payments=SEED_PAYMENTS, seed=7, duration=timedelta(hours=6),
            discrepancies=12, end=end)
    engine.dispose()


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("seeded-sqlite")
    seed(f"sqlite:///{work / 'seeded.db'}", work)
    return work / "seeded.db"


@pytest.fixture(scope="session")
def seeded_postgres(postgres: ThrowawayPostgres,
                    tmp_path_factory: pytest.TempPathFactory) -> str:
    url = fresh_postgres_url(postgres)
    seed(url, tmp_path_factory.mktemp("seeded-pg"))
    return url.rsplit("/", 1)[1]


def copy_of_seeded(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        source: Path = request.getfixturevalue("seeded_sqlite")
        target = tmp_path / "dashboard.db"
        target.write_bytes(source.read_bytes())
        return f"sqlite:///{target}"
    server: ThrowawayPostgres = request.getfixturevalue("postgres")
    template = request.getfixturevalue("seeded_postgres")
    name = f"dash_{next(_copies)}"
    subprocess.run(["psql", "-q", "-c", f'CREATE DATABASE "{name}" TEMPLATE "{template}"'],
                   env=server.libpq_env, check=True, stdout=subprocess.DEVNULL)
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def seeded_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A private copy of the seeded demo day, on each backend."""
    return copy_of_seeded(request, request.param, tmp_path)


@pytest.fixture
def seeded_engine(seeded_url: str) -> Iterator[Engine]:
    engine = db.make_engine(seeded_url)
    yield engine
    engine.dispose()


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No login, loopback, empty caches: each test states what it changes."""
    for var in ("PAYSIGNAL_DASHBOARD_ALLOWED_DOMAINS", "PAYSIGNAL_DASHBOARD_ROLES",
                "PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "PAYSIGNAL_DASHBOARD_READ_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("USER", "tester")
    config.set_option("server.address", "127.0.0.1")
    st.cache_data.clear()
    st.cache_resource.clear()
    main = sys.modules["__main__"]
    yield
    # AppTest leaves the app as __main__; spawned worker processes (reconciliation on
    # PostgreSQL) would run it again on start-up.
    sys.modules["__main__"] = main
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(monkeypatch: pytest.MonkeyPatch, url: str, page: str = "overview",
              params: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("PAYSIGNAL_DATABASE_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=120)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py")
        for k, v in (params or {}).items():
            at.query_params[k] = v
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} (have {[m.label for m in at.metric]})"
    return found[0]


def light_table(at: AppTest, *columns: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table (dashboard.ui.light_table) with these columns."""
    for block in at.markdown:
        lines = block.value.splitlines()
        if not (lines and lines[0].startswith("| ")):
            continue
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        if set(columns) <= set(header):
            return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")),
                             strict=True)) for line in lines[2:]]
    raise AssertionError(f"no table with columns {columns}")
